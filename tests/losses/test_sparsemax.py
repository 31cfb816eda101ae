"""Sparsemax (the output layer) and the sparsemax loss: the exact projection, its properties,
Optax's binary and multiclass losses, every backend, bad input, extreme scores."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import losskit as lk
from tests.support.backends import BY_NAME
from tests.support.cases.sparsemax import numpy_sparsemax
from tests.support.numerics import assert_where_matches_subset

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_sparsemax_matches_optax_and_the_textbook_algorithm(rng):
    import jax.numpy as jnp
    import optax

    z = rng.normal(size=(8, 6)) * 2
    ours = lk.sparsemax(z)
    np.testing.assert_allclose(ours, numpy_sparsemax(z), rtol=1e-12, atol=1e-15)
    for row, p in zip(z, ours):
        expected = np.asarray(optax.projections.projection_simplex(jnp.asarray(row)))
        np.testing.assert_allclose(p, expected, rtol=1e-12, atol=1e-15)
    assert np.any(ours == 0)  # exact zeros, unlike softmax


@SETTINGS
@given(z=arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 7)), elements=st.floats(-50, 50)))
def test_sparsemax_is_the_projection_onto_the_simplex(z):
    p = lk.sparsemax(z)
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(lk.sparsemax(z + 3.25), p, atol=1e-12)  # shift invariant
    # optimality: p is closer to z than random points of the simplex
    q = np.random.default_rng(0).dirichlet(np.ones(z.shape[-1]), size=z.shape[0])
    assert np.all(((p - z) ** 2).sum(-1) <= ((q - z) ** 2).sum(-1) + 1e-9)


def test_sparsemax_axis_inf_and_low_precision(rng):
    z = rng.normal(size=(3, 5, 2))
    np.testing.assert_allclose(
        np.moveaxis(lk.sparsemax(z, axis=1), 1, -1), lk.sparsemax(np.moveaxis(z, 1, -1))
    )
    with_inf = np.array([[1.0, -np.inf, 0.5, 0.2]])
    np.testing.assert_allclose(lk.sparsemax(with_inf), [[0.75, 0.0, 0.25, 0.0]])
    half = lk.sparsemax(z.astype(np.float16))
    assert half.dtype == np.float16
    np.testing.assert_allclose(half, lk.sparsemax(z), atol=2e-3)
    big = lk.sparsemax(np.array([[1e4, 1e4 - 0.5, -1e4]], dtype=np.float32))
    np.testing.assert_allclose(big, [[0.75, 0.25, 0.0]])


@pytest.mark.parametrize("name", ["torch", "jax", "array_api_strict", "dask"])
def test_sparsemax_on_every_backend(name, rng):
    backend = BY_NAME[name]
    z = rng.normal(size=(4, 5))
    out = lk.sparsemax(backend.to(z))
    assert isinstance(out, type(backend.to(z)))
    np.testing.assert_allclose(backend.back(out), lk.sparsemax(z), rtol=1e-12, atol=1e-15)


def test_sparsemax_loss_gradient_is_sparsemax_minus_target(rng):
    z = rng.normal(size=(6, 5))
    t = rng.integers(0, 5, size=6)
    g = lk.grad(lk.sparsemax_loss)(z, t, reduction="sum")
    np.testing.assert_allclose(g, lk.sparsemax(z) - np.eye(5)[t], atol=1e-15)
    np.testing.assert_allclose(
        lk.sparsemax_loss(z, np.eye(5)[t], reduction="none"), lk.sparsemax_loss(z, t, reduction="none")
    )


def test_sparsemax_loss_binary_case_is_optax_sparsemax_loss(rng):
    import jax.numpy as jnp
    import optax

    x = rng.normal(size=12) * 2
    y = rng.integers(0, 2, size=12)
    two = np.stack([np.zeros(12), x], axis=-1)
    expected = np.asarray(optax.losses.sparsemax_loss(jnp.asarray(x), jnp.asarray(y)))
    np.testing.assert_allclose(lk.sparsemax_loss(two, y, reduction="none"), expected, rtol=1e-12, atol=1e-15)


def test_sparsemax_loss_is_exact_at_extreme_scores():
    z = np.array([[1e4, 0.0, -1e4], [1e4, 0.0, -1e4]], dtype=np.float32)
    value, g = lk.value_and_grad(lk.sparsemax_loss)(z, np.array([0, 2]), reduction="none")
    assert value.dtype == np.float32
    np.testing.assert_allclose(value, [0.0, 2e4])
    np.testing.assert_allclose(g, [[0, 0, 0], [1, 0, -1]])


def test_where_drops_samples(rng):
    z, t = rng.normal(size=(10, 4)), rng.integers(0, 4, size=10)
    mask = rng.uniform(size=10) > 0.4
    assert_where_matches_subset(lk.sparsemax_loss, (z, t), {}, mask, (z[mask], t[mask]))


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: lk.sparsemax(np.zeros(())), ValueError, "x must have a class axis"),
        (lambda: lk.sparsemax(np.zeros((2, 0))), ValueError, "x is empty"),
        (lambda: lk.sparsemax(np.zeros(3, dtype=np.int64)), TypeError, "x must be a real floating"),
        (lambda: lk.sparsemax(np.zeros((2, 3)), axis=2), ValueError, "axis=2 is out of range"),
        (lambda: lk.sparsemax([1.0, 2.0]), TypeError, "x must be an array"),
        (lambda: lk.sparsemax_loss(np.zeros((2, 3)), np.array([0, 3])), ValueError, "class index 3"),
        (lambda: lk.sparsemax_loss(np.zeros((2, 3)), np.array([0, -100])), ValueError, "class index -100"),
        (
            lambda: lk.sparsemax_loss(np.zeros((2, 3)), np.full((2, 3), 0.5)),
            ValueError,
            "must sum to 1 along axis=1",
        ),
        (
            lambda: lk.sparsemax_loss(np.zeros((2, 3)), np.zeros(2)),
            ValueError,
            "float class indices",
        ),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_catalog_entry():
    info = lk.lookup("sparsemax_loss")
    assert info.family == "classification" and info.input_space == "logits"
    assert info.optax == "optax.losses.multiclass_sparsemax_loss"
    assert "sparsemax" in lk.__all__ and lk.sparsemax is lk.sparsemax  # the output layer, not a loss
