"""Fused cross-entropy for NumPy: the loss and its gradient in one sweep over the logits.

:func:`fused_cross_entropy` computes exactly what :func:`losskit.cross_entropy` computes (same
options, same numbers up to rounding) together with the gradient with respect to the logits,
but touches the logits as few times as the math allows: rows are taken in blocks small enough
to stay in the core's L2 cache, and for each block the row maximum, the exponentials, their
sum and the gradient ``scale * (A * softmax - onehot...)`` are all computed while the block is
cached.  Memory traffic is one read of the logits and one write of the gradient -- the floor.

- float32 input is computed in float32 throughout (float64 in float64; float16/bfloat16 are
  lifted to float32 and the results cast back, as everywhere in losskit);
- the only N x V buffer is the gradient itself; with ``inplace=True`` the gradient overwrites
  the logits, so the extra memory is O(N) (the per-row statistics);
- a fresh gradient buffer is taken from a small cache of released ones
  (:mod:`losskit.kernels.buffer_cache`), so a training loop reuses last step's gradient memory
  instead of faulting in new pages every step;
- the rows are shared between up to :func:`~losskit.kernels.threads.get_num_threads` threads
  (NumPy's ufuncs release the GIL, so two threads really run at once);
- with the optional ``numba`` extra installed, ``kernel="auto"`` (the default) runs the hot
  passes of float32 rows compiled (:func:`compiled_passes`): the shift, an in-line vectorised
  exponential and the row sums in one pass, the scaling in another, where NumPy needs five
  (its float32 ``exp`` alone took twice a memory copy's time); the rest of the row kernel --
  the limits, targets, weights -- stays the NumPy code.  ``kernel="numpy"`` keeps NumPy's own
  passes; ``kernel="numba"`` (or ``LOSSKIT_FUSED_KERNEL=numba`` for ``"auto"``) runs the fully
  compiled row kernel of :mod:`.cross_entropy_numba`.  ``LOSSKIT_DISABLE_NUMBA=1`` refuses
  numba altogether.

:func:`cross_entropy_fast_path` is the ``("cross_entropy", "numpy")`` fast path: it takes
``losskit.value_and_grad(losskit.cross_entropy)`` on NumPy arrays, and the torch autograd
Function runs :func:`cross_entropy_rows` on CPU tensors' memory.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..core.backend import Array, compute_dtype, namespace
from ..core.reduction import make_reducer
from ..core.specs import CrossEntropyArrays, CrossEntropyOptions, CrossEntropySpec, options_from, with_options
from . import buffer_cache
from .threads import PARALLEL_MIN_ELEMENTS, block_rows, get_num_threads, run_row_blocks

__all__ = ["fused_cross_entropy", "cross_entropy_rows", "cross_entropy_fast_path", "numba_available"]

def numba_available() -> bool:
    """True when the optional numba kernel can be used (numba installed and not disabled with
    ``LOSSKIT_DISABLE_NUMBA=1``)."""
    if os.environ.get("LOSSKIT_DISABLE_NUMBA", "").strip() not in ("", "0"):
        return False
    try:
        from . import cross_entropy_numba  # noqa: F401
    except ImportError:
        return False
    return True


@with_options(CrossEntropyOptions)
def fused_cross_entropy(
    input: Array,
    target: Array,
    weight: Array | None = None,
    *,
    where: Array | None = None,
    normalizer: float | Array | None = None,
    grad: bool = True,
    inplace: bool = False,
    out: Array | None = None,
    kernel: str = "auto",
    **options: Any,
) -> tuple[Array, Array | None]:
    r"""Cross-entropy and its gradient with respect to the logits, fused, on NumPy arrays.

    Returns ``(loss, grad_input)``: ``loss`` is exactly :func:`losskit.cross_entropy`'s value
    for the same arguments (see there for the formula and every option) and ``grad_input``
    the gradient of that value with respect to ``input`` (of the sum of the per-sample losses
    for ``reduction="none"``), shape of ``input``; ``None`` when ``grad=False``.

    Per row, with :math:`p = \mathrm{softmax}(x/T)`, the gradient is
    :math:`\tfrac{s}{T}\,[A\,p - (1-\varepsilon)\,w_t\,e_t - \tfrac{\varepsilon}{C} w]` with
    :math:`A = (1-\varepsilon)w_t + \tfrac{\varepsilon}{C}\sum_c w_c + 2\lambda\,\mathrm{lse}`
    and :math:`s` the reduction's factor (0 for ignored or masked rows), so it is written in one
    pass once the row's log-sum-exp is known.

    Args:
      input, target, weight, where, normalizer: as :func:`losskit.cross_entropy` (NumPy
        arrays).
      grad: compute the gradient (default True).  With False only O(block) scratch is used.
      inplace: write the gradient into ``input``'s buffer (default False) and return it as
        ``grad_input``; ``input``'s values are lost.  Needs a writable, C-contiguous float32
        or float64 ``input`` with the classes along the last axis; the extra memory is then
        O(number of rows).
      out: optional preallocated gradient buffer (``input``'s shape and dtype, float32 or
        float64, C-contiguous, classes along the last axis), returned as ``grad_input``.
        Reusing one buffer across training steps saves the kernel's zeroing of fresh pages
        (about 40 ms per GB on the benchmark machine).  Without ``out``, a gradient of 4 MiB
        or more comes from :func:`~losskit.kernels.set_buffer_cache`'s cache, which hands out
        a released gradient buffer again (the same size, or the smallest larger one), so a
        loop that drops each step's gradient gets the same saving.
      kernel: ``"auto"`` (default: NumPy's rows with their hot passes compiled when numba is
        installed, or the compiled rows when ``LOSSKIT_FUSED_KERNEL=numba``), ``"numpy"``
        (NumPy's passes only) or ``"numba"`` (the compiled rows).
      **options: cross-entropy's keyword options ``ignore_index``, ``label_smoothing``,
        ``axis``, ``temperature``, ``reduction``, ``z_loss``, as :func:`losskit.cross_entropy`
        (:class:`~losskit.core.specs.CrossEntropyOptions`).

    Equivalent: ``torch.nn.functional.cross_entropy`` followed by ``backward()``, without the
    saved log-probabilities.
    """
    for name, a in (("input", input), ("target", target), ("weight", weight), ("where", where)):
        if a is not None and not isinstance(a, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array for the fused kernel; got {type(a).__name__}")
    xp = namespace(input=input, target=target, weight=weight, where=where)
    chosen = options_from(CrossEntropyOptions, options, "fused_cross_entropy")
    arrays = CrossEntropyArrays(input, target, weight, where, normalizer)
    spec = CrossEntropySpec.of(xp, chosen, arrays)
    return cross_entropy_rows(spec, arrays, grad=grad, inplace=inplace, out=out, kernel=kernel)


def cross_entropy_fast_path(
    spec: CrossEntropySpec, arrays: CrossEntropyArrays, wrt: frozenset[int]
) -> tuple[Array, dict[int, Array]] | None:
    r"""``losskit.cross_entropy`` on NumPy arrays with the gradient of the logits requested
    (``value_and_grad``): the row kernel.  Declines (None) a value alone (the portable code
    is as fast there), other gradients, and arrays that are not plain ``ndarray``\ s."""
    if wrt != {0} or not isinstance(arrays.normalizer, (type(None), int, float, np.ndarray)):
        return None
    if not all(a is None or type(a) is np.ndarray for a in arrays[:4]):
        return None
    value, grad_input = cross_entropy_rows(spec, arrays)
    return value, {0: grad_input}


def cross_entropy_rows(
    spec: CrossEntropySpec,
    arrays: CrossEntropyArrays,
    *,
    grad: bool = True,
    inplace: bool = False,
    out: np.ndarray | None = None,
    kernel: str = "auto",
) -> tuple[np.ndarray, np.ndarray | None]:
    """The row kernel for a validated ``spec``: ``(loss, grad_input)`` as
    :func:`fused_cross_entropy` returns them (same ``grad``, ``inplace``, ``out``, ``kernel``)
    for NumPy ``arrays``."""
    input, target, weight, where, normalizer = arrays
    axis, num_classes, sample_shape = spec.axis, spec.num_classes, spec.sample_shape
    eps, temperature, z_coef = spec.label_smoothing, spec.temperature, spec.z_loss
    ignore_index, reduction = spec.ignore_index, spec.reduction
    if not isinstance(inplace, bool):
        raise TypeError(f"inplace must be a bool; got {type(inplace).__name__}")
    if kernel not in ("auto", "numpy", "numba"):
        raise ValueError(f"kernel must be 'auto', 'numpy' or 'numba'; got {kernel!r}")
    use_numba = False
    if kernel == "numba":
        if not numba_available():
            raise ValueError("kernel='numba' needs the numba extra: pip install 'losskit[numba]'")
        use_numba = True
    elif kernel == "auto":
        use_numba = os.environ.get("LOSSKIT_FUSED_KERNEL", "numpy") == "numba" and numba_available()

    out_dtype = input.dtype
    dtype = np.dtype(compute_dtype(np, out_dtype))
    if inplace:
        if not grad:
            raise ValueError("inplace=True writes the gradient into input; it needs grad=True")
        if input.dtype not in (np.float32, np.float64):
            raise ValueError(f"inplace=True needs a float32 or float64 input; got dtype {input.dtype}")
        if axis != input.ndim - 1 or not input.flags.c_contiguous or not input.flags.writeable:
            raise ValueError(
                "inplace=True needs a writable, C-contiguous input with the classes along the last "
                f"axis; got axis={axis}, C-contiguous={input.flags.c_contiguous}, "
                f"writable={input.flags.writeable}"
            )

    # (rows, classes) view of the logits; a copy only when the layout or dtype demands it
    x = np.moveaxis(input, axis, -1) if axis != input.ndim - 1 else input
    x2 = np.ascontiguousarray(x.reshape(-1, num_classes), dtype=dtype)
    n_rows = x2.shape[0]

    w = None if weight is None else np.asarray(weight, dtype=dtype)
    if spec.class_indices:
        t_flat = np.asarray(target).reshape(-1)
        valid = t_flat != ignore_index
        safe_t = np.where(valid, t_flat, 0).astype(np.intp)
        if w is None:
            w_t = None
        else:
            w_t = np.where(valid, w[safe_t], dtype.type(0))
        mean_weights = None if w_t is None else w_t.reshape(sample_shape)
        mask = valid.reshape(sample_shape)
        if where is not None:
            mask = mask & np.asarray(where)
        q2 = None
    else:
        safe_t = w_t = mean_weights = None
        mask = None if where is None else np.asarray(where)
        q = np.moveaxis(np.asarray(target), axis, -1) if axis != input.ndim - 1 else np.asarray(target)
        q2 = np.ascontiguousarray(q.reshape(-1, num_classes), dtype=dtype)
    reducer = make_reducer(
        np, reduction, sample_shape, dtype, where=mask, weights=mean_weights, normalizer=normalizer
    )
    # per-row gradient scale: d(reduced)/d(row loss) / T, 0 where the row does not count
    factor = np.asarray(reducer.factor, dtype=dtype)
    if reducer.mask is None:
        row_scale = np.full(n_rows, factor / dtype.type(temperature), dtype=dtype)
    else:
        counted = np.broadcast_to(reducer.mask, sample_shape).reshape(-1)
        row_scale = np.where(counted, factor / dtype.type(temperature), dtype.type(0)).astype(dtype)
    else_mask = None if reducer.mask is None else ~np.broadcast_to(reducer.mask, sample_shape).reshape(-1)

    if out is not None:
        if not grad or inplace:
            raise ValueError("out= is the gradient buffer: it needs grad=True and inplace=False")
        if (
            not isinstance(out, np.ndarray)
            or out.shape != tuple(input.shape)
            or out.dtype != dtype
            or input.dtype != dtype
            or not out.flags.c_contiguous
            or not out.flags.writeable
            or axis != input.ndim - 1
        ):
            raise ValueError(
                f"out must be a writable C-contiguous {dtype} array of input's shape "
                f"{tuple(input.shape)} with the classes along the last axis; got "
                f"{getattr(out, 'dtype', type(out).__name__)} {tuple(getattr(out, 'shape', ()))}"
            )
    if grad:
        if inplace:
            g2 = x2
        elif out is not None:
            g2 = out.reshape(x2.shape)
        else:  # a released gradient buffer is reused: no fresh pages to fault in
            g2 = buffer_cache.empty(x2.shape, x2.dtype)
    else:
        g2 = None
    row_loss = np.empty(n_rows, dtype=dtype)
    constants = RowConstants(
        num_classes=num_classes,
        inv_t=1.0 / temperature,
        eps=eps,
        z=z_coef,
        w=w,
        w_total=float(num_classes) if w is None else float(np.sum(w, dtype=np.float64)),
        safe_t=safe_t,
        w_t=w_t,
        q=q2,
        row_scale=row_scale,
        skip=else_mask,
    )
    if use_numba and x2.dtype == np.float32 and constants.q is None:  # what the numba rows handle
        from .cross_entropy_numba import numba_rows

        numba_rows(x2, g2, row_loss, constants)
    else:  # NumPy's rows, with their hot passes compiled where numba is there (not "numpy")
        fast = None if kernel == "numpy" else compiled_passes(x2.dtype, num_classes)
        numpy_rows(x2, g2, row_loss, constants, fast)

    value = reducer.value(row_loss.reshape(sample_shape))
    if value.dtype != out_dtype:
        value = value.astype(out_dtype)
    if not grad:
        return value, None
    if inplace:
        return value, input
    if out is not None:
        return value, out
    g = g2.reshape(x.shape)
    if axis != input.ndim - 1:
        g = np.moveaxis(g, -1, axis)
    if g.dtype != out_dtype:
        g = g.astype(out_dtype)
    return value, g


class RowConstants:
    """What the row kernel needs to know of one call, besides the rows: the options as numbers
    (``inv_t`` = 1/T, ``eps`` the smoothing, ``z`` the z-loss), the class weights ``w`` and
    their total, per-row targets (``safe_t``, their weights ``w_t``) or target rows ``q``,
    each row's gradient scale, and the rows to zero (``skip``)."""

    __slots__ = (
        "num_classes",
        "inv_t",
        "eps",
        "z",
        "w",
        "w_total",
        "safe_t",
        "w_t",
        "q",
        "row_scale",
        "skip",
    )

    def __init__(self, **kw: Any) -> None:
        for k, v in kw.items():
            setattr(self, k, v)


def compiled_passes(dtype: np.dtype, num_classes: int) -> Any:
    """The compiled passes for :func:`numpy_rows` (``fast=``) where they apply: float32 rows
    with numba installed and not disabled; else None (NumPy's own passes)."""
    if np.dtype(dtype) != np.float32 or not numba_available():
        return None
    from .cross_entropy_numba import FastRows

    return FastRows(num_classes)


def numpy_rows(
    x2: np.ndarray, g2: np.ndarray | None, row_loss: np.ndarray, s: RowConstants, fast: Any = None
) -> None:
    """Row losses into ``row_loss`` and (if ``g2``) gradient rows into ``g2`` (may be ``x2``).

    ``fast`` (from :func:`compiled_passes`, float32 only) replaces NumPy's shift, ``exp``, row
    sum and scaling -- five passes over each block, NumPy's float32 ``exp`` the slowest -- by
    two compiled vectorised passes with an in-line exponential; everything else (the limits,
    the targets, the weights) is the same code.

    Infinite logits get softmax's limits, as :func:`losskit.core.numerics.shift` gives them to
    the portable code: a row holding ``+inf`` puts all its probability on its ``+inf`` entries
    (found from the row maximum, which the kernel computes anyway, so finite rows pay nothing),
    a NaN makes its row NaN, and a class weighted 0 adds 0 even where its logit is infinite
    (``0 * log 0 = 0``; repaired only in the rows whose weighted sum came out non-finite)."""
    n_rows, C = x2.shape
    dt = x2.dtype.type
    block = block_rows(C, x2.itemsize)
    threads = get_num_threads() if x2.size >= PARALLEL_MIN_ELEMENTS else 1
    scratch: dict[int, np.ndarray] = {}
    inv_t = dt(s.inv_t)
    one_m_eps = dt(1.0 - s.eps)
    eps_c = dt(s.eps / C)
    z = dt(s.z)

    def rows(lo: int, hi: int, worker: int) -> None:
        xb = x2[lo:hi]
        n = hi - lo
        if g2 is not None:
            gb = g2[lo:hi]
        else:  # forward only: exponentials go to a per-thread scratch block
            buf = scratch.get(worker)
            if buf is None:
                buf = scratch[worker] = np.empty((block, C), dtype=x2.dtype)
            gb = buf[:n]
        # everything read from the raw logits is read before gb (maybe xb itself) is written
        m = xb.max(axis=1)
        finite = np.isfinite(m)
        top = None  # the rows holding +inf, and where their +inf entries are
        if not finite.all():
            top = np.flatnonzero(m == np.inf)
            top = (top, xb[top] == np.inf) if top.size else None
            # a NaN row keeps its NaN maximum, so its shifted logits are all NaN; a row of
            # -inf only is shifted by 0
            m = np.where(np.isinf(m), dt(0), m)
        if s.q is None:
            r = np.arange(n)
            tb = s.safe_t[lo:hi]
            x_t = xb[r, tb]
            if s.eps > 0:
                if s.w is None:
                    x_w = xb.sum(axis=1)
                else:
                    x_w = xb @ s.w
                    _zero_weight_adds_zero(x_w, xb, s.w, finite)
        else:
            qb = s.q[lo:hi]
            if s.eps > 0:
                qb = qb * one_m_eps + eps_c
            wqb = qb if s.w is None else qb * s.w
            sum_wq = wqb.sum(axis=1)
            x_wq = np.einsum("ij,ij->i", wqb, xb)
            _zero_weight_adds_zero(x_wq, xb, wqb, finite)
        if fast is not None:  # the shift, the exponentials and their sums in one compiled pass
            total = fast.exp_rows(xb, gb, m, s.inv_t, worker)
            if top is not None:  # shifted by +inf: e^0 = 1 at the +inf entries, e^-inf = 0 elsewhere
                gb[top[0]] = top[1]
                total[top[0]] = top[1].sum(axis=1)
        else:
            np.subtract(xb, m[:, None], out=gb)
            if top is not None:  # shifted by +inf: 0 at the +inf entries, -inf elsewhere
                gb[top[0]] = np.where(top[1], dt(0), dt(-np.inf))
            if s.inv_t != 1.0:
                np.multiply(gb, inv_t, out=gb)
            np.exp(gb, out=gb)
            total = gb.sum(axis=1)
        lse = m * inv_t + np.log(total)  # log k in a row of k entries at +inf: finite until below
        if s.q is None:
            w_tb = None if s.w_t is None else s.w_t[lo:hi]
            nll = lse - x_t * inv_t
            loss = nll if w_tb is None else w_tb * nll
            if s.eps > 0:
                smooth = dt(s.w_total) * lse - x_w * inv_t
                loss = one_m_eps * loss + eps_c * smooth
        else:
            loss = lse * sum_wq - x_wq * inv_t
        if s.z > 0:
            loss = loss + z * lse * lse
        if top is not None:  # the rows at +inf: their loss at the limit, and an infinite lse
            at, hot = top
            if s.q is None:
                loss[at] = _top_row_losses(hot, s, dt, t=tb[at], rows=lo + at)
            else:
                loss[at] = _top_row_losses(hot, s, dt, wq=wqb[at])
            lse[at] = np.inf
        row_loss[lo:hi] = loss
        if g2 is None:
            return
        sc = s.row_scale[lo:hi]
        if s.q is None:
            a = one_m_eps if w_tb is None else one_m_eps * w_tb
            if s.eps > 0:
                a = a + eps_c * dt(s.w_total)
        else:
            a = sum_wq
        if s.z > 0:
            a = a + (2 * z) * lse
        coef = sc * a / total
        if fast is not None and s.q is None and (s.eps == 0 or s.w is None):
            # scale, and subtract the uniform smoothing term, in one pass
            sub = sc * eps_c if s.eps > 0 else np.zeros_like(sc)
            fast.scale_rows(gb, coef, sub)
            hit = sc * one_m_eps if w_tb is None else sc * one_m_eps * w_tb
            gb[r, tb] -= hit
        elif s.q is None:
            np.multiply(gb, coef[:, None], out=gb)
            hit = sc * one_m_eps if w_tb is None else sc * one_m_eps * w_tb
            gb[r, tb] -= hit
            if s.eps > 0:
                if s.w is None:
                    np.subtract(gb, (sc * eps_c)[:, None], out=gb)
                else:
                    gb -= (sc * eps_c)[:, None] * s.w
        else:
            np.multiply(gb, coef[:, None], out=gb)
            gb -= sc[:, None] * wqb
        if s.skip is not None:
            sk = s.skip[lo:hi]
            if sk.any():  # masked rows get exactly 0, even where their softmax is not finite
                gb[sk] = 0

    run_row_blocks(n_rows, block, rows, threads=threads)


def _zero_weight_adds_zero(dot: np.ndarray, xb: np.ndarray, wb: np.ndarray, finite_max: np.ndarray) -> None:
    """Recompute, in place, the rows of ``dot = sum_c wb_c xb_c`` that came out non-finite,
    with a weight of 0 adding 0 even at an infinite logit (``0 * -inf`` would be NaN).  Rows
    holding ``+inf`` or NaN (``finite_max`` False) get their loss elsewhere; finite sums are
    left alone, so the common case costs one check of ``dot``."""
    redo = np.flatnonzero(~np.isfinite(dot) & finite_max)
    if redo.size:
        w = wb if wb.ndim == 1 else wb[redo]
        dot[redo] = np.sum(np.where(w == 0, 0, xb[redo]) * w, axis=1)


def _top_row_losses(
    hot: np.ndarray,
    s: RowConstants,
    dt: type,
    *,
    t: np.ndarray | None = None,
    rows: np.ndarray | None = None,
    wq: np.ndarray | None = None,
) -> np.ndarray:
    """Losses of the rows holding ``+inf`` (``hot`` marks those entries; the rows' integer
    targets ``t`` and indices ``rows``, or their weighted target probabilities ``wq``), at
    softmax's limit: the ``k`` entries at ``+inf`` share all the probability, so ``log p`` is
    ``-log k`` there and ``-inf`` elsewhere, and a target there costs ``log k`` and ``+inf``
    elsewhere -- the portable code's numbers."""
    log_k = np.log(hot.sum(axis=1, dtype=dt))
    C = hot.shape[1]
    log_p = np.where(hot, -log_k[:, None], dt(-np.inf))  # log softmax at the limit
    with np.errstate(invalid="ignore"):  # +inf and -inf weighted terms meet: NaN, as portable
        if wq is not None:
            loss = -np.sum(np.where(wq == 0, dt(0), log_p) * wq, axis=1)
        else:
            loss = -log_p[np.arange(len(t)), t]
            if s.w_t is not None:
                loss = s.w_t[rows] * loss
            if s.eps > 0:
                if s.w is None:
                    smooth = -np.sum(log_p, axis=1)
                else:
                    smooth = -np.sum(np.where(s.w == 0, dt(0), log_p) * s.w, axis=1)
                loss = dt(1.0 - s.eps) * loss + dt(s.eps / C) * smooth
        if s.z > 0:
            loss = loss + dt(np.inf)
    return loss
