r"""More segmentation losses: the generalised Dice loss (Sudre et al. 2017) and the Lovász
losses (Berman et al. 2018).

The generalised Dice loss is one overlap ratio per sample over all the classes, each class
weighted by the inverse of its ground-truth volume; layout and common options as
:mod:`losskit.losses.segmentation` (classes along ``axis=``, default -1; ``activation``; integer
or one-hot / soft targets; ``smooth``; ``ignore_background``; ``batch``).

The Lovász losses optimise the Jaccard index directly through its Lovász extension: the
errors of the pixels are sorted in decreasing order and dotted with the gradient of the
Lovász extension, computed from the ground truth in that order,

.. math::
    J_i = 1 - \frac{G - \sum_{j \le i} g_{(j)}}{G + \sum_{j \le i} (1 - g_{(j)})}, \qquad
    \ell = \sum_i e_{(i)} (J_i - J_{i-1}),\ J_0 = 0,

with :math:`G` the number of foreground pixels.  The sort is piecewise constant, so the
gradient with respect to the errors is that vector :math:`J_i - J_{i-1}` put back through the
sort's permutation (what autograd of the paper's code gives).
"""

from __future__ import annotations

from ..core.backend import Array, cast, compute_dtype, finish, index_dtype, is_integer, namespace
from ..core.catalog import catalogued
from ..core.gradients import LossResult, loss_function
from ..core.reduction import Reduction, make_reducer
from ..core.validation import (
    check_axis,
    check_class_indices,
    check_float_array,
    check_in_unit_interval,
    check_nonempty,
    check_values_in,
)
from .segmentation import _check_bool, _prepare, _spread, _summed, _to_input

__all__ = ["generalized_dice", "lovasz_hinge", "lovasz_softmax"]

_WEIGHT_TYPES = ("square", "simple", "uniform")


def _class_weights(xp, g_sum, weight_type):
    """MONAI's weights ``w = 1 / G^2`` (``square``), ``1 / G`` (``simple``) or 1, an infinite
    weight (empty class) replaced by the largest finite weight of the sample (of the batch with
    ``batch``); returns the weights and ``dw/dG`` with that replacement held fixed for the empty
    classes, and the one-hot of the class holding the largest weight."""
    one = xp.ones_like(g_sum)
    if weight_type == "uniform":
        return one, xp.zeros_like(g_sum), None, None
    base = g_sum * g_sum if weight_type == "square" else g_sum
    reciprocal = 1.0 / xp.where(base == 0, one, base)
    empty = (base == 0) | xp.isinf(reciprocal)
    finite = xp.where(empty, xp.zeros_like(g_sum), reciprocal)
    largest = xp.max(finite, axis=-1, keepdims=True)
    weights = xp.where(empty, largest, finite)
    safe_g = xp.where(empty, one, g_sum)
    if weight_type == "square":
        slope = -2.0 * finite / safe_g
    else:
        slope = -finite / safe_g
    c = g_sum.shape[-1]
    at_max = xp.astype(xp.argmax(finite, axis=-1, keepdims=True) == xp.arange(c), g_sum.dtype)
    return weights, slope, empty, at_max


