"""The threads the CPU kernels share: a small pool, and row blocks handed out to it.

NumPy's ufuncs release the GIL, so two threads working on different row blocks really run at
once.  The pool holds ``get_num_threads() - 1`` workers; the calling thread is the other one.

Robustness: a forked child (``os.fork``, a ``multiprocessing`` pool with the fork start method)
starts a pool of its own on its first call; an exception in any thread's share of the blocks
(or Ctrl-C in the calling thread) stops the other threads after their current block and
reaches the caller as itself; ``set_num_threads`` may be called while other threads compute.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["get_num_threads", "set_num_threads", "run_row_blocks", "block_rows", "PARALLEL_MIN_ELEMENTS"]

# rows per block are chosen so that one block of float32 logits is about this many bytes:
# small enough to stay in a 1-2 MiB L2 cache between the passes over it
_BLOCK_BYTES = 1 << 20
# below this many elements a second thread costs more than it saves
PARALLEL_MIN_ELEMENTS = 1 << 18

_num_threads = max(1, min(2, os.cpu_count() or 1))
_pool: ThreadPoolExecutor | None = None
# guards _pool and _num_threads; work is submitted to the pool only while it is held, so a pool
# that set_num_threads has replaced never receives new work (its queued work still runs)
_pool_lock = threading.Lock()


def _forget_pool_after_fork() -> None:
    """In a forked child: the parent's pool object came along, its threads did not (work
    submitted to it would wait forever), and the lock may have been held by a thread that
    does not exist here.  Start afresh; the next call makes a new pool."""
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows, which cannot fork
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def get_num_threads() -> int:
    """The number of threads the fused kernels use (default: 2, or 1 on a 1-core machine)."""
    return _num_threads


def set_num_threads(n: int) -> None:
    """Set the number of threads the fused kernels use (>= 1).

    Safe while other threads run kernels: calls already running finish on the threads they
    started with; later calls use ``n``."""
    global _num_threads, _pool
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int; got {n!r}")
    with _pool_lock:
        if n != _num_threads and _pool is not None:
            old, _pool = _pool, None
            # no new work reaches ``old`` (submissions happen under this lock); its threads run
            # what was already queued and then exit
            old.shutdown(wait=False)
        _num_threads = n


def block_rows(row_length: int, itemsize: int) -> int:
    """Rows per block: about 1 MiB of rows of ``row_length`` items of ``itemsize`` bytes."""
    return max(1, _BLOCK_BYTES // max(1, row_length * itemsize))


def _submit(worker: Callable[[int], None], helpers: int) -> list[Future]:
    """Queue ``worker(1)`` .. ``worker(helpers)`` on the pool (created on first use)."""
    global _pool
    futures: list[Future] = []
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max(1, _num_threads - 1), thread_name_prefix="losskit")
        try:
            for k in range(1, helpers + 1):
                futures.append(_pool.submit(worker, k))
        except RuntimeError:  # the interpreter is shutting down: the caller does the rest alone
            pass
    return futures


def _wait(futures: list[Future], stop: list[bool], error: BaseException | None) -> BaseException | None:
    """Wait until no helper runs any more; the first error (``error``, else a helper's)."""
    for f in futures:
        if f.cancel():  # still queued (the pool is busy with other calls): it will never run
            continue
        while True:
            try:
                exc = f.exception()  # waits; a helper's own error is returned, not raised
                break
            except BaseException as interrupt:  # this thread was interrupted while waiting
                stop.append(True)  # the helpers stop after their current block
                if error is None:
                    error = interrupt
        if error is None and exc is not None:
            error = exc
    return error


def run_row_blocks(
    n_rows: int,
    block: int,
    fn: Callable[[int, int, int], None],
    threads: int | None = None,
    parallel: bool = True,
) -> None:
    """Call ``fn(lo, hi, worker)`` over consecutive row blocks, shared dynamically between
    threads (``worker`` is 0..threads-1, for per-thread scratch buffers).

    The calling thread is worker 0.  If any ``fn`` call raises (or the calling thread is
    interrupted, e.g. by Ctrl-C), no thread starts another block, every thread's current block
    is waited for, and that first exception is raised here, as itself."""
    n_blocks = -(-n_rows // block)
    threads = _num_threads if threads is None else threads
    threads = min(threads, n_blocks) if parallel else 1
    if threads <= 1:
        for b in range(n_blocks):
            fn(b * block, min(n_rows, (b + 1) * block), 0)
        return
    counter = itertools.count()  # next() on a count is atomic under the GIL
    stop: list[bool] = []  # non-empty once a thread failed: a list, so append is atomic

    def worker(k: int) -> None:
        try:
            while not stop:
                b = next(counter)
                if b >= n_blocks:
                    return
                fn(b * block, min(n_rows, (b + 1) * block), k)
        except BaseException:
            stop.append(True)
            raise

    futures: list[Future] = []
    error: BaseException | None = None
    try:
        futures = _submit(worker, threads - 1)
        worker(0)
    except BaseException as exc:  # an error in this thread's share, or an interrupt
        stop.append(True)
        error = exc
    error = _wait(futures, stop, error)
    if error is not None:
        try:
            raise error
        finally:  # no reference cycle through this frame
            error = None
