"""Shared plumbing for losses that compare a prediction and a target element by element."""

from __future__ import annotations

from collections.abc import Callable

from .backend import Array, Namespace, compute_dtype, finish, lift, namespace
from .reduction import make_reducer
from .validation import check_float_array, check_no_nan, check_nonempty, check_same_shape

# core(xp, input, target, need_grad) -> (value, d value / d input, d value / d target or None)
Core = Callable[[Namespace, Array, Array, bool], tuple[Array, Array | None, Array | None]]


def pointwise_loss(
    core: Core,
    input: Array,
    target: Array,
    *,
    reduction: str,
    where: Array | None,
    wrt: frozenset[int],
    weight: Array | None = None,
    target_check: Callable[[Namespace, Array], None] | None = None,
    input_check: Callable[[Namespace, Array], None] | None = None,
) -> tuple[Array, dict[int, Array]]:
    """Run an elementwise ``core`` through validation, low-precision lifting and reduction.

    ``weight`` (optional) multiplies each element's loss and broadcasts to the input's shape;
    the mean still divides by the number of counted elements (PyTorch's convention).
    """
    xp = namespace(input=input, target=target, weight=weight, where=where)
    check_float_array(xp, input, "input")
    check_float_array(xp, target, "target")
    check_same_shape(input, target, "input", "target")
    check_nonempty(input, "input")
    check_no_nan(xp, target, "target")
    if input_check is not None:
        input_check(xp, input)
    if target_check is not None:
        target_check(xp, target)
    out_dtype = xp.result_type(input.dtype, target.dtype)
    dtype = compute_dtype(xp, out_dtype)
    x, y = lift(xp, input, dtype), lift(xp, target, dtype)  # both floating: cast to dtype
    w = None
    if weight is not None:
        from .validation import check_broadcastable_to

        check_float_array(xp, weight, "weight")
        check_broadcastable_to(weight, tuple(input.shape), "weight", "input")
        w = xp.astype(weight, dtype)
    reducer = make_reducer(xp, reduction, tuple(input.shape), dtype, where=where)
    value, d_input, d_target = core(xp, x, y, bool(wrt))
    if w is not None:
        value = value * w
    grads: dict[int, Array] = {}
    for argnum, d in ((0, d_input), (1, d_target)):
        if argnum in wrt and d is not None:
            g = d if w is None else d * w
            grads[argnum] = xp.broadcast_to(reducer.grad(g), tuple(input.shape))
    return finish(xp, out_dtype, reducer.value(value), grads)