@catalogued(
    family="segmentation",
    input_space="probabilities",
    formula="1 - (2 sum_c w_c TP_c + s) / (sum_c w_c (P_c + G_c) + s), w_c = 1 / G_c^2",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def generalized_dice(
    input: Array,
    target: Array,
    *,
    weight_type: str = "square",
    activation: str | None = None,
    smooth: float = 1e-5,
    ignore_background: bool = False,
    axis: int = -1,
    batch: bool = False,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Generalised Dice loss (Sudre et al. 2017), per sample:

    .. math::
        \ell_n = 1 - \frac{2 \sum_c w_{nc} TP_{nc} + s}{\sum_c w_{nc} (P_{nc} + G_{nc}) + s},
        \qquad w_{nc} = 1 / G_{nc}^2

    (``weight_type="square"``; ``"simple"``: :math:`1/G_{nc}`; ``"uniform"``: 1), with
    :math:`TP, P, G` the per-class sums of :mod:`losskit.losses.segmentation`.  A class absent
    from the target (:math:`G = 0`, an infinite weight) gets the largest weight among the
    sample's other classes (MONAI's rule; 0 when every class is empty, so an all-empty sample
    scores 0 loss).  With ``batch=True`` the sums and the weights run over the whole batch:
    one loss.  Values lie in [0, 1]; 0 when the prediction equals one-hot targets.

    Gradient with respect to the probabilities:
    :math:`\partial\ell/\partial p_x = w_c (-2 g_x / D + N / D^2)` for :math:`x` of class
    :math:`c`, with :math:`N, D` the numerator and the denominator, carried through the
    activation (``argnums=0``).  With respect to floating targets (``argnums=1``) the weights
    are differentiated too (:math:`\partial w/\partial G = -2/G^3` for ``square``), the
    replacement of an empty class's weight counting for the class that holds the largest
    weight — what autograd of MONAI's code gives.

    Args:
      input: probabilities or logits (per ``activation``), ``(N, ..., C)`` with the classes
        along ``axis``.
      target: integer label map ``(N, ...)`` or one-hot / soft labels of ``input``'s shape.
      weight_type: ``"square"`` (default), ``"simple"`` or ``"uniform"``.
      activation: ``None`` (default, probabilities), ``"softmax"`` or ``"sigmoid"``.
      smooth: :math:`s \ge 0` (default 1e-5).
      ignore_background: leave class 0 out (default False).
      axis: the class axis (default -1; ``axis=1`` for ``(N, C, H, W)``).
      batch: one ratio over the whole batch (default False).
      reduction: ``"mean"`` (default), ``"sum"``, ``"none"`` (``(N,)``; ``()`` with
        ``batch``).
      where: optional boolean mask over the ``(N,)`` per-sample losses.

    Example: one sample of two pixels and two classes, :math:`p = ((0.9, 0.1), (0.2, 0.8))`,
    labels :math:`(0, 1)`, ``weight_type="uniform"``, :math:`s = 0`: :math:`TP = (0.9, 0.8)`,
    :math:`P + G = (2.1, 1.9)`, loss :math:`1 - 3.4/4 = 0.15`.

    Reference: Sudre et al., "Generalised Dice overlap as a deep learning loss function for
    highly unbalanced segmentations", DLMIA 2017.

    Equivalent: MONAI ``GeneralizedDiceLoss(w_type=weight_type, smooth_nr=smooth,
    smooth_dr=smooth, batch=batch, soft_label=False)`` with the class axis moved (its
    ``"none"`` keeps singleton axes).
    """
    if weight_type not in _WEIGHT_TYPES:
        raise ValueError(f"weight_type must be 'square', 'simple' or 'uniform'; got {weight_type!r}")
    xp, p, g, state = _prepare(
        input,
        target,
        activation=activation,
        smooth=smooth,
        ignore_background=ignore_background,
        axis=axis,
        batch=batch,
        weight=None,
        where=where,
    )
    dtype, kept, smooth = state["dtype"], state["kept"], state["smooth"]
    tp = _summed(xp, p * g, state)[..., kept]
    p_sum = _summed(xp, p, state)[..., kept]
    g_sum = _summed(xp, g, state)[..., kept]
    w, slope, empty, at_max = _class_weights(xp, g_sum, weight_type)
    cardinality = p_sum + g_sum
    num = 2.0 * xp.sum(w * tp, axis=-1) + smooth
    den = xp.sum(w * cardinality, axis=-1) + smooth
    value = 1.0 - num / den  # (N,), or () with batch
    reducer = make_reducer(xp, reduction, tuple(value.shape), dtype, where=where)
    grads = {}
    if wrt:
        coef = xp.expand_dims(reducer.grad(xp.ones(tuple(value.shape), dtype=dtype)), axis=-1)
        den_ = xp.expand_dims(den, axis=-1)
        ratio = xp.expand_dims(num, axis=-1) / (den_ * den_)
        d_tp = coef * (-2.0 * w / den_)  # (N, C') or (C',)
        d_card = coef * (w * ratio)

        def full(a):
            if ignore_background:
                return xp.concat([xp.zeros_like(a[..., :1]), a], axis=-1)
            return a

        if 0 in wrt:
            gp = _spread(xp, full(d_tp), p, state) * g + _spread(xp, full(d_card), p, state)
            grads[0] = _to_input(xp, gp, p, activation, state)
        if 1 in wrt and not state["indices"]:
            d_g = d_card
            if empty is not None:
                d_w = coef * (-2.0 * tp / den_ + ratio * cardinality)
                to_max = xp.sum(xp.where(empty, d_w, xp.zeros_like(d_w)), axis=-1, keepdims=True)
                d_g = d_g + slope * (d_w + at_max * to_max)
            gg = _spread(xp, full(d_tp), p, state) * p + _spread(xp, full(d_g), p, state)
            grads[1] = xp.moveaxis(gg, -1, state["axis"])
    return finish(xp, state["out_dtype"], reducer.value(value), grads)


def _lovasz_rows(xp, errors, fg, positive_part):
    """Row by row, the Lovász extension of the Jaccard loss at ``errors`` (``(R, M)``) for the
    foreground ``fg`` (0/1, same shape), of ``max(errors, 0)`` with ``positive_part``.  Returns
    the ``(R,)`` values and the ``(R, M)`` gradients with respect to ``errors``."""
    rows, m = errors.shape
    order = xp.argsort(errors, axis=-1, descending=True, stable=True)
    offsets = xp.reshape(xp.arange(rows, dtype=order.dtype) * m, (rows, 1))

    def gather(a, index):
        return xp.reshape(xp.take(xp.reshape(a, (-1,)), xp.reshape(index + offsets, (-1,))), (rows, m))

    e_sorted = gather(errors, order)
    fg_sorted = gather(fg, order)
    total = xp.sum(fg, axis=-1, keepdims=True)
    intersection = total - xp.cumulative_sum(fg_sorted, axis=-1)
    union = total + xp.cumulative_sum(1.0 - fg_sorted, axis=-1)
    jac = 1.0 - intersection / union
    step = xp.concat([jac[:, :1], jac[:, 1:] - jac[:, :-1]], axis=-1)
    if positive_part:
        e_sorted = xp.where(e_sorted < 0, xp.zeros_like(e_sorted), e_sorted)  # NaN stays NaN
    value = xp.sum(e_sorted * step, axis=-1)
    grad = gather(step, xp.argsort(order, axis=-1))
    if positive_part:
        grad = xp.where(errors > 0, grad, xp.zeros_like(grad))
    return value, grad


@catalogued(
    family="segmentation",
    input_space="logits",
    formula="Lovasz extension of the Jaccard loss at the hinge errors max(1 - z (2y - 1), 0)",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def lovasz_hinge(
    logits: Array,
    labels: Array,
    *,
    per_image: bool = True,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Lovász hinge loss (Berman et al. 2018) for binary segmentation, on logits.

    The hinge errors :math:`e_x = \max(1 - z_x s_x, 0)`, :math:`s_x = 2y_x - 1`, go through the
    Lovász extension of the Jaccard loss of the foreground (module docstring): sorted in
    decreasing order and dotted with the Jaccard increments of the sorted labels.  It is convex
    in the errors and equals the Jaccard loss of the thresholded prediction when the errors are
    0 or 1.  0 when every :math:`z_x s_x \ge 1`.

    Gradient: :math:`\partial\ell/\partial z_x = -s_x [e_x > 0] (J_{r(x)} - J_{r(x) - 1})`
    with :math:`r(x)` the rank of pixel :math:`x` in the sort (ties kept in their order).

    Args:
      logits: ``(N, ...)`` scores of the foreground, one image per entry of the first axis.
      labels: 0/1 labels of the same shape (integer, bool or floating).
      per_image: one loss per image, shape ``(N,)`` (default True, the paper's choice for the
        hinge); False: one loss over all the batch's pixels, shape ``()``.
      reduction: ``"mean"`` (default), ``"sum"``, ``"none"`` over those losses.
      where: optional boolean mask over those losses.

    Example: one image of two pixels, logits :math:`(2, 0)`, labels :math:`(1, 0)`: errors
    :math:`(0, 1)`, sorted :math:`(1, 0)` with labels :math:`(0, 1)`, Jaccard increments
    :math:`(1/2, 1/2)`: loss 0.5.

    Reference: Berman, Rannen Triki & Blaschko, "The Lovász-Softmax loss: A tractable
    surrogate for the optimization of the intersection-over-union measure in neural networks",
    CVPR 2018 (``lovasz_hinge``; the paper's ``ignore`` label has no equivalent here).
    """
    xp = namespace(logits=logits, labels=labels, where=where)
    check_float_array(xp, logits, "logits")
    if logits.ndim < 1:
        raise ValueError("logits must have a batch axis (at least 1-d); got a 0-d array")
    check_nonempty(logits, "logits")
    if tuple(labels.shape) != tuple(logits.shape):
        raise ValueError(
            f"labels must have the logits' shape {tuple(logits.shape)}; got {tuple(labels.shape)}"
        )
    if labels.dtype != xp.bool and not (is_integer(xp, labels) or xp.isdtype(labels.dtype, "real floating")):
        raise TypeError(f"labels must hold 0/1 values (integer, bool or floating); got dtype {labels.dtype}")
    if labels.dtype != xp.bool:
        check_values_in(xp, labels, (0, 1), "labels")
    _check_bool(per_image, "per_image")
    out_dtype = logits.dtype
    dtype = compute_dtype(xp, out_dtype)
    rows = logits.shape[0] if per_image else 1
    z = xp.reshape(cast(xp, logits, dtype), (rows, -1))
    y = xp.reshape(xp.astype(labels, dtype), (rows, -1))
    sign = 2.0 * y - 1.0
    per_row, grad = _lovasz_rows(xp, 1.0 - z * sign, y, positive_part=True)
    value = per_row if per_image else xp.reshape(per_row, ())
    reducer = make_reducer(xp, reduction, tuple(value.shape), dtype, where=where)
    grads = {}
    if 0 in wrt:
        coef = xp.reshape(reducer.grad(xp.ones(tuple(value.shape), dtype=dtype)), (rows, 1))
        grads[0] = xp.reshape(-coef * sign * grad, tuple(logits.shape))
    return finish(xp, out_dtype, reducer.value(value), grads)


def _class_list(classes, num_classes):
    if isinstance(classes, str):
        if classes not in ("present", "all"):
            raise ValueError(
                f"classes must be 'present', 'all' or a sequence of class indices; got {classes!r}"
            )
        return tuple(range(num_classes))
    try:
        chosen = tuple(classes)
    except TypeError:
        raise TypeError(
            f"classes must be 'present', 'all' or a sequence of class indices; got {type(classes).__name__}"
        ) from None
    if not chosen:
        raise ValueError("classes must name at least one class")
    for c in chosen:
        if isinstance(c, bool) or not isinstance(c, int):
            raise TypeError(f"classes must hold integer class indices; got {c!r}")
        if not 0 <= c < num_classes:
            raise ValueError(f"classes holds {c}, outside [0, {num_classes - 1}] for {num_classes} classes")
    return chosen


@catalogued(
    family="segmentation",
    input_space="probabilities",
    formula="mean over classes of the Lovasz extension of the Jaccard loss at |g_c - p_c|",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def lovasz_softmax(
    probabilities: Array,
    labels: Array,
    *,
    classes: str | tuple[int, ...] = "present",
    per_image: bool = False,
    axis: int = -1,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Lovász-Softmax loss (Berman et al. 2018) for multiclass segmentation, on probabilities.

    For each class :math:`c`, the errors :math:`e_x = |[y_x = c] - p_{xc}|` go through the
    Lovász extension of the Jaccard loss of that class (module docstring); the loss is the
    mean over the classes.  0 when the probabilities are the one-hot labels.

    Gradient: :math:`\partial\ell/\partial p_{xc} = \operatorname{sign}(p_{xc} - [y_x = c])
    (J_{r(x)} - J_{r(x) - 1}) / K` for the :math:`K` classes averaged, :math:`r(x)` the rank
    of pixel :math:`x` in class :math:`c`'s sort.

    Args:
      probabilities: ``(N, ..., C)`` class probabilities (e.g. a softmax), classes along
        ``axis``.
      labels: integer class indices, ``probabilities``' shape without ``axis``.
      classes: ``"present"`` (default: the classes present in the labels, per image with
        ``per_image``; none present gives 0), ``"all"``, or a sequence of class indices.
      per_image: one loss per image, shape ``(N,)``; default False (the paper's choice for
        Lovász-Softmax): one loss over all the batch's pixels, shape ``()``.
      axis: the class axis (default -1; ``axis=1`` for ``(N, C, H, W)``).
      reduction: ``"mean"`` (default), ``"sum"``, ``"none"`` over those losses.
      where: optional boolean mask over those losses.

    Example: two pixels, two classes, :math:`p = ((0.8, 0.2), (0.4, 0.6))`, labels
    :math:`(0, 1)`: both classes have errors :math:`(0.2, 0.4)`, sorted :math:`(0.4, 0.2)`;
    class 0's foreground in that order is :math:`(0, 1)`, increments :math:`(1/2, 1/2)`, 0.3;
    class 1's is :math:`(1, 0)`, increments :math:`(1, 0)`, 0.4: loss 0.35.

    Reference: Berman, Rannen Triki & Blaschko, CVPR 2018 (``lovasz_softmax``; the paper's
    ``ignore`` label has no equivalent here).
    """
    xp = namespace(probabilities=probabilities, labels=labels, where=where)
    check_float_array(xp, probabilities, "probabilities")
    if probabilities.ndim < 2:
        raise ValueError(
            f"probabilities must have a batch axis and a class axis (at least 2-d); "
            f"got shape {tuple(probabilities.shape)}"
        )
    check_nonempty(probabilities, "probabilities")
    axis = check_axis(axis, probabilities.ndim)
    if axis == 0:
        raise ValueError("axis=0 is the batch axis; the class axis must be another one (default -1)")
    num_classes = probabilities.shape[axis]
    chosen = _class_list(classes, num_classes)
    _check_bool(per_image, "per_image")
    sample_shape = tuple(d for i, d in enumerate(probabilities.shape) if i != axis)
    if not is_integer(xp, labels):
        raise TypeError(f"labels must hold integer class indices; got dtype {labels.dtype}")
    if tuple(labels.shape) != sample_shape:
        raise ValueError(
            f"labels must have the probabilities' shape without the class axis (axis={axis}): "
            f"expected {sample_shape}, got {tuple(labels.shape)}"
        )
    check_class_indices(xp, labels, num_classes, None, "labels")
    check_in_unit_interval(xp, probabilities, "probabilities")
    out_dtype = probabilities.dtype
    dtype = compute_dtype(xp, out_dtype)
    rows = probabilities.shape[0] if per_image else 1
    k = len(chosen)
    picked = xp.asarray(chosen, dtype=labels.dtype)
    p = xp.reshape(xp.moveaxis(cast(xp, probabilities, dtype), axis, -1), (rows, -1, num_classes))
    p = xp.take(p, xp.astype(picked, index_dtype(xp)), axis=-1)  # (R, M, K)
    fg = xp.astype(xp.reshape(labels, (rows, -1, 1)) == picked, dtype)
    p_t, fg_t = xp.permute_dims(p, (0, 2, 1)), xp.permute_dims(fg, (0, 2, 1))  # (R, K, M)
    m = p_t.shape[-1]
    diff = fg_t - p_t
    per_class, grad = _lovasz_rows(
        xp, xp.reshape(xp.abs(diff), (rows * k, m)), xp.reshape(fg_t, (rows * k, m)), False
    )
    per_class = xp.reshape(per_class, (rows, k))
    if classes == "present":
        counted = xp.astype(xp.sum(fg_t, axis=-1) > 0, dtype)
    else:
        counted = xp.ones((rows, k), dtype=dtype)
    share = counted / xp.maximum(xp.sum(counted, axis=-1, keepdims=True), xp.ones((rows, 1), dtype=dtype))
    per_row = xp.sum(share * per_class, axis=-1)
    value = per_row if per_image else xp.reshape(per_row, ())
    reducer = make_reducer(xp, reduction, tuple(value.shape), dtype, where=where)
    grads = {}
    if 0 in wrt:
        coef = xp.reshape(reducer.grad(xp.ones(tuple(value.shape), dtype=dtype)), (rows, 1, 1))
        g_sel = coef * xp.reshape(share, (rows, k, 1)) * (-xp.sign(diff)) * xp.reshape(grad, (rows, k, m))
        onehot = xp.astype(xp.reshape(picked, (k, 1)) == xp.arange(num_classes, dtype=picked.dtype), dtype)
        g_p = xp.matmul(xp.permute_dims(g_sel, (0, 2, 1)), onehot)  # (R, M, C)
        moved = tuple(d for i, d in enumerate(probabilities.shape) if i != axis) + (num_classes,)
        grads[0] = xp.moveaxis(xp.reshape(g_p, moved), -1, axis)
    return finish(xp, out_dtype, reducer.value(value), grads)
