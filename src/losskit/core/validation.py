"""Input checks shared by every loss.

Shape, dtype and option checks always run.  Checks that read array *values* (probability ranges,
class indices, NaN targets) run only on concrete arrays, so they never break ``jax.jit``
tracing and never make a Dask graph compute.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .backend import (
    Array,
    Namespace,
    is_array,
    is_concrete,
    is_floating,
    is_integer,
    library_name,
    namespace,
    stop_gradient,
)

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction: object, allowed: Sequence[str] = REDUCTIONS) -> str:
    if not isinstance(reduction, str) or reduction not in allowed:
        raise ValueError(f"reduction must be one of {', '.join(repr(r) for r in allowed)}; got {reduction!r}")
    return reduction


def check_float_array(xp: Namespace, x: Array, name: str) -> None:
    if not is_floating(xp, x):
        raise TypeError(
            f"{name} must be a real floating-point array (float16, bfloat16, float32 or float64); "
            f"got dtype {x.dtype}"
        )


def check_integer_array(xp: Namespace, x: Array, name: str) -> None:
    if not is_integer(xp, x):
        raise TypeError(f"{name} must hold integer class indices; got dtype {x.dtype}")


def check_nonempty(x: Array, name: str) -> None:
    dims = [d for d in x.shape if d is not None]  # a list: torch.compile traces no generator here
    if math.prod(dims) == 0 and len(dims) == x.ndim:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}); a loss needs at least one element")


def check_same_shape(a: Array, b: Array, name_a: str, name_b: str) -> None:
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(
            f"{name_b} must have the same shape as {name_a}; got {name_a} {tuple(a.shape)} and "
            f"{name_b} {tuple(b.shape)} (losskit does not broadcast them: reshape explicitly)"
        )


def broadcast_shape(*shapes: Sequence[int]) -> tuple[int, ...]:
    ndim = max(len(s) for s in shapes)
    out = []
    for dims in zip(*[(1,) * (ndim - len(s)) + tuple(s) for s in shapes]):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            raise ValueError
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def check_broadcastable_to(x: Array, shape: Sequence[int], name: str, target_name: str) -> None:
    """``x`` must broadcast to ``shape`` without enlarging it."""
    try:
        ok = broadcast_shape(tuple(x.shape), tuple(shape)) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{name} of shape {tuple(x.shape)} does not broadcast to the shape of {target_name} "
            f"{tuple(shape)}"
        )


def check_mask(xp: Namespace, where: Array | None, shape: Sequence[int], against: str) -> None:
    """``where`` (if given) must be a boolean array broadcasting to ``shape`` (that of
    ``against``) without enlarging it."""
    if where is None:
        return
    if not xp.isdtype(where.dtype, "bool"):
        raise TypeError(f"where must be a boolean array; got dtype {where.dtype}")
    check_broadcastable_to(where, shape, "where", against)


def check_axis(axis: object, ndim: int, name: str = "axis") -> int:
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(f"{name} must be an int; got {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of range for an input with {ndim} dimensions")
    return axis % ndim


def check_int(value: object, name: str) -> int:
    """A Python int (not a bool), e.g. ``ignore_index``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int; got {type(value).__name__}")
    return value


def check_normalizer(normalizer: object) -> None:
    """An explicit divisor of a mean: a number > 0, or an array whose value (when it can be
    read now) is > 0."""
    if normalizer is None:
        return
    if isinstance(normalizer, (int, float)):
        check_number(normalizer, "normalizer", low=0, low_inclusive=False)
    elif is_concrete(normalizer) and not bool(normalizer > 0):
        raise ValueError(f"normalizer must be > 0; got {float(normalizer)}")


def _number_in(v: float, shown: object, name: str, low, high, low_inclusive, high_inclusive) -> float:
    if math.isnan(v):
        raise ValueError(f"{name} must not be NaN")
    bad_low = low is not None and (v < low if low_inclusive else v <= low)
    bad_high = high is not None and (v > high if high_inclusive else v >= high)
    if bad_low or bad_high:
        lo = "(-inf" if low is None else ("[" if low_inclusive else "(") + f"{low:g}"
        hi = "inf)" if high is None else f"{high:g}" + ("]" if high_inclusive else ")")
        raise ValueError(f"{name} must be in {lo}, {hi}; got {shown!r}")
    return v


def _differentiable(x: Array) -> bool:
    """An array a framework may differentiate: a torch tensor that requires a gradient, or a
    value that cannot be read now (a JAX tracer under jit/grad, a lazy Dask array)."""
    return bool(getattr(x, "requires_grad", False)) or not is_concrete(x)


