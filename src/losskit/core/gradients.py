"""One gradient API for every loss.

A loss is written once as a function that computes its value and, on request, its analytic
gradients side by side (they share work: the softmax in cross-entropy's value is most of its
gradient).  :func:`loss_function` turns it into the plain public function, and
:func:`value_and_grad` / :func:`grad` ask it for the gradients.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec

from .backend import Array, device_scope

__all__ = ["LossResult", "loss_function", "has_gradient", "value_and_grad", "grad"]

P = ParamSpec("P")

# what a loss's implementation returns: its value and {positional argnum: analytic gradient}
LossResult = tuple[Array, dict[int, Array]]

# public function -> implementation taking ``wrt`` and returning ``(value, {argnum: grad})``
_IMPLEMENTATIONS: dict[Callable[..., Any], Callable[..., Any]] = {}


def loss_function(impl: Callable[P, LossResult]) -> Callable[P, Array]:
    """Make the public loss from an implementation with a keyword-only ``wrt`` parameter.

    ``impl(*args, wrt=frozenset(argnums), **kwargs)`` returns ``(value, grads)`` where ``grads``
    maps each requested positional argument index to the analytic gradient of the value (of
    its sum, for ``reduction="none"``).  The public function has the same signature and
    docstring without ``wrt``, and returns the value alone.  For a type checker it keeps the
    implementation's parameters (``wrt`` included, which callers leave alone).
    """
    signature = inspect.signature(impl)
    if "wrt" not in signature.parameters:
        raise TypeError(f"{impl.__name__} needs a keyword-only 'wrt' parameter")
    positional = [
        p.name
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]

    @functools.wraps(impl)
    def public(*args: Any, **kwargs: Any) -> Array:
        with device_scope(args[0] if args else None):
            return impl(*args, wrt=frozenset(), **kwargs)[0]

    public.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p for p in signature.parameters.values() if p.name != "wrt"],
        return_annotation="Array",
    )
    public.__annotations__ = {**impl.__annotations__, "return": "Array"}
    public.__annotations__.pop("wrt", None)
    public._positional = tuple(positional)  # type: ignore[attr-defined]
    # a loss over ``*params`` (the penalties) is differentiated with respect to any of them
    public._variadic = any(  # type: ignore[attr-defined]
        p.kind is p.VAR_POSITIONAL for p in signature.parameters.values()
    )
    _IMPLEMENTATIONS[public] = impl
    return public


def has_gradient(fn: Callable[..., Any]) -> bool:
    return fn in _IMPLEMENTATIONS


def value_and_grad(
    fn: Callable[P, Array], argnums: int | Sequence[int] = 0
) -> Callable[P, tuple[Array, Any]]:
    """Return a function computing ``fn``'s value and its analytic gradient.

    Args:
      fn: a losskit loss, e.g. ``losskit.cross_entropy``.
      argnums: index (or tuple of indices) of the positional argument(s) to differentiate with
        respect to; 0 is the prediction.

    Returns:
      ``f(*args, **kwargs) -> (value, grad)``, taking ``fn``'s parameters (a type checker
      sees ``fn``'s signature), where ``grad`` has the shape and array type of the
      argument (a tuple of gradients when ``argnums`` is a tuple).  For ``reduction="none"`` the
      gradient is that of the sum of the per-element losses.

    Example::

        loss, g = losskit.value_and_grad(losskit.mse)(y_hat, y)   # g = 2 (y_hat - y) / n
    """
    impl = _IMPLEMENTATIONS.get(fn)
    if impl is None:
        name = getattr(fn, "__name__", repr(fn))
        raise TypeError(f"{name} is not a losskit loss with an analytic gradient")
    many = not isinstance(argnums, int)
    nums = tuple(argnums) if many else (argnums,)  # type: ignore[arg-type]
    names = fn._positional  # type: ignore[attr-defined]
    variadic = getattr(fn, "_variadic", False)
    for n in nums:
        if isinstance(n, bool) or not isinstance(n, int) or not (0 <= n < len(names) or variadic and n >= 0):
            raise ValueError(f"argnums must index {fn.__name__}'s positional arguments {names}; got {n!r}")

    @functools.wraps(fn)
    def value_and_gradient(*args: Any, **kwargs: Any) -> tuple[Array, Any]:
        if variadic and max(nums) >= len(args):
            raise ValueError(
                f"argnums {max(nums)} is out of range: {fn.__name__} was given {len(args)} positional "
                "argument(s)"
            )
        value, grads = impl(*args, wrt=frozenset(nums), **kwargs)
        missing = [n for n in nums if n not in grads]
        if missing:
            raise ValueError(
                f"{fn.__name__} has no analytic gradient with respect to "
                + ", ".join(f"argument {n} ({names[n]})" for n in missing)
            )
        out = tuple(grads[n] for n in nums)
        return value, (out if many else out[0])

    return value_and_gradient


def grad(fn: Callable[P, Array], argnums: int | Sequence[int] = 0) -> Callable[P, Any]:
    """Like :func:`value_and_grad`, returning only the gradient."""
    vg = value_and_grad(fn, argnums)

    @functools.wraps(fn)
    def gradient(*args: Any, **kwargs: Any) -> Any:
        return vg(*args, **kwargs)[1]

    return gradient
