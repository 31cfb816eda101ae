"""Generalized cross-entropy, Brier and smooth_labels: Keras's and scikit-learn's numbers, the
limits of generalized cross-entropy, smooth_labels against Optax and cross-entropy's label
smoothing on every backend, masks, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import losskit as lk
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
    for name in ["generalized_cross_entropy", "brier"]:
        info = lk.lookup(name)
        assert info.family == "classification" and info.input_space == "probabilities"
    assert "smooth_labels" in lk.__all__
    with pytest.raises(KeyError):
        lk.lookup("smooth_labels")  # a helper, not a loss
