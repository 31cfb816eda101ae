"""``losskit diagnose`` for people and CI: several logs and runs in one call, standard input,
``--fail-on`` exit statuses, the ``--html`` report (rendered in headless Chromium), did-you-mean
for names, and a quiet end when the reader of the output goes away."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.support.browser import browse, chromium, colours

SCRIPT = Path(sys.executable).with_name("losskit")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "build" / "diagnose-report.png"


def run(*args, input=None):
    if not SCRIPT.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    env = {**os.environ, "MPLBACKEND": "Agg"}
    r = subprocess.run(
        [str(SCRIPT), *map(str, args)],
        capture_output=True,
        input=input.encode() if isinstance(input, str) else input,
        timeout=300,
        env=env,
    )
    return subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(), r.stderr.decode())


def assert_user_error(result, *words):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert not result.stdout and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


# -- logs made here ------------------------------------------------------------------------------


def keras_csv(*, overfit=False, nan=False) -> str:
    e = np.arange(30)
    train = 0.2 + 2.1 * np.exp(-e / 5)
    val = 0.6 + 1.8 * np.exp(-e / 5) + (0.004 * np.maximum(0, e - 12) ** 2 if overfit else 0)
    if nan:
        train[20:] = np.nan
    return "epoch,loss,val_loss\n" + "".join(f"{i},{a},{b}\n" for i, a, b in zip(e, train, val))


def trainer_state(start: float = 2.3) -> str:
    log = [{"step": s, "epoch": s / 10, "loss": start * np.exp(-s / 30) + 0.1} for s in range(1, 100)]
    log += [
        {"step": s, "epoch": s / 10, "eval_loss": start * np.exp(-s / 30) + 0.3} for s in range(10, 100, 10)
    ]
    log.append({"step": 99, "train_runtime": 1.0, "train_loss": 1.0})
    return json.dumps({"global_step": 99, "log_history": log})


def write_events(directory: Path, tags: dict[str, np.ndarray]) -> Path:
    """Scalars written with the tensorboard package's own event-file writer."""
    pytest.importorskip("tensorboard")
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    directory.mkdir(parents=True, exist_ok=True)
    w = EventFileWriter(str(directory))
    for tag, values in tags.items():
        every = max(1, 100 // len(values))
        for i, value in enumerate(values):
            val = summary_pb2.Summary.Value(tag=tag, simple_value=float(value))
            w.add_event(
                event_pb2.Event(
                    step=(i + 1) * every - 1, wall_time=time.time(), summary=summary_pb2.Summary(value=[val])
                )
            )
    w.close()
    return directory


def curve(scale: float = 1.0, n: int = 100) -> np.ndarray:
    s = np.arange(n)
    return scale * 2.3 * np.exp(-s / 30) + 0.1 + 0.01 * np.sin(s)


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> Path:
    """A folder of several kinds of runs:

    lightning_logs/version_0  healthy (TensorBoard)
    lightning_logs/version_1  starts at 5x ln 10: bad_init error (TensorBoard)
    keras/train, keras/validation  one Keras run in two folders
    hf/checkpoint-50, hf/checkpoint-100  a Hugging Face output folder: the newest checkpoint counts
    keras.csv  overfitting
    """
    root = tmp_path_factory.mktemp("logs")
    val = 2.3 * np.exp(-np.arange(9, 100, 10) / 30) + 0.3
    write_events(root / "lightning_logs" / "version_0", {"train_loss": curve(), "val_loss": val})
    write_events(root / "lightning_logs" / "version_1", {"train_loss": curve(5.0), "val_loss": val})
    write_events(root / "keras" / "train", {"epoch_loss": curve()[::10]})
    write_events(root / "keras" / "validation", {"epoch_loss": val})
    for n, start in ((50, 20.0), (100, 2.3)):
        (root / "hf" / f"checkpoint-{n}").mkdir(parents=True)
        (root / "hf" / f"checkpoint-{n}" / "trainer_state.json").write_text(trainer_state(start))
    (root / "keras.csv").write_text(keras_csv(overfit=True))
    return root


# -- several logs, several runs ------------------------------------------------------------------


def test_every_run_in_every_path(logs):
    r = run(
        "diagnose",
        logs / "keras.csv",
        logs / "lightning_logs",
        logs / "keras",
        logs / "hf",
        "--classes",
        "10",
    )
    assert r.returncode == 0, r.stderr
    headings = [line for line in r.stdout.splitlines() if " log (" in line]
    assert [h.split(":")[0] for h in headings] == [
        str(logs / "keras.csv"),
        str(logs / "lightning_logs") + "/version_0",
        str(logs / "lightning_logs") + "/version_1",
        str(logs / "keras"),
        str(logs / "hf"),
    ]
    assert "[warning] overfitting" in r.stdout and "[error] bad_init" in r.stdout
    assert "tensorboard log (train: train/epoch_loss, val: validation/epoch_loss" in r.stdout
    assert r.stdout.rstrip().endswith("5 runs: 1 with errors, 1 with warnings, 3 fine")


def test_json_of_several_runs(logs):
    r = run("diagnose", logs, "--classes", "10", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert set(d) == {"runs", "html"}  # no single run's keys at the top level
    paths = [x["path"] for x in d["runs"]]
    assert paths == [
        f"{logs}/hf",
        f"{logs}/keras",
        f"{logs}/lightning_logs/version_0",
        f"{logs}/lightning_logs/version_1",
    ]
    hf = d["runs"][0]
    # the newest checkpoint's state (the older one starts at 20 nats)
    assert hf["format"] == "hf_trainer_state" and hf["train_points"] == 99 and hf["val_points"] == 9
    assert "bad_init" not in {f["kind"] for f in hf["findings"]}
    for x in d["runs"]:
        assert set(x) >= {"path", "format", "columns", "baseline", "findings", "warnings", "plot"}
        for f in x["findings"]:
            assert set(f) == {"kind", "severity", "step", "epoch", "message", "value"}
    bad = d["runs"][3]["findings"][0]
    assert bad["kind"] == "bad_init" and bad["value"] == pytest.approx(5 * 2.3 + 0.1, rel=0.05)


def test_plots_of_several_runs(logs, tmp_path):
    r = run("diagnose", logs / "lightning_logs", "--plot", tmp_path / "curves.png")
    assert r.returncode == 0, r.stderr
    pngs = sorted(p.name for p in tmp_path.iterdir())
    assert pngs == ["curves-version_0.png", "curves-version_1.png"] or all(
        re.fullmatch(r"curves-.*version_\d\.png", p) for p in pngs
    )
    assert len(pngs) == 2


# -- standard input ------------------------------------------------------------------------------


def test_stdin_csv_and_json(logs):
    r = run("diagnose", "-", "--classes", "10", input=keras_csv(overfit=True))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("<stdin>: keras_csv log") and "[warning] overfitting" in r.stdout
    r = run("diagnose", "-", "--json", input=trainer_state())
    d = json.loads(r.stdout)
    assert d["path"] == "<stdin>" and d["format"] == "hf_trainer_state"
    # stdin among other logs
    r = run("diagnose", logs / "keras.csv", "-", "--json", input=keras_csv())
    assert [x["path"] for x in json.loads(r.stdout)["runs"]] == [str(logs / "keras.csv"), "<stdin>"]


def test_stdin_mistakes(logs):
    assert_user_error(run("diagnose", "-", input=""), "standard input is empty")
    assert_user_error(run("diagnose", "-", "-", input=keras_csv()), "once")
    events = next((logs / "lightning_logs" / "version_0").iterdir()).read_bytes()
    assert_user_error(run("diagnose", "-", input=events), "TensorBoard", "file or folder")
    # errors name standard input, not a temporary file
    line = assert_user_error(run("diagnose", "-", input="epoch,loss\n"), "<stdin>", "no rows")
    assert "/tmp" not in line


# -- exit statuses for CI ------------------------------------------------------------------------


def test_fail_on(tmp_path):
    healthy, overfit, nan = tmp_path / "ok.csv", tmp_path / "overfit.csv", tmp_path / "nan.csv"
    healthy.write_text(keras_csv())
    overfit.write_text(keras_csv(overfit=True))
    nan.write_text(keras_csv(nan=True))
    assert run("diagnose", nan).returncode == 0  # without --fail-on: 0, as before
    assert run("diagnose", healthy, "--fail-on", "warning").returncode == 0
    assert run("diagnose", overfit, "--fail-on", "error").returncode == 0
    r = run("diagnose", overfit, "--fail-on", "warning", "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["findings"][0]["kind"] == "overfitting"
    assert "1 run has findings at or above warning" in r.stderr
    r = run("diagnose", healthy, nan, "--fail-on", "error")
    assert r.returncode == 1 and "[error] nan" in r.stdout
    assert run("diagnose", healthy, "--fail-on", "info").returncode == 2  # argparse: not a choice
    assert "exit status" in run("diagnose", "--help").stdout


# -- did you mean --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, command",
    [
        (("explain", "hubber"), "explain"),
        (("baseline", "--loss", "hubber", "--classes", "3"), "baseline"),
        (("evaluate", "p.npy", "t.npy", "--loss", "hubber:delta=2"), "evaluate"),
    ],
)
def test_did_you_mean_a_loss(args, command):
    line = assert_user_error(
        run(*args), f"losskit {command}: error: unknown loss 'hubber'; did you mean 'huber'?"
    )
    assert "known losses" not in line


def test_did_you_mean_a_task():
    assert_user_error(
        run("recommend", "segmentaton"), "unknown task 'segmentaton'; did you mean 'segmentation'?"
    )
    # nothing close: the known names, on one line
    assert_user_error(run("recommend", "astrology"), "unknown task 'astrology'; known tasks: binary")


# -- a closed pipe -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("recommend", "segmentation"),
        ("explain", "huber"),
        ("units", "3"),
        ("baseline", "--classes", "10"),
        ("diagnose", "LOG", "--json"),
        ("--help",),
    ],
    ids=lambda a: " ".join(a),
)
def test_a_closed_pipe_ends_quietly(args, logs):
    if not SCRIPT.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    args = [str(logs / "keras.csv") if a == "LOG" else a for a in args]
    proc = subprocess.Popen([str(SCRIPT), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before anything is written, like `| head -0`
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141, err.decode()
    assert err == b""


def test_a_pipe_closed_after_the_first_line(logs):
    if not SCRIPT.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    # output far larger than a pipe's buffer: the writer is still writing when the reader leaves
    many = [str(logs / "keras.csv")] * 300
    proc = subprocess.Popen([str(SCRIPT), "diagnose", *many], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()
    _, err = proc.communicate(timeout=300)
    assert first.startswith(str(logs / "keras.csv").encode())
    assert proc.returncode == 141 and err == b""


# -- the HTML report ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def html_report(logs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("html") / "report.html"
    r = run("diagnose", logs / "keras.csv", logs / "lightning_logs", "--classes", "10", "--html", out)
    assert r.returncode == 0, r.stderr
    assert r.stdout.rstrip().endswith(f"HTML report: {out}")
    return out


def test_html_report_is_self_contained(html_report):
    text = html_report.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", text, re.I), "external resource"
    assert "url(" not in text and "@import" not in text
    assert text.count('src="data:image/png;base64,') == 3
    assert text.count('<tr class="finding error">') == 1 and 'class="finding warning"' in text
    assert "overfitting" in text and "bad_init" in text and "version_1" in text


def test_html_report_renders_in_chromium(html_report):
    executable = chromium()
    # a copy that writes each picture's natural size into the DOM once it has loaded
    probe = html_report.with_name("probe.html")
    probe.write_text(
        html_report.read_text(encoding="utf-8").replace(
            "</body>",
            "<script>window.addEventListener('load', () => { document.body.dataset.images = "
            "Array.from(document.images).map(i => i.naturalWidth + 'x' + i.naturalHeight).join(' '); });"
            "</script></body>",
        ),
        encoding="utf-8",
    )
    dom = browse(executable, "--dump-dom", probe.as_uri())
    assert dom.returncode == 0 and "<html" in dom.stdout, dom.stderr[-2000:]
    sizes = re.search(r'data-images="([^"]*)"', dom.stdout)
    assert sizes, "the images' sizes were not written"
    sizes = [tuple(map(int, s.split("x"))) for s in sizes.group(1).split()]
    assert len(sizes) == 3 and all(w >= 400 and h >= 200 for w, h in sizes), sizes
    visible = re.sub(r"<[^>]+>", " ", dom.stdout)
    assert "The validation loss was lowest" in visible and "starts confidently wrong" in visible
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    shot = browse(executable, f"--screenshot={SCREENSHOT}", html_report.as_uri(), window="1280,1600")
    assert shot.returncode == 0 and SCREENSHOT.is_file(), shot.stderr[-2000:]
    n = colours(SCREENSHOT, stride=3)
    assert n > 100, f"the screenshot looks blank: {n} colours"
