"""Sigmoid focal, softmax focal and Poly-1: a second reference (torchvision's formula, Keras's
numbers), reductions to cross-entropy, finite gradients at extreme logits with gamma < 1,
masks, normalizer, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import losskit as lk
from tests.support.numerics import assert_where_matches_subset

# -- sigmoid focal ----------------------------------------------------------------------------


def torchvision_sigmoid_focal(x, y, alpha, gamma):
    """torchvision.ops.sigmoid_focal_loss, its published formula in NumPy (reduction='none')."""
    p = 1 / (1 + np.exp(-x))
    ce = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return loss


@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (-1, 2.0), (0.5, 0.5), (0.9, 0.0)])
def test_sigmoid_focal_matches_torchvision_formula(alpha, gamma, rng):
    x = rng.normal(size=(5, 4)) * 3
    y = (rng.uniform(size=(5, 4)) > 0.5).astype(np.float64)
    ours = lk.sigmoid_focal(x, y, None if alpha < 0 else alpha, gamma, reduction="none")
    np.testing.assert_allclose(ours, torchvision_sigmoid_focal(x, y, alpha, gamma), rtol=1e-12)


@pytest.mark.parametrize("gamma", [0.1, 0.25, 0.5, 1.0, 2.0])
def test_sigmoid_focal_gradient_is_finite_and_exact_at_extreme_logits(gamma):
    x64 = np.array([1e4, -1e4, 1e4, -1e4, 40.0, -40.0, 17.0, -17.0, 0.0])
    y64 = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    _, g64 = lk.value_and_grad(lk.sigmoid_focal)(x64, y64, 0.25, gamma, reduction="none")
    value, g = lk.value_and_grad(lk.sigmoid_focal)(
        x64.astype(np.float32), y64.astype(np.float32), 0.25, gamma, reduction="none"
    )
    assert value.dtype == np.float32 and np.all(np.isfinite(value)) and np.all(np.isfinite(g))
    assert value[0] == 0 and value[1] == 0 and g[0] == 0 and g[1] == 0  # right, with certainty
    np.testing.assert_allclose(value[2:4], [0.75e4, 0.25e4], rtol=1e-6)  # wrong, with certainty
    np.testing.assert_allclose(g[2:4], [0.75, -0.25], rtol=1e-6)
    np.testing.assert_allclose(g, g64, rtol=2e-5, atol=1e-30)
    # where p_t rounds to 1 in float32 the true gradient is tiny but not 0
    assert g[6] < 0 and g[7] > 0


def test_sigmoid_focal_soft_labels_and_gamma_zero_is_weighted_bce(rng):
    x, y = rng.normal(size=(4, 3)) * 2, rng.uniform(size=(4, 3))
    alpha_t = 0.3 * y + 0.7 * (1 - y)
    expected = alpha_t * lk.binary_cross_entropy_with_logits(x, y, reduction="none")
    np.testing.assert_allclose(lk.sigmoid_focal(x, y, 0.3, 0.0, reduction="none"), expected, rtol=1e-12)


# -- softmax focal, poly-1: reductions to cross-entropy --------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(
    "fn,zero", [(lk.softmax_focal, {"gamma": 0.0}), (lk.poly1_cross_entropy, {"epsilon": 0.0})]
)
def test_zero_coefficient_is_cross_entropy(fn, zero, weighted, rng):
    x = rng.normal(size=(3, 5, 2)) * 2
    t = rng.integers(0, 5, size=(3, 2))
    t[0, 1] = -100
    mask = np.array([[True, True], [False, True], [True, False]])
    kwargs = {"axis": 1, "where": mask}
    if weighted:
        kwargs["weight"] = rng.uniform(0.5, 2, size=5)
    for reduction in ("mean", "sum", "none"):
        ours, g = lk.value_and_grad(fn)(x, t, reduction=reduction, **zero, **kwargs)
        ce, g_ce = lk.value_and_grad(lk.cross_entropy)(x, t, reduction=reduction, **kwargs)
        np.testing.assert_allclose(ours, ce, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(g, g_ce, rtol=1e-12, atol=1e-15)


def test_poly1_integer_and_one_hot_targets_agree(rng):
    x, t = rng.normal(size=(6, 4)), rng.integers(0, 4, size=6)
    for eps in (-1.0, 1.0, 2.5):
        np.testing.assert_allclose(
            lk.poly1_cross_entropy(x, t, eps, reduction="none"),
            lk.poly1_cross_entropy(x, np.eye(4)[t], eps, reduction="none"),
            rtol=1e-12,
        )


@pytest.mark.parametrize("gamma", [0.1, 0.5, 2.0])
def test_softmax_focal_is_finite_at_extreme_logits(gamma):
    x = np.array([[1e4, 0.0, -1e4], [1e4, 0.0, -1e4], [30.0, 0.0, -30.0]], dtype=np.float32)
    t = np.array([0, 2, 0])
    value, g = lk.value_and_grad(lk.softmax_focal)(x, t, gamma, reduction="none")
    assert value.dtype == np.float32 and np.all(np.isfinite(value)) and np.all(np.isfinite(g))
    assert value[0] == 0 and np.all(g[0] == 0)
    np.testing.assert_allclose(value[1], 2e4, rtol=1e-6)  # log p_t = -2e4, (1 - p_t)^gamma = 1
    np.testing.assert_allclose(g[1], [1.0, 0.0, -1.0], atol=1e-6)
    _, g64 = lk.value_and_grad(lk.softmax_focal)(x.astype(np.float64), t, gamma, reduction="none")
    np.testing.assert_allclose(g[2], g64[2], rtol=1e-4, atol=1e-30)
    assert g[2, 0] < 0  # p_t = 1 - 1e-13: tiny, not 0


def test_softmax_focal_matches_keras_categorical_focal_scaled_by_alpha(rng):
    # Keras CategoricalFocalCrossentropy(alpha=a, gamma=g): sum_c -a y_c (1 - p_c)^g log p_c, mean
    x, t = rng.normal(size=(6, 4)), rng.integers(0, 4, size=6)
    p = np.exp(x) / np.exp(x).sum(1, keepdims=True)
    y = np.eye(4)[t]
    keras = (-0.25 * y * (1 - p) ** 2.0 * np.log(p)).sum(1).mean()
    assert 0.25 * float(lk.softmax_focal(x, t)) == pytest.approx(keras, rel=1e-12)


@pytest.mark.parametrize("fn", [lk.softmax_focal, lk.poly1_cross_entropy], ids=lambda f: f.__name__)
def test_normalizer_divides_the_sum(fn, rng):
    import jax
    import jax.numpy as jnp

    x, t = rng.normal(size=(6, 4)), rng.integers(0, 4, size=6)
    w = rng.uniform(0.5, 2, size=4)
    total, g_total = lk.value_and_grad(fn)(x, t, weight=w, reduction="sum")
    value, g = lk.value_and_grad(fn)(x, t, weight=w, normalizer=17.0)
    assert float(value) == pytest.approx(float(total) / 17.0, rel=1e-12)
    np.testing.assert_allclose(g, g_total / 17.0, rtol=1e-12)
    # an array normalizer works under jit (e.g. a token count from an all-reduce)
    jitted = jax.jit(lambda a, n: fn(a, jnp.asarray(t), normalizer=n))(jnp.asarray(x), jnp.asarray(17.0))
    assert float(jitted) == pytest.approx(float(fn(x, t, reduction="sum")) / 17.0, rel=1e-12)


# -- masks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn,make",
    [
        (lk.sigmoid_focal, lambda r: (r.normal(size=10), (r.uniform(size=10) > 0.5) * 1.0, {"gamma": 0.5})),
        (
            lk.softmax_focal,
            lambda r: (r.normal(size=(10, 4)), r.integers(0, 4, 10), {"weight": r.uniform(1, 2, 4)}),
        ),
        (
            lk.poly1_cross_entropy,
            lambda r: (r.normal(size=(10, 4)), r.integers(0, 4, 10), {"weight": r.uniform(1, 2, 4)}),
        ),
        (lk.poly1_cross_entropy, lambda r: (r.normal(size=(10, 4)), r.dirichlet(np.ones(4), 10), {})),
    ],
    ids=lambda f: getattr(f, "__name__", ""),
)
def test_where_drops_samples(fn, make, rng):
    x, t, kwargs = make(rng)
    mask = rng.uniform(size=10) > 0.4
    assert_where_matches_subset(fn, (x, t), kwargs, mask, (x[mask], t[mask]))


def test_all_masked_mean_is_zero_with_zero_gradient(rng):
    x, t = rng.normal(size=(3, 4)), np.full(3, -100)
    for fn in (lk.softmax_focal, lk.poly1_cross_entropy):
        value, g = lk.value_and_grad(fn)(x, t)
        assert float(value) == 0.0 and np.all(g == 0)


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call,error,match",
    [
        (
            lambda: lk.sigmoid_focal(np.zeros(2), np.zeros(2), alpha=1.5),
            ValueError,
            r"alpha must be in \[0, 1\]",
        ),
        (lambda: lk.sigmoid_focal(np.zeros(2), np.zeros(2), gamma=-1.0), ValueError, "gamma must be in"),
        (
            lambda: lk.sigmoid_focal(np.zeros(2), np.array([0.0, 2.0])),
            ValueError,
            r"target must hold probabilities in \[0, 1\]",
        ),
        (
            lambda: lk.softmax_focal(np.zeros((2, 3)), np.zeros((2, 3))),
            TypeError,
            "target must hold integer class indices",
        ),
        (lambda: lk.softmax_focal(np.zeros((2, 3)), np.array([0, 3])), ValueError, r"class index 3"),
        (
            lambda: lk.softmax_focal(np.zeros((2, 3)), np.array([0, 1]), gamma=-0.5),
            ValueError,
            "gamma must be in",
        ),
        (
            lambda: lk.softmax_focal(np.zeros((2, 3)), np.array([0, 1]), normalizer=0.0),
            ValueError,
            "normalizer must be in",
        ),
        (
            lambda: lk.poly1_cross_entropy(np.zeros((2, 3)), np.array([0, 1]), epsilon="2"),
            TypeError,
            "epsilon",
        ),
        (
            lambda: lk.poly1_cross_entropy(np.zeros((2, 3)), np.zeros((2, 2))),
            ValueError,
            "class probabilities must have the input's shape",
        ),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_catalog_entries():
    for name in ["sigmoid_focal", "softmax_focal", "poly1_cross_entropy"]:
        info = lk.lookup(name)
        assert info.family == "classification" and info.input_space == "logits"
    # Optax defaults to alpha=None; the catalog names the argument that makes the two equal
    assert lk.lookup("sigmoid_focal").optax == "optax.losses.sigmoid_focal_loss(alpha=0.25)"
