"""Cases for the divergences: KL (PyTorch), Jensen-Shannon (the formula in NumPy), generalised KL
(Optax) and the distillation KL (the usual PyTorch recipe)."""

from __future__ import annotations

import numpy as np

import losskit as lk

from . import Case


def _F():
    import torch.nn.functional as F

    return F


# -- KL -----------------------------------------------------------------------------------


def _kl_args(log_target):
    def make(rng):
        p = rng.uniform(0.05, 1, size=(4, 6))
        q = rng.uniform(0.05, 1, size=(4, 6))
        if not log_target:
            q[0, 0] = 0.0  # 0 log 0 = 0
        p, q = p / p.sum(1, keepdims=True), q / q.sum(1, keepdims=True)
        return (np.log(p), np.log(q) if log_target else q), {"log_target": log_target}

    return make


def _kl_perfect(rng):
    q = rng.uniform(0.05, 1, size=(3, 4))
    q = q / q.sum(1, keepdims=True)
    return (np.log(q), q), {}


# -- Jensen-Shannon, generalised KL, distillation -----------------------------------------


def _distributions(rng, shape, zeros=False):
    p = rng.uniform(0.05, 1, size=shape)
    q = rng.uniform(0.05, 1, size=shape)
    if zeros:
        p[0, 0] = 0.0  # JS stays finite where one side is 0
        q[1, 2] = 0.0
    return p / p.sum(-1, keepdims=True), q / q.sum(-1, keepdims=True)


def _js_args(shape=(4, 5), log_target=False, zeros=False, masked=False):
    def make(rng):
        p, q = _distributions(rng, shape, zeros)
        with np.errstate(divide="ignore"):
            args = (np.log(p), np.log(q) if log_target else q)
        kwargs = {"log_target": log_target} if log_target else {}
        if masked:
            kwargs["where"] = rng.uniform(size=shape) < 0.7
        return args, kwargs

    return make


def _js_perfect(rng):
    q = rng.uniform(0.05, 1, size=(3, 4))
    q = q / q.sum(1, keepdims=True)
    return (np.log(q), q), {}


def numpy_js(a, k, r):
    """Jensen-Shannon from its definition, pointwise, in NumPy."""
    log_p, t = a
    p = np.exp(log_p)
    q = np.exp(t) if k.get("log_target", False) else t
    m = (p + q) / 2

    def half_kl(x):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(x > 0, x * np.log(x / m), 0.0) / 2

    per = half_kl(p) + half_kl(q)
    if k.get("where") is not None:
        per = np.where(k["where"], per, 0.0)
        if r == "mean":
            return per.sum() / k["where"].sum()
    if r == "batchmean":
        return per.sum() / per.shape[0]
    return per.mean() if r == "mean" else per.sum() if r == "sum" else per


def _gkl_args(shape=(4, 5), axis=-1, masked=False, unnormalised=True):
    def make(rng):
        log_p = rng.normal(size=shape) * 0.7
        q = rng.uniform(0.05, 2.0, size=shape)
        if not unnormalised:
            q = q / q.sum(axis=axis, keepdims=True)
        kwargs = {} if axis == -1 else {"axis": axis}
        if masked:
            where = rng.uniform(size=shape) < 0.7
            where[0] = False  # a sample with nothing left does not count
            kwargs["where"] = where
        return (log_p, q), kwargs

    return make


def _gkl_perfect(rng):
    q = rng.uniform(0.05, 2.0, size=(3, 4))
    return (np.log(q), q), {}


def _optax_generalized_kl(a, k, r):
    import jax.numpy as jnp
    import optax

    per = optax.losses.generalized_kl_divergence(*a, **k)
    where = k.get("where")
    if where is not None:
        counted = jnp.any(where, axis=k.get("axis", -1))
        per = jnp.where(counted, per, 0.0)
        if r == "mean":
            return per.sum() / counted.sum()
    return per.mean() if r == "mean" else per.sum() if r == "sum" else per


