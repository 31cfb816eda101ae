"""Cases for the focal family: sigmoid focal (Optax), softmax focal (the paper's formula, written
with PyTorch ops so autograd checks the gradient) and Poly-1 (Optax for probability targets,
PyTorch's cross-entropy plus the poly term otherwise)."""

from __future__ import annotations

import numpy as np

import losskit as lk

from . import Case
from .classification import class_axis_args


def _torch():
    import torch

    return torch


def _reduce(value, reduction):
    if reduction == "mean":
        return value.mean()
    if reduction == "sum":
        return value.sum()
    return value


# -- sigmoid focal --------------------------------------------------------------------------


def _sigmoid_focal_args(soft=False, **options):
    def make(rng):
        x = rng.normal(size=(6, 4)) * 3
        y = rng.uniform(size=(6, 4)) if soft else (rng.uniform(size=(6, 4)) > 0.6).astype(np.float64)
        return (x, y), dict(options)

    return make


def _optax_sigmoid_focal(a, k, r):
    import optax

    x, y = a
    alpha = k.get("alpha", 0.25)  # losskit's default is torchvision's 0.25; Optax's is None
    return _reduce(optax.losses.sigmoid_focal_loss(x, y, alpha=alpha, gamma=k.get("gamma", 2.0)), r)


def _sigmoid_focal_perfect(rng):
    # the loss is 0 only in the limit; a label of 1 with logit 800 is 0 in float64
    y = (rng.uniform(size=(3, 4)) > 0.5).astype(np.float64)
    return (np.where(y == 1, 800.0, -800.0), y), {}


# -- softmax focal and poly-1 (integer targets): the formulas in PyTorch ops ----------------


def _target_terms(x, t, k):
    """log p_t, class weight w_t (0 for ignored) and the logits with classes last."""
    torch = _torch()
    axis = k.get("axis", -1)
    x = torch.movedim(x, axis, -1)
    ignore = k.get("ignore_index", -100)
    valid = t != ignore
    safe = torch.where(valid, t, torch.zeros_like(t))
    log_p = torch.log_softmax(x, dim=-1)
    log_pt = torch.gather(log_p, -1, safe.unsqueeze(-1)).squeeze(-1)
    weight = k.get("weight")
    w_t = torch.ones_like(log_pt) if weight is None else weight[safe]
    return log_pt, w_t * valid, x


def _weighted_reduce(value, w_t, k, reduction):
    if reduction == "none":
        return value
    if reduction == "sum":
        return value.sum()
    if k.get("normalizer") is not None:
        return value.sum() / k["normalizer"]
    return value.sum() / w_t.sum()


def _torch_softmax_focal(a, k, r):
    x, t = a
    log_pt, w_t, _ = _target_terms(x, t, k)
    value = -w_t * (1 - log_pt.exp()) ** k.get("gamma", 2.0) * log_pt
    return _weighted_reduce(value, w_t, k, r)


def _torch_poly1(a, k, r):
    torch = _torch()
    x, t = a
    eps = k.get("epsilon", 1.0)
    if t.dtype.is_floating_point:
        axis = k.get("axis", -1)
        xs, q = torch.movedim(x, axis, -1), torch.movedim(t, axis, -1)
        wq = q if k.get("weight") is None else q * k["weight"]
        log_p = torch.log_softmax(xs, dim=-1)
        value = -(wq * log_p).sum(-1) + eps * (wq * (1 - log_p.exp())).sum(-1)
        return _weighted_reduce(value, torch.ones_like(value), k, r)
    log_pt, w_t, _ = _target_terms(x, t, k)
    value = w_t * (-log_pt + eps * (1 - log_pt.exp()))
    return _weighted_reduce(value, w_t, k, r)


def _optax_poly1(a, k, r):
    import optax

    x, q = a
    return _reduce(optax.losses.poly_loss_cross_entropy(x, q, epsilon=k.get("epsilon", 1.0)), r)


CASES = [
    Case(
        id="sigmoid_focal",
        fn=lk.sigmoid_focal,
        make_args=_sigmoid_focal_args(),
        optax_reference=_optax_sigmoid_focal,
        perfect=_sigmoid_focal_perfect,
    ),
    Case(
        id="sigmoid_focal-no_alpha-gamma0.5",
        fn=lk.sigmoid_focal,
        make_args=_sigmoid_focal_args(alpha=None, gamma=0.5),
        optax_reference=_optax_sigmoid_focal,
    ),
    Case(
        id="sigmoid_focal-soft-alpha0.6-gamma3",
        fn=lk.sigmoid_focal,
        make_args=_sigmoid_focal_args(soft=True, alpha=0.6, gamma=3.0),
        optax_reference=_optax_sigmoid_focal,
    ),
    Case(
        id="sigmoid_focal-gamma0",
        fn=lk.sigmoid_focal,
        make_args=_sigmoid_focal_args(gamma=0.0),
        optax_reference=_optax_sigmoid_focal,
    ),
    Case(
        id="softmax_focal",
        fn=lk.softmax_focal,
        make_args=class_axis_args(),
        reference=_torch_softmax_focal,
    ),
    Case(
        id="softmax_focal-gamma0.5-weight-ignore",
        fn=lk.softmax_focal,
        make_args=class_axis_args(weight=True, ignore=True, gamma=0.5),
        reference=_torch_softmax_focal,
    ),
    Case(
        id="softmax_focal-axis1-spatial-normalizer",
        fn=lk.softmax_focal,
        make_args=class_axis_args(shape=(3, 4, 2), axis=1, ignore=True, gamma=3.0, normalizer=10.0),
        reference=_torch_softmax_focal,
    ),
    Case(
        id="poly1_cross_entropy",
        fn=lk.poly1_cross_entropy,
        make_args=class_axis_args(),
        reference=_torch_poly1,
    ),
    Case(
        id="poly1_cross_entropy-eps2-weight-ignore",
        fn=lk.poly1_cross_entropy,
        make_args=class_axis_args(weight=True, ignore=True, epsilon=2.0),
        reference=_torch_poly1,
    ),
    Case(
        id="poly1_cross_entropy-eps-1-axis1-normalizer",
        fn=lk.poly1_cross_entropy,
        make_args=class_axis_args(shape=(3, 4, 2), axis=1, epsilon=-1.0, normalizer=4.0),
        reference=_torch_poly1,
    ),
    Case(
        id="poly1_cross_entropy-soft",
        fn=lk.poly1_cross_entropy,
        make_args=class_axis_args(soft=True, epsilon=2.0),
        optax_reference=_optax_poly1,
    ),
    Case(
        id="poly1_cross_entropy-soft-weight-axis1",
        fn=lk.poly1_cross_entropy,
        make_args=class_axis_args(shape=(3, 4, 2), axis=1, soft=True, weight=True),
        reference=_torch_poly1,
    ),
]
