"""``losskit demo``: the worked examples, the two training runs, the diagnosis and the pictures."""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import losskit
from losskit.demo import run_demo, worked_examples
from losskit.demo.data import ALPHABET, character_chain, waves

SCRIPT = Path(sys.executable).with_name("losskit")


def test_worked_examples_are_the_teaching_numbers():
    rows = {r["example"].split("(")[0] + str(i): r for i, r in enumerate(worked_examples())}
    values = [r["loss"] for r in rows.values()]
    assert values == pytest.approx([0.1, 0.09, math.log(27), 0.41703002], abs=5e-9)
    guesses = [r["guess"] for r in rows.values()]
    assert guesses == pytest.approx([np.var([2.0, 3.0, 5.0]), 0.25, math.log(27), math.log(3)], rel=1e-12)
    grads = [r["gradient"] for r in rows.values()]
    assert grads[0] == "[0.3333, 0.0667, -0.1333]" and grads[1] == "[-0.6000]"
    assert grads[2] == f"[{1 / 27 - 1:.4f}, {1 / 27:.4f} x26]"
    p = np.exp([2.0, 1.0, 0.1]) / np.exp([2.0, 1.0, 0.1]).sum()
    assert grads[3] == "[" + ", ".join(f"{v:.4f}" for v in p - np.array([1, 0, 0])) + "]"


def test_datasets_are_deterministic_and_sensible():
    a_train, a_val, text = character_chain(500, 100, seed=3)
    b_train, _, _ = character_chain(500, 100, seed=3)
    np.testing.assert_array_equal(a_train.y, b_train.y)
    assert a_train.x.shape == (500, 2) and a_val.y.shape == (100,)
    assert set(text) <= set(ALPHABET) and 0 < a_train.oracle_loss < math.log(27)
    w_train, w_val = waves(300, 50, seed=1)
    assert w_train.x.shape == (300, 2) and w_train.y.shape == (300, 1)
    assert w_train.oracle_loss == pytest.approx(0.01, rel=0.3)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    text = io.StringIO()
    result = run_demo(out, quick=True, progress=False, stream=text)
    return result, text.getvalue(), out


def test_quick_demo_trains_and_diagnoses(quick):
    result, text, out = quick
    ce, reg = result.tasks
    assert ce.loss == "cross_entropy" and reg.loss == "mse"
    for task in result.tasks:
        kinds = [f.kind for f in task.findings]
        assert "init_ok" in kinds and "healthy" in kinds, kinds
        assert not [f for f in task.findings if f.severity != "info"]
        assert abs(task.start / task.baseline - 1) <= 0.2
        assert task.final_val < 0.8 * task.baseline  # it learned
    assert ce.baseline == pytest.approx(math.log(27))
    assert ce.final_val > ce.oracle * 0.98  # nothing beats the process that made the data
    assert [f.kind for f in result.naive_findings if f.severity == "error"] == ["bad_init"]


def test_quick_demo_report(quick):
    result, text, out = quick
    for number in ("0.1000", "0.0900", "3.2958", "0.4170", "1.5556", "1.0986"):
        assert number in text
    assert "close to the baseline" in text
    assert "Summary:" in text and "perplexity" in text
    assert f"Loss curves written to {out}" in text
    for task in result.tasks:
        assert task.plot.parent == out
        assert task.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and task.plot.stat().st_size > 10_000
        assert str(task.plot) in text


def test_demo_gradients_come_from_losskit(quick):
    # the backward pass of the loss is losskit's analytic gradient: check it against finite differences
    rng = np.random.default_rng(0)
    logits, targets = rng.normal(size=(4, 27)), rng.integers(0, 27, size=4)
    _, g = losskit.value_and_grad(losskit.cross_entropy)(logits, targets)
    eps = 1e-6
    e = np.zeros_like(logits)
    e[1, 5] = eps
    fd = (
        float(losskit.cross_entropy(logits + e, targets)) - float(losskit.cross_entropy(logits - e, targets))
    ) / (2 * eps)
    assert g[1, 5] == pytest.approx(fd, rel=1e-6)


