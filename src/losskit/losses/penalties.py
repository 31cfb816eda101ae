"""Regularisation penalties: terms added to a loss to keep a model's weights small.

A penalty takes any number of parameter arrays (``l2_penalty(w1, b1, w2)``) and returns one
scalar; ``losskit.value_and_grad(l2_penalty, argnums=(0, 2))`` gives the gradient with respect
to each requested array, in that array's shape.

Reduction: a penalty is a **sum** over every element of every parameter, so ``reduction`` is
``"sum"`` by default; ``"mean"`` divides by the number of counted elements (of all parameters
together), for a penalty that does not grow with the model's size.  ``"none"`` is refused:
one per-element array cannot hold parameters of different shapes (call the penalty on one
array at a time instead).

``where=``: a boolean mask for one parameter, or a sequence with one mask (or ``None``) per
parameter; masked-out elements (e.g. the entries of an embedding that stay unregularised) count
neither in the value, the mean's divisor, nor the gradient.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..core.backend import Array, cast, compute_dtype, namespace
from ..core.catalog import catalogued
from ..core.gradients import LossResult, loss_function
from ..core.reduction import Reduction
from ..core.validation import (
    check_broadcastable_to,
    check_float_array,
    check_hyperparameter,
    check_reduction,
)

__all__ = ["l1_penalty", "l2_penalty"]


def _masks(where, count):
    if where is None:
        return [None] * count
    if isinstance(where, (list, tuple)):
        if len(where) != count:
            raise ValueError(
                f"where must hold one mask (or None) per parameter: {count} parameter(s), "
                f"got {len(where)} mask(s)"
            )
        return list(where)
    if count != 1:
        raise ValueError(
            f"where must be a sequence of {count} masks (or None), one per parameter; got a single array"
        )
    return [where]


def _abs(xp, x):
    return xp.abs(x)


def _sign(xp, x):
    return xp.sign(x)


def _square(xp, x):
    return x * x


def _twice(xp, x):
    return 2.0 * x


def _penalty(params, scale, reduction, where, wrt, element, derivative):
    if not params:
        raise TypeError("a penalty needs at least one parameter array")
    scale = check_hyperparameter(scale, "scale", like=params[0] if params else None, low=0.0)
    check_reduction(reduction, ("sum", "mean"))
    masks = _masks(where, len(params))
    names = {f"params[{i}]": p for i, p in enumerate(params)}
    names.update({f"where[{i}]": m for i, m in enumerate(masks) if m is not None})
    xp = namespace(**names)
    for i, (p, m) in enumerate(zip(params, masks)):
        check_float_array(xp, p, f"params[{i}]")
        if m is not None:
            if not xp.isdtype(m.dtype, "bool"):
                raise TypeError(f"where[{i}] must be a boolean array; got dtype {m.dtype}")
            check_broadcastable_to(m, tuple(p.shape), f"where[{i}]", f"params[{i}]")
    out_dtype = xp.result_type(*[p.dtype for p in params])
    dtype = compute_dtype(xp, out_dtype)
    total = None
    count = 0.0  # counted elements: a Python number, or an array once a mask is involved
    lifted = []
    for p, m in zip(params, masks):
        x = cast(xp, p, dtype)
        v = element(xp, x)
        if m is None:
            count = count + float(math.prod(p.shape))
        else:
            m = xp.broadcast_to(m, tuple(p.shape))
            v = xp.where(m, v, xp.zeros_like(v))
            count = count + xp.sum(xp.astype(m, dtype))
        s = xp.sum(v)
        total = s if total is None else total + s
        lifted.append((x, m))
    factor = scale
    if reduction == "mean":  # nothing counted: 0 with a zero gradient, as every mean here
        if isinstance(count, float):
            factor = scale / count if count > 0 else 0.0
        else:
            positive = count > 0
            safe = xp.where(positive, count, xp.ones_like(count))
            factor = xp.where(positive, scale / safe, xp.zeros_like(count))
    grads = {}
    for n in wrt:
        x, m = lifted[n]
        g = derivative(xp, x) * factor
        if m is not None:
            g = xp.where(m, g, xp.zeros_like(g))
        grads[n] = cast(xp, g, params[n].dtype)
    return cast(xp, total * factor, out_dtype), grads


@catalogued(
    family="penalty",
    input_space="parameters",
    formula="scale * sum |w|",
    torch=None,
    optax=None,
    keras="regularizers.L1",
)
@loss_function
def l1_penalty(
    *params: Array,
    scale: float = 1.0,
    reduction: Reduction = "sum",
    where: Array | Sequence[Array | None] | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""L1 (lasso) penalty: :math:`\lambda\sum_k\sum_i |w_{k,i}|` over every given array.

    Drives weights to exactly 0 (sparsity).  Gradient: :math:`\lambda\,\mathrm{sign}(w)` (0 at
    0, a subgradient), in each parameter's shape and dtype.

    Args:
      *params: one or more floating parameter arrays of any shapes (same library).
      scale: :math:`\lambda \ge 0` (default 1.0).
      reduction: ``"sum"`` (default) or ``"mean"`` (divides by the number of counted
        elements); see the module docstring.
      where: a mask for one parameter, or one mask (or ``None``) per parameter.

    Equivalent: Keras ``regularizers.L1(l1=scale)``; in PyTorch written by hand as
    ``scale * sum(p.abs().sum() for p in params)``.
    """
    return _penalty(params, scale, reduction, where, wrt, _abs, _sign)


@catalogued(
    family="penalty",
    input_space="parameters",
    formula="scale * sum w^2",
    torch=None,
    optax=None,
    keras="regularizers.L2",
)
@loss_function
def l2_penalty(
    *params: Array,
    scale: float = 1.0,
    reduction: Reduction = "sum",
    where: Array | Sequence[Array | None] | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""L2 (ridge) penalty: :math:`\lambda\sum_k\sum_i w_{k,i}^2`, the sum of squares over every
    given array (no factor 1/2: ``scale`` is the coefficient in front of the sum of squares).

    Gradient: :math:`2\lambda w`.  Adding it to a loss under plain SGD is weight decay with
    rate :math:`2\lambda\eta`; with Adam it is not (use decoupled weight decay, AdamW, for that).

    Args as :func:`l1_penalty`.

    Equivalent: Keras ``regularizers.L2(l2=scale)``; ``optax.l2_loss`` summed is
    :math:`\tfrac12\sum w^2` (``scale=0.5``); PyTorch's optimiser ``weight_decay=wd`` adds the
    gradient of ``scale=wd/2``.
    """
    return _penalty(params, scale, reduction, where, wrt, _square, _twice)
