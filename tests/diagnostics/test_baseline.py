"""Baselines: the loss of the best constant guess, for classification from the number of classes,
priors or targets, and for regression from the targets; the report and its errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import losskit
from losskit.diagnostics import baseline_loss, baseline_report


def test_baseline_uniform_27_classes():
    assert baseline_loss("cross_entropy", num_classes=27) == pytest.approx(3.295836866004329, rel=1e-12)
    assert round(baseline_loss("ce", num_classes=27), 4) == 3.2958


def test_baseline_equals_the_loss_of_uniform_logits():
    # the baseline is what losskit's own cross_entropy scores for a constant uniform guess
    targets = np.random.default_rng(0).integers(0, 27, size=200)
    ce = float(losskit.cross_entropy(np.zeros((200, 27)), targets))
    assert baseline_loss("cross_entropy", num_classes=27) == pytest.approx(ce, rel=1e-12)


def test_baseline_class_priors_is_their_entropy():
    p = np.array([0.1, 0.2, 0.3, 0.25, 0.15])
    assert baseline_loss("cross_entropy", priors=p) == pytest.approx(-(p * np.log(p)).sum(), rel=1e-12)


def test_baseline_from_integer_targets_is_the_loss_of_the_frequencies():
    rng = np.random.default_rng(1)
    t = rng.choice(4, size=1000, p=[0.5, 0.3, 0.15, 0.05])
    freq = np.bincount(t, minlength=4) / t.size
    ce = float(losskit.cross_entropy(np.broadcast_to(np.log(freq), (t.size, 4)).copy(), t))
    assert baseline_loss("cross_entropy", targets=t) == pytest.approx(ce, rel=1e-10)
    # ignore_index targets are not counted
    t2 = np.concatenate([t, np.full(50, -100)])
    assert baseline_loss("nll", targets=t2) == pytest.approx(ce, rel=1e-10)


def test_baseline_probability_targets_is_best_constant():
    rng = np.random.default_rng(2)
    q = rng.dirichlet(np.ones(5), size=300)
    mean_q = q.mean(axis=0)
    ce = float(losskit.cross_entropy(np.broadcast_to(np.log(mean_q), q.shape).copy(), q))
    assert baseline_loss("cross_entropy", targets=q) == pytest.approx(ce, rel=1e-10)
    kl = float(losskit.kl_div(np.broadcast_to(np.log(mean_q), q.shape).copy(), q))
    assert baseline_loss("kl_div", targets=q) == pytest.approx(kl, rel=1e-10)
    # any other constant does worse
    other = np.broadcast_to(np.log(np.full(5, 0.2)), q.shape).copy()
    assert float(losskit.cross_entropy(other, q)) > ce


def test_baseline_binary():
    assert baseline_loss("bce") == pytest.approx(math.log(2), rel=1e-12)
    y = np.array([[0, 1], [0, 1], [1, 1], [0, 0]], dtype=float)
    rate = y.mean(axis=0)
    expected = float(losskit.binary_cross_entropy(np.broadcast_to(rate, y.shape).copy(), y))
    assert baseline_loss("binary_cross_entropy_with_logits", targets=y) == pytest.approx(expected, rel=1e-12)
    p = 0.1
    assert baseline_loss("bce", priors=p) == pytest.approx(
        -(p * math.log(p) + 0.9 * math.log(0.9)), rel=1e-12
    )


def test_baseline_regression():
    y = np.array([2.0, 3.0, 5.0])
    assert baseline_loss("mse", targets=y) == pytest.approx(np.var(y), rel=1e-12)
    assert round(baseline_loss("mse", targets=y), 4) == 1.5556
    y2 = np.array([2.0, 3.0, 5.0, 100.0])
    assert baseline_loss("l1", targets=y2) == pytest.approx(np.abs(y2 - np.median(y2)).mean(), rel=1e-12)


@pytest.mark.parametrize(
    "name,opts", [("huber", {"delta": 1.0}), ("huber", {"delta": 3.0}), ("smooth_l1", {})]
)
def test_baseline_other_regression_losses_minimise_over_constants(name, opts):
    y = np.random.default_rng(3).standard_t(2, size=200) * 2
    fn = getattr(losskit, name)
    grid = np.linspace(y.min(), y.max(), 4001)
    brute = min(float(fn(np.full_like(y, c), y, **opts)) for c in grid)
    got = baseline_loss(name, targets=y, **opts)
    assert got <= brute + 1e-12
    assert got == pytest.approx(brute, rel=1e-4)


def test_baseline_report_and_errors():
    b = baseline_report("cross_entropy", num_classes=27)
    assert b.log_loss and "27" in b.guess
    assert baseline_report("mse", targets=np.ones(3)).log_loss is False
    with pytest.raises(ValueError, match="needs targets"):
        baseline_loss("mse")
    with pytest.raises(ValueError, match="num_classes"):
        baseline_loss("cross_entropy")
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
        baseline_loss("cross_entropy", num_classes=1)
    with pytest.raises(ValueError, match="unknown loss 'nope'"):
        baseline_loss("nope", num_classes=3)
    with pytest.raises(ValueError, match="sum to 1"):
        baseline_loss("cross_entropy", priors=[0.5, 0.6])
    with pytest.raises(ValueError, match="outside"):
        baseline_loss("cross_entropy", num_classes=3, targets=np.array([0, 5]))
    assert baseline_loss(losskit.cross_entropy, num_classes=4) == pytest.approx(math.log(4))


def test_baseline_accepts_torch_targets():
    torch = pytest.importorskip("torch")
    y = torch.tensor([2.0, 3.0, 5.0], dtype=torch.float64)
    assert baseline_loss("mse", targets=y) == pytest.approx(np.var([2.0, 3.0, 5.0]))
