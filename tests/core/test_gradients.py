"""Analytic gradients against central finite differences and against autograd through the
losskit implementation itself (torch and JAX)."""

from __future__ import annotations

import numpy as np
import pytest

import losskit as lk
from tests.support.backends import BY_NAME
from tests.support.cases import ALL_CASES
from tests.support.numerics import finite_difference


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_gradient_equals_finite_difference(case, reduction, rng):
    if reduction not in case.reductions:
        reduction = case.reductions[0]
    args, kwargs = case.make_args(rng)
    _, grads = lk.value_and_grad(case.fn, argnums=case.grad_argnums)(*args, reduction=reduction, **kwargs)
    for n, g in zip(case.grad_argnums, grads):
        fd = finite_difference(case.fn, args, dict(kwargs, reduction=reduction), n, case.fd_eps)
        np.testing.assert_allclose(g, fd, rtol=case.fd_rtol, atol=case.fd_rtol * 1e-2, err_msg=f"argnum {n}")


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
def test_inputs_are_not_modified_and_gradients_own_their_memory(case, rng):
    # inputs already in the compute dtype are used without a copy: nothing may write to them,
    # and no gradient may be a view of one (the caller would then edit the other)
    args, kwargs = case.make_args(rng)
    before = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]
    _, grads = lk.value_and_grad(case.fn, argnums=case.grad_argnums)(
        *args, reduction=case.reductions[0], **kwargs
    )
    for a, b in zip(args, before):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
    for g in grads:
        for a in list(args) + [v for v in kwargs.values() if isinstance(v, np.ndarray)]:
            if isinstance(a, np.ndarray):
                assert not np.shares_memory(np.asarray(g), a)


@pytest.mark.parametrize("case", [c for c in ALL_CASES if "torch" in c.backends], ids=lambda c: c.id)
def test_torch_autograd_flows_through_losskit(case, rng):
    import torch

    args, kwargs = case.make_args(rng)
    t_args, t_kwargs = BY_NAME["torch"].args(args, kwargs)
    n = case.grad_argnums[0]
    t_args = list(t_args)
    t_args[n] = t_args[n].clone().requires_grad_(True)
    value = case.fn(
        *t_args, reduction="mean" if "mean" in case.reductions else case.reductions[0], **t_kwargs
    )
    assert isinstance(value, torch.Tensor) and value.requires_grad
    (autograd,) = torch.autograd.grad(value, t_args[n])
    _, analytic = lk.value_and_grad(case.fn, argnums=n)(
        *args, reduction="mean" if "mean" in case.reductions else case.reductions[0], **kwargs
    )
    np.testing.assert_allclose(autograd.numpy(), analytic, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("case", [c for c in ALL_CASES if "jax" in c.backends], ids=lambda c: c.id)
def test_jax_grad_and_jit_flow_through_losskit(case, rng):
    import jax

    args, kwargs = case.make_args(rng)
    j_args, j_kwargs = BY_NAME["jax"].args(args, kwargs)
    n = case.grad_argnums[0]
    reduction = "mean" if "mean" in case.reductions else case.reductions[0]

    def f(x):
        a = list(j_args)
        a[n] = x
        return case.fn(*a, reduction=reduction, **j_kwargs)

    value = jax.jit(f)(j_args[n])
    autograd = jax.jit(jax.grad(f))(j_args[n])
    expected_value, analytic = lk.value_and_grad(case.fn, argnums=n)(*args, reduction=reduction, **kwargs)
    np.testing.assert_allclose(np.asarray(value), expected_value, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(np.asarray(autograd), analytic, rtol=1e-7, atol=1e-10)

    # the analytic gradient itself also runs under jit
    jitted = jax.jit(lambda *a: lk.value_and_grad(case.fn, argnums=n)(*a, reduction=reduction, **j_kwargs))
    v2, g2 = jitted(*j_args)
    np.testing.assert_allclose(np.asarray(g2), analytic, rtol=1e-7, atol=1e-12)


def test_second_order_autograd_through_cross_entropy_matches_torch(rng):
    import torch

    x = torch.from_numpy(rng.normal(size=(4, 5))).requires_grad_(True)
    t = torch.from_numpy(rng.integers(0, 5, size=4))
    v = torch.from_numpy(rng.normal(size=(4, 5)))

    def hvp(loss_fn):
        (g,) = torch.autograd.grad(loss_fn(x, t), x, create_graph=True)
        (h,) = torch.autograd.grad((g * v).sum(), x)
        return h.numpy()

    ours = hvp(lambda a, b: lk.cross_entropy(a, b, label_smoothing=0.1))
    ref = hvp(lambda a, b: torch.nn.functional.cross_entropy(a, b, label_smoothing=0.1))
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)
