"""A small cache of large gradient buffers, so that repeated calls reuse memory.

A fresh multi-gigabyte NumPy array costs the kernel a page fault and a zeroing for every page
the first time it is written -- on the benchmark machine about 80 ms per GiB, more than half
the work of a fused cross-entropy step.  A training loop asks for a buffer of the same size on
every step and releases the previous one shortly before, so keeping the released buffer and
handing it out again removes that cost.  PyTorch's CUDA allocator and XLA's allocator do the
same.

How a release is noticed: the array handed out is a view of a small ``_Lease`` object that owns
the raw memory.  Every view of the array (including a ``torch.from_numpy`` tensor of it) keeps
the lease alive; when the last one is gone the lease is collected and a ``weakref.finalize``
puts the raw memory back in the cache.  Memory is therefore never reused while anything can
still see it.

Which buffer serves a request: the smallest released one that holds it (the same size first,
so a steady loop gets its own buffer back), its front handed out as the array.  So a batch
shape that changes every step (dynamic padding, a short last batch) is served from the larger
buffers of earlier steps.  When no released buffer is large enough, every released one is
smaller than what the loop needs now: they are dropped before the new buffer is allocated.
Between two such allocations the buffers only move between the caller and the cache, so the
cache and the caller together never own more buffers than the caller held at once when the
last one was allocated (a loop that keeps one step's gradient while computing the next: two),
each no larger than the largest request -- never a collection of sizes that cannot be reused.

The cache holds at most ``max_bytes`` of released buffers (default 4 GiB; 0 disables it) and
only buffers of at least 4 MiB.  Below that a fresh buffer's pages cost little; above it they
do not: where the allocator hands large buffers back to the system (as the benchmarks run it,
``MALLOC_MMAP_THRESHOLD_=131072``), a 4096 x 1000 float32 cross-entropy step through the
torch Function took 3.1 ms with a fresh 16 MiB gradient and 2.1 ms with a cached one
(``benchmarks/RESULTS.md``, the "no cache" row measured in the same run).
"""

from __future__ import annotations

import math
import os
import threading
import weakref

import numpy as np

__all__ = ["empty", "set_buffer_cache", "get_buffer_cache", "clear_buffer_cache", "cached_bytes"]

_MIN_BYTES = 4 << 20

# re-entrant: a collected lease's finalizer may run in a thread that already holds the lock
_lock = threading.RLock()
_max_bytes = 4 << 30
_spare: list[np.ndarray] = []  # released raw buffers, oldest first


class _Lease:
    """Owns one raw buffer while arrays handed out from it are alive."""

    __slots__ = ("__array_interface__", "raw", "__weakref__")

    def __init__(self, raw: np.ndarray, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.raw = raw
        self.__array_interface__ = {
            "shape": shape,
            "typestr": dtype.str,
            "descr": dtype.descr,
            "data": (raw.ctypes.data, False),
            "strides": None,
            "version": 3,
        }


def _evict_locked(limit: int) -> None:
    """Drop the oldest released buffers until at most ``limit`` bytes are cached."""
    while _spare and cached_bytes() > limit:
        del _spare[0]


def _give_back(raw: np.ndarray) -> None:
    with _lock:
        if raw.nbytes > _max_bytes:
            return
        _evict_locked(_max_bytes - raw.nbytes)
        _spare.append(raw)


def _take_locked(nbytes: int) -> np.ndarray | None:
    """The smallest released buffer of at least ``nbytes`` (the most recently released among
    equals), out of the cache; with none large enough, drop them all and return None."""
    best = None
    for raw in reversed(_spare):  # the most recently released first
        size = raw.nbytes
        if size >= nbytes and (best is None or size < best.nbytes):
            best = raw
            if size == nbytes:
                break
    if best is None:
        _spare.clear()
        return None
    for i, raw in enumerate(_spare):  # by identity: == on arrays compares their elements
        if raw is best:
            del _spare[i]
            break
    return best


def empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    """Like ``np.empty(shape, dtype)``, reusing a released buffer at least as large if one is
    cached (the smallest such).  The contents are arbitrary."""
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < _MIN_BYTES or _max_bytes == 0 or dtype.hasobject:
        return np.empty(shape, dtype)
    with _lock:
        raw = _take_locked(nbytes)
    if raw is None:
        raw = np.empty(nbytes, np.uint8)
    lease = _Lease(raw, shape, dtype)
    weakref.finalize(lease, _give_back, raw).atexit = False  # nothing to give back at exit
    return np.asarray(lease)


def set_buffer_cache(max_bytes: int) -> None:
    """Keep up to ``max_bytes`` of released gradient buffers for reuse (default 4 GiB).

    The fused cross-entropy's gradient (NumPy and the torch Function on CPU) is allocated
    through this cache.  0 disables it and frees what is cached.
    """
    global _max_bytes
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise ValueError(f"max_bytes must be a non-negative int; got {max_bytes!r}")
    with _lock:
        _max_bytes = max_bytes
        _evict_locked(max_bytes)


def get_buffer_cache() -> int:
    """The cache's limit in bytes (see :func:`set_buffer_cache`)."""
    return _max_bytes


def _forget_lock_after_fork() -> None:
    """In a forked child the lock may be held by a thread that does not exist there."""
    global _lock
    _lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_lock_after_fork)


def cached_bytes() -> int:
    """Bytes currently held by released buffers waiting for reuse."""
    return sum(raw.nbytes for raw in _spare)


def clear_buffer_cache() -> None:
    """Free every cached buffer (the limit is unchanged)."""
    with _lock:
        _evict_locked(0)