def test_console_script_quick_demo(tmp_path):
    if not SCRIPT.exists():
        pytest.skip("console script not installed")
    out = tmp_path / "pictures"
    r = subprocess.run(
        [str(SCRIPT), "demo", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert r.returncode == 0, r.stderr
    assert "close to the baseline" in r.stdout and str(out) in r.stdout
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["characters-cross-entropy.png", "waves-mse.png"]
    r = subprocess.run(
        [str(SCRIPT), "demo", "--quick", "--out", str(out / "characters-cross-entropy.png")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2 and "not a folder" in r.stderr and "Traceback" not in r.stderr


def test_progress_falls_back_to_plain_lines_without_tqdm(monkeypatch, capsys):
    from losskit import demo

    monkeypatch.setitem(sys.modules, "tqdm", None)  # as if tqdm were not installed
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    bar = demo._progress(20, "training", enabled=True)
    assert isinstance(bar, demo._PlainBar)
    for _ in range(20):
        bar.update(1)
    bar.close()
    err = capsys.readouterr().err
    assert "training: 100% (20/20 steps)" in err and "training:  50%" in err
    assert demo._progress(5, "quiet", enabled=False).stream is None


# -- the core install: no matplotlib ----------------------------------------------------------

NO_MATPLOTLIB = """
import sys
sys.modules["matplotlib"] = None  # as if matplotlib were not installed
from losskit.cli import main
code = main(sys.argv[1:])
assert not [m for m in sys.modules if m.startswith("matplotlib.")], "matplotlib was imported"
sys.exit(code)
"""


def test_demo_without_matplotlib_runs_to_the_end_through_the_command(tmp_path):
    out = tmp_path / "pictures"
    r = subprocess.run(
        [sys.executable, "-c", NO_MATPLOTLIB, "demo", "--quick", "--no-progress", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "error" not in r.stderr
    text = r.stdout
    for part in ("Worked examples", "close to the baseline", "bad_init", "Summary:", "perplexity", "Done in"):
        assert part in text
    assert text.count("losskit[plot]") == 1 and "pip install 'losskit[plot]'" in text
    assert "matplotlib is not installed" in text and "Loss curves written" not in text
    assert not out.exists() and not list(tmp_path.rglob("*.png"))


def test_plots_are_checked_before_training(monkeypatch, tmp_path):
    from losskit import demo

    calls = []
    train = demo._train
    missing = "matplotlib is not installed"
    monkeypatch.setattr(demo, "_plots_missing", lambda: calls.append("check") or missing)
    monkeypatch.setattr(demo, "_train", lambda **kw: calls.append("train") or train(**kw))
    text = io.StringIO()
    result = run_demo(tmp_path / "out", quick=True, progress=False, stream=text)
    assert calls == ["check", "train", "train"]
    assert result.plots_skipped == "matplotlib is not installed"
    assert [t.plot for t in result.tasks] == [None, None] and not (tmp_path / "out").exists()
    note = "Loss curves not plotted: matplotlib is not installed; pip install 'losskit[plot]' for the PNGs."
    assert note in text.getvalue()


def test_no_check_and_no_message_without_plots(monkeypatch, tmp_path):
    from losskit import demo

    monkeypatch.setattr(demo, "_plots_missing", lambda: pytest.fail("checked although no plots were asked"))
    text = io.StringIO()
    result = run_demo(tmp_path / "out", quick=True, progress=False, stream=text, plots=False)
    assert result.plots_skipped is None and "losskit[plot]" not in text.getvalue()
    assert not (tmp_path / "out").exists()


def test_plots_missing_looks_without_importing(monkeypatch):
    from losskit import demo

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert demo._plots_missing() == "matplotlib is not installed"


def test_matplotlib_that_fails_to_import_keeps_the_report(monkeypatch, tmp_path):
    pytest.importorskip("matplotlib")
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # found, but it cannot be imported
    text = io.StringIO()
    result = run_demo(tmp_path / "out", quick=True, progress=False, stream=text)
    assert result.plots_skipped.startswith("matplotlib cannot be imported")
    assert "Summary:" in text.getvalue() and text.getvalue().count("losskit[plot]") == 1
    assert not list(tmp_path.rglob("*.png"))


def test_demo_runs_its_matrix_products_on_one_blas_thread():
    from threadpoolctl import threadpool_info

    from losskit import demo

    with demo._one_blas_thread():
        blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
        assert all(p["num_threads"] == 1 for p in blas)
