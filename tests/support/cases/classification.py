"""Cases for the classification losses: binary cross-entropy on probabilities and on logits,
multiclass cross-entropy and NLL (PyTorch), generalized cross-entropy (Keras's formula) and the
Brier score."""

from __future__ import annotations

import numpy as np

import losskit as lk
from losskit.losses.classification import binary_brier

from . import Case


def _F():
    import torch.nn.functional as F

    return F


def _reduce(value, reduction):
    if reduction == "mean":
        return value.mean()
    if reduction == "sum":
        return value.sum()
    return value


# -- binary and multiclass cross-entropy, NLL: PyTorch ------------------------------------


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


def class_axis_args(shape=(6, 5), axis=-1, weight=False, ignore=False, soft=False, **options):
    """Arguments of a loss over a class axis: logits of ``shape``, integer targets (some
    ``ignore_index`` with ``ignore``) or class probabilities (``soft``), optional class weights."""

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
    base = class_axis_args(**options)

    def make(rng):
        (x, t), k = base(rng)
        x = x - np.log(np.exp(x).sum(axis=k.get("axis", -1), keepdims=True))
        return (x, t), k

    return make


# -- probabilities in: generalized cross-entropy and Brier --------------------------------


def _prob_args(shape=(6, 5), axis=-1, soft=False, **options):
    base = class_axis_args(shape, axis, soft=soft, **options)

    def make(rng):
        (x, t), kwargs = base(rng)
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        c = shape[axis]
        # bounded away from 0, where p^(q-1) curves too fast for finite differences
        return (0.6 * e / e.sum(axis=axis, keepdims=True) + 0.4 / c, t), kwargs

    return make


def _torch_gce(a, k, r):
    import torch

    p, t = a
    p = torch.movedim(p, k.get("axis", -1), -1)
    pt = torch.gather(p, -1, t.unsqueeze(-1)).squeeze(-1)
    q = k.get("q", 0.5)
    return _reduce((1 - pt**q) / q, r)


def _gce_perfect(rng):
    t = rng.integers(0, 4, size=5)
    return (np.eye(4)[t], t), {}


def _torch_brier(a, k, r):
    import torch

    p, t = a
    axis = k.get("axis", -1)
    p = torch.movedim(p, axis, -1)
    if t.dtype.is_floating_point:
        y = torch.movedim(t, axis, -1)
    else:
        y = torch.nn.functional.one_hot(t, p.shape[-1]).to(p.dtype)
    return _reduce(((p - y) ** 2).sum(-1), r)


def _brier_perfect(rng):
    t = rng.integers(0, 4, size=5)
    return (np.eye(4)[t], t), {}


def _binary_brier_args(soft):
    def make(rng):
        p = rng.uniform(0.02, 0.98, size=(12,) if not soft else (4, 3))
        y = rng.uniform(0.05, 0.95, size=p.shape) if soft else rng.integers(0, 2, size=p.shape).astype(float)
        return (p, y), {}

    return make


def _sklearn_binary_brier(a, k, r):
    """scikit-learn's brier_score_loss for the mean (hard labels), its formula elementwise."""
    p, y = a
    per = (p - y) ** 2
    if r == "mean" and np.all((y == 0) | (y == 1)):
        from sklearn.metrics import brier_score_loss

        return np.asarray(brier_score_loss(y.ravel(), p.ravel()))
    return _reduce(per, r)


def _binary_brier_perfect(rng):
    y = rng.integers(0, 2, size=7).astype(float)
    return (y.copy(), y), {}


CASES = [
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
        make_args=class_axis_args(),
        reference=_torch_ce,
        perfect=None,
    ),
    Case(
        id="cross_entropy-1d", fn=lk.cross_entropy, make_args=class_axis_args(shape=(7,)), reference=_torch_ce
    ),
    Case(
        id="cross_entropy-weight-ignore",
        fn=lk.cross_entropy,
        make_args=class_axis_args(weight=True, ignore=True),
        reference=_torch_ce,
    ),
    Case(
        id="cross_entropy-weight-ignore-smoothing",
        fn=lk.cross_entropy,
        make_args=class_axis_args(weight=True, ignore=True, label_smoothing=0.15),
        reference=_torch_ce,
    ),
    Case(
        id="cross_entropy-axis1-spatial",
        fn=lk.cross_entropy,
        make_args=class_axis_args(shape=(3, 4, 2, 5), axis=1, weight=True, ignore=True, label_smoothing=0.1),
        reference=_torch_ce,
    ),
    Case(
        id="cross_entropy-batch-seq-vocab",
        fn=lk.cross_entropy,
        make_args=class_axis_args(shape=(2, 3, 7), label_smoothing=0.05),
        reference=_torch_ce,
    ),
    Case(
        id="cross_entropy-temperature",
        fn=lk.cross_entropy,
        make_args=class_axis_args(temperature=0.7, weight=True),
        reference=_torch_ce,
    ),
    Case(
        id="cross_entropy-soft",
        fn=lk.cross_entropy,
        make_args=class_axis_args(soft=True),
        reference=_torch_ce,
    ),
    Case(
        id="cross_entropy-soft-weight-smoothing-axis1",
        fn=lk.cross_entropy,
        make_args=class_axis_args(shape=(3, 4, 2), axis=1, soft=True, weight=True, label_smoothing=0.2),
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
        id="generalized_cross_entropy",
        fn=lk.generalized_cross_entropy,
        make_args=_prob_args(),
        reference=_torch_gce,
        perfect=_gce_perfect,
        zero_grad_at_perfect=False,  # -p_t^(q-1) = -1 at the target, unconstrained
    ),
    Case(
        id="generalized_cross_entropy-q0.7-axis1",
        fn=lk.generalized_cross_entropy,
        make_args=_prob_args(shape=(3, 4, 2), axis=1, q=0.7),
        reference=_torch_gce,
    ),
    Case(
        id="generalized_cross_entropy-q1",
        fn=lk.generalized_cross_entropy,
        make_args=_prob_args(q=1.0),
        reference=_torch_gce,
    ),
    Case(id="brier", fn=lk.brier, make_args=_prob_args(), reference=_torch_brier, perfect=_brier_perfect),
    Case(
        id="brier-soft-axis1",
        fn=lk.brier,
        make_args=_prob_args(shape=(3, 4, 2), axis=1, soft=True),
        reference=_torch_brier,
        grad_argnums=(0, 1),
    ),
    Case(
        id="binary_brier",
        fn=binary_brier,
        make_args=_binary_brier_args(soft=False),
        numpy_reference=_sklearn_binary_brier,
        perfect=_binary_brier_perfect,
    ),
    Case(
        id="binary_brier-soft",
        fn=binary_brier,
        make_args=_binary_brier_args(soft=True),
        numpy_reference=_sklearn_binary_brier,
        grad_argnums=(0, 1),
    ),
]
