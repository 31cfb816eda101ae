"""The installed ``losskit`` console script: output, exit codes, JSON schema, one-line errors."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(sys.executable).with_name("losskit")
COMMANDS = ["baseline", "demo", "diagnose", "explain", "recommend", "units"]


def run(*args, cwd=None):
    if not SCRIPT.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run(
        [str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd, env=env
    )


def assert_user_error(result, *words):
    assert result.returncode == 2, result
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    r = run(command, "--help")
    assert r.returncode == 0 and "usage: losskit " + command in r.stdout


def test_top_level_help_lists_commands():
    r = run("--help")
    assert r.returncode == 0
    for c in COMMANDS:
        assert c in r.stdout


def test_baseline_worked_example():
    r = run("baseline", "--loss", "cross_entropy", "--classes", "27")
    assert r.returncode == 0
    assert r.stdout.splitlines()[0] == "3.2958 nats (4.7549 bits, perplexity 27.00)"


def test_baseline_json_and_targets(tmp_path):
    r = run("baseline", "--loss", "bce", "--json")
    d = json.loads(r.stdout)
    assert (
        d["baseline"] == pytest.approx(math.log(2))
        and d["unit"] == "nats"
        and d["perplexity"] == pytest.approx(2)
    )
    y = tmp_path / "y.npy"
    np.save(y, np.array([2.0, 3.0, 5.0]))
    r = run("baseline", "--loss", "mse", "--targets", y)
    assert r.returncode == 0 and r.stdout.startswith("1.5556")
    labels = tmp_path / "labels.txt"
    labels.write_text("0\n1\n1\n2\n")
    r = run("baseline", "--targets", labels, "--json")
    p = np.array([0.25, 0.5, 0.25])
    assert json.loads(r.stdout)["baseline"] == pytest.approx(-(p * np.log(p)).sum())


def test_baseline_errors():
    assert_user_error(run("baseline", "--loss", "mse"), "needs targets")
    assert_user_error(run("baseline", "--loss", "nope", "--classes", "3"), "unknown loss 'nope'")
    assert_user_error(run("baseline", "--targets", "/no/such/file.npy"), "no such file")
    assert_user_error(run("baseline", "--priors", "a,b"), "--priors")


def test_units():
    r = run("units", "27", "--from", "perplexity")
    assert r.returncode == 0 and r.stdout.strip() == "3.2958 nats = 4.7549 bits = perplexity 27.00"
    d = json.loads(run("units", "1", "--from", "bits", "--json").stdout)
    assert d == pytest.approx({"nats": math.log(2), "bits": 1.0, "perplexity": 2.0})
    r = run("units", "2.0", "--tokens", "1000", "--characters", "4000")
    assert "bits per character" in r.stdout
    assert_user_error(run("units", "2.0", "--tokens", "10"), "go together")
    assert run("units", "3", "--from", "decibans").returncode == 2  # argparse's own error


def test_recommend():
    r = run("recommend", "multiclass")
    assert r.returncode == 0 and "cross_entropy" in r.stdout and "common mistakes" in r.stdout
    d = json.loads(run("recommend", "distribution", "--json").stdout)
    assert d["task"] == "distribution" and any("batchmean" in m for m in d["mistakes"])
    assert_user_error(run("recommend", "astrology"), "unknown task")


def test_explain(tmp_path):
    r = run("explain", "bce")
    assert r.returncode == 0 and "binary_cross_entropy" in r.stdout and "F.binary_cross_entropy" in r.stdout
    png = tmp_path / "ce.png"
    d = json.loads(run("explain", "cross_entropy", "--plot", png, "--json").stdout)
    assert d["derivative"].startswith("d/dlogits") and d["plot"] == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert_user_error(run("explain", "nope"), "unknown loss 'nope'")


def write_keras_log(path, *, overfit=True, nan=False):
    e = np.arange(30)
    train = 0.2 + 2.1 * np.exp(-e / 5)
    val = 0.6 + 1.8 * np.exp(-e / 5) + (0.004 * np.maximum(0, e - 12) ** 2 if overfit else 0)
    if nan:
        train[20:] = np.nan
    rows = ["epoch,loss,val_loss"] + [f"{i},{a},{b}" for i, a, b in zip(e, train, val)]
    path.write_text("\n".join(rows) + "\n")
    return int(np.argmin(val))


def test_diagnose_human_report(tmp_path):
    log = tmp_path / "training.log"
    best = write_keras_log(log)
    r = run("diagnose", log, "--classes", "10")
    assert r.returncode == 0
    # Keras logs its first epoch as 0 and shows it as "Epoch 1/N": findings count from 1
    assert "keras_csv" in r.stdout and "[warning] overfitting" in r.stdout and f"epoch {best + 1}" in r.stdout


def test_diagnose_json_schema(tmp_path):
    log = tmp_path / "training.log"
    best = write_keras_log(log, nan=True)
    png = tmp_path / "curves.png"
    r = run("diagnose", log, "--classes", "10", "--json", "--plot", png)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["format"] == "keras_csv" and d["baseline"] == pytest.approx(math.log(10))
    assert isinstance(d["findings"], list) and d["findings"]
    for f in d["findings"]:
        assert set(f) == {"kind", "severity", "step", "epoch", "message", "value"}
        assert f["value"] is None or isinstance(f["value"], float)
        assert f["severity"] in ("error", "warning", "info") and isinstance(f["message"], str)
        assert f["step"] is None or isinstance(f["step"], (int, float))
    kinds = {f["kind"]: f for f in d["findings"]}
    assert kinds["nan"]["epoch"] == 21 and kinds["overfitting"]["epoch"] == best + 1  # Keras counts from 1
    # the loss at the finding: the validation minimum for overfitting
    val = 0.6 + 1.8 * np.exp(-best / 5) + 0.004 * max(0, best - 12) ** 2
    assert kinds["overfitting"]["value"] == pytest.approx(val)
    # a single run: its keys at the top level, and the same run in "runs"
    assert [run["path"] for run in d["runs"]] == [str(log)]
    assert d["runs"][0]["findings"] == d["findings"] and d["runs"][0]["plot"] == str(png)
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 5000


def test_diagnose_options(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text(
        "step,objective,holdout\n" + "".join(f"{i},{2.0 / (i + 1)},{2.1 / (i + 1)}\n" for i in range(50))
    )
    assert_user_error(run("diagnose", log), "no loss column")
    r = run(
        "diagnose", log, "--train-column", "objective", "--val-column", "holdout", "--format", "csv", "--json"
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["columns"] == {"train": "objective", "val": "holdout"}


def test_diagnose_errors(tmp_path):
    assert_user_error(run("diagnose", tmp_path / "missing.csv"), "no such file")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert_user_error(run("diagnose", empty), "empty")
    header = tmp_path / "header.csv"
    header.write_text("epoch,loss,val_loss\n")
    assert_user_error(run("diagnose", header), "no rows")
    blob = tmp_path / "weights.bin"
    blob.write_bytes(bytes(range(256)))
    assert_user_error(run("diagnose", blob), "unknown format")
    nolos = tmp_path / "acc.csv"
    nolos.write_text("epoch,accuracy\n0,0.5\n")
    assert_user_error(run("diagnose", nolos), "no loss column")
    assert_user_error(run("diagnose", tmp_path), "directory")
