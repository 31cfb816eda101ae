"""Dice and Tversky beyond the shared table: gradients against PyTorch autograd of MONAI's
formula, the layouts and target forms agreeing, extremes, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import losskit as lk


def torch_monai(x, t, *, alpha=None, beta=None, activation=None, smooth=1e-5, ignore_background=False):
    """MONAI's DiceLoss / TverskyLoss (batch=False, smooth_nr = smooth_dr), (N, C, ...) layout,
    reduction 'none'."""
    if activation == "softmax":
        p = torch.softmax(x, 1)
    elif activation == "sigmoid":
        p = torch.sigmoid(x)
    else:
        p = x
    if not t.dtype.is_floating_point:
        t = torch.movedim(torch.nn.functional.one_hot(t, x.shape[1]).to(x.dtype), -1, 1)
    if ignore_background:
        p, t = p[:, 1:], t[:, 1:]
    dims = tuple(range(2, p.ndim))
    tp = (p * t).sum(dims)
    if alpha is None:
        return 1 - (2 * tp + smooth) / (p.sum(dims) + t.sum(dims) + smooth)
    fp = (p * (1 - t)).sum(dims)
    fn = ((1 - p) * t).sum(dims)
    return 1 - (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)


@pytest.mark.parametrize(
    "kind,activation,soft,ignore_background",
    [
        ("dice", None, True, False),
        ("dice", "sigmoid", True, True),
        ("dice", "softmax", False, True),
        ("tversky", None, True, True),
        ("tversky", "sigmoid", True, False),
        ("tversky", "softmax", False, False),
    ],
)
def test_gradients_match_torch_autograd_of_monais_formula(kind, activation, soft, ignore_background, rng):
    shape = (2, 3, 4, 5)  # (N, C, H, W)
    if activation is None:
        x = rng.uniform(0.01, 1, size=shape)
    else:
        x = rng.normal(size=shape) * 2
    t = rng.uniform(0.01, 0.99, size=shape) if soft else rng.integers(0, 3, size=(2, 4, 5))
    options = {"alpha": 0.3, "beta": 0.8} if kind == "tversky" else {}
    tx = torch.tensor(x, requires_grad=True)
    tt = torch.tensor(t, requires_grad=soft)
    expected = torch_monai(tx, tt, activation=activation, ignore_background=ignore_background, **options)
    expected.mean().backward()
    fn = lk.dice if kind == "dice" else lk.tversky
    argnums = (0, 1) if soft else (0,)
    value, grads = lk.value_and_grad(fn, argnums)(
        x, t, axis=1, activation=activation, ignore_background=ignore_background, **options
    )
    assert float(value) == pytest.approx(float(expected.mean()), rel=1e-12)
    np.testing.assert_allclose(grads[0], tx.grad.numpy(), rtol=1e-9, atol=1e-15)
    if soft:
        np.testing.assert_allclose(grads[1], tt.grad.numpy(), rtol=1e-9, atol=1e-15)
    per = fn(
        x, t, axis=1, activation=activation, ignore_background=ignore_background, reduction="none", **options
    )
    assert per.shape == (2, 2 if ignore_background else 3)


def test_label_maps_and_one_hot_agree_and_layouts_agree(rng):
    x = rng.normal(size=(2, 4, 5, 3))  # (N, H, W, C)
    labels = rng.integers(0, 3, size=(2, 4, 5))
    one_hot = np.eye(3)[labels]
    for fn in (lk.dice, lk.tversky):
        v1, g1 = lk.value_and_grad(fn)(x, labels, activation="softmax")
        v2, g2 = lk.value_and_grad(fn)(x, one_hot, activation="softmax")
        v3, g3 = lk.value_and_grad(fn)(np.moveaxis(x, -1, 1), labels, activation="softmax", axis=1)
        assert v1 == pytest.approx(float(v2), rel=1e-14) and v1 == pytest.approx(float(v3), rel=1e-14)
        np.testing.assert_allclose(g1, g2, rtol=1e-12)
        np.testing.assert_allclose(g1, np.moveaxis(g3, 1, -1), rtol=1e-12)


def test_tversky_with_halves_and_no_smoothing_is_dice(rng):
    p = rng.uniform(0.05, 1, size=(3, 6, 4))
    t = rng.uniform(0.05, 1, size=(3, 6, 4))
    np.testing.assert_allclose(
        lk.tversky(p, t, 0.5, 0.5, smooth=0.0, reduction="none"),
        lk.dice(p, t, smooth=0.0, reduction="none"),
        rtol=1e-12,
    )


def test_perfect_prediction_scores_zero_also_for_absent_classes():
    labels = np.array([[0, 0, 1, 1]])  # class 2 is absent from prediction and target
    value = lk.dice(np.eye(3)[labels], labels, reduction="none")
    np.testing.assert_allclose(value, [[0.0, 0.0, 0.0]], atol=1e-15)
    with np.errstate(invalid="ignore"):
        bare = lk.dice(np.eye(3)[labels], labels, smooth=0.0, reduction="none")
    assert np.isnan(bare[0, 2])  # 0 / 0 without the smoothing term


def test_weight_and_where(rng):
    x = rng.normal(size=(3, 5, 4))
    labels = rng.integers(0, 4, size=(3, 5))
    w = np.array([0.0, 1.0, 2.0, 0.5])
    per = lk.dice(x, labels, activation="softmax", reduction="none")
    weighted = lk.dice(x, labels, activation="softmax", weight=w, reduction="none")
    np.testing.assert_allclose(weighted, per * w, rtol=1e-14)
    keep = np.array([[True], [False], [True]])  # whole samples
    assert lk.dice(x, labels, activation="softmax", where=keep) == pytest.approx(
        per[[0, 2]].mean(), rel=1e-12
    )
    no_bg = lk.dice(x, labels, activation="softmax", ignore_background=True, weight=w, reduction="none")
    np.testing.assert_allclose(no_bg, (per * w)[:, 1:], rtol=1e-14)


def test_extreme_logits_float32_are_finite():
    x = np.array([[[1e4, -1e4], [-1e4, 1e4], [0.0, 3e3]]], dtype=np.float32)  # (1, 3, 2)
    labels = np.array([[0, 1, 1]])
    for fn in (lk.dice, lk.tversky):
        for activation in ("softmax", "sigmoid"):
            value, g = lk.value_and_grad(fn)(x, labels, activation=activation)
            assert value.dtype == np.float32 and np.isfinite(value) and np.all(np.isfinite(g))
            exact = fn(x.astype(np.float64), labels, activation=activation)
            assert float(value) == pytest.approx(float(exact), rel=1e-5, abs=1e-7)


def test_torch_and_jax_autograd_through_losskit(rng):
    import jax
    import jax.numpy as jnp

    x = rng.normal(size=(2, 3, 4))
    labels = rng.integers(0, 4, size=(2, 3))
    _, analytic = lk.value_and_grad(lk.tversky)(
        x, labels, 0.4, 0.6, activation="softmax", ignore_background=True
    )
    t = torch.tensor(x, requires_grad=True)
    lk.tversky(t, torch.from_numpy(labels), 0.4, 0.6, activation="softmax", ignore_background=True).backward()
    np.testing.assert_allclose(t.grad.numpy(), analytic, rtol=1e-10)
    j = jax.grad(
        lambda z: lk.tversky(z, jnp.asarray(labels), 0.4, 0.6, activation="softmax", ignore_background=True)
    )(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(j), analytic, rtol=1e-10)


X = np.full((2, 3, 3), 1 / 3)
T = np.zeros((2, 3), dtype=np.int64)


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: lk.dice(X * 4, T), ValueError, r"input must hold probabilities in \[0, 1\]"),
        (
            lambda: lk.dice(X, T, activation="relu"),
            ValueError,
            "activation must be None, 'softmax' or 'sigmoid'",
        ),
        (lambda: lk.dice(X[..., :1], T, activation="softmax"), ValueError, "softmax' over a single class"),
        (lambda: lk.dice(X[..., :1], T, ignore_background=True), ValueError, "ignore_background=True needs"),
        (lambda: lk.dice(X, T, axis=0), ValueError, "axis=0 is the batch axis"),
        (lambda: lk.dice(X, T, axis=3), ValueError, "axis=3 is out of range"),
        (lambda: lk.dice(X[0, 0], T[0]), ValueError, "at least 2-d"),
        (lambda: lk.dice(X, T[:, :2]), ValueError, r"target of class indices must have .* expected \(2, 3\)"),
        (lambda: lk.dice(X, T + 3), ValueError, r"class index 3, outside \[0, 2\]"),
        (lambda: lk.dice(X, np.zeros((2, 3))), ValueError, "integer label maps have the shape without axis"),
        (lambda: lk.dice(X, X * 4), ValueError, r"target must hold probabilities in \[0, 1\]"),
        (lambda: lk.dice(X, T.astype(bool)), TypeError, "target must be an integer label map"),
        (lambda: lk.dice(X, T, smooth=-1.0), ValueError, "smooth must be in"),
        (lambda: lk.dice(X, T, weight=np.ones(2)), ValueError, r"weight must have shape \(3,\)"),
        (lambda: lk.dice(X, T, where=np.ones((2, 2), dtype=bool)), ValueError, "where of shape"),
        (lambda: lk.dice(X, T, ignore_background=1), TypeError, "ignore_background must be a bool"),
        (lambda: lk.tversky(X, T, alpha=-0.1), ValueError, "alpha must be in"),
        (lambda: lk.tversky(X, T, 0.5, "b"), TypeError, "beta must be a real number"),
        (lambda: lk.tversky(X.astype(np.int64), T), TypeError, "input must be a real floating"),
    ],
)
def test_bad_input_names_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
