"""Margin losses: scores are pushed past a margin on the right side of the decision boundary.

Binary losses take real scores ``input`` and labels ``target`` of the same shape:

- :func:`hinge`, :func:`squared_hinge`, :func:`perceptron` accept labels in {-1, +1} or in
  {0, 1}; a 0 label means the negative class and is read as -1 (the rule of Keras's ``Hinge``;
  Optax's ``hinge_loss`` takes {-1, +1} only, for which both agree).  Mixing 0 and -1 in one
  call is an error.  Integer labels are accepted.
- :func:`hinge_embedding` and :func:`soft_margin` follow PyTorch and take {-1, +1} only.

Multiclass losses take scores with the classes along ``axis`` (default -1, the last, as in
PyTorch's ``(N, C)`` layout; pass ``axis=1`` for ``(N, C, d1, ...)``) and integer class
indices of the input's shape without ``axis`` (:func:`multilabel_margin` and
:func:`multilabel_soft_margin` take per-class targets of the input's shape).

Common options: ``reduction`` (``"mean"``, the default, over samples — elements for the binary
losses — ``"sum"`` or ``"none"``) and ``where=`` (a boolean mask over the per-sample losses;
masked samples count neither in the value, the mean's divisor, nor the gradient; when nothing
counts ``mean`` is 0 with a zero gradient).
"""

from __future__ import annotations

from ..core import numerics
from ..core.backend import Array, cast, compute_dtype, finish, is_concrete, is_integer, lift, namespace
from ..core.catalog import catalogued
from ..core.gradients import LossResult, loss_function
from ..core.pointwise import pointwise_loss
from ..core.reduction import Reduction, make_reducer
from ..core.validation import (
    axis_hint,
    check_axis,
    check_broadcastable_to,
    check_class_indices,
    check_float_array,
    check_hyperparameter,
    check_in_unit_interval,
    check_integer_array,
    check_no_nan,
    check_nonempty,
    check_values_in,
)

__all__ = [
    "hinge",
    "squared_hinge",
    "perceptron",
    "multiclass_hinge",
    "multiclass_perceptron",
    "hinge_embedding",
    "soft_margin",
    "multi_margin",
    "multilabel_margin",
    "multilabel_soft_margin",
]


# -- binary -------------------------------------------------------------------------------------


def _float_labels(input, target):
    """Integer labels as floats of the input's dtype (validated against mixing libraries first)."""
    xp = namespace(input=input, target=target)
    if is_integer(xp, target) and xp.isdtype(input.dtype, "real floating"):
        return xp.astype(target, input.dtype)
    return target


def _check_signed_or_binary(xp, y):
    """Labels in {-1, 1} or {0, 1}: never both 0 and -1."""
    check_values_in(xp, y, (-1.0, 0.0, 1.0), "target")
    if not is_concrete(y):
        return
    both = xp.any(y == 0) & xp.any(y == -1)
    if is_concrete(both) and bool(both):
        raise ValueError(
            "target must hold labels in {-1, 1} or in {0, 1}; got both 0 and -1 (0 would be read as "
            "the negative class -1, which is ambiguous here)"
        )


def _signed(xp, y):
    return xp.where(y == 0, -xp.ones_like(y), y)


def _hinge_core(xp, x, y, need_grad):
    s = _signed(xp, y)
    m = 1.0 - s * x
    value = xp.maximum(m, xp.zeros_like(m))
    if not need_grad:
        return value, None, None
    return value, xp.where(m > 0, -s, xp.zeros_like(s)), None


def _binary(core, input, target, reduction, where, wrt):
    return pointwise_loss(
        core,
        input,
        _float_labels(input, target),
        reduction=reduction,
        where=where,
        wrt=wrt,
        target_check=_check_signed_or_binary,
    )


