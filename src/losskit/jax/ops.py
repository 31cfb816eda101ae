"""JAX's spelling of the primitives the core asks for through :mod:`losskit.core.dispatch`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

__all__ = ["stop_gradient", "scan"]


def stop_gradient(x: Any) -> Any:
    """``jax.lax.stop_gradient``: the ``("stop_gradient", "jax")`` fast path."""
    return jax.lax.stop_gradient(x)


def scan(body: Callable[..., Any], carry: Any, xs: tuple[Any, ...], *, reverse: bool = False) -> Any:
    """``jax.lax.scan``: the ``("scan", "jax")`` fast path of :func:`losskit.core.backend.scan`
    (one compiled step instead of an unrolled loop under ``jit``)."""
    return jax.lax.scan(body, carry, xs, reverse=reverse)
