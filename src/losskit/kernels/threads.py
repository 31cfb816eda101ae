"""The threads the CPU kernels share: a small pool, and row blocks handed out to it.

NumPy's ufuncs release the GIL, so two threads working on different row blocks really run at
once.  The pool holds ``get_num_threads() - 1`` workers; the calling thread is the other one.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

__all__ = ["get_num_threads", "set_num_threads", "run_row_blocks", "block_rows", "PARALLEL_MIN_ELEMENTS"]

# rows per block are chosen so that one block of float32 logits is about this many bytes:
# small enough to stay in a 1-2 MiB L2 cache between the passes over it
_BLOCK_BYTES = 1 << 20
# below this many elements a second thread costs more than it saves
PARALLEL_MIN_ELEMENTS = 1 << 18

_num_threads = max(1, min(2, os.cpu_count() or 1))
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def get_num_threads() -> int:
    """The number of threads the fused kernels use (default: 2, or 1 on a 1-core machine)."""
    return _num_threads


def set_num_threads(n: int) -> None:
    """Set the number of threads the fused kernels use (>= 1)."""
    global _num_threads, _pool
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int; got {n!r}")
    with _pool_lock:
        if n != _num_threads and _pool is not None:
            _pool.shutdown(wait=True)
            _pool = None
        _num_threads = n


def block_rows(row_length: int, itemsize: int) -> int:
    """Rows per block: about 1 MiB of rows of ``row_length`` items of ``itemsize`` bytes."""
    return max(1, _BLOCK_BYTES // max(1, row_length * itemsize))


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max(1, _num_threads - 1), thread_name_prefix="losskit")
        return _pool


def run_row_blocks(
    n_rows: int,
    block: int,
    fn: Callable[[int, int, int], None],
    threads: int | None = None,
    parallel: bool = True,
) -> None:
    """Call ``fn(lo, hi, worker)`` over consecutive row blocks, shared dynamically between
    threads (``worker`` is 0..threads-1, for per-thread scratch buffers)."""
    n_blocks = -(-n_rows // block)
    threads = _num_threads if threads is None else threads
    threads = min(threads, n_blocks) if parallel else 1
    if threads <= 1:
        for b in range(n_blocks):
            fn(b * block, min(n_rows, (b + 1) * block), 0)
        return
    counter = itertools.count()  # next() on a count is atomic under the GIL

    def worker(k: int) -> None:
        while True:
            b = next(counter)
            if b >= n_blocks:
                return
            fn(b * block, min(n_rows, (b + 1) * block), k)

    pool = _get_pool()
    futures = [pool.submit(worker, k) for k in range(1, threads)]
    error = None
    try:
        worker(0)
    except BaseException as exc:  # drain the other workers before re-raising
        error = exc
        counter = iter(())  # type: ignore[assignment]
    for f in futures:
        f.result()
    if error is not None:
        raise error
