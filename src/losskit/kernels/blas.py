"""``out += a @ b`` in one BLAS call, on the BLAS NumPy itself runs.

The chunk loops of linear cross-entropy and of the log-probs add each chunk's weight gradient
``G_c^T x_c`` into one ``(V, D)`` array.  ``np.matmul`` cannot accumulate into its output, so
without this module the product goes through a temporary and ``np.add`` reads and writes the
gradient once more per chunk.  BLAS's ``gemm`` computes ``C = alpha A B + beta C``: with
``beta = 1`` the sum is made inside the product, with no temporary and no extra pass.

:func:`numpy_matmul_add` is the one ``out += a @ b`` both loops call: :func:`gemm_add` where it
can, else :func:`blocked_matmul_add` (the temporary and the addition).

NumPy's wheels bundle OpenBLAS (``scipy-openblas``, symbols ``scipy_cblas_?gemm64_``, 64-bit
integers).  :func:`gemm_add` loads that same library -- the one ``np.matmul`` calls, with its
thread count and kernel choice -- through :mod:`ctypes`.  Where it is not found (NumPy built
against another BLAS, Accelerate on macOS, ``LOSSKIT_DISABLE_BLAS=1``) :func:`gemm_add`
returns None and the loops keep the temporary.
"""

from __future__ import annotations

import ctypes
import glob
import os
from collections.abc import Callable
from functools import cache

import numpy as np

__all__ = ["gemm_add", "blas_library", "numpy_matmul_add", "blocked_matmul_add"]

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
# (symbol, 64-bit integers): NumPy >= 2 wheels, then older ILP64 and LP64 builds
_SYMBOLS = (
    ("scipy_cblas_{t}gemm64_", True),
    ("cblas_{t}gemm64_", True),
    ("scipy_cblas_{t}gemm", False),
    ("cblas_{t}gemm", False),
)

GemmAdd = Callable[[np.ndarray, np.ndarray, np.ndarray], bool]

# without a BLAS to accumulate in, out += a @ b goes through a temporary of about this many bytes
# (a block of out's rows): small next to the outputs, large enough for efficient BLAS
_ACCUMULATE_BYTES = 4 << 20


@cache
def blas_library() -> str | None:
    """Path of the OpenBLAS that NumPy's wheel bundles, or None."""
    if os.environ.get("LOSSKIT_DISABLE_BLAS", "") not in ("", "0"):
        return None
    root = os.path.dirname(os.path.dirname(np.__file__))
    patterns = (
        os.path.join(root, "numpy.libs", "*openblas*"),  # Linux, Windows wheels
        os.path.join(os.path.dirname(np.__file__), ".dylibs", "*openblas*"),  # macOS wheels
    )
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            if path.endswith((".so", ".dylib", ".dll")) or ".so." in path:
                return path
    return None


@cache
def _gemm(dtype_char: str):
    """The ctypes ``cblas_?gemm`` of NumPy's OpenBLAS for ``'f'``/``'d'``, and its integer
    type; None when unavailable."""
    path = blas_library()
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(path)  # already loaded by NumPy: the same handle, the same threads
    except OSError:
        return None
    t = {"f": "s", "d": "d"}[dtype_char]
    scalar = ctypes.c_float if dtype_char == "f" else ctypes.c_double
    for template, ilp64 in _SYMBOLS:
        fn = getattr(lib, template.format(t=t), None)
        if fn is None:
            continue
        idx = ctypes.c_int64 if ilp64 else ctypes.c_int
        ptr = ctypes.c_void_p
        fn.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            idx,
            idx,
            idx,
            scalar,
            ptr,
            idx,
            ptr,
            idx,
            scalar,
            ptr,
            idx,
        ]
        fn.restype = None
        return fn
    return None


def _layout(m: np.ndarray) -> tuple[int, int] | None:
    """(transpose flag, leading dimension) describing a 2-D array to row-major cblas, or None
    when neither its rows nor its columns are contiguous."""
    rows, cols = m.shape
    if any(st % m.itemsize for st in m.strides):
        return None
    s0, s1 = (st // m.itemsize for st in m.strides)
    # a stride along an axis of length 1 is never followed: only the other one matters
    if (s1 == 1 or cols <= 1) and (s0 >= cols or rows <= 1):
        return _NO_TRANS, max(1, cols, s0 if rows > 1 else 0)
    if (s0 == 1 or rows <= 1) and (s1 >= rows or cols <= 1):  # a row-major array's transpose
        return _TRANS, max(1, rows, s1 if cols > 1 else 0)
    return None


def gemm_add(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> bool:
    """``out += a @ b`` by one BLAS ``gemm`` with ``beta = 1``; returns False (and leaves
    ``out`` untouched) when it cannot: no bundled BLAS, a dtype other than float32/float64,
    mixed dtypes, or a layout BLAS cannot take without a copy."""
    dtype = out.dtype
    if dtype not in (np.float32, np.float64) or a.dtype != dtype or b.dtype != dtype:
        return False
    if a.ndim != 2 or b.ndim != 2 or out.ndim != 2:
        return False
    m, k = a.shape
    n = b.shape[1]
    if b.shape[0] != k or out.shape != (m, n):
        raise ValueError(f"gemm_add: shapes {a.shape} @ {b.shape} do not give {out.shape}")
    fn = _gemm(dtype.char)
    la, lb_, lc = _layout(a), _layout(b), _layout(out)
    if fn is None or la is None or lb_ is None or lc is None or lc[0] != _NO_TRANS:
        return False
    if not out.flags.writeable:
        return False
    if m == 0 or n == 0 or k == 0:
        return True
    one = 1.0
    fn(
        _ROW_MAJOR,
        la[0],
        lb_[0],
        m,
        n,
        k,
        one,
        a.ctypes.data,
        la[1],
        b.ctypes.data,
        lb_[1],
        one,
        out.ctypes.data,
        lc[1],
    )
    return True


def numpy_matmul_add(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``out += a @ b``: one BLAS ``gemm`` with ``beta = 1`` on NumPy's own BLAS where it is
    reachable (:func:`gemm_add`), else :func:`blocked_matmul_add`."""
    if not gemm_add(a, b, out):
        blocked_matmul_add(a, b, out)


def blocked_matmul_add(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``out += a @ b`` through a temporary of at most ``_ACCUMULATE_BYTES``: block by block of
    ``out``'s rows, a product into the temporary and an addition (one more read and write of
    ``out`` than a product that accumulates)."""
    rows = max(1, min(out.shape[0], _ACCUMULATE_BYTES // max(1, out.shape[1] * out.itemsize)))
    tmp = np.empty((rows, out.shape[1]), dtype=out.dtype)
    for r0 in range(0, out.shape[0], rows):
        r1 = min(out.shape[0], r0 + rows)
        tb = tmp[: r1 - r0]
        np.matmul(a[r0:r1], b, out=tb)
        np.add(out[r0:r1], tb, out=out[r0:r1])
