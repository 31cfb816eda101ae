"""Numerics shared by the losses, each written once: the stable sigmoid family, the shifted
log-sum-exp and softmax, masked log-sum-exp, one-hot rows and class gathering.

Every function takes the array namespace ``xp`` first and arrays already in the compute dtype;
none validates its input (the public functions do that before calling here).

Infinite logits get softmax's limits (:func:`shift`): a row holding ``+inf`` puts all its
probability on its ``+inf`` entries, ``-inf`` entries get probability 0, and a NaN anywhere in
a row makes the whole row NaN.  ``0 * log 0`` is 0 (:func:`xlogy`).
"""

from __future__ import annotations

import math

from .backend import Array, Namespace, ignore_float_errors, index_dtype, stop_gradient

__all__ = [
    "sigmoid",
    "softplus",
    "log_sigmoid",
    "shift",
    "xlogy",
    "logsumexp",
    "log_softmax",
    "softmax",
    "masked_logsumexp",
    "masked_log_softmax",
    "one_hot",
    "gather_classes",
    "class_weights",
]


def sigmoid(xp: Namespace, x: Array) -> Array:
    r""":math:`1 / (1 + e^{-x})` from :math:`e^{-|x|}`, which never overflows."""
    e = xp.exp(-xp.abs(x))
    one = xp.ones_like(e)
    return xp.where(x >= 0, one / (one + e), e / (one + e))


def softplus(xp: Namespace, x: Array) -> Array:
    r""":math:`\log(1 + e^x) = \max(x, 0) + \log(1 + e^{-|x|})`: exact for large positive
    ``x`` (returns ``x``) and tiny negative ``x`` (returns :math:`e^x`)."""
    return xp.maximum(x, xp.zeros_like(x)) + xp.log1p(xp.exp(-xp.abs(x)))


def log_sigmoid(xp: Namespace, x: Array) -> Array:
    r""":math:`\log\sigma(x) = -\mathrm{softplus}(-x)`."""
    return -softplus(xp, -x)


def shift(xp: Namespace, z: Array, axis: int, detach: bool = True) -> tuple[Array, Array]:
    """``(z - m, m)`` with ``m`` the maximum along ``axis`` (keepdims): the logits of a
    log-sum-exp or softmax shifted so that none exceeds 0, with softmax's limits where ``m`` is
    not finite.

    - A row holding ``+inf``: ``m = +inf``, and the shifted row is 0 at its ``+inf`` entries and
      ``-inf`` elsewhere -- the limit as those logits grow, where they share all the
      probability equally, so ``log softmax`` is ``-log k`` there and ``-inf`` elsewhere.
    - A row of ``-inf`` only: ``m = 0`` and the row as it is (its exponentials sum to 0).
    - A row holding NaN: ``m`` is NaN and so is the whole shifted row.

    ``m + log(sum(exp(z - m)))`` is then the log-sum-exp in every case (``+inf``, ``-inf``,
    NaN).  With ``detach`` the shift carries no gradient: it cancels out of every result.
    """
    m = xp.max(z, axis=axis, keepdims=True)
    if detach:
        # as a pure shift the max cancels out of every result (d lse / d m = 1 - sum softmax =
        # 0), so autograd need not trace it: detaching it is exact, and spares torch the N x C
        # mask that max's backward builds
        m = stop_gradient(m)
    m = xp.where(m == -math.inf, xp.zeros_like(m), m)
    with ignore_float_errors(z, invalid="ignore"):  # inf - inf at a +inf logit, replaced just below
        shifted = z - m
    return xp.where(z == math.inf, xp.zeros_like(shifted), shifted), m


def xlogy(xp: Namespace, x: Array, log_y: Array) -> Array:
    """``x * log_y`` with ``0 * log 0 = 0``: 0 wherever ``x`` is 0, whatever ``log_y`` holds
    (``-inf`` at an impossible class, e.g. a masked logit)."""
    return x * xp.where(x == 0, xp.zeros_like(log_y), log_y)


def logsumexp(xp: Namespace, z: Array, axis: int, keepdims: bool = False) -> Array:
    r""":math:`m + \log\sum_j e^{z_j - m}` along ``axis``, :math:`m` the row maximum."""
    zs, m = shift(xp, z, axis)
    out = m + xp.log(xp.sum(xp.exp(zs), axis=axis, keepdims=True))
    return out if keepdims else xp.squeeze(out, axis=axis)


