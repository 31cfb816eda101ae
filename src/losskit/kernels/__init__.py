"""CPU kernels: cross-entropy fused with its gradient, and the chunk loop of linear
cross-entropy, in NumPy (and optionally numba), on row blocks shared between threads.

They import only :mod:`losskit.core` and NumPy/numba.  :func:`losskit.cross_entropy` and
:func:`losskit.linear_cross_entropy` reach them through :mod:`losskit.core.dispatch` for NumPy
arrays, and :mod:`losskit.torch` runs them on the memory of CPU tensors.

- :mod:`~losskit.kernels.cross_entropy` — :func:`fused_cross_entropy`, the row kernel;
- :mod:`~losskit.kernels.cross_entropy_numba` — the optional compiled row kernel;
- :mod:`~losskit.kernels.linear_cross_entropy` — the NumPy chunk loop;
- :mod:`~losskit.kernels.buffer_cache` — reuse of released gradient buffers;
- :mod:`~losskit.kernels.threads` — the thread pool and row blocks.
"""

from __future__ import annotations

from .buffer_cache import cached_bytes, clear_buffer_cache, get_buffer_cache, set_buffer_cache
from .cross_entropy import fused_cross_entropy, numba_available
from .threads import get_num_threads, set_num_threads

__all__ = [
    "fused_cross_entropy",
    "get_num_threads",
    "set_num_threads",
    "numba_available",
    "set_buffer_cache",
    "get_buffer_cache",
    "clear_buffer_cache",
    "cached_bytes",
]
