"""Generalized cross-entropy, Brier and smooth_labels: Keras's and scikit-learn's numbers, the
limits of generalized cross-entropy, smooth_labels against Optax and cross-entropy's label
smoothing on every backend, masks, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import losskit as lk
from losskit.losses.classification import binary_brier
from tests.support.backends import BY_NAME
from tests.support.numerics import assert_where_matches_subset

# -- generalized cross-entropy, Brier ------------------------------------------------------------


def test_generalized_cross_entropy_keras_worked_example():
    t = np.array([0, 1, 0, 1])
    p = np.array([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6]], dtype=np.float32)
    assert float(lk.generalized_cross_entropy(p, t, q=0.7)) == pytest.approx(0.34529287, rel=1e-6)


def test_generalized_cross_entropy_tends_to_cross_entropy_and_mae(rng):
    p = rng.dirichlet(np.ones(4), size=5)
    t = rng.integers(0, 4, size=5)
    nll = -np.log(p[np.arange(5), t])
    np.testing.assert_allclose(lk.generalized_cross_entropy(p, t, q=1e-7, reduction="none"), nll, rtol=1e-5)
    np.testing.assert_allclose(
        lk.generalized_cross_entropy(p, t, q=1.0, reduction="none"), 1 - p[np.arange(5), t], rtol=1e-12
    )


def test_brier_matches_scikit_learn(rng):
    metrics = pytest.importorskip("sklearn.metrics")
    p = rng.dirichlet(np.ones(4), size=30)
    t = rng.integers(0, 4, size=30)
    t[:4] = [0, 1, 2, 3]  # every class present, so scikit-learn infers the 4 labels
    expected = metrics.brier_score_loss(t, p, scale_by_half=False)
    assert float(lk.brier(p, t)) == pytest.approx(expected, rel=1e-12)
    assert float(lk.brier(p, np.eye(4)[t])) == pytest.approx(expected, rel=1e-12)
    # binary: scikit-learn's default halves the two-class score
    pb = rng.uniform(size=20)
    tb = rng.integers(0, 2, size=20)
    two = np.stack([1 - pb, pb], axis=1)
    assert float(lk.brier(two, tb)) / 2 == pytest.approx(metrics.brier_score_loss(tb, pb), rel=1e-12)


def test_binary_brier_is_scikit_learns_brier_score_loss(rng):
    metrics = pytest.importorskip("sklearn.metrics")
    p = rng.uniform(size=40)
    y = rng.integers(0, 2, size=40)
    expected = metrics.brier_score_loss(y, p)
    assert float(binary_brier(p, y.astype(float))) == pytest.approx(expected, rel=1e-12)
    assert float(binary_brier(p, y)) == pytest.approx(expected, rel=1e-12)  # integer 0/1 labels
    assert float(binary_brier(p, y.astype(bool))) == pytest.approx(expected, rel=1e-12)
    # the worked example of the docstring
    p4, y4 = np.array([0.1, 0.9, 0.8, 0.3]), np.array([0, 1, 1, 0])
    assert float(binary_brier(p4, y4)) == pytest.approx(0.0375, rel=1e-12)
    assert float(binary_brier(p4, y4)) == pytest.approx(metrics.brier_score_loss(y4, p4), rel=1e-12)
    # the two-class multiclass score is twice the binary one
    two = np.stack([1 - p, p], axis=1)
    assert float(lk.brier(two, y)) == pytest.approx(2 * expected, rel=1e-12)
    _, g = lk.value_and_grad(binary_brier)(p, y)
    np.testing.assert_allclose(g, 2 * (p - y) / p.size, rtol=1e-12)


@pytest.mark.parametrize("name", ["torch", "jax", "array_api_strict", "dask"])
def test_binary_brier_integer_labels_on_every_backend(name):
    backend = BY_NAME[name]
    p, y = np.array([0.1, 0.9, 0.8, 0.3]), np.array([0, 1, 1, 0])
    out = binary_brier(backend.to(p), backend.to(y))
    assert float(backend.back(out)) == pytest.approx(0.0375, rel=1e-12)


@pytest.mark.parametrize(
    "call,error,match",
    [
        (
            lambda: binary_brier(np.array([0.2, 1.5]), np.array([0, 1])),
            ValueError,
            "input must hold probabilities",
        ),
        (lambda: binary_brier(np.array([0.2, 0.5]), np.array([0, 2])), ValueError, r"target must only hold"),
        (lambda: binary_brier(np.array([0.2, 0.5]), np.array([0.0, 1.0, 1.0])), ValueError, "same shape"),
    ],
)
def test_binary_brier_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize(
    "target",
    [np.array([0.0, 1.0, 1.0, 0.0]), np.array([0, 1, 1, 0]), np.array([False, True, True, False])],
    ids=["float", "int", "bool"],
)
def test_brier_refuses_1d_binary_probabilities_and_names_binary_brier(target):
    # scikit-learn's brier_score_loss(y, p) call: one probability per sample, 0/1 labels
    p = np.array([0.1, 0.9, 0.8, 0.3])
    with pytest.raises((ValueError, TypeError), match=r"binary_brier\(p, y\)"):
        lk.brier(p, target)


def test_brier_refuses_a_class_axis_of_one_and_names_binary_brier():
    p = np.array([[0.1], [0.9], [0.8]])
    with pytest.raises(ValueError, match=r"class axis of size >= 2.*binary_brier"):
        lk.brier(p, np.array([[0.0], [1.0], [1.0]]))


def test_brier_still_takes_one_sample_as_a_1d_distribution():
    p = np.array([0.2, 0.5, 0.3])
    assert float(lk.brier(p, np.array(1))) == pytest.approx(0.04 + 0.25 + 0.09)
    assert float(lk.brier(p, np.array([0.0, 1.0, 0.0]))) == pytest.approx(0.04 + 0.25 + 0.09)


# -- smooth_labels --------------------------------------------------------------------------------


def test_smooth_labels_matches_optax_and_cross_entropy_label_smoothing(rng):
    import jax.numpy as jnp
    import optax

    t = rng.integers(0, 5, size=(3, 2))
    one_hot = np.eye(5)[t]
    ours = lk.smooth_labels(one_hot, 0.2)
    np.testing.assert_allclose(ours, np.asarray(optax.smooth_labels(jnp.asarray(one_hot), 0.2)), rtol=1e-6)
    np.testing.assert_allclose(lk.smooth_labels(t, 0.2, num_classes=5), ours, rtol=1e-15)
    moved = lk.smooth_labels(t, 0.2, num_classes=5, axis=1)
    assert moved.shape == (3, 5, 2)
    np.testing.assert_allclose(np.moveaxis(moved, 1, -1), ours)
    x = rng.normal(size=(3, 2, 5))
    np.testing.assert_allclose(
        lk.cross_entropy(x, lk.smooth_labels(t, 0.2, 5)),
        lk.cross_entropy(x, t, label_smoothing=0.2),
        rtol=1e-12,
    )


@pytest.mark.parametrize("name", ["torch", "jax", "array_api_strict", "dask"])
def test_smooth_labels_on_every_backend(name):
    backend = BY_NAME[name]
    t = np.array([0, 2, 1])
    out = lk.smooth_labels(backend.to(t), 0.1, num_classes=3)
    expected = lk.smooth_labels(t, 0.1, num_classes=3)
    np.testing.assert_allclose(backend.back(out), expected, rtol=1e-6)
    soft = lk.smooth_labels(backend.to(np.eye(3)[t]), 0.1)
    np.testing.assert_allclose(backend.back(soft), expected, rtol=1e-12)


# -- masks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn,make",
    [
        (lk.generalized_cross_entropy, lambda r: (r.dirichlet(np.ones(4), 10), r.integers(0, 4, 10), {})),
        (lk.brier, lambda r: (r.dirichlet(np.ones(4), 10), r.integers(0, 4, 10), {})),
    ],
    ids=lambda f: getattr(f, "__name__", ""),
)
def test_where_drops_samples(fn, make, rng):
    x, t, kwargs = make(rng)
    mask = rng.uniform(size=10) > 0.4
    assert_where_matches_subset(fn, (x, t), kwargs, mask, (x[mask], t[mask]))


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call,error,match",
    [
        (
            lambda: lk.generalized_cross_entropy(np.full((2, 3), 1 / 3), np.zeros((2, 3))),
            TypeError,
            "target must hold integer class indices",
        ),
        (
            lambda: lk.generalized_cross_entropy(np.full((2, 3), 1 / 3), np.array([0, 1]), q=0.0),
            ValueError,
            r"q must be in \(0, 1\]",
        ),
        (
            lambda: lk.generalized_cross_entropy(np.full((2, 3), 2.0), np.array([0, 1])),
            ValueError,
            r"input must hold probabilities",
        ),
        (
            lambda: lk.generalized_cross_entropy(np.full((2, 3), 1 / 3), np.array([0, -100])),
            ValueError,
            "class index -100",
        ),
        (
            lambda: lk.brier(np.full((2, 3), 1.5), np.array([0, 1])),
            ValueError,
            "input must hold probabilities",
        ),
        (lambda: lk.brier(np.full((2, 3), 0.3), np.array([0, 3])), ValueError, "class index 3"),
        (lambda: lk.smooth_labels(np.array([0, 1]), 0.1), ValueError, "num_classes is required"),
        (
            lambda: lk.smooth_labels(np.eye(3), 0.1, num_classes=4),
            ValueError,
            r"num_classes=4 does not match",
        ),
        (lambda: lk.smooth_labels(np.eye(3), 1.5), ValueError, r"alpha must be in \[0, 1\]"),
        (
            lambda: lk.smooth_labels(np.array([0, 3]), 0.1, num_classes=3),
            ValueError,
            "labels holds class index 3",
        ),
        (lambda: lk.smooth_labels([0, 1], 0.1, num_classes=3), TypeError, "labels must be an array"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_catalog_entries():
    for name in ["generalized_cross_entropy", "brier", "binary_brier"]:
        info = lk.lookup(name)
        assert info.family == "classification" and info.input_space == "probabilities"
    assert "smooth_labels" in lk.__all__
    with pytest.raises(KeyError):
        lk.lookup("smooth_labels")  # a helper, not a loss
