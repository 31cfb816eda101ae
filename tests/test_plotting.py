"""Plots are produced, non-empty, and their libraries stay out of ``import losskit``."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import losskit
from losskit.diagnostics import History, Series, diagnose
from losskit.diagnostics.explain import DESCRIPTIONS
from losskit.plotting import plot_history, plot_loss

PNG = b"\x89PNG\r\n\x1a\n"


def is_png(path, min_size=5000):
    data = path.read_bytes()
    return data[:8] == PNG and len(data) > min_size


def test_import_losskit_stays_light():
    code = (
        "import sys, losskit, losskit.diagnostics, losskit.cli; "
        "heavy = [m for m in ('matplotlib', 'tensorboard', 'tqdm', 'torch', 'jax', 'dask') if m in "
        "sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_history_plot_with_every_mark(tmp_path):
    rng = np.random.default_rng(0)
    steps = np.arange(600)
    train = (0.2 + 2.1 * np.exp(-steps / 80)) * (1 + 0.05 * rng.standard_normal(600))
    train[150] *= 4
    train[580:] = np.nan
    vsteps = np.arange(49, 600, 50)
    val = 0.5 + 1.8 * np.exp(-vsteps / 80) + 2e-6 * np.maximum(0, vsteps - 250) ** 2
    h = History(Series(train, steps), Series(val, vsteps))
    findings = diagnose(h, num_classes=10)
    kinds = {f.kind for f in findings}
    assert {"nan", "spike", "overfitting"} <= kinds
    path = plot_history(
        h, findings, path=tmp_path / "sub" / "curves.png", baseline=np.log(10), unit="nats", title="test"
    )
    assert path == tmp_path / "sub" / "curves.png" and is_png(path)


def test_history_plot_epochs_and_plain_lists(tmp_path):
    e = np.arange(20)
    h = {"epoch": e, "loss": 1 / (e + 1), "val_loss": 1.2 / (e + 1)}
    assert is_png(plot_history(h, diagnose(h), path=tmp_path / "a.png"))
    y = list(np.exp(-np.arange(50) / 10) * 100 + 0.01)  # spans decades: log scale
    assert is_png(plot_history(y, path=tmp_path / "b.png"))


@pytest.mark.parametrize("name", sorted(DESCRIPTIONS))
def test_loss_and_gradient_plot(tmp_path, name):
    assert is_png(plot_loss(name, path=tmp_path / f"{name}.png"))


def test_loss_plot_for_losses_without_a_curve(tmp_path):
    for info in losskit.catalog():
        if info.name in DESCRIPTIONS:
            continue
        try:
            path = plot_loss(info.name, path=tmp_path / f"{info.name}.png")
        except ValueError as exc:
            assert info.name in str(exc)
        else:
            assert is_png(path)
