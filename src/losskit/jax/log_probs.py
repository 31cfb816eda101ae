"""JAX fast path of :func:`losskit.linear_log_probs`: a ``jax.custom_vjp`` over a ``lax.scan``
of token chunks, so neither the forward nor the backward ever holds the N x V logits.

The forward walks the chunks (padded to a whole number with ignored tokens) and, inside each,
the vocabulary blocks with an online log-sum-exp; it keeps two numbers per token as residuals,
:math:`\\mathrm{lse}_i` and the softmax mean :math:`\\bar z_i` of the tempered logits
:math:`z = (x W^\\top + b) / T`.  The backward receives the cotangents :math:`g_i` of the
log-probs and :math:`h_i` of the entropies and makes a second scan that recomputes each block of
logits and folds

.. math::

   G_{iv} = \\big(g_i([v = t_i] - p_{iv}) - h_i\\,p_{iv}(z_{iv} - \\bar z_i)\\big) / T

into :math:`\\partial x = G W`, :math:`\\partial W \\mathrel{+}= G^\\top x`,
:math:`\\partial b \\mathrel{+}= \\sum_i G_i` (the derivation is in
:mod:`losskit.losses.log_probs`).  Works under ``jax.jit``, ``jax.grad`` and ``jax.vjp``;
forward mode (``jax.jvp``) is not available for a ``custom_vjp``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ..core.backend import compute_dtype
from ..core.log_prob_specs import (
    LinearDistillationArrays,
    LinearDistillationSpec,
    LinearLogProbsArrays,
    LinearLogProbsSpec,
)
from ..losses.distillation import chunk_divergence

__all__ = ["linear_log_probs_fast_path", "linear_distillation_fast_path"]


def _blocks(spec: LinearLogProbsSpec) -> list[tuple[int, int]]:
    v, vb = spec.num_classes, spec.vocab_chunk
    return [(v0, min(v, v0 + vb)) for v0 in range(0, v, vb)]


def _logits(xc, w, b, v0: int, v1: int, inv_t: float):
    z = xc @ w[v0:v1].T + b[v0:v1]
    return z * inv_t if inv_t != 1.0 else z


def _chunk_stats(xc, w, b, tc, spec: LinearLogProbsSpec):
    """One chunk's ``(log_probs, entropy, lse, zbar)`` by an online log-sum-exp over the
    vocabulary blocks (``s = sum e^(z - m)``, ``a = sum e^(z - m)(z - m)``, rescaled by
    ``e^(m - m')`` with ``a' = e^(m - m')(a + (m - m') s)`` when the max moves to ``m'``)."""
    inv_t = 1.0 / spec.temperature
    m = s = a = None
    zt = jnp.zeros(xc.shape[:1], xc.dtype)
    for v0, v1 in _blocks(spec):
        z = _logits(xc, w, b, v0, v1, inv_t)
        inside = (tc >= v0) & (tc < v1)
        local = jnp.clip(tc - v0, 0, v1 - v0 - 1)
        zt = jnp.where(inside, jnp.take_along_axis(z, local[:, None], axis=-1)[:, 0], zt)
        bm = jnp.max(z, axis=-1)
        m_new = bm if m is None else jnp.maximum(m, bm)
        zs = z - m_new[:, None]
        e = jnp.exp(zs)
        bs, ba = jnp.sum(e, axis=-1), jnp.sum(e * zs, axis=-1)
        if m is None:
            s, a = bs, ba
        else:
            d = m - m_new
            r = jnp.exp(d)
            s, a = r * s + bs, r * (a + d * s) + ba
        m = m_new
    log_s = jnp.log(s)
    lse = m + log_s
    mean_shift = a / s
    return zt - lse, log_s - mean_shift, lse, m + mean_shift


def _chunk_grads(xc, w, b, tc, g, h, lse, zbar, spec: LinearLogProbsSpec, gw, gb):
    """The gradient of ``sum(g * log_probs + h * entropy)`` over one chunk: ``gx`` of the chunk
    and the updated ``gw``, ``gb``."""
    inv_t = 1.0 / spec.temperature
    gx = jnp.zeros_like(xc)
    for v0, v1 in _blocks(spec):
        z = _logits(xc, w, b, v0, v1, inv_t)
        p = jnp.exp(z - lse[:, None])
        onehot = (tc[:, None] == jnp.arange(v0, v1)).astype(z.dtype)
        coef = g[:, None] + h[:, None] * (z - zbar[:, None])
        grad = (g[:, None] * onehot - p * coef) * inv_t
        gx = gx + grad @ w[v0:v1]
        gw = gw.at[v0:v1].add(grad.T @ xc)
        gb = gb.at[v0:v1].add(jnp.sum(grad, axis=0))
    return gx, gw, gb


def _forward(xs, w, b, ts, valid, spec: LinearLogProbsSpec):
    def body(carry, inp):
        xc, tc = inp
        return carry, _chunk_stats(xc, w, b, tc, spec)

    _, (lp, ent, lse, zbar) = jax.lax.scan(body, None, (xs, ts))
    lp = jnp.where(valid, lp, 0.0)
    ent = jnp.where(valid, ent, 0.0)
    return (lp, ent), (lse, zbar)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _log_probs(xs, w, b, ts, valid, spec: LinearLogProbsSpec):
    return _forward(xs, w, b, ts, valid, spec)[0]


def _log_probs_fwd(xs, w, b, ts, valid, spec):
    out, (lse, zbar) = _forward(xs, w, b, ts, valid, spec)
    return out, (xs, w, b, ts, valid, lse, zbar)


def _log_probs_bwd(spec, residuals, cts):
    xs, w, b, ts, valid, lse, zbar = residuals
    ct_lp, ct_ent = cts
    g = jnp.where(valid, ct_lp, 0.0).astype(xs.dtype)
    h = jnp.where(valid, ct_ent, 0.0).astype(xs.dtype)

    def body(carry, inp):
        gw, gb = carry
        xc, tc, gc, hc, lc, zc = inp
        gx, gw, gb = _chunk_grads(xc, w, b, tc, gc, hc, lc, zc, spec, gw, gb)
        return (gw, gb), gx

    (gw, gb), gx = jax.lax.scan(body, (jnp.zeros_like(w), jnp.zeros_like(b)), (xs, ts, g, h, lse, zbar))
    return gx, gw, gb, None, None


_log_probs.defvjp(_log_probs_fwd, _log_probs_bwd)


def linear_log_probs_fast_path(spec: LinearLogProbsSpec, arrays: LinearLogProbsArrays, wrt: frozenset[int]):
    """``losskit.linear_log_probs`` on JAX arrays differentiated by JAX (``wrt`` empty): the
    ``custom_vjp`` scan.  losskit's own ``value_and_grad`` (``wrt``) takes the portable loop."""
    if wrt:
        return None
    hidden, weight, tokens, bias = arrays
    out_dtype = jnp.result_type(hidden.dtype, weight.dtype)
    dtype = compute_dtype(jnp, out_dtype)
    n, d, chunk = spec.num_tokens, spec.hidden_size, spec.chunk
    k = -(-n // chunk)
    pad = k * chunk - n
    x2 = hidden.reshape(n, d).astype(dtype)
    t = tokens.reshape(n)
    valid = t != spec.ignore_index
    safe_t = jnp.where(valid, t, 0)
    if pad:
        x2 = jnp.concatenate([x2, jnp.zeros((pad, d), dtype)])
        safe_t = jnp.concatenate([safe_t, jnp.zeros((pad,), safe_t.dtype)])
        valid = jnp.concatenate([valid, jnp.zeros((pad,), bool)])
    b = jnp.zeros((spec.num_classes,), dtype) if bias is None else bias.astype(dtype)
    lp, ent = _log_probs(
        x2.reshape(k, chunk, d),
        weight.astype(dtype),
        b,
        safe_t.reshape(k, chunk),
        valid.reshape(k, chunk),
        spec,
    )

    def finish(a):
        return a.reshape(k * chunk)[:n].reshape(spec.lead_shape).astype(out_dtype)

    return ((finish(lp), finish(ent)) if spec.return_entropy else finish(lp)), {}


# -- distillation from hidden states ---------------------------------------------------------------


def _distill_chunk(xc, ws, bs, tc, wt, bt, spec: LinearDistillationSpec, need_grad: bool):
    inv_t = 1.0 / spec.temperature
    s = (xc @ ws.T + bs) * inv_t
    t = (tc @ wt.T + bt) * inv_t
    return chunk_divergence(jnp, s, t, spec, need_grad)


def _distill_forward(xs, ws, bs, xt, wt, bt, spec: LinearDistillationSpec):
    def body(carry, inp):
        xc, tc = inp
        return carry, _distill_chunk(xc, ws, bs, tc, wt, bt, spec, False)[0]

    return jax.lax.scan(body, None, (xs, xt))[1]


@functools.partial(jax.custom_vjp, nondiff_argnums=(6,))
def _distill(xs, ws, bs, xt, wt, bt, spec: LinearDistillationSpec):
    """Per-token divergences ``(K, chunk)``; the backward takes one cotangent per token."""
    return _distill_forward(xs, ws, bs, xt, wt, bt, spec)


def _distill_fwd(xs, ws, bs, xt, wt, bt, spec):
    return _distill_forward(xs, ws, bs, xt, wt, bt, spec), (xs, ws, bs, xt, wt, bt)


def _distill_bwd(spec, residuals, ct):
    xs, ws, bs, xt, wt, bt = residuals
    inv_t = 1.0 / spec.temperature

    def body(carry, inp):
        gw, gb = carry
        xc, tc, sc = inp
        _, g = _distill_chunk(xc, ws, bs, tc, wt, bt, spec, True)
        g = g * (sc * inv_t)[:, None]  # d loss / d (x W^T + b) = (d loss / d s) / T
        return (gw + g.T @ xc, gb + jnp.sum(g, axis=0)), g @ ws

    (gw, gb), gx = jax.lax.scan(body, (jnp.zeros_like(ws), jnp.zeros_like(bs)), (xs, xt, ct.astype(xs.dtype)))
    return gx, gw, gb, None, None, None


_distill.defvjp(_distill_fwd, _distill_bwd)


def linear_distillation_fast_path(
    spec: LinearDistillationSpec, arrays: LinearDistillationArrays, wrt: frozenset[int]
):
    """``losskit.linear_distillation`` on JAX arrays differentiated by JAX (``wrt`` empty): a
    ``custom_vjp`` scan over token chunks whose backward recomputes each chunk's logits (the
    teacher gets no gradient: it is a constant)."""
    if wrt:
        return None
    sh, sw, th, tw, sb, tb, where = arrays
    out_dtype = jnp.result_type(sh.dtype, sw.dtype)
    dtype = compute_dtype(jnp, out_dtype)
    n, chunk, v = spec.num_tokens, spec.chunk, spec.num_classes
    k = -(-n // chunk)
    pad = k * chunk - n
    xs = sh.reshape(n, spec.student_size).astype(dtype)
    xt = jax.lax.stop_gradient(th.reshape(n, spec.teacher_size).astype(dtype))
    valid = jnp.ones((n,), bool) if where is None else where.reshape(n)
    if pad:
        xs = jnp.concatenate([xs, jnp.zeros((pad, xs.shape[1]), dtype)])
        xt = jnp.concatenate([xt, jnp.zeros((pad, xt.shape[1]), dtype)])
        valid = jnp.concatenate([valid, jnp.zeros((pad,), bool)])
    bs = jnp.zeros((v,), dtype) if sb is None else sb.astype(dtype)
    bt = jnp.zeros((v,), dtype) if tb is None else jax.lax.stop_gradient(tb.astype(dtype))
    wt = jax.lax.stop_gradient(tw.astype(dtype))
    per = _distill(xs.reshape(k, chunk, -1), sw.astype(dtype), bs, xt.reshape(k, chunk, -1), wt, bt, spec)
    per = jnp.where(valid, per.reshape(k * chunk), 0.0)
    if spec.reduction == "none":
        value = per[:n].reshape(spec.lead_shape)
    elif spec.reduction == "sum":
        value = jnp.sum(per)
    else:
        count = jnp.sum(valid.astype(dtype))
        value = jnp.where(count > 0, jnp.sum(per) / jnp.where(count > 0, count, 1.0), 0.0)
    return value.astype(out_dtype), {}