def _scalar_array(value: object, name: str) -> Array:
    """``value`` as a real 0-d array of any library, or the TypeError / ValueError saying what
    a hyperparameter may be."""
    if isinstance(value, (bool, np.bool_)) or not (is_array(value) or isinstance(value, np.generic)):
        raise TypeError(f"{name} must be a real number or a 0-d array; got {type(value).__name__}")
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if tuple(value.shape) != ():
        shape = tuple(value.shape)
        raise ValueError(f"{name} must be a number or a 0-d array; got an array of shape {shape}")
    xp = namespace(**{name: value})
    if not xp.isdtype(value.dtype, ("real floating", "integral")):
        raise TypeError(f"{name} must be a real number; got an array of dtype {value.dtype}")
    return value


def check_number(
    value: object,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """A real number in the given interval, as a Python float, or a ValueError saying which
    interval.

    NumPy scalars and 0-d arrays of any library whose value can be read now are accepted too.
    A value a framework may differentiate (a torch tensor that requires a gradient, a JAX tracer
    under ``jit`` or ``grad``) is refused with a TypeError: this option shapes the loss itself
    (an exponent, a branch, a floor), so it must be a fixed number.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number_in(float(value), value, name, low, high, low_inclusive, high_inclusive)
    array = _scalar_array(value, name)
    if _differentiable(array):
        raise TypeError(
            f"{name} must be a fixed number (it sets the form of the loss); got a {type(value).__name__} "
            "that is traced or requires a gradient"
        )
    v = float(array)
    return _number_in(v, v, name, low, high, low_inclusive, high_inclusive)


def check_hyperparameter(
    value: object,
    name: str,
    *,
    like: Array | None = None,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float | Array:
    """A hyperparameter the loss's value is smooth in (a temperature, a margin, focal's gamma):
    a real number, or a 0-d real array of any library -- a NumPy scalar, a torch tensor or
    ``nn.Parameter``, a JAX array, also a tracer under ``jax.jit`` or ``jax.grad``.

    Returns a Python float when the value can be read now and no framework may differentiate
    it; otherwise the 0-d array itself, so that autograd reaches it through the loss (a
    learnable temperature) and ``jax.jit`` does not recompile for every value.  The interval is
    checked whenever the value can be read (a tracer's cannot).  ``like`` is an input of the
    loss: an array kept as an array must come from the same library.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number_in(float(value), value, name, low, high, low_inclusive, high_inclusive)
    array = _scalar_array(value, name)
    if is_concrete(array):
        v = float(stop_gradient(array))
        _number_in(v, v, name, low, high, low_inclusive, high_inclusive)
        if not _differentiable(array):
            return v
    if like is not None and library_name(array) != library_name(like):
        raise TypeError(
            f"{name} is a {library_name(array)} array that may be differentiated, but the loss's "
            f"inputs are {library_name(like)} arrays: pass a number, or arrays of one library"
        )
    return array


# -- value checks: concrete arrays only --------------------------------------------------------
# Inside jax.jit even operations on concrete arrays are traced, so each check also asks
# whether its own result can be read before reading it.


def _true(flag: Array) -> bool:
    """Read a 0-d boolean check result, or False when it cannot be read now (traced)."""
    return is_concrete(flag) and bool(flag)


def any_true(xp: Namespace, condition: Array) -> bool:
    """True when ``condition`` can be read now (not traced, not lazy) and holds anywhere; the
    question every value check asks before it raises."""
    return is_concrete(condition) and _true(xp.any(condition))


def check_no_nan(xp: Namespace, x: Array, name: str) -> None:
    if is_floating(xp, x) and any_true(xp, xp.isnan(x)):
        raise ValueError(f"{name} contains NaN")


def check_in_unit_interval(xp: Namespace, x: Array, name: str) -> None:
    if not is_concrete(x):
        return
    if _true(xp.any(xp.isnan(x))):
        raise ValueError(f"{name} contains NaN; expected probabilities in [0, 1]")
    if _true(xp.any((x < 0) | (x > 1))):
        lo, hi = float(xp.min(x)), float(xp.max(x))
        raise ValueError(
            f"{name} must hold probabilities in [0, 1]; got values in [{lo:g}, {hi:g}] "
            "(pass logits to the *_with_logits variant instead)"
        )


def check_class_indices(
    xp: Namespace, target: Array, num_classes: int, ignore_index: int | None, name: str = "target"
) -> None:
    if not is_concrete(target):
        return
    if ignore_index is None:
        counted = target
    else:  # ignored positions are replaced by a valid index so they never trip the check
        counted = xp.where(target == ignore_index, xp.zeros_like(target), target)
    lo, hi = xp.min(counted), xp.max(counted)
    if not is_concrete(lo):
        return
    lo, hi = int(lo), int(hi)
    if lo < 0 or hi >= num_classes:
        bad = lo if lo < 0 else hi
        ignored = "" if ignore_index is None else f" other than ignore_index={ignore_index}"
        raise ValueError(
            f"{name} holds class index {bad}{ignored}, outside [0, {num_classes - 1}] "
            f"for {num_classes} classes"
        )


def check_values_in(xp: Namespace, x: Array, allowed: Sequence[float], name: str) -> None:
    if not is_concrete(x):
        return
    ok = xp.zeros(x.shape, dtype=xp.bool)
    for v in allowed:
        ok = ok | (x == v)
    if is_concrete(ok) and not bool(xp.all(ok)):
        raise ValueError(f"{name} must only hold the values {list(allowed)}")


# -- class-axis inputs ---------------------------------------------------------------------------


def axis_hint(input_shape: tuple[int, ...], target_shape: tuple[int, ...], axis: int) -> str:
    """For a target of class indices whose shape does not match: the class axis under which it
    would, as a suggestion (``": did you mean axis=1? ..."``), or ``""`` when there is none.
    PyTorch's ``(N, C, d1, ...)`` layout, classes on axis 1, is the usual cause."""
    axes = [
        i
        for i in range(len(input_shape))
        if i != axis and input_shape[:i] + input_shape[i + 1 :] == target_shape
    ]
    if not axes:
        return ""
    hint = f"; that is the input {input_shape} without axis {axes[0]}: did you mean axis={axes[0]}?"
    if axes[0] == 1:
        hint += " (PyTorch's (N, C, d1, ...) layout has its classes on axis 1)"
    return hint


class ClassTargets(NamedTuple):
    """What :func:`check_class_targets` learns from the arrays of a class-axis loss."""

    axis: int  # the class axis, non-negative
    num_classes: int
    sample_shape: tuple[int, ...]  # the input's shape without the class axis
    indices: bool  # integer class indices (True) or class probabilities (False)


def check_class_targets(
    xp: Namespace,
    input: Array,
    target: Array,
    axis: object,
    ignore_index: object,
    weight: Array | None = None,
    where: Array | None = None,
    name: str = "target",
) -> ClassTargets:
    """Validate the inputs of a loss over a class axis (cross-entropy, nll, focal, ...): float
    ``input`` with classes along ``axis``; ``target`` either integer indices (``input``'s shape
    without the class axis, in range unless ``ignore_index``) or class probabilities
    (``input``'s shape, in [0, 1]); optional per-class ``weight`` of shape ``(C,)``; an optional
    boolean ``where`` mask over the samples (broadcasting to the shape without the class axis)."""
    check_float_array(xp, input, "input")
    if input.ndim == 0:
        raise ValueError("input must have a class axis; got a 0-d array")
    check_nonempty(input, "input")
    axis = check_axis(axis, input.ndim)
    num_classes = input.shape[axis]
    sample_shape = tuple(d for i, d in enumerate(input.shape) if i != axis)
    ignore_index = check_int(ignore_index, "ignore_index")
    if is_integer(xp, target):
        if tuple(target.shape) != sample_shape:
            raise ValueError(
                f"{name} of class indices must have the input's shape without the class axis "
                f"(axis={axis}): expected {sample_shape}, got {tuple(target.shape)}"
                + axis_hint(tuple(input.shape), tuple(target.shape), axis)
            )
        check_class_indices(xp, target, num_classes, ignore_index, name)
        indices = True
    elif is_floating(xp, target):
        if tuple(target.shape) != tuple(input.shape):
            hint = (
                " (float class indices? cast them to an integer dtype)"
                if tuple(target.shape) == sample_shape
                else ""
            )
            raise ValueError(
                f"{name} of class probabilities must have the input's shape {tuple(input.shape)}; "
                f"got {tuple(target.shape)}{hint}"
            )
        check_no_nan(xp, target, name)
        check_in_unit_interval(xp, target, name)
        indices = False
    else:
        raise TypeError(
            f"{name} must be integer class indices or floating class probabilities; got dtype {target.dtype}"
        )
    if weight is not None:
        check_float_array(xp, weight, "weight")
        if tuple(weight.shape) != (num_classes,):
            raise ValueError(
                f"weight must have shape ({num_classes},), one weight per class; got {tuple(weight.shape)}"
            )
    check_mask(xp, where, sample_shape, "the per-sample loss")
    return ClassTargets(axis, num_classes, sample_shape, indices)
