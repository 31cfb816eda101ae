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

The cache holds at most ``max_bytes`` of released buffers (default 4 GiB; 0 disables it) and
only buffers of at least 32 MiB, below which fresh pages are cheap.
"""

from __future__ import annotations

import math
import threading
import weakref

import numpy as np

__all__ = ["empty", "set_buffer_cache", "get_buffer_cache", "clear_buffer_cache", "cached_bytes"]

_MIN_BYTES = 32 << 20

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


def empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    """Like ``np.empty(shape, dtype)``, reusing a released buffer of the same size if one is
    cached.  The contents are arbitrary."""
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < _MIN_BYTES or _max_bytes == 0 or dtype.hasobject:
        return np.empty(shape, dtype)
    raw = None
    with _lock:
        for i in range(len(_spare) - 1, -1, -1):  # the most recently released first
            if _spare[i].nbytes == nbytes:
                raw = _spare.pop(i)
                break
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


def cached_bytes() -> int:
    """Bytes currently held by released buffers waiting for reuse."""
    return sum(raw.nbytes for raw in _spare)


def clear_buffer_cache() -> None:
    """Free every cached buffer (the limit is unchanged)."""
    with _lock:
        _evict_locked(0)
