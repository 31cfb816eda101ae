"""Where the fast paths live: the table behind :mod:`losskit.core.dispatch`.

Each row names an operation, the array library it serves (as
:func:`losskit.core.backend.library_name` spells it) and the ``"module:function"`` that
implements it.  Nothing is imported here: a module is imported the first time an array of its
library asks for its operation, so ``import losskit`` loads no framework.

A loss's fast path takes the loss's validated spec (:mod:`losskit.core.specs`) and its arrays,
and returns ``(value, grads)`` or declines with ``None``; see each function for what it declines.
Adding a backend's fast path is a row here and a function in its package; no loss changes.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from typing import Any

from .core.dispatch import load_fast_paths, register_fast_path

__all__ = ["FAST_PATHS", "load_for_tracing"]

FAST_PATHS: dict[tuple[str, str], str] = {
    # the losses
    ("cross_entropy", "numpy"): "losskit.kernels.cross_entropy:cross_entropy_fast_path",
    ("cross_entropy", "torch"): "losskit.torch.functional:cross_entropy_fast_path",
    ("cross_entropy", "jax"): "losskit.jax.functional:cross_entropy_fast_path",
    ("linear_cross_entropy", "torch"): "losskit.torch.functional:linear_cross_entropy_fast_path",
    ("linear_cross_entropy", "jax"): "losskit.jax.functional:linear_cross_entropy_fast_path",
    # the chunk loop inside the portable linear cross-entropy
    ("linear_cross_entropy_chunks", "numpy"): "losskit.kernels.linear_cross_entropy:chunk_sweep_fast_path",
    ("linear_log_probs", "torch"): "losskit.torch.log_probs:linear_log_probs_fast_path",
    ("linear_log_probs", "jax"): "losskit.jax.log_probs:linear_log_probs_fast_path",
    ("linear_distillation", "torch"): "losskit.torch.log_probs:linear_distillation_fast_path",
    ("linear_distillation", "jax"): "losskit.jax.log_probs:linear_distillation_fast_path",
    ("linear_log_probs_chunks", "numpy"): "losskit.kernels.linear_log_probs:log_prob_sweep_fast_path",
    ("linear_log_probs_chunks", "torch"): "losskit.torch.log_probs:log_prob_chunks_fast_path",
    ("linear_preference", "torch"): "losskit.torch.linear_preference:linear_preference_fast_path",
    # primitives the core needs from each framework
    ("stop_gradient", "torch"): "losskit.torch.ops:stop_gradient",
    ("is_concrete", "torch"): "losskit.torch.ops:is_concrete",
    ("namespace", "torch"): "losskit.torch.ops:namespace",
    ("device_scope", "torch"): "losskit.torch.ops:device_scope",
    ("stop_gradient", "jax"): "losskit.jax.ops:stop_gradient",
    ("scan", "jax"): "losskit.jax.ops:scan",
}

for (operation, library), target in FAST_PATHS.items():
    register_fast_path(operation, library, target)

# the libraries whose graph compiler traces losskit's Python code but cannot follow an import
_TRACED_WITHOUT_IMPORTS = ("torch",)


def load_for_tracing() -> None:
    """Load the fast paths of the libraries whose graph compiler traces losskit's Python code
    but cannot follow an import (``torch.compile``), so that even a first call made under the
    compiler finds them as plain lookups (a few milliseconds): now for those already imported,
    else right after the library's own import (called at the end of ``import losskit``;
    importing :mod:`losskit.torch` loads them too)."""
    later = [name for name in _TRACED_WITHOUT_IMPORTS if name not in sys.modules]
    for library in _TRACED_WITHOUT_IMPORTS:
        if library in sys.modules:
            load_fast_paths(library)
    if later and not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(later))


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: when one of ``libraries`` is first imported, it wraps the loader
    found by the other finders so that the library's fast paths are loaded once it has run."""

    def __init__(self, libraries: list[str]) -> None:
        self.pending = set(libraries)

    def find_spec(self, name: str, path: object = None, target: object = None) -> Any:
        if name not in self.pending:
            return None
        self.pending.discard(name)
        spec = importlib.util.find_spec(name)
        loader = None if spec is None else spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            try:
                load_fast_paths(name)
            except (ImportError, AttributeError):  # a module still being imported: loads itself
                pass

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec
