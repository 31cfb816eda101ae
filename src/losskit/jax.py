"""JAX at the edge: cross-entropy and chunked linear cross-entropy as ``jax.custom_vjp``
functions whose gradient is computed in the forward pass.

Importing this module imports JAX.  Both functions work under ``jax.jit``, ``jax.grad`` and
``jax.vmap`` of their callers, and give exactly :func:`losskit.cross_entropy`'s and
:func:`losskit.linear_cross_entropy`'s values.

- :func:`cross_entropy`: the forward computes the softmax once and saves only the gradient
  with respect to the logits (one N x V residual; the default autodiff of a log-softmax
  saves the log-probabilities and builds more N x V arrays in the backward).  The backward is
  one multiply by the incoming cotangent -- per token for ``reduction="none"``.
- :func:`linear_cross_entropy`: a ``lax.scan`` over chunks of tokens; for ``"mean"`` and
  ``"sum"`` the forward folds each chunk's logit gradient straight into the gradients of the
  input, weight and bias, so the N x V logits never exist; for ``"none"`` (per-token
  cotangents, only known in the backward) the backward makes a second sweep.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from ._backend import Array, namespace
from ._validation import check_number

__all__ = ["cross_entropy", "linear_cross_entropy"]


def _compute_dtype(dtype):
    return jnp.float32 if dtype in (jnp.float16, jnp.bfloat16) else dtype


# -- cross-entropy -----------------------------------------------------------------------------


def _ce_rows(x2, t, w, scale, static, need_grad=True):
    """Row losses and the gradient of ``sum(scale * row_loss)`` for (M, C) logits."""
    eps, inv_t, z, weighted = static
    c = x2.shape[-1]
    zx = x2 * inv_t if inv_t != 1.0 else x2
    m = jnp.max(zx, axis=-1, keepdims=True)
    m = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, 0.0))
    e = jnp.exp(zx - m)
    total = jnp.sum(e, axis=-1, keepdims=True)
    lse = (m + jnp.log(total))[:, 0]
    z_t = jnp.take_along_axis(zx, t[:, None], axis=-1)[:, 0]
    w_t = w[t] if weighted else jnp.ones_like(lse)
    w_total = jnp.sum(w) if weighted else float(c)
    loss = w_t * (lse - z_t)
    if eps > 0:
        x_w = zx @ w if weighted else jnp.sum(zx, axis=-1)
        loss = (1.0 - eps) * loss + (eps / c) * (w_total * lse - x_w)
    if z > 0:
        loss = loss + z * lse * lse
    if not need_grad:
        return loss, None
    a = (1.0 - eps) * w_t + (eps / c) * w_total
    if z > 0:
        a = a + 2.0 * z * lse
    s = scale * inv_t
    onehot = jax.nn.one_hot(t, c, dtype=x2.dtype)
    g = (s * a)[:, None] * (e / total) - (s * (1.0 - eps) * w_t)[:, None] * onehot
    if eps > 0:
        g = g - (s * (eps / c))[:, None] * (w[None, :] if weighted else 1.0)
    g = jnp.where((scale != 0)[:, None], g, 0.0)
    return loss, g


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6))
def _ce(x2, t, w, mask, factor, static, reduction):
    loss, _ = _ce_rows(x2, t, w, None, static, need_grad=False)
    per = jnp.where(mask, loss, 0.0)
    return per if reduction == "none" else jnp.sum(per) * factor


def _ce_fwd(x2, t, w, mask, factor, static, reduction):
    scale = jnp.where(mask, factor if reduction != "none" else 1.0, 0.0).astype(x2.dtype)
    loss, g = _ce_rows(x2, t, w, scale, static)
    per = jnp.where(mask, loss, 0.0)
    value = per if reduction == "none" else jnp.sum(per) * factor
    return value, g


def _ce_bwd(static, reduction, g, ct):
    gx = g * (ct[:, None] if reduction == "none" else ct)
    return gx, None, None, None, None


_ce.defvjp(_ce_fwd, _ce_bwd)


def cross_entropy(
    input: Array,
    target: Array,
    weight: Array | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    axis: int = -1,
    temperature: float = 1.0,
    *,
    reduction: str = "mean",
    where: Array | None = None,
    z_loss: float = 0.0,
    normalizer: float | Array | None = None,
) -> Array:
    r"""Cross-entropy on JAX arrays with a ``custom_vjp`` that computes the gradient in the
    forward and saves only it.

    Same formula, options and defaults as :func:`losskit.cross_entropy` (integer targets;
    probability targets are passed on to :func:`losskit.cross_entropy`, differentiated by JAX's
    autodiff).  Differentiable with respect to ``input``; usable under ``jax.jit``.

    Equivalent: ``optax.losses.softmax_cross_entropy_with_integer_labels`` (with
    ``reduction="none"``), ``torch.nn.functional.cross_entropy``.
    """
    import losskit

    from .classification import _class_targets, _cross_entropy_options

    xp = namespace(input=input, target=target, weight=weight, where=where)
    axis, num_classes, sample_shape, indices = _class_targets(
        xp, input, target, axis, ignore_index, weight, where
    )
    eps, temperature, z = _cross_entropy_options(label_smoothing, temperature, z_loss)
    from ._validation import check_reduction

    check_reduction(reduction)
    if not indices:
        return losskit.cross_entropy(
            input, target, weight, ignore_index, label_smoothing, axis, temperature,
            reduction=reduction, where=where, z_loss=z_loss, normalizer=normalizer,
        )  # fmt: skip
    out_dtype = input.dtype
    dtype = _compute_dtype(out_dtype)
    x2 = jnp.moveaxis(input, axis, -1).astype(dtype).reshape(-1, num_classes)
    t = jnp.reshape(target, (-1,))
    valid = t != ignore_index
    safe_t = jnp.where(valid, t, 0)
    mask = valid if where is None else valid & jnp.broadcast_to(where, sample_shape).reshape(-1)
    w = jnp.ones((num_classes,), dtype) if weight is None else weight.astype(dtype)
    if reduction == "mean":
        if normalizer is not None:
            if isinstance(normalizer, (int, float)):
                check_number(normalizer, "normalizer", low=0, low_inclusive=False)
            factor = 1.0 / jnp.asarray(normalizer, dtype)
        else:
            counted = jnp.where(mask, w[safe_t] if weight is not None else 1.0, 0.0)
            denom = jnp.sum(counted.astype(dtype))
            factor = jnp.where(denom > 0, 1.0 / jnp.where(denom > 0, denom, 1.0), 0.0)
    else:
        factor = jnp.asarray(1.0, dtype)
    static = (eps, 1.0 / temperature, z, weight is not None)
    value = _ce(x2, safe_t, w, mask, factor.astype(dtype), static, reduction)
    if reduction == "none":
        value = value.reshape(sample_shape)
    return value.astype(out_dtype)


# -- linear cross-entropy ----------------------------------------------------------------------


def _lce_chunk(xc, w, b, tc, sc, static, need_grad):
    """One chunk: row losses, and the logit gradient of ``sum(sc * loss)`` if asked."""
    eps, z, cap = static
    v = w.shape[0]
    logits = xc @ w.T + b
    if cap is not None:
        capped = jnp.tanh(logits / cap)
        logits = cap * capped
    m = jnp.max(logits, axis=-1, keepdims=True)
    m = jnp.where(jnp.isfinite(m), m, 0.0)
    e = jnp.exp(logits - m)
    total = jnp.sum(e, axis=-1, keepdims=True)
    lse = (m + jnp.log(total))[:, 0]
    z_t = jnp.take_along_axis(logits, tc[:, None], axis=-1)[:, 0]
    loss = (1.0 - eps) * (lse - z_t)
    if eps > 0:
        loss = loss + (eps / v) * (v * lse - jnp.sum(logits, axis=-1))
    if z > 0:
        loss = loss + z * lse * lse
    if not need_grad:
        return loss, None
    a = 1.0 + 2.0 * z * lse if z > 0 else jnp.ones_like(lse)
    g = (sc * a)[:, None] * (e / total) - (sc * (1.0 - eps))[:, None] * jax.nn.one_hot(tc, v, dtype=e.dtype)
    if eps > 0:
        g = g - (sc * (eps / v))[:, None]
    if cap is not None:
        g = g * (1.0 - capped * capped)
    return loss, g


def _lce_sweep(xs, w, b, ts, scales, static, need_grad):
    """Scan over chunks ``xs`` (K, chunk, D); returns losses (K, chunk) and, if asked, the
    gradients (gx (K, chunk, D), gw, gb) of ``sum(scales * losses)``."""
    if not need_grad:

        def body(carry, inp):
            xc, tc = inp
            loss, _ = _lce_chunk(xc, w, b, tc, None, static, False)
            return carry, loss

        _, losses = jax.lax.scan(body, None, (xs, ts))
        return losses, None

    def body_g(carry, inp):
        gw, gb = carry
        xc, tc, sc = inp
        loss, g = _lce_chunk(xc, w, b, tc, sc, static, True)
        return (gw + g.T @ xc, gb + jnp.sum(g, axis=0)), (loss, g @ w)

    init = (jnp.zeros_like(w), jnp.zeros_like(b))
    (gw, gb), (losses, gx) = jax.lax.scan(body_g, init, (xs, ts, scales))
    return losses, (gx, gw, gb)


@functools.partial(jax.custom_vjp, nondiff_argnums=(6, 7))
def _lce(xs, w, b, ts, valid, factor, static, reduction):
    losses, _ = _lce_sweep(xs, w, b, ts, None, static, False)
    per = jnp.where(valid, losses, 0.0)
    return per if reduction == "none" else jnp.sum(per) * factor


def _lce_fwd(xs, w, b, ts, valid, factor, static, reduction):
    if reduction == "none":  # cotangents differ per token: the backward sweeps again
        value = _lce(xs, w, b, ts, valid, factor, static, reduction)
        return value, (xs, w, b, ts, valid, None)
    scales = jnp.where(valid, factor, 0.0).astype(xs.dtype)
    losses, grads = _lce_sweep(xs, w, b, ts, scales, static, True)
    value = jnp.sum(jnp.where(valid, losses, 0.0)) * factor
    return value, (None, None, None, None, None, grads)


def _lce_bwd(static, reduction, res, ct):
    xs, w, b, ts, valid, grads = res
    if reduction == "none":
        scales = jnp.where(valid, ct, 0.0).astype(xs.dtype)
        _, (gx, gw, gb) = _lce_sweep(xs, w, b, ts, scales, static, True)
    else:
        gx, gw, gb = (g * ct for g in grads)
    return gx, gw, gb, None, None, None


_lce.defvjp(_lce_fwd, _lce_bwd)


def linear_cross_entropy(
    input: Array,
    weight: Array,
    target: Array,
    bias: Array | None = None,
    *,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
    reduction: str = "mean",
    chunk_size: int | str = "auto",
) -> Array:
    r"""Chunked linear + cross-entropy on JAX arrays (``custom_vjp``, ``lax.scan`` over chunks
    of tokens), differentiable in ``input``, ``weight`` and ``bias``, never holding the N x V
    logits.

    Same formula, options and defaults as :func:`losskit.linear_cross_entropy`.  The tokens
    are padded to a whole number of chunks with ignored tokens; ``"mean"`` over zero counted
    tokens is 0 with zero gradients.  Usable under ``jax.jit`` (the options are static).
    """
    from .linear import auto_chunk_size, check_linear_ce_args

    xp = namespace(input=input, weight=weight, target=target, bias=bias)
    num_classes, eps, z, cap = check_linear_ce_args(
        xp, input, weight, target, bias, ignore_index, label_smoothing, z_loss, softcap, reduction,
        chunk_size,
    )  # fmt: skip
    out_dtype = jnp.result_type(input.dtype, weight.dtype)
    dtype = _compute_dtype(out_dtype)
    d = input.shape[-1]
    lead = tuple(input.shape[:-1])
    n = math.prod(lead)
    chunk = auto_chunk_size(n, num_classes, 4) if chunk_size == "auto" else min(chunk_size, n)
    k = -(-n // chunk)
    pad = k * chunk - n
    x2 = input.reshape(n, d).astype(dtype)
    t = target.reshape(n)
    valid = t != ignore_index
    safe_t = jnp.where(valid, t, 0)
    if pad:
        x2 = jnp.concatenate([x2, jnp.zeros((pad, d), dtype)])
        safe_t = jnp.concatenate([safe_t, jnp.zeros((pad,), safe_t.dtype)])
        valid = jnp.concatenate([valid, jnp.zeros((pad,), bool)])
    count = jnp.sum(valid.astype(dtype))
    if reduction == "mean":
        factor = jnp.where(count > 0, 1.0 / jnp.where(count > 0, count, 1.0), 0.0).astype(dtype)
    else:
        factor = jnp.asarray(1.0, dtype)
    b = jnp.zeros((num_classes,), dtype) if bias is None else bias.astype(dtype)
    value = _lce(
        x2.reshape(k, chunk, d),
        weight.astype(dtype),
        b,
        safe_t.reshape(k, chunk),
        valid.reshape(k, chunk),
        factor,
        (eps, z, cap),
        reduction,
    )
    if reduction == "none":
        value = value.reshape(k * chunk)[:n].reshape(lead)
    return value.astype(out_dtype)
