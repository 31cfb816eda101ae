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


# -- weighted means whose weights sum to <= 0 ---------------------------------------------------
# PyTorch divides by the sum of the counted targets' weights whatever its sign; losskit does the
# same.  Only when no target counts at all is the mean 0 with a zero gradient.

_X = np.array([[1.0, 2.0, 0.5], [0.3, -1.0, 2.0], [0.7, 0.1, -0.4], [-1.2, 0.4, 0.9]])
_T = np.array([0, 2, -100, 0])
_NEGATIVE = np.array([-1.0, 1.0, -2.0])  # counted weights -1, -2, -1: sum -4
_ZERO_SUM = np.array([1.0, 1.0, -2.0])  # counted weights 1, -2, 1: sum 0, total loss not 0
_ALL_ZERO = np.array([0.0, 1.0, 0.0])  # counted weights all 0: 0 / 0


def _torch_weighted(fn_name, x, t, w, **kw):
    xt = torch.from_numpy(x).requires_grad_(True)
    fn = getattr(torch.nn.functional, fn_name)
    value = fn(xt, torch.from_numpy(t), torch.from_numpy(w), **kw)
    (g,) = torch.autograd.grad(value, xt)
    return value.detach().numpy(), g.numpy()


def _log_softmax(x):
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_weighted_mean_with_negative_weights_is_pytorchs(smoothing):
    ref_value, ref_grad = _torch_weighted("cross_entropy", _X, _T, _NEGATIVE, label_smoothing=smoothing)
    assert float(ref_value) != 0.0
    kw = {"label_smoothing": smoothing}
    # NumPy: the portable value, and value_and_grad (the NumPy row kernel)
    assert float(lk.cross_entropy(_X, _T, _NEGATIVE, **kw)) == pytest.approx(float(ref_value), rel=1e-12)
    value, g = lk.value_and_grad(lk.cross_entropy)(_X, _T, _NEGATIVE, **kw)
    assert float(value) == pytest.approx(float(ref_value), rel=1e-12)
    np.testing.assert_allclose(g, ref_grad, rtol=1e-10, atol=1e-15)
    # torch: the autograd Function, and the portable code on tensors autograd does not track
    xt = torch.from_numpy(_X).requires_grad_(True)
    value = lk.cross_entropy(xt, torch.from_numpy(_T), torch.from_numpy(_NEGATIVE), **kw)
    (g,) = torch.autograd.grad(value, xt)
    assert float(value) == pytest.approx(float(ref_value), rel=1e-12)
    np.testing.assert_allclose(g.numpy(), ref_grad, rtol=1e-10, atol=1e-15)
    plain = lk.cross_entropy(torch.from_numpy(_X), torch.from_numpy(_T), torch.from_numpy(_NEGATIVE), **kw)
    assert float(plain) == pytest.approx(float(ref_value), rel=1e-12)


def test_nll_weighted_mean_with_negative_weights_is_pytorchs():
    log_p = _log_softmax(_X)
    ref_value, ref_grad = _torch_weighted("nll_loss", log_p, _T, _NEGATIVE)
    value, g = lk.value_and_grad(lk.nll)(log_p, _T, _NEGATIVE)
    assert float(value) == pytest.approx(float(ref_value), rel=1e-12)
    np.testing.assert_allclose(g, ref_grad, rtol=1e-12)
    xt = torch.from_numpy(log_p).requires_grad_(True)
    value = lk.nll(xt, torch.from_numpy(_T), torch.from_numpy(_NEGATIVE))
    (g,) = torch.autograd.grad(value, xt)
    assert float(value) == pytest.approx(float(ref_value), rel=1e-12)
    np.testing.assert_allclose(g.numpy(), ref_grad, rtol=1e-12)


@pytest.mark.parametrize("weight", [_ZERO_SUM, _ALL_ZERO], ids=["sum-0", "all-0"])
def test_weighted_mean_over_a_zero_weight_sum_is_pytorchs_not_a_silent_zero(weight):
    # counted targets whose weights sum to exactly 0: PyTorch's division gives inf or NaN, and
    # so does losskit (on every path), with a gradient that is not finite either
    ref_value, _ = _torch_weighted("cross_entropy", _X, _T, weight)
    assert not np.isfinite(ref_value)
    log_p = _log_softmax(_X)
    xt = torch.from_numpy(_X).requires_grad_(True)
    torch_value = lk.cross_entropy(xt, torch.from_numpy(_T), torch.from_numpy(weight))
    (torch_grad,) = torch.autograd.grad(torch_value, xt)
    results = {
        "numpy value": (lk.cross_entropy(_X, _T, weight), None),
        "numpy value_and_grad": lk.value_and_grad(lk.cross_entropy)(_X, _T, weight),
        "torch autograd": (torch_value.detach().numpy(), torch_grad.numpy()),
        "nll": lk.value_and_grad(lk.nll)(log_p, _T, weight),
    }
    for path, (value, g) in results.items():
        np.testing.assert_array_equal(np.asarray(value), ref_value, err_msg=path)
        if g is not None:
            counted = _T != -100
            assert not np.isfinite(g[counted]).any(), path
            assert np.all(g[~counted] == 0), path


def test_focal_and_poly_weighted_means_follow_cross_entropy_with_negative_weights():
    ce = float(lk.cross_entropy(_X, _T, _NEGATIVE))
    assert float(lk.softmax_focal(_X, _T, gamma=0.0, weight=_NEGATIVE)) == pytest.approx(ce, rel=1e-12)
    assert float(lk.poly1_cross_entropy(_X, _T, epsilon=0.0, weight=_NEGATIVE)) == pytest.approx(
        ce, rel=1e-12
    )


def test_make_reducer_weighted_mean_divides_by_the_signed_sum():
    from losskit.core.reduction import make_reducer

    per = np.array([1.0, 2.0, 4.0])
    mask = np.array([True, True, False])
    w = np.array([1.0, -3.0, 5.0])  # counted: 1 and -3
    reducer = make_reducer(np, "mean", (3,), np.float64, where=mask, weights=w)
    assert float(reducer.value(per)) == pytest.approx((1.0 + 2.0) / -2.0)
    np.testing.assert_allclose(reducer.grad(np.ones(3)), [-0.5, -0.5, 0.0])
    nothing = make_reducer(np, "mean", (3,), np.float64, where=np.zeros(3, dtype=bool), weights=w)
    assert float(nothing.value(per)) == 0.0 and np.all(nothing.grad(np.ones(3)) == 0)


def test_jax_fast_path_weighted_mean_with_negative_weights_is_pytorchs():
    import jax
    import jax.numpy as jnp

    ref_value, ref_grad = _torch_weighted("cross_entropy", _X, _T, _NEGATIVE)
    value, g = jax.value_and_grad(lambda x: lk.cross_entropy(x, jnp.asarray(_T), jnp.asarray(_NEGATIVE)))(
        jnp.asarray(_X)
    )
    assert float(value) == pytest.approx(float(ref_value), rel=1e-12)
    np.testing.assert_allclose(np.asarray(g), ref_grad, rtol=1e-10, atol=1e-15)