def log_softmax(xp: Namespace, z: Array, axis: int) -> Array:
    zs, _ = shift(xp, z, axis)
    return zs - xp.log(xp.sum(xp.exp(zs), axis=axis, keepdims=True))


def softmax(xp: Namespace, z: Array, axis: int) -> Array:
    e = xp.exp(shift(xp, z, axis)[0])
    return e / xp.sum(e, axis=axis, keepdims=True)


def _masked_shift(xp: Namespace, z: Array, mask: Array, axis: int) -> tuple[Array, Array, Array, Array]:
    """The masked row maximum ``m`` (keepdims, with :func:`shift`'s limits), the shifted logits
    (0 off the mask), their exponentials (0 off the mask) and their sum."""
    m = xp.max(xp.where(mask, z, xp.full_like(z, -math.inf)), axis=axis, keepdims=True)
    m = xp.where(m == -math.inf, xp.zeros_like(m), m)
    zero = xp.zeros_like(z)
    with ignore_float_errors(z, invalid="ignore"):  # inf - inf at a +inf logit, replaced just below
        zs = z - m
    zs = xp.where(mask, xp.where(z == math.inf, zero, zs), zero)
    e = xp.where(mask, xp.exp(zs), zero)
    return m, zs, e, xp.sum(e, axis=axis, keepdims=True)


def masked_logsumexp(xp: Namespace, z: Array, mask: Array, axis: int = -1) -> tuple[Array, Array, Array]:
    """``log sum exp z`` over the entries where ``mask`` holds (keepdims), the matching softmax
    weights (0 off the mask) and whether any entry counts.  Masked-out entries never reach
    ``exp``, so autograd through this stays finite whatever they hold."""
    m, _, e, total = _masked_shift(xp, z, mask, axis)
    has = xp.any(mask, axis=axis, keepdims=True)
    safe = xp.where(has, total, xp.ones_like(total))
    return m + xp.log(safe), e / safe, has


def masked_log_softmax(xp: Namespace, z: Array, mask: Array, axis: int = -1) -> tuple[Array, Array, Array]:
    """``log softmax z`` over the entries where ``mask`` holds (0 off the mask), the softmax
    weights (0 off the mask) and whether any entry counts; :func:`shift`'s limits at infinite
    logits, so a ``+inf`` logit gives ``log p = 0`` (not ``inf - inf``)."""
    _, zs, e, total = _masked_shift(xp, z, mask, axis)
    has = xp.any(mask, axis=axis, keepdims=True)
    safe = xp.where(has, total, xp.ones_like(total))
    log_p = xp.where(mask, zs - xp.log(safe), xp.zeros_like(zs))
    return log_p, e / safe, has


def one_hot(xp: Namespace, index: Array, num_classes: int, dtype: object) -> Array:
    """Rows ``e_index`` of length ``num_classes`` along a new last axis, in ``dtype``."""
    classes = xp.arange(num_classes, dtype=index.dtype)
    return xp.astype(xp.expand_dims(index, axis=-1) == classes, dtype)


def gather_classes(xp: Namespace, values: Array, index: Array, num_classes: int) -> Array:
    """``values[..., index]`` along the last axis, for ``index`` of shape ``values.shape[:-1]``."""
    take_along_axis = getattr(xp, "take_along_axis", None)
    if take_along_axis is not None:
        try:
            idx = xp.expand_dims(xp.astype(index, index_dtype(xp)), axis=-1)
            return xp.squeeze(take_along_axis(values, idx, axis=-1), axis=-1)
        except (TypeError, NotImplementedError, AttributeError):
            pass
    return xp.sum(values * one_hot(xp, index, num_classes, values.dtype), axis=-1)


def class_weights(xp: Namespace, weight: Array, index: Array, counted: Array, sample_shape: tuple) -> Array:
    """``weight[index]`` per sample, 0 where the sample does not count."""
    w_t = xp.reshape(xp.take(weight, xp.reshape(index, (-1,))), sample_shape)
    return xp.where(counted, w_t, xp.zeros_like(w_t))
