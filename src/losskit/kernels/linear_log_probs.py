"""The NumPy chunk loop of :func:`losskit.linear_log_probs`: one reused ``(chunk, vocab_chunk)``
buffer of logits, turned in place into the log-softmax statistics and then into the gradient of
the logits, and the matrix products of the head's forward and backward.

:func:`log_prob_sweep_fast_path` is the ``("linear_log_probs_chunks", "numpy")`` fast path of
:func:`losskit.losses.log_probs.log_prob_sweep` (same arguments, same results); the torch
autograd Function runs it on CPU tensors' memory.

Per chunk of tokens and block of the vocabulary (tempered logits :math:`z = (x W^\\top + b)/T`,
running max :math:`m`, :math:`s = \\sum e^{z - m}`, :math:`a = \\sum e^{z - m}(z - m)`):

- statistics: a new block with max :math:`m'` rescales :math:`s \\to e^{m - m'} s` and
  :math:`a \\to e^{m - m'}(a + (m - m') s)` before adding its own sums (the online log-sum-exp,
  every term relative to the current max); at the end :math:`\\mathrm{lse} = m + \\log s`,
  :math:`\\log p(t) = z_t - \\mathrm{lse}`, :math:`\\bar z = m + a/s`,
  :math:`H = \\log s - a/s`;
- gradient of :math:`\\sum_i g_i \\log p(t_i) + h_i H_i` with respect to the logits (before the
  temperature): :math:`G = (g\\,[v = t] - p\\,(g + h (z - \\bar z))) / T`, written into the
  buffer in place (from :math:`\\partial \\log p(t)/\\partial z_v = [v = t] - p_v` and
  :math:`\\partial H/\\partial z_v = -p_v (z_v - \\bar z)`), then
  :math:`\\partial x \\mathrel{+}= G W_{blk}`, :math:`\\partial W_{blk} \\mathrel{+}= G^\\top x`,
  :math:`\\partial b_{blk} \\mathrel{+}= \\sum_i G_i`.

With a single vocabulary block and the upstream factors known in the forward (``value_and_grad``,
:func:`losskit.linear_log_probs_vjp` does not need the values), the gradient reuses the
forward's buffer: three matrix products per chunk; otherwise the backward recomputes the block
(four in all).
"""

from __future__ import annotations

import numpy as np

from ..core.log_prob_specs import LinearLogProbsSpec
from .blas import numpy_matmul_add

__all__ = ["log_prob_sweep_fast_path", "numpy_log_prob_sweep"]


def log_prob_sweep_fast_path(x2, w, b, safe_t, spec: LinearLogProbsSpec, **kwargs):
    """The NumPy loop for plain ``ndarray`` inputs; declines (None) anything else."""
    if not all(type(a) is np.ndarray for a in (x2, w) + (() if b is None else (b,))):
        return None
    return numpy_log_prob_sweep(x2, w, b, np.asarray(safe_t), spec, **kwargs)


