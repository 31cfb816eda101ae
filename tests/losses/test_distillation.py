"""losskit.linear_distillation beyond the shared case table: the torch autograd Function
(gradcheck, per-token upstream factors), JAX (jit, grad), the beta limits of the generalised JSD,
all-masked input, float32 accuracy and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import losskit as lk
from tests.support.cases.distillation import _args, numpy_linear_distillation

DIVERGENCES = [("forward_kl", 0.5), ("reverse_kl", 0.5), ("jsd", 0.5), ("jsd", 0.2)]


def _data(rng, divergence="jsd", **kw):
    return _args(divergence, **kw)(rng)


@pytest.mark.parametrize("divergence, beta", DIVERGENCES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_torch_gradcheck_float64(rng, divergence, beta, reduction):
    args, kw = _data(rng, divergence, beta=beta, temperature=1.3, masked=True, lead=(2, 3))
    kw["where"] = torch.tensor(kw["where"])
    sh, sw, th, tw, sb, tb = (torch.tensor(a) for a in args)
    student = [a.clone().requires_grad_(True) for a in (sh, sw, sb)]

    def f(x, w, b):
        return lk.linear_distillation(x, w, th, tw, b, tb, reduction=reduction, **kw)

    assert torch.autograd.gradcheck(f, tuple(student))


@pytest.mark.parametrize("divergence, beta", DIVERGENCES)
def test_torch_matches_numpy_value_and_grad(rng, divergence, beta):
    args, kw = _data(rng, divergence, beta=beta, temperature=0.8, masked=True, lead=(3, 4))
    value, grads = lk.value_and_grad(lk.linear_distillation, argnums=(0, 1, 4))(*args, **kw)
    np.testing.assert_allclose(value, numpy_linear_distillation(args, kw, "mean"), rtol=1e-12)
    tensors = [torch.tensor(a, requires_grad=i in (0, 1, 4)) for i, a in enumerate(args)]
    out = lk.linear_distillation(*tensors, **dict(kw, where=torch.tensor(kw["where"])))
    (out * 2.5).backward()
    np.testing.assert_allclose(out.item(), value, rtol=1e-12)
    for i, g in zip((0, 1, 4), grads):
        np.testing.assert_allclose(tensors[i].grad.numpy(), 2.5 * g, rtol=1e-10, atol=1e-13)
    assert tensors[2].grad is None and tensors[3].grad is None  # the teacher is a constant


@pytest.mark.parametrize("divergence, beta", DIVERGENCES)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_jax_jit_and_grad(rng, divergence, beta, reduction):
    import jax
    import jax.numpy as jnp

    args, kw = _data(rng, divergence, beta=beta, masked=True, lead=(2, 5), chunk_size=4)
    up = rng.standard_normal((2, 5)) if reduction == "none" else 1.0
    ref_value = numpy_linear_distillation(args, kw, reduction)
    jargs = [jnp.asarray(a) for a in args]
    jkw = dict(kw, where=jnp.asarray(kw["where"]))

    def f(x, w, b):
        out = lk.linear_distillation(x, w, jargs[2], jargs[3], b, jargs[5], reduction=reduction, **jkw)
        return jnp.sum(out * up), out

    (total, out), grads = jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2), has_aux=True))(
        jargs[0], jargs[1], jargs[4]
    )
    np.testing.assert_allclose(np.asarray(out), ref_value, rtol=1e-12, atol=1e-14)
    # the torch autograd Function (checked against gradcheck above) gives the reference gradients
    tensors = [torch.tensor(a, requires_grad=i in (0, 1, 4)) for i, a in enumerate(args)]
    tout = lk.linear_distillation(*tensors, reduction=reduction, **dict(kw, where=torch.tensor(kw["where"])))
    (tout * torch.as_tensor(up)).sum().backward()
    for i, g in zip((0, 1, 4), grads):
        np.testing.assert_allclose(np.asarray(g), tensors[i].grad.numpy(), rtol=1e-10, atol=1e-13)


def test_jsd_beta_limits_are_the_kls(rng):
    args, kw = _data(rng)
    for beta, other in ((0.0, "forward_kl"), (1.0, "reverse_kl")):
        a = lk.linear_distillation(*args, **dict(kw, divergence="jsd", beta=beta))
        b = lk.linear_distillation(*args, **dict(kw, divergence=other))
        assert float(a) == float(b)
    # and the mixture formula approaches them, scaled: JSD_beta / beta -> KL(P||Q) as beta -> 0
    small = float(lk.linear_distillation(*args, **dict(kw, divergence="jsd", beta=1e-6)))
    fkl = float(lk.linear_distillation(*args, **dict(kw, divergence="forward_kl")))
    assert small / 1e-6 == pytest.approx(fkl, rel=1e-4)


def test_identical_heads_give_zero(rng):
    args, kw = _data(rng)
    sh, sw, _, _, sb, _ = args
    for div in ("forward_kl", "reverse_kl", "jsd"):
        value, grads = lk.value_and_grad(lk.linear_distillation, argnums=(0, 1, 4))(
            sh, sw, sh, sw, sb, sb, **dict(kw, divergence=div)
        )
        assert abs(float(value)) < 1e-15
        assert all(np.abs(g).max() < 1e-15 for g in grads)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_everything_masked_gives_zero_with_zero_gradients(rng, reduction):
    args, kw = _data(rng, masked=True, lead=(2, 3))
    kw["where"] = np.zeros((2, 3), bool)
    value, grads = lk.value_and_grad(lk.linear_distillation, argnums=(0, 1, 4))(
        *args, reduction=reduction, **kw
    )
    assert np.all(np.asarray(value) == 0) and all(np.all(g == 0) for g in grads)
    tensors = [torch.tensor(a, requires_grad=i in (0, 1, 4)) for i, a in enumerate(args)]
    out = lk.linear_distillation(*tensors, reduction=reduction, **dict(kw, where=torch.tensor(kw["where"])))
    out.sum().backward()
    assert torch.all(out == 0) and all(torch.all(tensors[i].grad == 0) for i in (0, 1, 4))


def test_float32_within_1e5_of_float64(rng):
    v, ds, dt, n = 400, 32, 24, 150
    sh, th = rng.standard_normal((n, ds)), rng.standard_normal((n, dt))
    sw, tw = rng.standard_normal((v, ds)) * 0.3, rng.standard_normal((v, dt)) * 0.3
    for div in ("forward_kl", "reverse_kl", "jsd"):
        kw = dict(divergence=div, temperature=0.9, chunk_size=64)
        vg = lk.value_and_grad(lk.linear_distillation, argnums=(0, 1))
        v64, g64 = vg(sh, sw, th, tw, **kw)
        v32, g32 = vg(*(a.astype(np.float32) for a in (sh, sw, th, tw)), **kw)
        assert np.asarray(v32).dtype == np.float32
        np.testing.assert_allclose(v32, v64, rtol=1e-5)
        for a, r in zip(g32, g64):
            assert a.dtype == np.float32
            np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-5 * np.abs(r).max())


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a, k: ((a[0], a[1][:, :-1], *a[2:]), k), "student_weight must have shape"),
        (lambda a, k: ((*a[:3], a[3][:-1], *a[4:]), k), "teacher_weight must have as many rows"),
        (lambda a, k: ((a[0], a[1], a[2][:-1], *a[3:]), k), "teacher_hidden must have student_hidden's"),
        (lambda a, k: ((*a[:4], a[4][:-1], a[5]), k), "student_bias must have shape"),
        (lambda a, k: ((*a[:5], a[5][:-1]), k), "teacher_bias must have shape"),
        (lambda a, k: (a, dict(k, divergence="kl")), "divergence must be one of"),
        (lambda a, k: (a, dict(k, beta=1.5)), "beta"),
        (lambda a, k: (a, dict(k, temperature=0.0)), "temperature"),
        (lambda a, k: (a, dict(k, reduction="batchmean")), "reduction"),
        (lambda a, k: (a, dict(k, where=np.ones(3, bool))), "where must have"),
        (lambda a, k: (a, dict(k, where=np.ones(7))), "where must be a boolean"),
        (lambda a, k: (a, dict(k, chunk_size=0)), "chunk_size"),
    ],
)
def test_bad_input_is_refused_naming_the_argument(rng, change, message):
    args, kw = _data(rng)
    args, kw = change(args, kw)
    with pytest.raises((ValueError, TypeError), match=message):
        lk.linear_distillation(*args, **kw)


def test_no_gradient_for_the_teacher(rng):
    args, kw = _data(rng)
    with pytest.raises(ValueError, match="teacher"):
        lk.value_and_grad(lk.linear_distillation, argnums=2)(*args, **kw)


@pytest.mark.parametrize("divergence", ["forward_kl", "reverse_kl", "jsd"])
def test_torch_float32_within_1e5_of_float64(rng, divergence):
    v, ds, dt, n = 400, 32, 24, 150
    args = [rng.standard_normal((n, ds)), rng.standard_normal((v, ds)) * 0.3]
    args += [rng.standard_normal((n, dt)), rng.standard_normal((v, dt)) * 0.3]
    kw = dict(divergence=divergence, temperature=0.9, chunk_size=64)
    v64, g64 = lk.value_and_grad(lk.linear_distillation, argnums=(0, 1))(*args, **kw)
    tensors = [torch.tensor(a, dtype=torch.float32, requires_grad=i < 2) for i, a in enumerate(args)]
    out = lk.linear_distillation(*tensors, **kw)
    out.backward()
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.item(), v64, rtol=1e-5)
    for a, r in zip(tensors[:2], g64):
        np.testing.assert_allclose(a.grad.numpy(), r, rtol=1e-5, atol=1e-5 * np.abs(r).max())
