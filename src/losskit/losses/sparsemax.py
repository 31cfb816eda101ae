"""Sparsemax: the Euclidean projection of scores onto the probability simplex (an output layer
whose probabilities can be exactly 0), and the sparsemax loss that trains it.

Reference: Martins & Astudillo, From Softmax to Sparsemax: A Sparse Model of Attention and
Multi-Label Classification, ICML 2016.
"""

from __future__ import annotations

from ..core import numerics
from ..core.backend import Array, cast, compute_dtype, finish, is_concrete, lift, namespace
from ..core.catalog import catalogued
from ..core.gradients import LossResult, loss_function
from ..core.reduction import Reduction, make_reducer
from ..core.validation import (
    check_axis,
    check_class_indices,
    check_class_targets,
    check_float_array,
    check_nonempty,
)

__all__ = ["sparsemax", "sparsemax_loss"]


def _threshold(xp, z):
    """The sparsemax threshold tau along the last axis (keepdims), so that
    sparsemax(z) = max(z - tau, 0).

    Sort descending; the support is the largest k with 1 + k z_(k) > sum_{j<=k} z_(j), and
    tau = (sum_{j<=k} z_(j) - 1) / k.  The condition holds exactly for a prefix of the sorted
    scores, so k is the count of positions where it holds.
    """
    z_sorted = xp.sort(z, axis=-1, descending=True)
    cumulative = xp.cumulative_sum(z_sorted, axis=-1)
    k = xp.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    in_support = 1.0 + k * z_sorted > cumulative
    support = xp.sum(xp.astype(in_support, z.dtype), axis=-1, keepdims=True)
    # the prefix sum at the end of the support (position support - 1)
    at_end = k == support
    top = xp.sum(xp.where(at_end, cumulative, xp.zeros_like(cumulative)), axis=-1, keepdims=True)
    return (top - 1.0) / support


def _check_rows_sum_to_one(xp, q, axis):
    if not is_concrete(q):
        return
    error = xp.max(xp.abs(xp.sum(q, axis=axis) - 1.0))
    if not is_concrete(error):
        return
    tolerance = q.shape[axis] * float(xp.finfo(q.dtype).eps) ** 0.5
    if float(error) > tolerance:
        raise ValueError(
            f"target of class probabilities must sum to 1 along axis={axis}; a row is off by "
            f"{float(error):.3g}"
        )


def _shifted(xp, z):
    """The scores less their row maximum (sparsemax is invariant to the shift): the prefix sums
    of the threshold then stay on the scale of the gaps between scores, so huge scores (1e7 in
    float32) keep their precision; a ``+inf`` score takes all the probability (shared between
    the ``+inf`` scores of a row), a NaN makes its row NaN (``numerics.shift``)."""
    return numerics.shift(xp, z, -1)[0]


def _sparsemax(xp, zs):
    """sparsemax of scores already shifted by :func:`_shifted`."""
    p = zs - _threshold(xp, zs)
    return xp.where(p <= 0, xp.zeros_like(p), p)  # NaN stays NaN


def sparsemax(x: Array, axis: int = -1) -> Array:
    r"""Sparsemax along ``axis``: :math:`\mathrm{sparsemax}(x) = \arg\min_{p \in \Delta}
    \|p - x\|^2`, the closest probability vector to the scores.

    Exactly :math:`\max(x_i - \tau, 0)` with the threshold :math:`\tau` found by sorting (the
    exact projection, no iteration): the output sums to 1 and, unlike softmax, has exact zeros
    for scores far below the best.  Invariant to adding a constant to ``x`` (computed from the
    scores less their maximum, so huge scores keep their precision).  ``-inf`` scores get
    probability 0; ``+inf`` scores share all the probability; a NaN makes its row NaN.

    Args:
      x: scores (logits), any shape with at least one axis.
      axis: the class axis (default -1).

    Returns:
      Probabilities of ``x``'s shape and dtype.

    Equivalent: ``optax.projections.projection_simplex`` (one vector at a time).
    """
    xp = namespace(x=x)
    check_float_array(xp, x, "x")
    if x.ndim == 0:
        raise ValueError("x must have a class axis; got a 0-d array")
    check_nonempty(x, "x")
    axis = check_axis(axis, x.ndim)
    dtype = compute_dtype(xp, x.dtype)
    z = xp.moveaxis(lift(xp, x, dtype), axis, -1)
    return cast(xp, xp.moveaxis(_sparsemax(xp, _shifted(xp, z)), -1, axis), x.dtype)


