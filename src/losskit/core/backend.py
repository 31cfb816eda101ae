"""The one seam between losskit and array libraries.

Every public function resolves the namespace of its array arguments here, once, through
``array_api_compat``: NumPy, PyTorch, JAX, Dask, array-api-strict and anything else that speaks
the Python array API.  Low-precision floats are lifted to float32 for the arithmetic and the
results cast back, and value checks ask here whether an array is concrete (not a JAX tracer,
not a lazy Dask graph) before they look at its contents.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import array_api_compat
import numpy as np

from .dispatch import fast_path

Array = Any  # any array-API array; kept loose so every backend type-checks
Namespace = Any

__all__ = [
    "Array",
    "Namespace",
    "namespace",
    "library_name",
    "is_array",
    "is_concrete",
    "is_floating",
    "ignore_float_errors",
    "device_scope",
    "is_integer",
    "index_dtype",
    "compute_dtype",
    "lift",
    "cast",
    "finish",
    "stop_gradient",
    "scan",
]


def is_array(x: object) -> bool:
    """True for an array of any library that ``array_api_compat`` understands."""
    own = fast_path("namespace", library_name(x))
    if own is not None:  # the library tells (without array_api_compat's cached helpers)
        return own(x) is not None
    return array_api_compat.is_array_api_obj(x) and not isinstance(x, (int, float, complex, bool))


def library_name(x: object) -> str:
    """The name of the library an array comes from (``"numpy"``, ``"torch"``, ``"jax"``,
    ``"dask"``, ``"array_api_strict"``, ...): the key of its fast paths in
    :mod:`losskit.core.dispatch`."""
    module = type(x).__module__.split(".")[0]
    return {"jaxlib": "jax", "array_api_strict": "array_api_strict"}.get(module, module)


def namespace(**arrays: object) -> Namespace:
    """Return the array namespace shared by the named arrays (``None`` values are skipped).

    Raises ``TypeError`` naming the argument when one is not an array, or when the arrays come
    from different libraries (mixing NumPy and PyTorch in one call is almost always a bug).
    """
    present = {name: a for name, a in arrays.items() if a is not None}
    for name, a in present.items():
        if not is_array(a):
            raise TypeError(
                f"{name} must be an array (NumPy, PyTorch, JAX, Dask, array-api-strict, ...), "
                f"got {type(a).__name__}"
            )
    libraries = {name: library_name(a) for name, a in present.items()}
    if len(set(libraries.values())) > 1:
        described = ", ".join(f"{n} is {lib}" for n, lib in libraries.items())
        raise TypeError(f"all arrays in one call must come from the same library; got {described}")
    # a library may resolve its namespace itself (once, and traceable by its graph compiler)
    own = fast_path("namespace", next(iter(libraries.values()))) if libraries else None
    if own is not None:
        return own(next(iter(present.values())))
    try:
        return array_api_compat.array_namespace(*present.values())
    except TypeError as exc:  # e.g. torch tensors on two devices
        raise TypeError(f"arrays {', '.join(present)} cannot be used together: {exc}") from None


def _is_jax_tracer(x: object) -> bool:
    jax = sys.modules.get("jax")
    if jax is None or not array_api_compat.is_jax_array(x):
        return False
    return isinstance(x, jax.core.Tracer)


def is_concrete(x: object) -> bool:
    """True when ``x``'s values can be read now without tracing errors or lazy computation.

    JAX arrays are concrete unless they are tracers (inside ``jit``/``grad``); Dask arrays never
    are (reading them would compute the graph); a torch tensor is not while ``torch.compile``
    or ``torch.export`` traces, under ``torch.func`` transforms, or on the meta device or as a
    fake tensor (the ``"is_concrete"`` fast path of each library that can tell).  Value checks
    run only on concrete arrays.
    """
    if x is None:
        return False
    # a framework that traces its own arrays (torch.compile, torch.func, meta and fake tensors)
    # says so through its "is_concrete" fast path
    concrete = fast_path("is_concrete", library_name(x))
    if concrete is not None:
        return concrete(x)
    if array_api_compat.is_jax_array(x):
        return not _is_jax_tracer(x)
    if array_api_compat.is_dask_array(x):
        return False
    return not array_api_compat.is_lazy_array(x)


def ignore_float_errors(x: Array, **kinds: str) -> contextlib.AbstractContextManager[Any]:
    """``np.errstate(**kinds)`` (e.g. ``invalid="ignore"`` around an ``inf - inf`` that is
    replaced next) for arrays whose arithmetic NumPy does now (NumPy, array-api-strict); a
    no-op for the others, which do not warn (or, like Dask, compute later), and whose graph
    compilers (``torch.compile``) cannot enter NumPy's error state."""
    if library_name(x) in ("numpy", "array_api_strict"):
        return np.errstate(**kinds)
    return contextlib.nullcontext()


