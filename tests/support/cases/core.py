"""Cases for the core losses: regression, binary and multiclass cross-entropy, NLL, KL."""

from __future__ import annotations

import numpy as np

import losskit as lk

from . import Case


def _F():
    import torch.nn.functional as F

    return F


def _pair(shape=(4, 5)):
    def make(rng):
        return (rng.normal(size=shape), rng.normal(size=shape)), {}

    return make


def _perfect_pair(shape=(4, 5)):
    def make(rng):
        y = rng.normal(size=shape)
        return (y.copy(), y), {}

    return make


def _regression(name, fn, torch_name, **options):
    return Case(
        id=name,
        fn=fn,
        make_args=lambda rng: ((rng.normal(size=(4, 5)) * 2, rng.normal(size=(4, 5))), dict(options)),
        reference=lambda a, k, r: getattr(_F(), torch_name)(*a, reduction=r, **k),
        grad_argnums=(0, 1),
        perfect=lambda rng: (lambda y: ((y.copy(), y), dict(options)))(rng.normal(size=(3, 4))),
    )


def _probs(rng, shape):
    return rng.uniform(0.02, 0.98, size=shape)


def _bce_args(weighted):
    def make(rng):
        args = (_probs(rng, (6, 3)), rng.uniform(0, 1, size=(6, 3)))
        return (args + (rng.uniform(0.5, 2, size=(3,)),) if weighted else args), {}

    return make


def _bce_logits_args(weighted, pos_weight):
    def make(rng):
        x = rng.normal(size=(6, 3)) * 3
        y = rng.uniform(0.05, 0.95, size=(6, 3))  # soft labels, so the target gradient has room
        kwargs = {}
        if weighted:
            kwargs["weight"] = rng.uniform(0.5, 2, size=(6, 3))
        if pos_weight:
            kwargs["pos_weight"] = rng.uniform(0.5, 3, size=(3,))
        return (x, y), kwargs

    return make


def _ce_args(shape=(6, 5), axis=-1, weight=False, ignore=False, soft=False, **options):
    def make(rng):
        x = rng.normal(size=shape) * 2
        c = shape[axis]
        sample_shape = tuple(d for i, d in enumerate(shape) if i != axis % len(shape))
        if soft:
            t = rng.uniform(size=shape)
            t = t / t.sum(axis=axis, keepdims=True)
        else:
            t = rng.integers(0, c, size=sample_shape)
            if ignore:
                t.reshape(-1)[::3] = -100
        kwargs = dict(options)
        if axis != -1:
            kwargs["axis"] = axis
        if weight:
            kwargs["weight"] = rng.uniform(0.2, 2.0, size=(c,))
        return (x, t), kwargs

    return make


def _torch_ce(a, k, r):
    import torch

    k = dict(k)
    axis = k.pop("axis", -1)
    temperature = k.pop("temperature", 1.0)
    x, t = a
    x = torch.movedim(x, axis, 1) if x.ndim > 1 else x
    if t.dtype.is_floating_point and x.ndim > 1:
        t = torch.movedim(t, axis, 1)
    return _F().cross_entropy(x / temperature, t, reduction=r, **k)


def _torch_nll(a, k, r):
    import torch

    k = dict(k)
    axis = k.pop("axis", -1)
    x, t = a
    return _F().nll_loss(torch.movedim(x, axis, 1), t, reduction=r, **k)


def _nll_args(**options):
    base = _ce_args(**options)

    def make(rng):
        (x, t), k = base(rng)
        x = x - np.log(np.exp(x).sum(axis=k.get("axis", -1), keepdims=True))
        return (x, t), k

    return make


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


CASES = [
    _regression("mse", lk.mse, "mse_loss"),
    _regression("mae", lk.mae, "l1_loss"),
    _regression("huber", lk.huber, "huber_loss"),
    _regression("huber-delta", lk.huber, "huber_loss", delta=0.4),
    _regression("smooth_l1", lk.smooth_l1, "smooth_l1_loss"),
    _regression("smooth_l1-beta", lk.smooth_l1, "smooth_l1_loss", beta=0.3),
    _regression("smooth_l1-beta0", lk.smooth_l1, "smooth_l1_loss", beta=0.0),
    Case(
        id="binary_cross_entropy",
        fn=lk.binary_cross_entropy,
        make_args=_bce_args(False),
        reference=lambda a, k, r: _F().binary_cross_entropy(*a, reduction=r, **k),
        grad_argnums=(0, 1),
        fd_eps=1e-7,
    ),
    Case(
        id="binary_cross_entropy-weight",
        fn=lk.binary_cross_entropy,
        make_args=_bce_args(True),
        reference=lambda a, k, r: _F().binary_cross_entropy(*a, reduction=r, **k),
        grad_argnums=(0, 1),
        fd_eps=1e-7,
    ),
    Case(
        id="bce_with_logits",
        fn=lk.binary_cross_entropy_with_logits,
        make_args=_bce_logits_args(False, False),
        reference=lambda a, k, r: _F().binary_cross_entropy_with_logits(*a, reduction=r, **k),
        grad_argnums=(0, 1),
    ),
    Case(
        id="bce_with_logits-weight-pos_weight",
        fn=lk.binary_cross_entropy_with_logits,
        make_args=_bce_logits_args(True, True),
        reference=lambda a, k, r: _F().binary_cross_entropy_with_logits(*a, reduction=r, **k),
        grad_argnums=(0, 1),
    ),
    Case(
        id="cross_entropy",
        fn=lk.cross_entropy,
        make_args=_ce_args(),
        reference=_torch_ce,
        perfect=None,
    ),
    Case(id="cross_entropy-1d", fn=lk.cross_entropy, make_args=_ce_args(shape=(7,)), reference=_torch_ce),
    Case(
        id="cross_entropy-weight-ignore",
        fn=lk.cross_entropy,
        make_args=_ce_args(weight=True, ignore=True),
        reference=_torch_ce,
    ),
    Case(
        id="cross_entropy-weight-ignore-smoothing",
        fn=lk.cross_entropy,
        make_args=_ce_args(weight=True, ignore=True, label_smoothing=0.15),
        reference=_torch_ce,
    ),
    Case(
        id="cross_entropy-axis1-spatial",
        fn=lk.cross_entropy,
        make_args=_ce_args(shape=(3, 4, 2, 5), axis=1, weight=True, ignore=True, label_smoothing=0.1),
        reference=_torch_ce,
    ),
    Case(
        id="cross_entropy-batch-seq-vocab",
        fn=lk.cross_entropy,
        make_args=_ce_args(shape=(2, 3, 7), label_smoothing=0.05),
        reference=_torch_ce,
    ),
    Case(
        id="cross_entropy-temperature",
        fn=lk.cross_entropy,
        make_args=_ce_args(temperature=0.7, weight=True),
        reference=_torch_ce,
    ),
    Case(id="cross_entropy-soft", fn=lk.cross_entropy, make_args=_ce_args(soft=True), reference=_torch_ce),
    Case(
        id="cross_entropy-soft-weight-smoothing-axis1",
        fn=lk.cross_entropy,
        make_args=_ce_args(shape=(3, 4, 2), axis=1, soft=True, weight=True, label_smoothing=0.2),
        reference=_torch_ce,
    ),
    Case(id="nll", fn=lk.nll, make_args=_nll_args(), reference=_torch_nll),
    Case(
        id="nll-weight-ignore-axis1",
        fn=lk.nll,
        make_args=_nll_args(shape=(3, 4, 2), axis=1, weight=True, ignore=True),
        reference=_torch_nll,
    ),
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
]
