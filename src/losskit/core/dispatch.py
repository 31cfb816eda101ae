"""The one seam to the fast paths.

A fast path is a faster implementation of one operation for the arrays of one library: the
row-blocked NumPy kernels of :mod:`losskit.kernels`, the autograd Functions of
:mod:`losskit.torch`, the custom-derivative functions of :mod:`losskit.jax`, or a primitive such
as ``stop_gradient`` that each framework spells its own way.  Each is registered here under
``(operation, library)`` with the ``"module:function"`` that implements it (the table is
:mod:`losskit.fast_paths`); the module is imported the first time an array of that library asks
for it.  So ``import losskit`` imports no framework, and the core and the losses never name one.

A loss's fast path takes the loss's validated specification and its arrays and either returns
the result or declines by returning ``None`` (a dtype, device, autograd state or requested
gradient it does not handle); the portable array-API code then runs.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

__all__ = [
    "register_fast_path",
    "fast_path",
    "load_fast_paths",
    "run_fast_path",
    "dispatch",
    "registered_fast_paths",
]

# (operation, library) -> "package.module:function"
_TARGETS: dict[tuple[str, str], str] = {}
# (operation, library) -> the function, once imported
_LOADED: dict[tuple[str, str], Callable[..., Any]] = {}


def register_fast_path(operation: str, library: str, target: str) -> None:
    """Make ``target`` (``"package.module:function"``) the fast path of ``operation`` for the
    arrays of ``library`` (as :func:`losskit.core.backend.library_name` names it).  Nothing is
    imported until an array of that library asks for it; a later registration replaces an
    earlier one."""
    module, sep, attr = target.partition(":")
    if not (operation and library and module and sep and attr):
        raise ValueError(f"a fast path is registered as operation, library, 'module:function'; got "
                         f"{operation!r}, {library!r}, {target!r}")
    _TARGETS[(operation, library)] = target
    _LOADED.pop((operation, library), None)


def fast_path(operation: str, library: str) -> Callable[..., Any] | None:
    """The fast path of ``operation`` for ``library`` (its module imported on first use), or
    ``None`` when there is none."""
    key = (operation, library)
    function = _LOADED.get(key)
    if function is None:
        target = _TARGETS.get(key)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        # an imported module is read from sys.modules: a graph compiler tracing this call
        # (torch.compile) can follow a dictionary lookup, not importlib
        loaded = sys.modules.get(module)
        function = _LOADED[key] = getattr(loaded or importlib.import_module(module), attr)
    return function


def load_fast_paths(library: str) -> None:
    """Import now every fast path registered for ``library`` (a module that cannot be imported,
    e.g. for want of an optional compiler, is left to its first use).

    For a library whose graph compiler traces through losskit's Python code and cannot follow
    an import (``torch.compile``): loaded before the first trace, the fast paths are plain
    function lookups inside it.
    """
    for (operation, lib) in list(_TARGETS):
        if lib == library:
            try:
                fast_path(operation, lib)
            except (ImportError, AttributeError):  # e.g. its module is still being imported
                pass


def registered_fast_paths() -> dict[tuple[str, str], str]:
    """Every registration: ``(operation, library) -> "module:function"``."""
    return dict(_TARGETS)


def run_fast_path(operation: str, library: str, *args: Any, **kwargs: Any) -> Any:
    """Call the fast path of ``operation`` for ``library`` with the given arguments; ``None``
    when there is none or it declines (the caller then runs its portable code)."""
    function = fast_path(operation, library)
    return None if function is None else function(*args, **kwargs)


def dispatch(
    operation: str, library: str, portable: Callable[..., Any], xp: Any, spec: Any, arrays: Any, wrt: Any
) -> Any:
    """A loss with a validated ``spec``: its fast path for ``library`` when there is one that
    accepts ``(spec, arrays, wrt)``, else ``portable(xp, spec, arrays, wrt)``."""
    result = run_fast_path(operation, library, spec, arrays, wrt)
    return portable(xp, spec, arrays, wrt) if result is None else result
