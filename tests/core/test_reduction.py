"""The where= mask, ignore_index, weights and the all-ignored case."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import losskit as lk


@pytest.mark.parametrize("fn", [lk.mse, lk.mae, lk.huber, lk.smooth_l1, lk.binary_cross_entropy_with_logits])
def test_where_drops_elements_from_value_divisor_and_gradient(fn, rng):
    x, y = rng.normal(size=(4, 3)), rng.uniform(size=(4, 3))
    mask = rng.uniform(size=(4, 3)) > 0.4
    value, g = lk.value_and_grad(fn)(x, y, where=mask)
    expected = fn(x[mask], y[mask])
    assert value == pytest.approx(float(expected), rel=1e-12)
    _, g_sub = lk.value_and_grad(fn)(x[mask], y[mask])
    np.testing.assert_allclose(g[mask], g_sub, rtol=1e-12)
    assert np.all(g[~mask] == 0)
    assert np.all(fn(x, y, where=mask, reduction="none")[~mask] == 0)
    assert fn(x, y, where=mask, reduction="sum") == pytest.approx(
        float(fn(x[mask], y[mask], reduction="sum"))
    )


def test_where_broadcasts_over_trailing_axes(rng):
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    rows = np.array([[True], [False], [True], [False]])
    assert lk.mse(x, y, where=rows) == pytest.approx(float(lk.mse(x[[0, 2]], y[[0, 2]])))


def test_where_ignores_nan_in_masked_out_predictions():
    x = np.array([1.0, np.nan])
    y = np.array([0.5, 0.0])
    value, g = lk.value_and_grad(lk.mse)(x, y, where=np.array([True, False]))
    assert value == 0.25 and g[1] == 0


def test_cross_entropy_where_combines_with_ignore_index_and_weights(rng):
    x = rng.normal(size=(6, 4))
    t = np.array([0, 1, -100, 3, 2, 1])
    w = rng.uniform(0.5, 2, size=4)
    mask = np.array([True, False, True, True, True, False])
    keep = mask & (t != -100)
    ours = lk.cross_entropy(x, t, w, where=mask, label_smoothing=0.1)
    ref = torch.nn.functional.cross_entropy(
        torch.from_numpy(x[keep]), torch.from_numpy(t[keep]), torch.from_numpy(w), label_smoothing=0.1
    )
    assert float(ours) == pytest.approx(float(ref), rel=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_all_ignored_mean_is_zero_with_zero_gradient(weighted):
    x = np.random.default_rng(1).normal(size=(3, 4))
    t = np.full(3, -100)
    w = np.ones(4) if weighted else None
    value, g = lk.value_and_grad(lk.cross_entropy)(x, t, w)
    assert value == 0.0 and np.all(g == 0)
    ref = torch.nn.functional.cross_entropy(torch.from_numpy(x), torch.from_numpy(t))
    assert torch.isnan(ref)  # PyTorch: NaN; losskit: 0, by design
    value, g = lk.value_and_grad(lk.mse)(x, x + 1, where=np.zeros((3, 4), dtype=bool))
    assert value == 0.0 and np.all(g == 0)


def test_normalizer_divides_the_sum(rng):
    x = rng.normal(size=(5, 3))
    t = np.array([0, 1, 2, -100, 1])
    total = lk.cross_entropy(x, t, reduction="sum")
    assert lk.cross_entropy(x, t, normalizer=40) == pytest.approx(float(total) / 40)
    _, g = lk.value_and_grad(lk.cross_entropy)(x, t, normalizer=40)
    _, g_sum = lk.value_and_grad(lk.cross_entropy)(x, t, reduction="sum")
    np.testing.assert_allclose(g, g_sum / 40)
    with pytest.raises(ValueError, match="normalizer must be in"):
        lk.cross_entropy(x, t, normalizer=0)


def test_z_loss_adds_the_squared_log_normaliser(rng):
    x = rng.normal(size=(5, 3)) + 2
    t = np.array([0, 1, 2, 0, 1])
    lse = np.log(np.exp(x).sum(-1))
    expected = float(lk.cross_entropy(x, t)) + 1e-2 * np.mean(lse**2)
    assert lk.cross_entropy(x, t, z_loss=1e-2) == pytest.approx(expected, rel=1e-12)
    xt = torch.from_numpy(x).requires_grad_(True)
    ref = (
        torch.nn.functional.cross_entropy(xt, torch.from_numpy(t))
        + 1e-2 * (torch.logsumexp(xt, -1) ** 2).mean()
    )
    (g_ref,) = torch.autograd.grad(ref, xt)
    _, g = lk.value_and_grad(lk.cross_entropy)(x, t, z_loss=1e-2)
    np.testing.assert_allclose(g, g_ref.numpy(), rtol=1e-10)


def test_reduction_none_gradient_is_that_of_the_sum(rng):
    x, t = rng.normal(size=(4, 3)), np.array([0, 1, 2, 1])
    _, g_none = lk.value_and_grad(lk.cross_entropy)(x, t, reduction="none")
    _, g_sum = lk.value_and_grad(lk.cross_entropy)(x, t, reduction="sum")
    np.testing.assert_array_equal(g_none, g_sum)


def test_kl_div_batchmean_is_the_per_sample_kl(rng):
    p = rng.dirichlet(np.ones(5), size=3)
    q = rng.dirichlet(np.ones(5), size=3)
    per_sample = (q * np.log(q / p)).sum(-1)
    assert lk.kl_div(np.log(p), q) == pytest.approx(per_sample.mean())
    assert lk.kl_div(np.log(p), q, reduction="mean") == pytest.approx(per_sample.sum() / 15)
