"""JAX fast paths of cross-entropy and linear cross-entropy: custom derivatives whose gradient
is computed in the forward sweep, while the softmax is at hand.

They are reached through :mod:`losskit.core.dispatch` when :func:`losskit.cross_entropy` or
:func:`losskit.linear_cross_entropy` gets JAX arrays, and give exactly the portable code's
values; both work under ``jax.jit``, ``jax.grad`` and ``jax.vmap`` of their callers.

- :func:`cross_entropy_fast_path` (integer targets; probability targets decline to the portable
  code) is a ``jax.custom_jvp``: the rule computes the softmax once, and the tangent is the
  gradient times the incoming tangent.  Under reverse mode JAX keeps only that gradient (one N x
  V residual) and the backward is one multiply; forward mode (``jax.jvp``, ``jax.jacfwd``) and
  higher orders work as well.  Class weights and an array ``normalizer`` get their exact
  derivatives too.
- :func:`linear_cross_entropy_fast_path` walks chunks of tokens with ``lax.scan``.  For
  ``"mean"``/``"sum"`` it is a ``custom_jvp`` whose rule folds each chunk's logit gradient
  straight into the gradients of the input, weight and bias, so the N x V logits never exist
  (only the gradients that are asked for are computed).  For ``"none"`` the per-token
  cotangents are only known in the backward, so it is a ``custom_vjp`` whose backward makes a
  second sweep; forward mode is not available there (``jax.jvp`` raises).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from ..core.backend import compute_dtype
from ..core.specs import (
    CrossEntropyArrays,
    CrossEntropySpec,
    LinearCrossEntropyArrays,
    LinearCrossEntropySpec,
)

__all__ = ["cross_entropy_fast_path", "linear_cross_entropy_fast_path"]


def _is_zero(tangent: object) -> bool:
    return isinstance(tangent, SymbolicZero)


# -- cross-entropy -----------------------------------------------------------------------------


def _shifted(zx, m):
    """The logits shifted by their row maximum ``m`` at softmax's limits, as
    :func:`losskit.core.numerics.shift` does for the portable code: a row holding ``+inf`` is
    shifted by ``+inf`` (0 at its ``+inf`` entries, ``-inf`` elsewhere), a row of ``-inf``
    only by 0 (``m`` arrives as 0 there), and a NaN stays NaN."""
    return jnp.where(zx == jnp.inf, 0.0, zx - m)


def _ce_rows(x2, t, w, scale, spec: CrossEntropySpec, need_grad: bool):
    """Row losses of (M, C) logits and, if asked, the gradient of ``sum(scale * row_loss)``;
    also what the derivative with respect to the class weights uses: each row's ``-log p`` of
    its target, ``log sum exp`` of its shifted logits and its shift ``m`` (after the
    temperature).

    Only the exponentials read the shifted logits (fused with them, never stored); the target
    logit and the smoothing sum read the input and are brought to the limits row by row, so a
    finite row pays one comparison per entry for infinite logits."""
    eps, inv_t, z = spec.label_smoothing, 1.0 / spec.temperature, spec.z_loss
    c = x2.shape[-1]
    zx = x2 * inv_t if inv_t != 1.0 else x2
    m = jnp.max(zx, axis=-1, keepdims=True)
    m = jax.lax.stop_gradient(jnp.where(m == -jnp.inf, 0.0, m))
    e = jnp.exp(_shifted(zx, m))
    total = jnp.sum(e, axis=-1, keepdims=True)
    m = m[:, 0]
    log_total = jnp.log(total)[:, 0]
    lse = m + log_total
    z_t = jnp.take_along_axis(zx, t[:, None], axis=-1)[:, 0]
    nll = log_total - _shifted(z_t, m)  # -log p of the target
    w_t = w[t] if spec.weighted else jnp.ones_like(lse)
    w_total = jnp.sum(w) if spec.weighted else float(c)
    loss = w_t * nll
    if eps > 0:
        loss = (1.0 - eps) * loss + (eps / c) * _smoothing_term(zx, w, m, lse, log_total, spec)
    if z > 0:
        loss = loss + z * lse * lse
    if not need_grad:
        return loss, None, (nll, log_total, m)
    # d loss / d zx = A p - (1 - eps) w_t e_t - (eps / C) w with A = (1 - eps) w_t
    # + (eps / C) sum(w) + 2 z lse; one more factor 1/T for d zx / d x
    a = (1.0 - eps) * w_t + (eps / c) * w_total
    if z > 0:
        a = a + 2.0 * z * lse
    s = scale * inv_t
    onehot = jax.nn.one_hot(t, c, dtype=x2.dtype)
    g = (s * a)[:, None] * (e / total) - (s * (1.0 - eps) * w_t)[:, None] * onehot
    if eps > 0:
        g = g - (s * (eps / c))[:, None] * (w[None, :] if spec.weighted else 1.0)
    g = jnp.where((scale != 0)[:, None], g, 0.0)
    return loss, g, (nll, log_total, m)


def _weighted_shifted_sum(zx, w, m, spec: CrossEntropySpec):
    """``sum_c w_c zs_c`` over the shifted logits ``zs``, a weight of 0 adding 0 even at an
    infinite logit (the portable code's ``0 log 0 = 0``)."""
    zs = _shifted(zx, m[:, None])
    if spec.weighted:
        return jnp.sum(jnp.where(w == 0, 0.0, zs) * w, axis=-1)
    return jnp.sum(zs, axis=-1)


def _smoothing_term(zx, w, m, lse, log_total, spec: CrossEntropySpec):
    """``-sum_c w_c log p_c`` per row (``w`` all 1 without class weights).

    Written ``sum(w) lse - zx @ w``, a sum over the input that XLA fuses with its maximum; a
    row where that is not finite (an infinite logit, a NaN) takes ``sum(w) log_total -
    sum_c w_c zs_c`` over the shifted logits instead, computed only when some row needs it."""
    w_total = jnp.sum(w) if spec.weighted else float(zx.shape[-1])
    direct = w_total * lse - (zx @ w if spec.weighted else jnp.sum(zx, axis=-1))
    redo = ~jnp.isfinite(direct)

    def limits():
        return jnp.where(redo, w_total * log_total - _weighted_shifted_sum(zx, w, m, spec), direct)

    return jax.lax.cond(jnp.any(redo), limits, lambda: direct)


@functools.partial(jax.custom_jvp, nondiff_argnums=(5,))
def _ce(x2, t, w, mask, factor, spec: CrossEntropySpec):
    loss, _, _ = _ce_rows(x2, t, w, None, spec, need_grad=False)
    per = jnp.where(mask, loss, 0.0)
    return per if spec.reduction == "none" else jnp.sum(per) * factor


def _ce_jvp(spec: CrossEntropySpec, primals, tangents):
    x2, t, w, mask, factor = primals
    x_dot, _, w_dot, _, factor_dot = tangents
    per_row = spec.reduction == "none"
    scale = jnp.where(mask, 1.0 if per_row else factor, 0.0).astype(x2.dtype)
    loss, g, (nll, log_total, m) = _ce_rows(x2, t, w, scale, spec, need_grad=not _is_zero(x_dot))
    per = jnp.where(mask, loss, 0.0)
    value = per if per_row else jnp.sum(per) * factor
    tangent = jnp.zeros_like(value)
    if g is not None:  # the gradient saved for reverse mode: the backward is one multiply
        tangent = tangent + (jnp.sum(g * x_dot, axis=-1) if per_row else jnp.sum(g * x_dot))
    if spec.weighted and not _is_zero(w_dot):
        # d row_loss / d w: (1 - eps)(-log p_t) at the target, (eps / C)(-log p) everywhere
        # but where the weight is 0 (the portable code's 0 log 0).  Rows that do not count are
        # zeroed before the products, so reverse mode never multiplies a zero cotangent by
        # what they hold (NaN, inf).
        eps, c = spec.label_smoothing, x2.shape[-1]
        d_row = (1.0 - eps) * w_dot[t] * jnp.where(mask, nll, 0.0)
        if eps > 0:
            zx = x2 * (1.0 / spec.temperature) if spec.temperature != 1.0 else x2
            zs_w0 = jnp.where(mask[:, None] & (w != 0), _shifted(zx, m[:, None]), 0.0)
            log_total = jnp.where(mask, log_total, 0.0)
            d_row = d_row + (eps / c) * (log_total * jnp.sum(w_dot) - zs_w0 @ w_dot)
        tangent = tangent + (d_row if per_row else jnp.sum(d_row) * factor)
    if not per_row and not _is_zero(factor_dot):
        tangent = tangent + jnp.sum(per) * factor_dot
    return value, tangent


_ce.defjvp(_ce_jvp, symbolic_zeros=True)


def cross_entropy_fast_path(spec: CrossEntropySpec, arrays: CrossEntropyArrays, wrt: frozenset[int]):
    """``losskit.cross_entropy`` on JAX arrays, integer targets, differentiated by JAX
    (``wrt`` empty); declines probability targets and losskit's own ``value_and_grad``."""
    if wrt or not spec.class_indices:
        return None
    input, target, weight, where, normalizer = arrays
    out_dtype = input.dtype
    dtype = compute_dtype(jnp, out_dtype)
    x2 = jnp.moveaxis(input, spec.axis, -1).astype(dtype).reshape(-1, spec.num_classes)
    t = jnp.reshape(target, (-1,))
    valid = t != spec.ignore_index
    safe_t = jnp.where(valid, t, 0)
    mask = valid if where is None else valid & jnp.broadcast_to(where, spec.sample_shape).reshape(-1)
    w = jnp.ones((spec.num_classes,), dtype) if weight is None else weight.astype(dtype)
    if spec.reduction == "mean":
        if normalizer is not None:
            factor = 1.0 / jnp.asarray(normalizer, dtype)
        else:
            # PyTorch's weighted mean: the counted weights' sum whatever its sign (a sum of 0
            # gives inf or NaN, as PyTorch); 0 with a zero gradient only when nothing counts
            counted = jnp.where(mask, w[safe_t] if weight is not None else 1.0, 0.0)
            denominator = jnp.sum(counted.astype(dtype))
            anything = jnp.any(mask)
            factor = jnp.where(anything, 1.0 / jnp.where(anything, denominator, 1.0), 0.0)
    else:
        factor = jnp.asarray(1.0, dtype)
    value = _ce(x2, safe_t, w, mask, factor.astype(dtype), spec)
    if spec.reduction == "none":
        value = value.reshape(spec.sample_shape)
    return value.astype(out_dtype), {}


# -- linear cross-entropy ----------------------------------------------------------------------


def _lce_chunk(xc, w, b, tc, sc, spec: LinearCrossEntropySpec, need_grad: bool):
    """One chunk: row losses, and the logit gradient of ``sum(sc * loss)`` if asked."""
    eps, z, cap = spec.label_smoothing, spec.z_loss, spec.softcap
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


def _lce_sweep(xs, w, b, ts, scales, spec: LinearCrossEntropySpec, need: tuple[bool, bool, bool]):
    """Scan over chunks ``xs`` (K, chunk, D); returns losses (K, chunk) and the gradients
    ``(gx (K, chunk, D), gw, gb)`` of ``sum(scales * losses)`` that ``need`` asks for (else
    None)."""
    if not any(need):

        def body(carry, inp):
            xc, tc = inp
            loss, _ = _lce_chunk(xc, w, b, tc, None, spec, False)
            return carry, loss

        _, losses = jax.lax.scan(body, None, (xs, ts))
        return losses, (None, None, None)

    need_x, need_w, need_b = need

    def body_g(carry, inp):
        gw, gb = carry
        xc, tc, sc = inp
        loss, g = _lce_chunk(xc, w, b, tc, sc, spec, True)
        gw = gw + g.T @ xc if need_w else gw
        gb = gb + jnp.sum(g, axis=0) if need_b else gb
        return (gw, gb), (loss, g @ w if need_x else jnp.zeros((0,), xc.dtype))

    init = (jnp.zeros_like(w) if need_w else None, jnp.zeros_like(b) if need_b else None)
    (gw, gb), (losses, gx) = jax.lax.scan(body_g, init, (xs, ts, scales))
    return losses, (gx if need_x else None, gw, gb)


def _lce_value(losses, valid, factor, spec: LinearCrossEntropySpec):
    per = jnp.where(valid, losses, 0.0)
    return per if spec.reduction == "none" else jnp.sum(per) * factor


@functools.partial(jax.custom_jvp, nondiff_argnums=(6,))
def _lce_reduced(xs, w, b, ts, valid, factor, spec: LinearCrossEntropySpec):
    losses, _ = _lce_sweep(xs, w, b, ts, None, spec, (False, False, False))
    return _lce_value(losses, valid, factor, spec)


def _lce_reduced_jvp(spec: LinearCrossEntropySpec, primals, tangents):
    xs, w, b, ts, valid, factor = primals
    x_dot, w_dot, b_dot = tangents[:3]
    need = (not _is_zero(x_dot), not _is_zero(w_dot), not _is_zero(b_dot))
    scales = jnp.where(valid, factor, 0.0).astype(xs.dtype)
    losses, grads = _lce_sweep(xs, w, b, ts, scales, spec, need)
    value = _lce_value(losses, valid, factor, spec)
    tangent = jnp.zeros_like(value)
    for g, dot in zip(grads, (x_dot, w_dot, b_dot)):
        if g is not None:
            tangent = tangent + jnp.sum(g * dot)
    return value, tangent


_lce_reduced.defjvp(_lce_reduced_jvp, symbolic_zeros=True)


@functools.partial(jax.custom_vjp, nondiff_argnums=(6,))
def _lce_per_token(xs, w, b, ts, valid, factor, spec: LinearCrossEntropySpec):
    losses, _ = _lce_sweep(xs, w, b, ts, None, spec, (False, False, False))
    return _lce_value(losses, valid, factor, spec)


def _lce_per_token_fwd(xs, w, b, ts, valid, factor, spec):
    return _lce_per_token(xs, w, b, ts, valid, factor, spec), (xs, w, b, ts, valid)


def _lce_per_token_bwd(spec, residuals, ct):
    xs, w, b, ts, valid = residuals
    # each token's cotangent is its own upstream factor: a second sweep with those scales
    scales = jnp.where(valid, ct, 0.0).astype(xs.dtype)
    _, (gx, gw, gb) = _lce_sweep(xs, w, b, ts, scales, spec, (True, True, True))
    return gx, gw, gb, None, None, None


_lce_per_token.defvjp(_lce_per_token_fwd, _lce_per_token_bwd)


def linear_cross_entropy_fast_path(
    spec: LinearCrossEntropySpec, arrays: LinearCrossEntropyArrays, wrt: frozenset[int]
):
    """``losskit.linear_cross_entropy`` on JAX arrays differentiated by JAX (``wrt`` empty):
    a ``lax.scan`` over chunks, padded to a whole number of chunks with ignored tokens."""
    if wrt:
        return None
    input, weight, target, bias = arrays
    out_dtype = jnp.result_type(input.dtype, weight.dtype)
    dtype = compute_dtype(jnp, out_dtype)
    n, d, chunk = spec.num_tokens, spec.hidden, spec.chunk
    k = -(-n // chunk)
    pad = k * chunk - n
    x2 = input.reshape(n, d).astype(dtype)
    t = target.reshape(n)
    valid = t != spec.ignore_index
    safe_t = jnp.where(valid, t, 0)
    if pad:
        x2 = jnp.concatenate([x2, jnp.zeros((pad, d), dtype)])
        safe_t = jnp.concatenate([safe_t, jnp.zeros((pad,), safe_t.dtype)])
        valid = jnp.concatenate([valid, jnp.zeros((pad,), bool)])
    count = jnp.sum(valid.astype(dtype))
    if spec.reduction == "mean":
        factor = jnp.where(count > 0, 1.0 / jnp.where(count > 0, count, 1.0), 0.0).astype(dtype)
    else:
        factor = jnp.asarray(1.0, dtype)
    b = jnp.zeros((spec.num_classes,), dtype) if bias is None else bias.astype(dtype)
    per_token = spec.reduction == "none"
    sweep = _lce_per_token if per_token else _lce_reduced
    value = sweep(
        x2.reshape(k, chunk, d),
        weight.astype(dtype),
        b,
        safe_t.reshape(k, chunk),
        valid.reshape(k, chunk),
        factor,
        spec,
    )
    if per_token:
        value = value.reshape(k * chunk)[:n].reshape(spec.lead_shape)
    return value.astype(out_dtype), {}
