"""Reports of runs (text, Markdown, HTML, JSON), finding the runs in a folder, and readable
findings, explanations and recommendations in notebooks."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

import losskit
from losskit.diagnostics import (
    Finding,
    Report,
    explain,
    find_runs,
    recommend,
    render_html,
    report,
    reports,
)
from losskit.diagnostics.runs import read_run

E = np.arange(30)
OVERFIT = {
    "epoch": E,
    "loss": 0.2 + 2.1 * np.exp(-E / 5),
    "val_loss": 0.6 + 1.8 * np.exp(-E / 5) + 0.004 * np.maximum(0, E - 12) ** 2,
}


def write_events(directory: Path, tag: str = "loss", scale: float = 1.0) -> Path:
    pytest.importorskip("tensorboard")
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    directory.mkdir(parents=True, exist_ok=True)
    w = EventFileWriter(str(directory))
    for step in range(50):
        val = summary_pb2.Summary.Value(tag=tag, simple_value=float(scale * np.exp(-step / 10) + 0.1))
        w.add_event(
            event_pb2.Event(step=step, wall_time=time.time(), summary=summary_pb2.Summary(value=[val]))
        )
    w.close()
    return directory


# -- notebook and text forms ---------------------------------------------------------------------


def test_finding_forms():
    f = Finding("spike", "warning", 120, 1.5, "The training loss jumped <a lot> & recovered. " * 10, 3.25)
    assert str(f) == f"[warning] spike: {f.message}"
    assert len(repr(f)) < 200 and repr(f).startswith("Finding(kind='spike', severity='warning', step=120")
    md = f._repr_markdown_()
    assert md.startswith("**warning** `spike` at step 120 (epoch 1.5), loss 3.25: ")
    h = f._repr_html_()
    assert "&lt;a lot&gt; &amp; recovered" in h and "<a lot>" not in h and "#e65100" in h
    assert f.to_dict()["value"] == 3.25
    assert Finding("nan", "error", None, None, "NaN.").to_dict()["value"] is None


def test_report_of_a_history_in_memory():
    r = report(OVERFIT, num_classes=10)
    assert isinstance(r, Report) and r.source == "python" and r.format == "python"
    assert r.columns == {"train": "loss", "val": "val_loss"} and (r.train_points, r.val_points) == (30, 30)
    assert r.baseline == pytest.approx(np.log(10)) and r.unit == "nats"
    assert [f.kind for f in r.findings][0] == "overfitting"
    assert r.worst == "warning" and r.counts()["warning"] == 1
    assert r.fails("warning") and not r.fails("error")
    with pytest.raises(ValueError, match="threshold"):
        r.fails("info ")
    lines = str(r).splitlines()
    assert (
        lines[0] == "python: python log (train: loss, val: val_loss; 30 train points, 30 validation points)"
    )
    assert lines[1] == "baseline (constant guess): 2.3026"
    assert lines[2].startswith("[warning] overfitting: The validation loss was lowest")
    assert len(repr(r)) < 120 and "1 warning" in repr(r)
    d = r.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["findings"][0]["value"] == pytest.approx(float(OVERFIT["val_loss"][14]))
    assert "**python**" in r._repr_markdown_() and "- **warning** `overfitting`" in r._repr_markdown_()
    h = r._repr_html_()
    assert h.startswith('<section class="losskit-report"><h4>') and "overfitting" in h and "<img" not in h


def test_render_html_inlines_the_curves():
    pytest.importorskip("matplotlib")
    from losskit.plotting import report_png

    r = report(OVERFIT, num_classes=10, source="run <1>")
    png = report_png(r)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    page = render_html([r, report([3.0, 2.0, 1.0] * 5)], [png, None], title="two runs")
    assert page.startswith("<!DOCTYPE html>") and "<title>two runs</title>" in page
    assert page.count("data:image/png;base64,") == 1 and "run &lt;1&gt;" in page
    assert '<p class="summary">2 runs: ' in page
    with pytest.raises(ValueError, match="images"):
        render_html([r], [])


def test_explanation_and_recommendation_forms():
    e = explain("huber")
    assert len(repr(e)) < 150 and repr(e).startswith("Explanation(name='huber'")
    text = str(e)
    assert text.splitlines()[0] == "huber  (regression; prediction in values space)"
    assert "  formula:    " in text and "  equivalents: torch: F.huber_loss" in text
    assert "- *formula*: `" in e._repr_markdown_() and "<table>" in e._repr_html_()
    r = recommend("multiclass")
    assert repr(r) == "Recommendation(task='multiclass', loss='losskit.cross_entropy(logits, class_index)')"
    assert str(r).splitlines()[:3] == [
        "task: multiclass",
        "  output layer: K logits (a linear layer with K units, no softmax)",
        "  loss:         losskit.cross_entropy(logits, class_index)",
    ]
    assert "Common mistakes" in r._repr_markdown_() and "<li>" in r._repr_html_()
    assert "&lt;" not in r._repr_html_() or "<" in "".join(r.mistakes)


def test_the_cli_prints_the_str_forms(capsys):
    from losskit.cli import main

    assert main(["explain", "huber"]) == 0
    assert capsys.readouterr().out == str(explain("huber")) + "\n"
    assert main(["recommend", "binary"]) == 0
    assert capsys.readouterr().out == str(recommend("binary")) + "\n"


def test_exported():
    import losskit.diagnostics as d

    for name in ("Report", "report", "reports", "render_html", "Run", "find_runs"):
        assert name in d.__all__ and getattr(d, name) is not None
    assert callable(losskit.diagnostics.report)


# -- runs in a folder ----------------------------------------------------------------------------


def test_find_runs_in_folders(tmp_path):
    write_events(tmp_path / "tb" / "lightning_logs" / "version_0")
    write_events(tmp_path / "tb" / "lightning_logs" / "version_1", scale=4.0)
    write_events(tmp_path / "tb" / "keras" / "train", "epoch_loss")
    write_events(tmp_path / "tb" / "keras" / "validation", "epoch_loss")
    (tmp_path / "tb" / "csv").mkdir()
    (tmp_path / "tb" / "csv" / "metrics.csv").write_text("epoch,step,train_loss\n0,0,1.0\n0,1,0.5\n")
    found = find_runs(tmp_path / "tb")
    assert [r.label for r in found] == [
        f"{tmp_path}/tb/csv",
        f"{tmp_path}/tb/keras",
        f"{tmp_path}/tb/lightning_logs/version_0",
        f"{tmp_path}/tb/lightning_logs/version_1",
    ]
    assert found[0].path.name == "metrics.csv" and found[1].format == "tensorboard"
    rs = reports(tmp_path / "tb")
    assert [r.format for r in rs] == ["csv", "tensorboard", "tensorboard", "tensorboard"]
    assert rs[1].columns == {"train": "train/epoch_loss", "val": "validation/epoch_loss"}
    with pytest.raises(ValueError, match="holds 4 runs"):
        report(tmp_path / "tb")
    one = report(tmp_path / "tb" / "lightning_logs" / "version_1", num_classes=10)
    assert one.source.endswith("version_1") and one.findings[0].kind == "bad_init"
    # a file is one run, named as given
    assert [(r.path, r.label) for r in find_runs(str(found[0].path))] == [(found[0].path, str(found[0].path))]
    with pytest.raises(losskit.diagnostics.LogError, match="no such file"):
        find_runs(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(losskit.diagnostics.LogError, match="directory without"):
        find_runs(tmp_path / "empty")


def test_hugging_face_output_folder(tmp_path):
    def state(start):
        log = [{"step": s, "epoch": s / 10, "loss": start * np.exp(-s / 20) + 0.1} for s in range(1, 60)]
        return json.dumps({"log_history": log})

    out = tmp_path / "out"
    for n, start in ((100, 2.3), (20, 50.0), (9, 50.0)):
        (out / f"checkpoint-{n}").mkdir(parents=True)
        (out / f"checkpoint-{n}" / "trainer_state.json").write_text(state(start))
    write_events(out / "runs" / "Jan01_host")  # the Trainer's TensorBoard folder: not another run
    (run,) = find_runs(out)
    assert run.path == out / "checkpoint-100" / "trainer_state.json" and run.label == str(out)
    (out / "trainer_state.json").write_text(state(3.0))  # the final state, when saved, wins
    (run,) = find_runs(out)
    assert run.path == out / "trainer_state.json"


def test_a_run_folder_holding_other_runs_is_read_without_them(tmp_path):
    write_events(tmp_path / "exp", "loss", scale=1.0)
    write_events(tmp_path / "exp" / "ablation", "loss", scale=9.0)
    write_events(tmp_path / "exp" / "validation", "val_loss")
    outer, inner = find_runs(tmp_path / "exp")
    assert outer.label == str(tmp_path / "exp") and inner.label == f"{tmp_path}/exp/ablation"
    assert outer.files is not None and len(outer.files) == 2
    h = read_run(outer)
    assert h.columns == {"train": "loss", "val": "validation/val_loss"}
    assert h.train.value[0] == pytest.approx(1.1)
    assert read_run(inner).train.value[0] == pytest.approx(9.1)
