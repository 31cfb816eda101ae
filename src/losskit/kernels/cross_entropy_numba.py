"""The optional compiled row kernel of :mod:`losskit.kernels.cross_entropy` (needs the
``numba`` extra).

Importing this module imports numba (and raises ImportError without it);
:mod:`losskit.kernels.cross_entropy` imports it lazily, only when installed and not disabled
(``LOSSKIT_DISABLE_NUMBA=1``): for the compiled passes :class:`FastRows` that the NumPy row
kernel runs on float32 rows with ``kernel="auto"``, and for the fully compiled row kernel
:func:`numba_rows` (``kernel="numba"``, or ``LOSSKIT_FUSED_KERNEL=numba`` for ``"auto"``).

For each row the kernel makes four passes while the row sits in cache: the maximum (and
whether the row holds NaN; then the row sum or weighted sum for label smoothing), the
exponentials, their scaling and sum, and the gradient written once.  Rows that are not finite
take softmax's limits as the portable code does, in branches that finite rows never enter: a NaN
gives a NaN loss and gradient, a ``+inf`` maximum puts all the probability on the row's ``+inf``
entries, and a weighted sum that comes out non-finite is summed again with weights of 0 adding
0 at infinite logits.  The exponential is computed in-line (range reduction to
:math:`2^k e^r` with :math:`|r| \\le \\ln 2 / 2` and a degree-7 Taylor polynomial, relative
error below float32's epsilon) so that the compiler vectorises it; libm's ``expf`` would not
be.  float32 logits with index targets only; everything else stays on the NumPy kernel.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .threads import PARALLEL_MIN_ELEMENTS, block_rows, get_num_threads, run_row_blocks

__all__ = ["numba_rows", "FastRows"]

_FLAGS = {"reassoc", "contract", "arcp", "nsz"}  # no 'nnan'/'ninf': -inf logits are legitimate
_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(0.693359375)
_LN2_LO = np.float32(-2.12194440e-4)
_EXP_MIN = np.float32(-87.33)  # exp below this underflows float32's normal range: written as 0


@numba.njit(nogil=True, fastmath=_FLAGS, cache=True, inline="always")
def _exp_le0(y):
    """e^y for y <= 0 (0 below float32's normal range), in float32 throughout.

    Derivation: y = k ln2 + r with k = round(y / ln2), |r| <= ln2/2, so e^y = 2^k e^r; e^r is
    the degree-7 Taylor polynomial in Horner form (remainder r^8/8! < 2e-8 relative), and 2^k
    is the float whose exponent field is k + 127 (k >= -126 above the clamp).  k stays a float
    until the exponent is formed: an integer k would turn the products into float64 ones and
    keep the loop from being vectorised."""
    yc = max(y, _EXP_MIN)
    kf = np.floor(yc * _LOG2E + np.float32(0.5))
    r = yc - kf * _LN2_HI - kf * _LN2_LO
    p = np.float32(1.0 / 5040.0)
    p = np.float32(1.0 / 720.0) + r * p
    p = np.float32(1.0 / 120.0) + r * p
    p = np.float32(1.0 / 24.0) + r * p
    p = np.float32(1.0 / 6.0) + r * p
    p = np.float32(0.5) + r * p
    p = np.float32(1.0) + r * p
    p = np.float32(1.0) + r * p
    return kf, p


@numba.njit(nogil=True, fastmath=_FLAGS, cache=True)
def _exp_row(src, dst, bits, m, inv_t):
    """dst = exp((src - m) * inv_t), returns the sum; ``bits`` is int32 scratch of src's size
    (the exponent 2^k is formed there and read back as a float in the same iteration; dst must
    not be src, or the loop is not vectorised)."""
    scale = bits.view(np.float32)
    total = np.float32(0.0)
    for j in range(src.shape[0]):
        y = (src[j] - m) * inv_t
        kf, p = _exp_le0(y)
        bits[j] = (np.int32(kf) + np.int32(127)) << np.int32(23)
        e = p * scale[j]
        e = e if y >= _EXP_MIN else np.float32(0.0)
        dst[j] = e
        total += e
    return total


@numba.njit(nogil=True, fastmath=_FLAGS, cache=True)
def _exp_rows(x, g, m, inv_t, total, bits, ebuf, inplace):
    """For each row i of the block: g[i] = exp((x[i] - m[i]) * inv_t) and total[i] its sum; a
    NaN maximum (the row holds NaN) gives a NaN row and total.  ``inplace`` (g is x): the row
    goes through ``ebuf`` so that the vectorised loop never reads what it writes."""
    c = x.shape[1]
    for i in range(x.shape[0]):
        mi = m[i]
        gi = g[i]
        if mi != mi:
            for j in range(c):
                gi[j] = np.float32(np.nan)
            total[i] = np.float32(np.nan)
        elif inplace:
            total[i] = _exp_row(x[i], ebuf, bits, mi, inv_t)
            for j in range(c):
                gi[j] = ebuf[j]
        else:
            total[i] = _exp_row(x[i], gi, bits, mi, inv_t)


@numba.njit(nogil=True, fastmath=_FLAGS, cache=True)
def _scale_rows(g, coef, sub):
    """g[i] = g[i] * coef[i] - sub[i], one pass."""
    for i in range(g.shape[0]):
        gi = g[i]
        a = coef[i]
        b = sub[i]
        for j in range(g.shape[1]):
            gi[j] = gi[j] * a - b


class FastRows:
    """The compiled passes :func:`losskit.kernels.cross_entropy.numpy_rows` uses on float32
    rows: the shifted exponentials with their row sums, and the gradient's scaling, each one
    vectorised pass over a block of rows (per-thread scratch for the exponent bits)."""

    def __init__(self, num_classes: int) -> None:
        self.c = num_classes
        self.scratch: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def exp_rows(self, x, g, m, inv_t, worker: int) -> np.ndarray:
        bufs = self.scratch.get(worker)
        if bufs is None:
            bufs = self.scratch[worker] = (np.empty(self.c, np.int32), np.empty(self.c, np.float32))
        total = np.empty(x.shape[0], np.float32)
        inplace = bool(np.shares_memory(x, g))
        m = np.ascontiguousarray(m, dtype=np.float32)
        _exp_rows(x, g, m, np.float32(inv_t), total, bufs[0], bufs[1], inplace)
        return total

    @staticmethod
    def scale_rows(g, coef, sub) -> None:
        f32 = np.float32
        _scale_rows(g, np.ascontiguousarray(coef, dtype=f32), np.ascontiguousarray(sub, dtype=f32))


@numba.njit(nogil=True, fastmath=_FLAGS, cache=True)
def _weighted_sum(xi, w, skip_zero):
    """sum_j w_j xi_j; with ``skip_zero`` a weight of 0 adds 0 even at an infinite logit."""
    acc = np.float32(0.0)
    if skip_zero:
        for j in range(xi.shape[0]):
            if w[j] != 0:
                acc += xi[j] * w[j]
    else:
        for j in range(xi.shape[0]):
            acc += xi[j] * w[j]
    return acc


@numba.njit(nogil=True, fastmath=_FLAGS, cache=True)
def _ce_block(
    x, g, ebuf, bits, lo, hi, need_grad, t, w_t, w, eps, w_total, inv_t, z, row_scale, skip, row_loss
):
    c = x.shape[1]
    has_wt = w_t.shape[0] > 0
    has_w = w.shape[0] > 0
    has_skip = skip.shape[0] > 0
    one_m_eps = np.float32(1.0 - eps)
    eps_c = np.float32(eps / c)
    inf = np.float32(np.inf)
    for i in range(lo, hi):
        xi = x[i]
        # the maximum, and whether the row holds NaN (max() skips a NaN after the first entry)
        m = xi[0]
        nan = xi[0] != xi[0]
        for j in range(1, c):
            v = xi[j]
            m = max(m, v)
            nan |= v != v
        skipped = has_skip and skip[i]
        if nan:  # a NaN logit: NaN loss and gradient, as the portable code
            row_loss[i] = np.float32(np.nan)
            if need_grad:
                gi = g[i]
                fill = np.float32(0.0) if skipped else np.float32(np.nan)
                for j in range(c):
                    gi[j] = fill
            continue
        ti = t[i]
        x_t = xi[ti]
        wt = w_t[i] if has_wt else np.float32(1.0)
        if m == inf:
            # softmax's limit: the k entries at +inf share all the probability, so log p is
            # -log k there and -inf elsewhere; everything is read before g (maybe x) is written
            k = np.float32(0.0)
            acc = np.float32(0.0)  # sum_j w_j log p_j over the entries off +inf with w_j != 0
            for j in range(c):
                hot = xi[j] == inf
                ebuf[j] = np.float32(1.0) if hot else np.float32(0.0)
                k += ebuf[j]
                if eps > 0 and not hot:
                    wj = w[j] if has_w else np.float32(1.0)
                    if wj != 0:
                        acc += wj * -inf
            total = k
            log_k = np.float32(math.log(k))
            lse = inf
            loss = wt * (log_k if x_t == inf else inf)
            if eps > 0:
                loss = one_m_eps * loss + eps_c * (np.float32(w_total) * log_k - acc)
            if z > 0:
                loss += inf
        else:
            if not math.isfinite(m):
                m = np.float32(0.0)  # every entry -inf
            x_w = np.float32(0.0)
            if eps > 0:
                if has_w:
                    x_w = _weighted_sum(xi, w, False)
                    if not math.isfinite(x_w):  # 0 * -inf is NaN; a weight of 0 adds 0
                        x_w = _weighted_sum(xi, w, True)
                else:
                    for j in range(c):
                        x_w += xi[j]
            # exponentials into a cached scratch row, never into g: g may be x itself (in
            # place), and a loop whose input and output alias is not vectorised
            total = _exp_row(xi, ebuf, bits, m, inv_t)
            lse = m * inv_t + np.float32(math.log(total))
            loss = wt * (lse - x_t * inv_t)
            if eps > 0:
                loss = one_m_eps * loss + eps_c * (np.float32(w_total) * lse - x_w * inv_t)
            if z > 0:
                loss += np.float32(z) * lse * lse
        row_loss[i] = loss
        if not need_grad:
            continue
        sc = row_scale[i]
        gi = g[i]
        if skipped:
            for j in range(c):
                gi[j] = np.float32(0.0)
            continue
        a = one_m_eps * wt + eps_c * np.float32(w_total)
        if z > 0:
            a += np.float32(2.0 * z) * lse
        coef = sc * a / total
        sub = sc * eps_c
        if eps > 0 and has_w:
            for j in range(c):
                gi[j] = ebuf[j] * coef - sub * w[j]
        elif eps > 0:
            for j in range(c):
                gi[j] = ebuf[j] * coef - sub
        else:
            for j in range(c):
                gi[j] = ebuf[j] * coef
        gi[ti] -= sc * one_m_eps * wt


def numba_rows(x2, g2, row_loss, s) -> None:
    """Drop-in for :func:`losskit.kernels.cross_entropy.numpy_rows` for float32 logits and
    integer targets (the caller keeps the other cases on NumPy)."""
    n_rows, c = x2.shape
    f32 = np.float32
    empty_f = np.empty(0, dtype=f32)
    t = np.ascontiguousarray(s.safe_t, dtype=np.intp)
    w_t = empty_f if s.w_t is None else np.ascontiguousarray(s.w_t, dtype=f32)
    w = empty_f if (s.w is None or s.eps == 0) else np.ascontiguousarray(s.w, dtype=f32)
    skip = np.empty(0, dtype=np.bool_) if s.skip is None else np.ascontiguousarray(s.skip)
    row_scale = np.ascontiguousarray(s.row_scale, dtype=f32)
    need_grad = g2 is not None
    block = block_rows(c, 4)
    threads = get_num_threads() if x2.size >= PARALLEL_MIN_ELEMENTS else 1
    scratch: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    dummy = np.empty((1, c), dtype=f32)

    def rows(lo: int, hi: int, worker: int) -> None:
        bufs = scratch.get(worker)
        if bufs is None:
            bufs = scratch[worker] = (np.empty(c, dtype=np.int32), np.empty(c, dtype=f32))
        bits, ebuf = bufs
        _ce_block(
            x2, g2 if need_grad else dummy, ebuf, bits, lo, hi, need_grad, t, w_t, w, f32(s.eps),
            f32(s.w_total), f32(s.inv_t), f32(s.z), row_scale, skip, row_loss,
        )  # fmt: skip

    run_row_blocks(n_rows, block, rows, threads=threads)
