"""The NumPy chunk loop of linear cross-entropy: one reused (chunk, V) buffer, the fused row
kernel in place, and the three matrix products of the layer's forward and backward.

:func:`chunk_sweep_fast_path` is the ``("linear_cross_entropy_chunks", "numpy")`` fast path of
:func:`losskit.linear_cross_entropy`; the torch autograd Function runs
:func:`numpy_chunk_sweep` on CPU tensors' memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from ..core.specs import LinearCrossEntropySpec
from .blas import numpy_matmul_add
from .cross_entropy import RowConstants, compiled_passes, numpy_rows

__all__ = ["numpy_chunk_sweep", "chunk_sweep_fast_path", "FastestMatmul", "numpy_matmul"]


Matmul = Callable[[np.ndarray, np.ndarray, np.ndarray], object]


class FastestMatmul:
    """``matmul(a, b, out)`` by whichever of several implementations (e.g. NumPy's BLAS and
    PyTorch's, which can differ by 2x on the same CPU, and by product shape) is fastest for the
    product at hand.

    The choice is made per product (shapes, strides, dtype) on the first real uses: each
    candidate in turn computes ``samples`` of the products asked for (no extra work is done),
    and the one with the smallest time is kept for every later product of that kind in this
    process.  The smallest of several samples resists other load on the machine.

    Two libraries round differently, so while a product is being timed its results can differ
    in the last bits from call to call; products of fewer than ``min_flops`` multiply-adds
    (where the choice saves little) are never timed and always run on the first candidate,
    so small problems give the same bits every time."""

    def __init__(self, candidates: dict[str, Matmul], samples: int = 2, min_flops: int = 1 << 26) -> None:
        self.candidates = dict(candidates)
        self.samples = samples
        self.min_flops = min_flops
        self._first = next(iter(self.candidates))
        self._timings: dict[tuple, dict[str, list[float]]] = {}
        self._chosen: dict[tuple, str] = {}
        self._lock = threading.Lock()

    def choice(self, a: np.ndarray, b: np.ndarray) -> str | None:
        """The candidate chosen for this product, or None while it is still being timed."""
        return self._chosen.get(self._key(a, b))

    @staticmethod
    def _key(a: np.ndarray, b: np.ndarray) -> tuple:
        return (a.shape, a.strides, b.shape, b.strides, a.dtype.str)

    def __call__(self, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
        if a.shape[0] * a.shape[1] * b.shape[1] < self.min_flops:
            self.candidates[self._first](a, b, out)
            return
        key = self._key(a, b)
        name = self._chosen.get(key)
        if name is not None:
            self.candidates[name](a, b, out)
            return
        with self._lock:
            times = self._timings.setdefault(key, {n: [] for n in self.candidates})
            name = min(times, key=lambda n: len(times[n]))  # the least timed candidate
        t0 = time.perf_counter()
        self.candidates[name](a, b, out)
        elapsed = time.perf_counter() - t0
        with self._lock:
            times[name].append(elapsed)
            if all(len(t) >= self.samples for t in times.values()):
                self._chosen[key] = min(times, key=lambda n: min(times[n]))


def numpy_matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    np.matmul(a, b, out=out)


def chunk_sweep_fast_path(
    x2: object,
    w: object,
    b: object,
    safe_t: object,
    valid: object,
    row_scale: object,
    spec: LinearCrossEntropySpec,
    need: tuple[bool, bool, bool],
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None] | None:
    """The NumPy chunk loop for plain ``ndarray`` inputs; declines (None) anything else."""
    if not all(type(a) is np.ndarray for a in (x2, w) + (() if b is None else (b,))):
        return None
    return numpy_chunk_sweep(
        x2, w, b, np.asarray(safe_t), np.asarray(valid), np.asarray(row_scale), spec, need
    )


def numpy_chunk_sweep(
    x2: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    safe_t: np.ndarray,
    valid: np.ndarray,
    row_scale: np.ndarray,
    spec: LinearCrossEntropySpec,
    need: tuple[bool, bool, bool],
    out: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None] | None = None,
    matmul: Matmul | None = None,
    matmul_add: Matmul | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """The chunk loop for NumPy (and, through shared memory, CPU PyTorch tensors): the same
    arguments and results as :func:`losskit.losses.linear_cross_entropy.chunk_sweep`.

    One (chunk, V) buffer is reused for every chunk: the logits are written into it by one
    matrix product, the row kernel of :mod:`losskit.kernels.cross_entropy` turns them into the
    gradient in place, and two more matrix products fold it into the input's and the
    weight's gradients.  ``out`` optionally supplies preallocated ``(grad_input,
    grad_weight, grad_bias)`` arrays (any may be None); ``matmul(a, b, out)`` does the matrix
    products (default NumPy's; e.g. a :class:`FastestMatmul` over NumPy's and PyTorch's) and
    ``matmul_add(a, b, out)`` the accumulating ones, ``out += a @ b`` (default
    :func:`.blas.numpy_matmul_add`).

    Beyond the three products each chunk costs two compiled passes over its logits (float32
    with numba; NumPy's five otherwise).  After the first chunk the weight gradient's product
    accumulates, ``gw += G_c^T x_c``, inside BLAS (``beta = 1``) instead of through a
    temporary and an addition.  The products dominate: ``benchmarks/run.py`` measures the
    loop against the time of its three products alone (the matmul floor).
    """
    eps, z, cap, chunk = spec.label_smoothing, spec.z_loss, spec.softcap, spec.chunk
    n, d = x2.shape
    v = w.shape[0]
    dtype = x2.dtype
    need_any = any(need)
    out = out or (None, None, None)
    buf = np.empty((min(chunk, n), v), dtype=dtype)
    deriv = np.empty_like(buf) if cap is not None and need_any else None
    gx = (out[0] if out[0] is not None else np.empty((n, d), dtype=dtype)) if need[0] else None
    gw = (out[1] if out[1] is not None else np.empty((v, d), dtype=dtype)) if need[1] else None
    gb = (out[2] if out[2] is not None else np.empty(v, dtype=dtype)) if need[2] else None
    row_loss = np.empty(n, dtype=dtype)
    wt = w.T
    mm = matmul or numpy_matmul
    mm_add = matmul_add or numpy_matmul_add
    fast = compiled_passes(dtype, v)
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        xc = x2[lo:hi]
        lb = buf[: hi - lo]
        mm(xc, wt, lb)
        if b is not None:
            np.add(lb, b, out=lb)
        if cap is not None:
            np.multiply(lb, dtype.type(1.0 / cap), out=lb)
            np.tanh(lb, out=lb)
            if deriv is not None:  # d(c tanh(z/c))/dz = 1 - tanh^2, kept for after the softmax
                db = deriv[: hi - lo]
                np.multiply(lb, lb, out=db)
                np.subtract(dtype.type(1.0), db, out=db)
            np.multiply(lb, dtype.type(cap), out=lb)
        constants = RowConstants(
            num_classes=v,
            inv_t=1.0,
            eps=eps,
            z=z,
            w=None,
            w_total=float(v),
            safe_t=safe_t[lo:hi],
            w_t=None,
            q=None,
            row_scale=row_scale[lo:hi],
            skip=~valid[lo:hi],
        )
        numpy_rows(lb, lb if need_any else None, row_loss[lo:hi], constants, fast)
        if not need_any:
            continue
        if deriv is not None:
            np.multiply(lb, deriv[: hi - lo], out=lb)
        if need[0]:
            mm(lb, w, gx[lo:hi])
        if need[1]:
            if lo == 0:
                mm(lb.T, xc, gw)
            else:
                mm_add(lb.T, xc, gw)
        if need[2]:
            if lo == 0:
                np.sum(lb, axis=0, out=gb)
            else:
                gb += lb.sum(axis=0)
    return row_loss, gx, gw, gb