def numpy_log_prob_sweep(
    x2: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    safe_t: np.ndarray,
    spec: LinearLogProbsSpec,
    *,
    entropy: bool = False,
    cotangents: tuple[np.ndarray, np.ndarray | None] | None = None,
    stats: tuple[np.ndarray, np.ndarray | None] | None = None,
    need: tuple[bool, bool, bool] = (False, False, False),
):
    """See :func:`losskit.losses.log_probs.log_prob_sweep`; returns a ``LogProbSweep``-shaped
    tuple ``(log_probs, entropy, lse, zbar, grad_hidden, grad_weight, grad_bias)``."""
    n, d = x2.shape
    v = w.shape[0]
    dtype = np.result_type(x2.dtype, w.dtype)
    x2 = np.ascontiguousarray(x2, dtype=dtype)
    w = np.asarray(w, dtype=dtype)
    b = None if b is None else np.asarray(b, dtype=dtype)
    chunk, vb = spec.chunk, spec.vocab_chunk
    inv_t = dtype.type(1.0 / spec.temperature)
    blocks = [(v0, min(v, v0 + vb)) for v0 in range(0, v, vb)]
    single = len(blocks) == 1
    deferred = callable(cotangents)  # (lo, hi, log_probs) -> (g, None), once per chunk
    g_all, h_all = (None, None) if cotangents is None or deferred else cotangents
    grads = cotangents is not None and any(need)
    need_x, need_w, need_b = grads and need[0], grads and need[1], grads and need[2] and b is not None
    want_zbar = entropy or h_all is not None
    compute_stats = stats is None

    rows_max = min(chunk, n)
    buf = np.empty((rows_max, min(vb, v)), dtype=dtype)
    # e^(z - m) beside z - m, for the entropy's sum and its gradient
    ebuf = np.empty_like(buf) if want_zbar else None
    lp = np.empty(n, dtype=dtype) if compute_stats else None
    ent = np.empty(n, dtype=dtype) if compute_stats and entropy else None
    lse_all = np.empty(n, dtype=dtype) if compute_stats else np.asarray(stats[0], dtype=dtype)
    zbar_all = None
    if compute_stats and want_zbar:
        zbar_all = np.empty(n, dtype=dtype)
    elif not compute_stats and stats[1] is not None:
        zbar_all = np.asarray(stats[1], dtype=dtype)
    # every row of gx and gw is written by the first block / first chunk before any addition
    gx = np.empty((n, d), dtype=dtype) if need_x else None
    gw = np.empty((v, d), dtype=dtype) if need_w else None
    gb = np.zeros(v, dtype=dtype) if need_b else None

    def logits(xc: np.ndarray, v0: int, v1: int) -> np.ndarray:
        lb = buf[: xc.shape[0], : v1 - v0]
        np.matmul(xc, w[v0:v1].T, out=lb)
        if b is not None:
            np.add(lb, b[v0:v1], out=lb)
        if inv_t != 1:
            np.multiply(lb, inv_t, out=lb)
        return lb

    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        rows = hi - lo
        xc = x2[lo:hi]
        tc = safe_t[lo:hi]
        ar = np.arange(rows)
        reuse = False  # the buffer holds this chunk's shifted logits and exponentials
        if compute_stats:
            m = s = a = None
            zt = np.zeros(rows, dtype=dtype)
            for v0, v1 in blocks:
                lb = logits(xc, v0, v1)
                inside = (tc >= v0) & (tc < v1)
                zt[inside] = lb[ar[inside], tc[inside] - v0]
                bm = lb.max(axis=1)
                m_new = bm if m is None else np.maximum(m, bm)
                np.subtract(lb, m_new[:, None], out=lb)  # z - m'
                if want_zbar:
                    eb = ebuf[:rows, : v1 - v0]
                    np.exp(lb, out=eb)
                    bs = eb.sum(axis=1)
                    ba = np.einsum("ij,ij->i", eb, lb)
                else:
                    np.exp(lb, out=lb)
                    bs = lb.sum(axis=1)
                    ba = None
                if m is None:
                    s, a = bs, ba
                else:
                    dm = m - m_new
                    r = np.exp(dm)
                    if want_zbar:
                        a = r * (a + dm * s) + ba
                    s = r * s + bs
                m = m_new
            log_s = np.log(s)
            lse = m + log_s
            lse_all[lo:hi] = lse
            lp[lo:hi] = zt - lse
            if want_zbar:
                mean_shift = a / s
                zbar_all[lo:hi] = m + mean_shift
                if entropy:
                    ent[lo:hi] = log_s - mean_shift
            reuse = single
        if not grads:
            continue
        if deferred:
            g, h = cotangents(lo, hi, lp[lo:hi])
            g = np.asarray(g, dtype=dtype)
        else:
            g = np.asarray(g_all[lo:hi], dtype=dtype)
            h = None if h_all is None else np.asarray(h_all[lo:hi], dtype=dtype)
        lse = lse_all[lo:hi]
        for j, (v0, v1) in enumerate(blocks):
            if reuse:
                # the buffer holds z - m (with the entropy) or e^(z - m) (without); p = e^(z - m) / s
                lb = buf[:rows, : v1 - v0]
                if h is None:
                    src = ebuf[:rows, : v1 - v0] if want_zbar else lb
                    np.multiply(src, (-inv_t * g / s)[:, None], out=lb)  # -g p / T
                else:
                    eb = ebuf[:rows, : v1 - v0]
                    np.subtract(lb, (a / s)[:, None], out=lb)  # z - zbar
                    np.multiply(lb, h[:, None], out=lb)
                    np.add(lb, g[:, None], out=lb)  # g + h (z - zbar)
                    np.multiply(lb, eb, out=lb)
                    np.multiply(lb, (-inv_t / s)[:, None], out=lb)  # -p (g + h (z - zbar)) / T
            else:
                lb = logits(xc, v0, v1)
                np.subtract(lb, lse[:, None], out=lb)  # log p
                if h is None:
                    np.exp(lb, out=lb)
                    np.multiply(lb, (-inv_t * g)[:, None], out=lb)
                else:
                    eb = ebuf[:rows, : v1 - v0]
                    np.exp(lb, out=eb)  # p
                    np.add(lb, (lse - zbar_all[lo:hi])[:, None], out=lb)  # z - zbar
                    np.multiply(lb, h[:, None], out=lb)
                    np.add(lb, g[:, None], out=lb)
                    np.multiply(lb, eb, out=lb)
                    np.multiply(lb, -inv_t, out=lb)
            inside = (tc >= v0) & (tc < v1)
            lb[ar[inside], tc[inside] - v0] += inv_t * g[inside]  # + g [v = t] / T
            if need_x:
                if j == 0:
                    np.matmul(lb, w[v0:v1], out=gx[lo:hi])
                else:
                    numpy_matmul_add(lb, w[v0:v1], gx[lo:hi])
            if need_w:
                if lo == 0:
                    np.matmul(lb.T, xc, out=gw[v0:v1])
                else:
                    numpy_matmul_add(lb.T, xc, gw[v0:v1])
            if need_b:
                gb[v0:v1] += lb.sum(axis=0)
    return (
        lp,
        ent,
        lse_all if compute_stats else None,
        zbar_all if compute_stats else None,
        gx,
        gw,
        gb,
    )
