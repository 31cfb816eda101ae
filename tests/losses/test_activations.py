"""Output layers: parity with PyTorch, stability at extremes, temperature, -inf rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import losskit as lk

PAIRS = [
    (lk.sigmoid, torch.sigmoid),
    (lk.log_sigmoid, torch.nn.functional.logsigmoid),
    (lk.softplus, lambda t: torch.nn.functional.softplus(t, threshold=1e9)),
    (lk.tanh, torch.tanh),
    (lk.softmax, lambda t: torch.softmax(t, -1)),
    (lk.log_softmax, lambda t: torch.log_softmax(t, -1)),
    (lk.logsumexp, lambda t: torch.logsumexp(t, -1)),
]


@pytest.mark.parametrize("ours,ref", PAIRS, ids=lambda f: getattr(f, "__name__", "ref"))
def test_matches_torch(ours, ref, rng):
    x = rng.normal(size=(4, 7)) * 5
    np.testing.assert_allclose(ours(x), ref(torch.from_numpy(x)).numpy(), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("fn", [f for f, _ in PAIRS], ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_overflow_at_extremes(fn, dtype):
    x = np.array([[-1e4, -50.0, 0.0, 50.0, 1e4]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = np.asarray(fn(x))
    assert np.all(np.isfinite(out)) and out.dtype == dtype


def test_extreme_values_are_exact():
    x = np.array([-1e4, 1e4], dtype=np.float32)
    np.testing.assert_array_equal(lk.log_sigmoid(x), [-1e4, 0.0])
    np.testing.assert_array_equal(lk.softplus(x), [0.0, 1e4])
    np.testing.assert_array_equal(lk.sigmoid(x), [0.0, 1.0])
    np.testing.assert_allclose(lk.log_softmax(np.array([0.0, 1e4])), [-1e4, 0.0])


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_rows_with_minus_infinity():
    x = np.array([[-np.inf, 0.0, 1.0], [-np.inf, -np.inf, 2.0]])
    p = lk.softmax(x)
    np.testing.assert_allclose(p.sum(-1), 1.0)
    assert p[0, 0] == 0.0 and p[1, 2] == 1.0
    np.testing.assert_allclose(lk.log_softmax(x)[1], [-np.inf, -np.inf, 0.0])
    np.testing.assert_allclose(lk.logsumexp(x), [np.log(1 + np.e), 2.0])
    assert lk.logsumexp(np.full((1, 3), -np.inf))[0] == -np.inf
    # cross-entropy over a masked vocabulary is finite for a reachable target
    assert np.isfinite(lk.cross_entropy(x, np.array([2, 2])))


def test_temperature(rng):
    x = rng.normal(size=(3, 5))
    np.testing.assert_allclose(
        lk.softmax(x, temperature=2.0), torch.softmax(torch.from_numpy(x) / 2, -1).numpy(), rtol=1e-12
    )
    np.testing.assert_allclose(
        lk.log_softmax(x, axis=0, temperature=0.3),
        torch.log_softmax(torch.from_numpy(x) / 0.3, 0).numpy(),
        rtol=1e-12,
    )


def test_keepdims_and_axis(rng):
    x = rng.normal(size=(2, 3, 4))
    assert lk.logsumexp(x, axis=1, keepdims=True).shape == (2, 1, 4)
    np.testing.assert_allclose(lk.softmax(x, axis=1).sum(1), 1.0)
