"""Penalties: gradients with respect to any of the *params, their dtypes and array types,
reductions, per-parameter masks and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import losskit as lk


def test_gradient_with_respect_to_each_parameter(rng):
    a, b, c = rng.normal(size=(3, 4)), rng.normal(size=5), rng.normal(size=(2, 2))
    value, (ga, gc) = lk.value_and_grad(lk.l2_penalty, argnums=(0, 2))(a, b, c, scale=0.1)
    assert float(value) == pytest.approx(0.1 * sum((p**2).sum() for p in (a, b, c)))
    np.testing.assert_allclose(ga, 0.2 * a)
    np.testing.assert_allclose(gc, 0.2 * c)
    gb = lk.grad(lk.l1_penalty, argnums=1)(a, b, c, scale=2.0)
    np.testing.assert_allclose(gb, 2.0 * np.sign(b))


def test_each_gradient_keeps_its_parameters_dtype(rng):
    a = rng.normal(size=3).astype(np.float32)
    b = rng.normal(size=2)
    h = rng.normal(size=2).astype(np.float16)
    value, (ga, gb, gh) = lk.value_and_grad(lk.l2_penalty, argnums=(0, 1, 2))(a, b, h)
    assert value.dtype == np.float64 and ga.dtype == np.float32 and gb.dtype == np.float64
    assert gh.dtype == np.float16
    half, g = lk.value_and_grad(lk.l1_penalty)(h)
    assert half.dtype == np.float16 and g.dtype == np.float16


def test_torch_autograd_reaches_every_parameter(rng):
    params = [torch.tensor(rng.normal(size=s), requires_grad=True) for s in [(3, 2), (4,)]]
    (lk.l2_penalty(*params, scale=0.5) + lk.l1_penalty(*params, scale=0.1)).backward()
    for p in params:
        expected = p.detach() + 0.1 * torch.sign(p.detach())
        torch.testing.assert_close(p.grad, expected)


def test_jax_grad_under_jit_with_respect_to_the_second_parameter(rng):
    import jax
    import jax.numpy as jnp

    a, b = jnp.asarray(rng.normal(size=3)), jnp.asarray(rng.normal(size=4))
    g = jax.jit(jax.grad(lambda y: lk.l2_penalty(a, y, scale=0.3, reduction="mean"), argnums=0))(b)
    np.testing.assert_allclose(np.asarray(g), 0.6 * np.asarray(b) / 7, rtol=1e-12)


def test_mean_divides_by_the_counted_elements_and_masks_drop_elements(rng):
    a, b = rng.normal(size=(3, 4)), rng.normal(size=5)
    ma = rng.uniform(size=(3, 4)) > 0.5
    value, (ga, gb) = lk.value_and_grad(lk.l1_penalty, argnums=(0, 1))(
        a, b, where=(ma, None), reduction="mean"
    )
    n = ma.sum() + 5
    assert float(value) == pytest.approx((np.abs(a[ma]).sum() + np.abs(b).sum()) / n)
    np.testing.assert_allclose(ga, np.where(ma, np.sign(a) / n, 0.0))
    np.testing.assert_allclose(gb, np.sign(b) / n)
    # a single array takes a single mask; nothing counted means 0 with a zero gradient
    value, g = lk.value_and_grad(lk.l2_penalty)(a, where=np.zeros((3, 4), dtype=bool), reduction="mean")
    assert float(value) == 0.0 and np.all(g == 0)
    rows = np.array([[True], [False], [True]])
    assert float(lk.l2_penalty(a, where=rows)) == pytest.approx((a[[0, 2]] ** 2).sum())


@pytest.mark.parametrize(
    "call,error,match",
    [
        (
            lambda: lk.l2_penalty(np.ones(3), reduction="none"),
            ValueError,
            r"reduction must be one of 'sum', 'mean'",
        ),
        (lambda: lk.l2_penalty(np.ones(3), scale=-1.0), ValueError, r"scale must be in \[0, inf\)"),
        (lambda: lk.l1_penalty(), TypeError, "at least one parameter array"),
        (lambda: lk.l1_penalty(np.ones(3), np.arange(3)), TypeError, r"params\[1\] must be a real floating"),
        (
            lambda: lk.l1_penalty(np.ones(3), torch.ones(3)),
            TypeError,
            r"params\[0\] is numpy, params\[1\] is torch",
        ),
        (lambda: lk.l1_penalty(np.ones(3), [1.0]), TypeError, r"params\[1\] must be an array"),
        (
            lambda: lk.l1_penalty(np.ones(3), np.ones(2), where=np.ones(3, dtype=bool)),
            ValueError,
            "sequence of 2 masks",
        ),
        (
            lambda: lk.l1_penalty(np.ones(3), np.ones(2), where=(np.ones(3, dtype=bool),)),
            ValueError,
            "one mask .* per parameter: 2 parameter",
        ),
        (lambda: lk.l1_penalty(np.ones(3), where=np.ones(3)), TypeError, r"where\[0\] must be a boolean"),
        (lambda: lk.l1_penalty(np.ones(3), where=np.ones(4, dtype=bool)), ValueError, r"where\[0\] of shape"),
        (
            lambda: lk.grad(lk.l2_penalty, argnums=2)(np.ones(3), np.ones(2)),
            ValueError,
            "argnums 2 is out of range",
        ),
        (lambda: lk.grad(lk.l2_penalty, argnums=-1), ValueError, "argnums must index"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_catalog_entries():
    for name in ("l1_penalty", "l2_penalty"):
        info = lk.lookup(name)
        assert info.family == "penalty" and info.input_space == "parameters"