@catalogued(
    family="classification",
    input_space="scores",
    formula="max(0, 1 - y x), y in {-1, 1} (0 read as -1)",
    torch=None,
    optax="optax.losses.hinge_loss",
    keras="Hinge",
)
@loss_function
def hinge(
    input: Array,
    target: Array,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Hinge loss of a binary classifier's score: :math:`\ell = \max(0, 1 - y\,x)`.

    Labels :math:`y \in \{-1, +1\}`, or :math:`\{0, 1\}` with 0 read as -1 (see the module
    docstring).  Zero once the score is on the right side with margin 1.  Gradient:
    :math:`-y` where :math:`y\,x < 1`, else 0 (0 exactly at the kink).

    Args:
      input: real scores, any shape.
      target: labels, same shape (float or integer).
      reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
      where: optional boolean mask of counted elements.

    Equivalent: ``optax.losses.hinge_loss`` (unreduced); Keras ``Hinge`` (which averages over
    the last axis first; the overall mean is the same).
    """
    return _binary(_hinge_core, input, target, reduction, where, wrt)


def _squared_hinge_core(xp, x, y, need_grad):
    s = _signed(xp, y)
    m = 1.0 - s * x
    h = xp.maximum(m, xp.zeros_like(m))
    if not need_grad:
        return h * h, None, None
    return h * h, -2.0 * h * s, None


@catalogued(
    family="classification",
    input_space="scores",
    formula="max(0, 1 - y x)^2, y in {-1, 1} (0 read as -1)",
    torch=None,
    optax=None,
    keras="SquaredHinge",
)
@loss_function
def squared_hinge(
    input: Array,
    target: Array,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Squared hinge loss: :math:`\ell = \max(0, 1 - y\,x)^2`, differentiable everywhere.

    Labels as :func:`hinge`.  Gradient: :math:`-2\,y\max(0, 1 - y\,x)`.

    Args as :func:`hinge`.  Equivalent: Keras ``SquaredHinge`` (same labels rule).
    """
    return _binary(_squared_hinge_core, input, target, reduction, where, wrt)


def _perceptron_core(xp, x, y, need_grad):
    s = _signed(xp, y)
    m = -s * x
    value = xp.maximum(m, xp.zeros_like(m))
    if not need_grad:
        return value, None, None
    return value, xp.where(m > 0, -s, xp.zeros_like(s)), None


@catalogued(
    family="classification",
    input_space="scores",
    formula="max(0, -y x), y in {-1, 1} (0 read as -1)",
    torch=None,
    optax="optax.losses.perceptron_loss",
    keras=None,
)
@loss_function
def perceptron(
    input: Array,
    target: Array,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Perceptron loss: :math:`\ell = \max(0, -y\,x)`, the hinge without a margin — zero as
    soon as the sign is right.

    Labels as :func:`hinge`.  Gradient: :math:`-y` where :math:`y\,x < 0`, else 0.

    Args as :func:`hinge`.  Equivalent: ``optax.losses.perceptron_loss`` (unreduced).
    """
    return _binary(_perceptron_core, input, target, reduction, where, wrt)


def _hinge_embedding_core(margin):
    def core(xp, x, y, need_grad):
        positive = y == 1
        gap = margin - x
        zero = xp.zeros_like(x)
        value = xp.where(positive, x, xp.maximum(gap, zero))
        if not need_grad:
            return value, None, None
        g = xp.where(positive, xp.ones_like(x), xp.where(gap > 0, -xp.ones_like(x), zero))
        return value, g, None

    return core


@catalogued(
    family="classification",
    input_space="scores",
    formula="x if y = 1, max(0, margin - x) if y = -1",
    torch="F.hinge_embedding_loss",
    optax=None,
    keras=None,
)
@loss_function
def hinge_embedding(
    input: Array,
    target: Array,
    margin: float = 1.0,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Hinge embedding loss, for learning whether two inputs are similar from a distance
    ``input`` (e.g. an L1 distance between embeddings):
    :math:`\ell = x` if :math:`y = 1`, :math:`\max(0, \mathrm{margin} - x)` if :math:`y = -1`.

    Gradient: 1 for :math:`y = 1`; -1 where :math:`y = -1` and :math:`x < \mathrm{margin}`.

    Args:
      input: distances (or any scores), any shape.
      target: labels in {-1, 1}, same shape (float or integer).
      margin: the margin (default 1.0).
      reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
      where: optional boolean mask of counted elements.

    Equivalent: ``torch.nn.functional.hinge_embedding_loss``.
    """
    margin = check_hyperparameter(margin, "margin", like=input)
    return pointwise_loss(
        _hinge_embedding_core(margin),
        input,
        _float_labels(input, target),
        reduction=reduction,
        where=where,
        wrt=wrt,
        target_check=lambda xp, y: check_values_in(xp, y, (-1.0, 1.0), "target"),
    )


def _soft_margin_core(xp, x, y, need_grad):
    m = -y * x
    value = numerics.softplus(xp, m)
    if not need_grad:
        return value, None, None
    return value, -y * numerics.sigmoid(xp, m), None


@catalogued(
    family="classification",
    input_space="logits",
    formula="log(1 + exp(-y x))",
    torch="F.soft_margin_loss",
    optax=None,
    keras=None,
)
@loss_function
def soft_margin(
    input: Array,
    target: Array,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Soft-margin (logistic) loss for labels in {-1, 1}: :math:`\ell = \log(1 + e^{-y\,x})`,
    computed as a stable softplus (exact at :math:`|x| = 10^4`).

    Gradient: :math:`-y\,\sigma(-y\,x)`.  With {0, 1} labels use
    :func:`losskit.binary_cross_entropy_with_logits`, which is the same loss.

    Args:
      input: logits, any shape.
      target: labels in {-1, 1}, same shape (float or integer).
      reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
      where: optional boolean mask of counted elements.

    Equivalent: ``torch.nn.functional.soft_margin_loss``.
    """
    return pointwise_loss(
        _soft_margin_core,
        input,
        _float_labels(input, target),
        reduction=reduction,
        where=where,
        wrt=wrt,
        target_check=lambda xp, y: check_values_in(xp, y, (-1.0, 1.0), "target"),
    )


# -- multiclass ---------------------------------------------------------------------------------


def _class_axis_input(xp, input, axis):
    check_float_array(xp, input, "input")
    if input.ndim == 0:
        raise ValueError("input must have a class axis; got a 0-d array")
    check_nonempty(input, "input")
    axis = check_axis(axis, input.ndim)
    sample_shape = tuple(d for i, d in enumerate(input.shape) if i != axis)
    return axis, input.shape[axis], sample_shape


def _index_targets(xp, input, target, axis):
    """Validate (scores, integer class indices); return axis, C and the per-sample shape."""
    axis, num_classes, sample_shape = _class_axis_input(xp, input, axis)
    check_integer_array(xp, target, "target")
    if tuple(target.shape) != sample_shape:
        raise ValueError(
            f"target of class indices must have the input's shape without the class axis "
            f"(axis={axis}): expected {sample_shape}, got {tuple(target.shape)}"
            + axis_hint(tuple(input.shape), tuple(target.shape), axis)
        )
    check_class_indices(xp, target, num_classes, None)
    return axis, num_classes, sample_shape


def _is_class(xp, index, num_classes):
    """Boolean one-hot of ``index`` along a new last axis."""
    return xp.expand_dims(index, axis=-1) == xp.arange(num_classes, dtype=index.dtype)


def _first_argmax_mask(xp, s, num_classes):
    """One-hot (as a boolean mask) of the first maximum along the last axis."""
    return _is_class(xp, xp.argmax(s, axis=-1), num_classes)


def _picked(xp, s, is_target):
    return xp.sum(xp.where(is_target, s, xp.zeros_like(s)), axis=-1)


def _max_minus_target(input, target, axis, reduction, where, wrt, margin):
    """max_c (s_c + margin [c != y]) - s_y and its (sub)gradient."""
    xp = namespace(input=input, target=target, where=where)
    axis, num_classes, sample_shape = _index_targets(xp, input, target, axis)
    out_dtype = input.dtype
    dtype = compute_dtype(xp, out_dtype)
    s = xp.moveaxis(lift(xp, input, dtype), axis, -1)
    is_target = _is_class(xp, target, num_classes)
    # max_c (s_c + margin [c != y] - s_y), with the target's own term exactly 0: no inf - inf
    # at an infinite target score, no cancellation at large ones
    gap = s - xp.expand_dims(_picked(xp, s, is_target), axis=-1)
    shifted = xp.where(is_target, xp.zeros_like(gap), gap if margin == 0.0 else gap + margin)
    value = xp.max(shifted, axis=-1)
    reducer = make_reducer(xp, reduction, sample_shape, dtype, where=where)
    grads = {}
    if 0 in wrt:
        # the first maximiser takes the subgradient (ties are measure-zero)
        g = xp.astype(_first_argmax_mask(xp, shifted, num_classes), dtype) - xp.astype(is_target, dtype)
        grads[0] = xp.moveaxis(reducer.grad(g, axis=-1), -1, axis)
    return finish(xp, out_dtype, reducer.value(value), grads)


@catalogued(
    family="classification",
    input_space="scores",
    formula="max_c (s_c + [c != y]) - s_y",
    torch=None,
    optax="optax.losses.multiclass_hinge_loss",
    keras=None,
)
@loss_function
def multiclass_hinge(
    input: Array,
    target: Array,
    axis: int = -1,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Crammer-Singer multiclass hinge loss:
    :math:`\ell = \max_c\,(s_c + 1 - [c = y]) - s_y`.

    Zero once the target's score beats every other score by at least 1.  Subgradient:
    :math:`e_{c^*} - e_y` with :math:`c^*` the (first) maximiser.

    Args:
      input: scores, classes along ``axis``.
      target: integer class indices, ``input``'s shape without ``axis``.
      axis: the class axis (default -1).
      reduction: ``"mean"`` (default, over samples), ``"sum"`` or ``"none"``.
      where: optional boolean mask over samples.

    Equivalent: ``optax.losses.multiclass_hinge_loss``.  (Keras ``CategoricalHinge`` differs:
    it takes the maximum of the other scores together with 0, so it is larger whenever every
    other score is negative.)
    """
    return _max_minus_target(input, target, axis, reduction, where, wrt, 1.0)


@catalogued(
    family="classification",
    input_space="scores",
    formula="max_c s_c - s_y",
    torch=None,
    optax="optax.losses.multiclass_perceptron_loss",
    keras=None,
)
@loss_function
def multiclass_perceptron(
    input: Array,
    target: Array,
    axis: int = -1,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Multiclass perceptron loss: :math:`\ell = \max_c s_c - s_y`, zero once the target has
    the highest score.  Subgradient: :math:`e_{c^*} - e_y` with :math:`c^*` the first argmax.

    Args as :func:`multiclass_hinge`.  Equivalent: ``optax.losses.multiclass_perceptron_loss``.
    """
    return _max_minus_target(input, target, axis, reduction, where, wrt, 0.0)


@catalogued(
    family="classification",
    input_space="scores",
    formula="sum_{c != y} w_y max(0, margin - s_y + s_c)^p / C",
    torch="F.multi_margin_loss",
    optax=None,
    keras=None,
)
@loss_function
def multi_margin(
    input: Array,
    target: Array,
    p: int = 1,
    margin: float = 1.0,
    weight: Array | None = None,
    axis: int = -1,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Multiclass margin loss (one-vs-each hinge, Weston-Watkins):
    :math:`\ell = \frac1C\sum_{c \ne y} w_y \max(0, \mathrm{margin} - s_y + s_c)^p`.

    Gradient with :math:`h_c = \max(0, \mathrm{margin} - s_y + s_c)`: :math:`w_y\,p\,h_c^{p-1}/C`
    for each :math:`c \ne y` with :math:`h_c > 0`, and minus their sum for :math:`y`.

    Args:
      input: scores, classes along ``axis`` (``(C,)`` or ``(N, C)`` as PyTorch, or more axes).
      target: integer class indices, ``input``'s shape without ``axis``.
      p: 1 (default) or 2.
      margin: the margin (default 1.0).
      weight: optional class weights, shape ``(C,)``; the target's weight scales the sample.
      axis: the class axis (default -1).
      reduction: ``"mean"`` (default: the plain mean over samples, as PyTorch — not divided
        by the weights), ``"sum"`` or ``"none"``.
      where: optional boolean mask over samples.

    Equivalent: ``torch.nn.functional.multi_margin_loss``.
    """
    if isinstance(p, bool) or p not in (1, 2):
        raise ValueError(f"p must be 1 or 2; got {p!r}")
    margin = check_hyperparameter(margin, "margin", like=input)
    xp = namespace(input=input, target=target, weight=weight, where=where)
    axis, num_classes, sample_shape = _index_targets(xp, input, target, axis)
    if weight is not None:
        check_float_array(xp, weight, "weight")
        if tuple(weight.shape) != (num_classes,):
            raise ValueError(
                f"weight must have shape ({num_classes},), one weight per class; got {tuple(weight.shape)}"
            )
    out_dtype = input.dtype
    dtype = compute_dtype(xp, out_dtype)
    s = xp.moveaxis(lift(xp, input, dtype), axis, -1)
    is_target = _is_class(xp, target, num_classes)
    s_y = xp.expand_dims(_picked(xp, s, is_target), axis=-1)
    gap = margin - s_y + s
    zero = xp.zeros_like(gap)
    h = xp.where(is_target, zero, xp.maximum(gap, zero))
    per_class = h if p == 1 else h * h
    scale = None
    if weight is not None:
        w = xp.astype(weight, dtype)
        scale = _picked(xp, xp.broadcast_to(w, s.shape), is_target) / num_classes
    value = xp.sum(per_class, axis=-1)
    value = value / num_classes if scale is None else value * scale
    reducer = make_reducer(xp, reduction, sample_shape, dtype, where=where)
    grads = {}
    if 0 in wrt:
        g = xp.where(h > 0, xp.ones_like(h), zero) if p == 1 else 2.0 * h
        g = xp.where(is_target, -xp.sum(g, axis=-1, keepdims=True), g)
        g = g / num_classes if scale is None else g * xp.expand_dims(scale, axis=-1)
        grads[0] = xp.moveaxis(reducer.grad(g, axis=-1), -1, axis)
    return finish(xp, out_dtype, reducer.value(value), grads)


@catalogued(
    family="classification",
    input_space="scores",
    formula="sum_{j in targets} sum_{i not in targets} max(0, 1 - (s_j - s_i)) / C",
    torch="F.multilabel_margin_loss",
    optax=None,
    keras=None,
)
@loss_function
def multilabel_margin(
    input: Array,
    target: Array,
    axis: int = -1,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Multilabel margin loss (pairwise hinge between every target class and every other
    class): :math:`\ell = \frac1C\sum_{k}\sum_{i \notin T}\max(0, 1 - (s_{t_k} - s_i))`.

    ``target`` lists the target classes of each sample as indices along ``axis``, padded with
    -1: the list ends at the first -1 (later entries are ignored), as in PyTorch — e.g.
    ``[3, 0, -1, 1]`` means classes {3, 0}.  A class listed twice counts twice (PyTorch's
    numbers).  Gradient: each active pair adds :math:`1/C` to :math:`s_i` and :math:`-1/C` to
    :math:`s_{t_k}`.

    Args:
      input: scores, classes along ``axis`` (``(C,)`` or ``(N, C)`` as PyTorch, or more axes).
      target: integer array of ``input``'s shape, values in [-1, C - 1].
      axis: the class axis (default -1).
      reduction: ``"mean"`` (default, over samples), ``"sum"`` or ``"none"``.
      where: optional boolean mask over samples.

    Equivalent: ``torch.nn.functional.multilabel_margin_loss``.
    """
    xp = namespace(input=input, target=target, where=where)
    axis, num_classes, sample_shape = _class_axis_input(xp, input, axis)
    check_integer_array(xp, target, "target")
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"target must have the input's shape {tuple(input.shape)} (class indices padded with -1); "
            f"got {tuple(target.shape)}"
        )
    if is_concrete(target):
        lo, hi = xp.min(target), xp.max(target)
        if is_concrete(lo) and (int(lo) < -1 or int(hi) >= num_classes):
            bad = int(lo) if int(lo) < -1 else int(hi)
            raise ValueError(
                f"target holds {bad}, outside [-1, {num_classes - 1}] (class indices for {num_classes} "
                "classes, -1 ending the list)"
            )
    out_dtype = input.dtype
    dtype = compute_dtype(xp, out_dtype)
    s = xp.moveaxis(lift(xp, input, dtype), axis, -1)
    t = xp.moveaxis(target, axis, -1)
    ended = xp.astype(t == -1, t.dtype)
    listed = xp.cumulative_sum(ended, axis=-1) == 0  # (..., K): before the first -1
    safe_t = xp.where(listed, t, xp.zeros_like(t))
    pick = _is_class(xp, safe_t, num_classes) & xp.expand_dims(listed, axis=-1)  # (..., K, C)
    is_target = xp.any(pick, axis=-2)  # (..., C)
    s_t = xp.sum(xp.where(pick, xp.expand_dims(s, axis=-2), xp.zeros_like(pick, dtype=dtype)), axis=-1)
    gap = 1.0 - xp.expand_dims(s_t, axis=-1) + xp.expand_dims(s, axis=-2)  # (..., K, C)
    # ~(gap <= 0): a NaN score makes the loss NaN, as in PyTorch
    active = ~(gap <= 0) & xp.expand_dims(listed, axis=-1) & xp.expand_dims(~is_target, axis=-2)
    value = xp.sum(xp.where(active, gap, xp.zeros_like(gap)), axis=(-2, -1)) / num_classes
    reducer = make_reducer(xp, reduction, sample_shape, dtype, where=where)
    grads = {}
    if 0 in wrt:
        on = xp.astype(active, dtype)
        per_listed = xp.sum(on, axis=-1)  # (..., K): active pairs of each listed target
        to_targets = xp.sum(xp.astype(pick, dtype) * xp.expand_dims(per_listed, axis=-1), axis=-2)
        g = (xp.sum(on, axis=-2) - to_targets) / num_classes
        grads[0] = xp.moveaxis(reducer.grad(g, axis=-1), -1, axis)
    return finish(xp, out_dtype, reducer.value(value), grads)


@catalogued(
    family="classification",
    input_space="logits",
    formula="-1/C sum_c w_c [y_c log sigmoid(x_c) + (1 - y_c) log sigmoid(-x_c)]",
    torch="F.multilabel_soft_margin_loss",
    optax=None,
    keras=None,
)
@loss_function
def multilabel_soft_margin(
    input: Array,
    target: Array,
    weight: Array | None = None,
    axis: int = -1,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Multilabel soft-margin loss: the per-class binary cross-entropy on logits, averaged over
    the classes of each sample:
    :math:`\ell = -\frac1C\sum_c w_c\,[y_c\log\sigma(x_c) + (1 - y_c)\log\sigma(-x_c)]`.

    Gradient: :math:`w_c(\sigma(x_c) - y_c)/C` (target: :math:`-w_c x_c / C`).

    Args:
      input: logits, classes along ``axis``.
      target: labels in [0, 1] (0/1, or soft), ``input``'s shape (float or integer).
      weight: optional class weights: shape ``(C,)`` (along ``axis``) or any shape that
        broadcasts to ``input`` (PyTorch's rule).
      axis: the class axis (default -1, PyTorch's layout).
      reduction: ``"mean"`` (default, over samples), ``"sum"`` or ``"none"`` (shape of
        ``input`` without ``axis``).
      where: optional boolean mask over samples.

    Equivalent: ``torch.nn.functional.multilabel_soft_margin_loss``.
    """
    target = _float_labels(input, target)
    xp = namespace(input=input, target=target, weight=weight, where=where)
    axis, num_classes, sample_shape = _class_axis_input(xp, input, axis)
    check_float_array(xp, target, "target")
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"target must have the input's shape {tuple(input.shape)}; got {tuple(target.shape)}"
        )
    check_no_nan(xp, target, "target")
    check_in_unit_interval(xp, target, "target")
    out_dtype = xp.result_type(input.dtype, target.dtype)
    dtype = compute_dtype(xp, out_dtype)
    x = xp.moveaxis(cast(xp, input, dtype), axis, -1)
    y = xp.moveaxis(cast(xp, target, dtype), axis, -1)
    w = None
    if weight is not None:
        check_float_array(xp, weight, "weight")
        w = xp.astype(weight, dtype)
        if tuple(weight.shape) != (num_classes,):
            check_broadcastable_to(weight, tuple(input.shape), "weight", "input")
            w = xp.moveaxis(xp.broadcast_to(w, tuple(input.shape)), axis, -1)
    # (1 - y) softplus(x) + y softplus(-x), each term 0 where its label weight is 0: exact at
    # x = +-inf (where (1 - y) x + softplus(-x) meets inf - inf)
    per_class = numerics.xlogy(xp, 1.0 - y, numerics.softplus(xp, x)) + numerics.xlogy(
        xp, y, numerics.softplus(xp, -x)
    )
    if w is not None:
        per_class = per_class * w
    value = xp.sum(per_class, axis=-1) / num_classes
    reducer = make_reducer(xp, reduction, sample_shape, dtype, where=where)
    grads = {}
    for argnum, d in ((0, numerics.sigmoid(xp, x) - y), (1, -x)):
        if argnum in wrt:
            g = d / num_classes if w is None else d * w / num_classes
            grads[argnum] = xp.moveaxis(reducer.grad(g, axis=-1), -1, axis)
    return finish(xp, out_dtype, reducer.value(value), grads)