@catalogued(
    family="classification",
    input_space="logits",
    formula="<p, z> - z_y + (1 - |p|^2) / 2, p = sparsemax(z)",
    torch=None,
    optax="optax.losses.multiclass_sparsemax_loss",
    keras=None,
)
@loss_function
def sparsemax_loss(
    input: Array,
    target: Array,
    axis: int = -1,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Sparsemax loss (the Fenchel-Young loss of the Gini entropy), the loss whose output
    layer is :func:`sparsemax` as cross-entropy's is softmax.

    With :math:`p = \mathrm{sparsemax}(z)` and target distribution :math:`q` (one-hot for
    integer labels):
    :math:`\ell = \langle p, z\rangle - \langle q, z\rangle + \tfrac12(\|q\|^2 - \|p\|^2)`
    — for a label :math:`y`, :math:`\ell = \sum_j p_j (z_j - z_y) + \tfrac12(1 - \|p\|^2)`.
    It is :math:`\ge 0`, 0 exactly when :math:`p = q`, and convex in :math:`z`.

    Gradient: :math:`\mathrm{sparsemax}(z) - q` — no Jacobian of the projection needed.

    Args:
      input: scores (logits), classes along ``axis``.
      target: integer class indices (``input``'s shape without ``axis``; Optax's convention),
        or class probabilities / one-hot rows (``input``'s shape).
      axis: the class axis (default -1).
      reduction: ``"mean"`` (default, over samples), ``"sum"`` or ``"none"``.
      where: optional boolean mask over samples.

    Probability targets must sum to 1 along ``axis`` (checked on concrete arrays): the loss
    is defined on the simplex only.

    Equivalent: ``optax.losses.multiclass_sparsemax_loss(scores, labels)`` (integer labels).
    Optax's ``sparsemax_loss(z, y)`` is the binary case: it equals
    ``sparsemax_loss(stack([0, z], axis=-1), y)`` here (two classes with scores 0 and ``z``).
    """
    xp = namespace(input=input, target=target, where=where)
    axis, num_classes, sample_shape, indices = check_class_targets(xp, input, target, axis, -100, where=where)
    if indices:
        check_class_indices(xp, target, num_classes, None)
    else:
        _check_rows_sum_to_one(xp, target, axis)
    out_dtype = input.dtype if indices else xp.result_type(input.dtype, target.dtype)
    dtype = compute_dtype(xp, out_dtype)
    z = xp.moveaxis(cast(xp, input, dtype), axis, -1)
    # <p - q, z> with the scores shifted by the row max (the value is shift-invariant when q
    # sums to 1, and the shift keeps the products small)
    zs = _shifted(xp, z)
    p = _sparsemax(xp, zs)
    if indices:
        q = xp.astype(xp.expand_dims(target, axis=-1) == xp.arange(num_classes, dtype=target.dtype), dtype)
    else:
        q = xp.moveaxis(cast(xp, target, dtype), axis, -1)
    # a class with p = q (0 = 0 at a -inf score) adds 0 to <p - q, z>, not 0 * inf
    value = xp.sum(numerics.xlogy(xp, p - q, zs), axis=-1) + 0.5 * (
        xp.sum(q * q, axis=-1) - xp.sum(p * p, axis=-1)
    )
    reducer = make_reducer(xp, reduction, sample_shape, dtype, where=where)
    grads = {}
    if 0 in wrt:
        grads[0] = xp.moveaxis(reducer.grad(p - q, axis=-1), -1, axis)
    return finish(xp, out_dtype, reducer.value(value), grads)