def _distill_args(shape=(5, 6), temperature=2.0, axis=-1, scale=2.0, masked=False):
    def make(rng):
        kwargs = {"temperature": temperature}
        if axis != -1:
            kwargs["axis"] = axis
        if masked:
            sample = tuple(d for i, d in enumerate(shape) if i != axis % len(shape))
            kwargs["where"] = rng.uniform(size=sample) < 0.7
        return (rng.normal(size=shape) * scale, rng.normal(size=shape) * scale), kwargs

    return make


def _distill_perfect(rng):
    t = rng.normal(size=(4, 5)) * 3
    return (t.copy(), t), {"temperature": 3.0}


def torch_distillation(a, k, r):
    """Hinton et al.'s recipe with PyTorch: KL of the softened distributions times T^2."""
    import torch
    import torch.nn.functional as F

    s, t = a
    T = k["temperature"]
    axis = k.get("axis", -1)
    per = F.kl_div(
        F.log_softmax(s / T, dim=axis), F.log_softmax(t / T, dim=axis), log_target=True, reduction="none"
    ).sum(dim=axis) * (T * T)
    where = k.get("where")
    if where is not None:
        per = torch.where(where, per, torch.zeros_like(per))
        if r == "mean":
            return per.sum() / where.sum()
    return per.mean() if r == "mean" else per.sum() if r == "sum" else per


JS_REDUCTIONS = ("batchmean", "mean", "sum", "none")

CASES = [
    Case(
        id="kl_div",
        fn=lk.kl_div,
        make_args=_kl_args(False),
        reference=lambda a, k, r: _F().kl_div(*a, reduction=r, **k),
        reductions=("batchmean", "mean", "sum", "none"),
        perfect=_kl_perfect,
        zero_grad_at_perfect=False,
    ),
    Case(
        id="kl_div-log_target",
        fn=lk.kl_div,
        make_args=_kl_args(True),
        reference=lambda a, k, r: _F().kl_div(*a, reduction=r, **k),
        reductions=("batchmean", "mean", "sum", "none"),
    ),
    Case(
        id="js_div",
        fn=lk.js_div,
        make_args=_js_args(),
        numpy_reference=numpy_js,
        reductions=JS_REDUCTIONS,
        grad_argnums=(0, 1),
        perfect=_js_perfect,
    ),
    Case(
        id="js_div-log_target",
        fn=lk.js_div,
        make_args=_js_args(log_target=True),
        numpy_reference=numpy_js,
        reductions=JS_REDUCTIONS,
        grad_argnums=(0, 1),
    ),
    Case(
        id="js_div-zeros-where",
        fn=lk.js_div,
        make_args=_js_args(shape=(3, 4), zeros=True, masked=True),
        numpy_reference=numpy_js,
        reductions=JS_REDUCTIONS,
    ),
    Case(
        id="generalized_kl",
        fn=lk.generalized_kl,
        make_args=_gkl_args(),
        optax_reference=_optax_generalized_kl,
        grad_argnums=(0, 1),
        perfect=_gkl_perfect,
    ),
    Case(
        id="generalized_kl-axis0-where",
        fn=lk.generalized_kl,
        make_args=_gkl_args(shape=(4, 3, 2), axis=0, masked=True),
        optax_reference=_optax_generalized_kl,
        grad_argnums=(0, 1),
    ),
    Case(
        id="generalized_kl-normalised",
        fn=lk.generalized_kl,
        make_args=_gkl_args(shape=(3, 6), unnormalised=False),
        optax_reference=_optax_generalized_kl,
    ),
    Case(
        id="distillation_kl",
        fn=lk.distillation_kl,
        make_args=_distill_args(),
        reference=torch_distillation,
        grad_argnums=(0, 1),
        perfect=_distill_perfect,
    ),
    Case(
        id="distillation_kl-T1",
        fn=lk.distillation_kl,
        make_args=_distill_args(temperature=1.0),
        reference=torch_distillation,
        grad_argnums=(0, 1),
    ),
    Case(
        id="distillation_kl-T5-axis1-where",
        fn=lk.distillation_kl,
        make_args=_distill_args(shape=(3, 4, 2), temperature=5.0, axis=1, scale=6.0, masked=True),
        reference=torch_distillation,
        grad_argnums=(0, 1),
    ),
]