def device_scope(x: object) -> contextlib.AbstractContextManager[Any]:
    """A context in which arrays that the losses create without naming a device (an
    ``arange`` of class indices, a mask) land on ``x``'s device, for a library that can scope
    it (torch tensors off the CPU -- meta, CUDA: their ``"device_scope"`` fast path); a no-op
    otherwise."""
    scope = fast_path("device_scope", library_name(x))
    return contextlib.nullcontext() if scope is None else scope(x)


def is_floating(xp: Namespace, x: Array) -> bool:
    return xp.isdtype(x.dtype, "real floating")


def is_integer(xp: Namespace, x: Array) -> bool:
    return xp.isdtype(x.dtype, "integral")


def index_dtype(xp: Namespace) -> object:
    """The library's default integer dtype for indices: int64, but int32 for JAX without
    ``jax_enable_x64`` (asking JAX for int64 there truncates with a warning)."""
    info = getattr(xp, "__array_namespace_info__", None)
    if info is not None:
        try:
            return info().default_dtypes()["indexing"]
        except (AttributeError, KeyError, TypeError):
            pass
    return xp.int64


def _is_low_precision(xp: Namespace, dtype: object) -> bool:
    # compare by name: bfloat16 is not in the standard, some namespaces lack float16, and
    # NumPy dtypes compare equal to None (so getattr(xp, "float16", None) would match float64)
    name = str(dtype).rsplit(".", 1)[-1].strip("'>")
    return name in ("float16", "bfloat16", "half")


def compute_dtype(xp: Namespace, dtype: object) -> object:
    """The dtype the arithmetic runs in: float32 for float16/bfloat16, else ``dtype`` itself."""
    return xp.float32 if _is_low_precision(xp, dtype) else dtype


def lift(xp: Namespace, x: Array | None, dtype: object) -> Array | None:
    """Cast a floating array to ``dtype`` (the compute dtype); leave others alone."""
    if x is None or not is_floating(xp, x) or x.dtype == dtype:
        return x
    return xp.astype(x, dtype)


def cast(xp: Namespace, x: Array, dtype: object) -> Array:
    """``x`` (floating or integer) as ``dtype``, without a copy when it already has it: an
    input brought to the compute dtype, or a result cast back to the caller's dtype."""
    return x if x.dtype == dtype else xp.astype(x, dtype)


def finish(
    xp: Namespace, dtype: object, value: Array, grads: dict[int, Array]
) -> tuple[Array, dict[int, Array]]:
    """Return ``(value, grads)`` in the caller's dtype (undoing float16/bfloat16 lifting)."""
    return cast(xp, value, dtype), {k: cast(xp, g, dtype) for k, g in grads.items()}


def stop_gradient(x: Array) -> Array:
    """``x`` with autograd cut (``Tensor.detach`` on PyTorch, ``jax.lax.stop_gradient`` on JAX).

    For the few losses whose published gradient treats part of the value as a constant (Circle
    loss's weights), and for shifts that cancel out of a result (the row maximum of a
    log-sum-exp): torch autograd and ``jax.grad`` through losskit then give the analytic
    gradient.  Each library's version is its ``"stop_gradient"`` fast path; libraries without
    autograd get ``x`` back unchanged.
    """
    detach = fast_path("stop_gradient", library_name(x))
    return x if detach is None else detach(x)


def scan(
    body: Any, carry: Any, xs: tuple[Array, ...], *, reverse: bool = False
) -> tuple[Any, tuple[Array, ...]]:
    """Run ``carry, ys = body(carry, x_slices)`` over the leading axis of the arrays ``xs``
    (last to first when ``reverse``); return the final carry and each output stacked along a
    new leading axis, in the order of ``xs``.

    For recursions over a static length (CTC's time axis).  ``body`` is written with array-API
    calls only; JAX runs it as one ``lax.scan`` (one compiled step instead of an unrolled
    loop under ``jit``; its ``"scan"`` fast path), every other library as a Python loop (lazy
    on Dask, autograd on PyTorch).
    """
    compiled = fast_path("scan", library_name(xs[0]))
    if compiled is not None:
        return compiled(body, carry, xs, reverse=reverse)
    xp = array_api_compat.array_namespace(*xs)
    length = xs[0].shape[0]
    steps = range(length - 1, -1, -1) if reverse else range(length)
    outputs: list[Any] = [None] * length
    for t in steps:
        carry, outputs[t] = body(carry, tuple(x[t, ...] for x in xs))
    stacked = tuple(xp.stack([out[i] for out in outputs], axis=0) for i in range(len(outputs[0])))
    return carry, stacked
