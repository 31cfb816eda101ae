"""Precision: float16/bfloat16 computed with float32 accumulation and returned in the input
dtype; float32 and float64 keep theirs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import losskit as lk


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_torch_dtypes_are_kept(dtype, rng):
    x = torch.from_numpy(rng.normal(size=(64, 10))).to(dtype)
    t = torch.from_numpy(rng.integers(0, 10, size=64))
    loss = lk.cross_entropy(x, t)
    assert loss.dtype == dtype
    _, g = lk.value_and_grad(lk.cross_entropy)(x, t)
    assert g.dtype == dtype
    exact = torch.nn.functional.cross_entropy(x.double(), t)
    tol = {torch.float16: 1e-3, torch.bfloat16: 8e-3, torch.float32: 1e-6, torch.float64: 1e-12}[dtype]
    assert abs(float(loss) - float(exact)) <= tol * float(exact)


def test_low_precision_accumulates_in_float32(rng):
    # 100k float16 squared errors: a float16 running sum would lose most of them
    x = np.full(100_000, 0.01, dtype=np.float16)
    y = np.zeros(100_000, dtype=np.float16)
    total = lk.mse(x, y, reduction="sum")
    assert total.dtype == np.float16
    assert float(total) == pytest.approx(100_000 * float(np.float16(0.01)) ** 2, rel=1e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_dtypes_are_kept(dtype, rng):
    x = rng.normal(size=(5, 4)).astype(dtype)
    y = rng.normal(size=(5, 4)).astype(dtype)
    for fn in (lk.mse, lk.mae, lk.huber, lk.smooth_l1, lk.binary_cross_entropy_with_logits):
        assert (
            np.asarray(fn(x, y if fn is not lk.binary_cross_entropy_with_logits else np.clip(y, 0, 1))).dtype
            == dtype
        )
    assert np.asarray(lk.cross_entropy(x, np.arange(5) % 4)).dtype == dtype
    assert lk.softmax(x).dtype == dtype


def test_bfloat16_in_jax(rng):
    import jax.numpy as jnp

    x = jnp.asarray(rng.normal(size=(8, 5)), dtype=jnp.bfloat16)
    t = jnp.asarray(rng.integers(0, 5, size=8))
    loss = lk.cross_entropy(x, t)
    assert loss.dtype == jnp.bfloat16
    ref = lk.cross_entropy(np.asarray(x.astype(jnp.float64)), np.asarray(t))
    assert float(loss) == pytest.approx(float(ref), rel=1e-2)


def test_extreme_logits_keep_exact_gradients():
    # BCE-with-logits at logit -50, target 0: gradient sigmoid(-50), not 0
    x, y = np.array([-50.0]), np.array([0.0])
    _, g = lk.value_and_grad(lk.binary_cross_entropy_with_logits)(x, y)
    assert g[0] == pytest.approx(1.9287498479639178e-22, rel=1e-12)
    # float32 logits at +-1e4: finite loss and gradient
    x32 = np.array([[1e4, -1e4, 0.0]], dtype=np.float32)
    v, g = lk.value_and_grad(lk.cross_entropy)(x32, np.array([1]))
    assert np.isfinite(v) and np.all(np.isfinite(g))
    assert float(v) == pytest.approx(2e4, rel=1e-6)
    v, g = lk.value_and_grad(lk.binary_cross_entropy_with_logits)(
        x32[0], np.array([0.0, 1.0, 1.0], np.float32)
    )
    assert np.isfinite(v) and np.all(np.isfinite(g))


def test_bce_is_exact_where_finite_and_clamped_only_where_infinite():
    p = np.array([1e-60, 0.0, 1.0, 0.3])
    y = np.array([1.0, 1.0, 1.0, 0.0])
    per = lk.binary_cross_entropy(p, y, reduction="none")
    assert per[0] == pytest.approx(60 * np.log(10), rel=1e-12)  # PyTorch clamps this to 100
    assert per[1] == 100.0  # log(0) is -inf: clamped like PyTorch
    assert per[2] == 0.0 and per[3] == pytest.approx(-np.log(0.7))
    _, g = lk.value_and_grad(lk.binary_cross_entropy)(p, y, reduction="none")
    assert np.all(np.isfinite(g))
    assert g[3] == pytest.approx(1 / 0.7)


def test_bce_with_logits_keeps_small_losses_and_gradients_in_float32():
    x = np.array([17.0, -20.0], dtype=np.float32)
    y = np.array([1.0, 0.0], dtype=np.float32)
    value, g = lk.value_and_grad(lk.binary_cross_entropy_with_logits)(x, y, reduction="none")
    exact = np.log1p(np.exp(-np.abs(x.astype(np.float64))))
    np.testing.assert_allclose(value, exact, rtol=1e-6)
    np.testing.assert_allclose(
        g, [-np.exp(-17.0) / (1 + np.exp(-17.0)), np.exp(-20.0) / (1 + np.exp(-20.0))], rtol=1e-6
    )
