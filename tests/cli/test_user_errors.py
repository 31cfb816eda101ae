"""User mistakes on the command line: one line on stderr, exit status 2, never a traceback;
the three ways to start the command line behave alike; files written respect the umask."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(sys.executable).with_name("losskit")
ENTRY_POINTS = {
    "script": [str(SCRIPT)],
    "python -m losskit": [sys.executable, "-m", "losskit"],
    "python -m losskit.cli": [sys.executable, "-m", "losskit.cli"],
}


def run(*args, entry="script", umask=None, timeout=120):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run(
        [*ENTRY_POINTS[entry], *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        preexec_fn=None if umask is None else (lambda: os.umask(umask)),
    )


def assert_user_error(result, command, *words):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"losskit {command}: error: " if command else "losskit: error: "), lines[0]
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


# -- diagnose ------------------------------------------------------------------------------------


def _trainer_state(path, text: str | bytes):
    path.mkdir(exist_ok=True)
    (path / "trainer_state.json").write_bytes(text.encode() if isinstance(text, str) else text)
    return path


@pytest.mark.parametrize(
    "content", ["3", "[1, 2]", '"text"', "null"], ids=["number", "list", "string", "null"]
)
@pytest.mark.parametrize("as_folder", [False, True], ids=["file", "folder"])
def test_diagnose_trainer_state_that_is_not_an_object(tmp_path, content, as_folder):
    folder = _trainer_state(tmp_path / "run", content)
    assert_user_error(
        run("diagnose", folder if as_folder else folder / "trainer_state.json"),
        "diagnose",
        "trainer_state.json",
        "not a Hugging Face trainer_state.json",
    )


def test_diagnose_csv_field_over_the_csv_modules_limit(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text('step,loss\n0,1.0\n1,"' + "x" * (200 * 1024) + '"\n2,0.5\n')
    assert_user_error(run("diagnose", log), "diagnose", str(log))


@pytest.mark.parametrize("name", ["trainer_state.json", "config.json"])
def test_diagnose_deeply_nested_json(tmp_path, name):
    log = tmp_path / name
    log.write_text('{"log_history": ' + "[" * 200_000 + "]" * 200_000 + "}")
    assert_user_error(run("diagnose", log), "diagnose", str(log))


def test_diagnose_reads_a_trainer_state_with_a_byte_order_mark(tmp_path):
    state = {"log_history": [{"loss": 2.0 - 0.05 * i, "step": i + 1, "epoch": i / 10} for i in range(40)]}
    bom = b"\xef\xbb\xbf" + json.dumps(state).encode()
    folder = _trainer_state(tmp_path / "run", bom)
    for target in (folder, folder / "trainer_state.json"):
        r = run("diagnose", target, "--json")
        assert r.returncode == 0, r.stderr
        report = json.loads(r.stdout)
        assert report["format"] == "hf_trainer_state" and report["columns"] == {"train": "loss"}


# -- evaluate ------------------------------------------------------------------------------------


@pytest.fixture
def npy(tmp_path):
    np.save(tmp_path / "p.npy", np.linspace(0.0, 1.0, 20))
    np.save(tmp_path / "t.npy", np.linspace(1.0, 0.0, 20))
    return tmp_path / "p.npy", tmp_path / "t.npy"


@pytest.mark.parametrize("scheduler", ["bogus", "tcp://", "nosuchscheme://host:1", "tcp://host:port"])
def test_evaluate_scheduler_that_is_not_an_address(npy, scheduler):
    assert_user_error(run("evaluate", *npy, "--loss", "mse", "--scheduler", scheduler), "evaluate", scheduler)


@pytest.mark.parametrize("limit", ["lots", "-1GiB", "2 parsecs"])
def test_evaluate_memory_limit_that_is_not_a_size(npy, limit):
    assert_user_error(
        run("evaluate", *npy, "--loss", "mse", "--memory-limit", limit), "evaluate", "--memory-limit"
    )


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0"])
def test_evaluate_connect_timeout_that_is_not_a_positive_number(npy, value):
    assert_user_error(
        run(
            "evaluate", *npy, "--loss", "mse", "--scheduler", "tcp://127.0.0.1:1", "--connect-timeout", value
        ),
        "evaluate",
        "--connect-timeout",
    )


@pytest.mark.parametrize("value", ["(" * 5000, "-" * 100_000 + "1", "1+" * 30_000 + "1"])
def test_evaluate_loss_option_that_python_cannot_read(npy, value):
    # too deep for Python's parser: the option is taken as a word, which the loss refuses
    assert_user_error(
        run("evaluate", *npy, "--loss", f"mse:reduction={value}", "--scheduler", "synchronous"),
        "evaluate",
        "reduction",
    )


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_evaluate_output_respects_the_umask(npy, tmp_path, umask):
    out = tmp_path / "result.json"
    r = run(
        "evaluate", *npy, "--loss", "mse", "--scheduler", "synchronous", "--no-progress", "--output", out,
        umask=umask,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask
    assert json.loads(out.read_text())["rows"] == 20
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# -- the three entry points ------------------------------------------------------------------------


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_entry_points_behave_alike(tmp_path, entry):
    if entry == "script" and not SCRIPT.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    r = run("--version", entry=entry)
    assert r.returncode == 0 and r.stdout.startswith("losskit "), (r.stdout, r.stderr)
    r = run("units", "27", "--from", "perplexity", entry=entry)
    assert r.returncode == 0 and r.stdout.strip() == "3.2958 nats = 4.7549 bits = perplexity 27.00"
    assert_user_error(run("diagnose", tmp_path / "missing.csv", entry=entry), "diagnose", "no such file")
    assert_user_error(run("explain", "nope", entry=entry), "explain", "unknown loss 'nope'")
    # argparse's own errors, in one line too
    assert_user_error(run("units", "3", "--from", "decibans", entry=entry), "units", "invalid choice")
    assert_user_error(
        run("evaluate", "p.npy", "--memory-limit", entry=entry), "evaluate", "expected one argument"
    )
    assert_user_error(run("frobnicate", entry=entry), "", "invalid choice")
