r"""Segmentation losses: soft overlap between predicted class maps and the ground truth.

The losses here are *soft* (computed on probabilities, so differentiable), *per sample and
per class*, then reduced — MONAI's ``DiceLoss`` / ``TverskyLoss`` convention with
``batch=False``.  For sample :math:`n` and class :math:`c`, with sums over the spatial
positions :math:`x`:

.. math::
    TP = \sum_x p_x g_x, \qquad P = \sum_x p_x, \qquad G = \sum_x g_x,

so :math:`FP = P - TP` and :math:`FN = G - TP`.

Layout: the first axis is the batch, the class axis is ``axis=`` (default -1, as
:func:`losskit.cross_entropy`: ``(N, H, W, C)``; pass ``axis=1`` for PyTorch/MONAI's
``(N, C, H, W)``), every other axis is spatial (there may be none: ``(N, C)``).

Common options:

- ``activation``: what ``input`` holds — ``None`` (default): probabilities in [0, 1];
  ``"softmax"``: logits of mutually exclusive classes (softmax along ``axis``);
  ``"sigmoid"``: logits of independent labels (multi-label, or one channel for binary).
- ``target``: integer label maps (``input``'s shape without ``axis``; turned into one-hot),
  or one-hot / soft targets in [0, 1] of ``input``'s shape.
- ``smooth``: added to numerator and denominator (default 1e-5, MONAI's ``smooth_nr`` =
  ``smooth_dr``); it makes a class absent from both prediction and target score 0 loss.
- ``ignore_background``: leave class 0 out (MONAI's ``include_background=False``); the
  activation still sees every class.
- ``batch``: sum the intersections and cardinalities over the batch too before the ratio
  (MONAI's ``batch=True``): one loss per class, shape ``(C,)``; default False.
- ``weight``: optional per-class weights, shape ``(C,)``, multiplying each class's loss.
- ``reduction``: ``"mean"`` (default, over samples and classes), ``"sum"``, ``"none"``
  (shape ``(N, C)``, or ``(N, C - 1)`` with ``ignore_background``).
  With ``batch=True`` the leading ``N`` is absent: ``(C,)``.
- ``where``: optional boolean mask broadcastable to that ``(N, C)`` / ``(N, C - 1)`` shape.
"""

from __future__ import annotations

from ..core import numerics
from ..core.backend import Array, cast, compute_dtype, finish, is_integer, namespace
from ..core.catalog import catalogued
from ..core.gradients import LossResult, loss_function
from ..core.reduction import Reduction, make_reducer
from ..core.validation import (
    axis_hint,
    check_axis,
    check_class_indices,
    check_float_array,
    check_hyperparameter,
    check_in_unit_interval,
    check_no_nan,
    check_nonempty,
)

__all__ = ["dice", "jaccard", "tversky"]

_ACTIVATIONS = (None, "softmax", "sigmoid")


def _check_bool(value, name):
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool; got {type(value).__name__}")
    return value


def _prepare(input, target, *, activation, smooth, ignore_background, axis, batch, weight, where):
    """Validate the common arguments; return the probabilities and one-hot targets, classes last.

    Returns ``(xp, p, g, state)`` with ``p`` and ``g`` of shape ``(N, ..., C)`` in the compute
    dtype and ``state`` a dict: ``dtype``, ``out_dtype``, ``indices`` (integer targets),
    ``axis``, ``smooth``, ``reduce`` (the summed axes of ``p``), ``kept`` (the class slice).
    """
    xp = namespace(input=input, target=target, weight=weight, where=where)
    check_float_array(xp, input, "input")
    if input.ndim < 2:
        raise ValueError(
            f"input must have a batch axis and a class axis (at least 2-d); got shape {tuple(input.shape)}"
        )
    check_nonempty(input, "input")
    axis = check_axis(axis, input.ndim)
    if axis == 0:
        raise ValueError("axis=0 is the batch axis; the class axis must be another one (default -1)")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be None, 'softmax' or 'sigmoid'; got {activation!r}")
    num_classes = input.shape[axis]
    if activation == "softmax" and num_classes == 1:
        raise ValueError(
            "activation='softmax' over a single class is the constant 1; "
            "use activation='sigmoid' for one-channel binary segmentation"
        )
    _check_bool(ignore_background, "ignore_background")
    _check_bool(batch, "batch")
    if ignore_background and num_classes < 2:
        raise ValueError("ignore_background=True needs at least 2 classes along axis; got 1")
    smooth = check_hyperparameter(smooth, "smooth", like=input, low=0.0)
    if activation is None:
        check_in_unit_interval(xp, input, "input")
    sample_shape = tuple(d for i, d in enumerate(input.shape) if i != axis)
    if is_integer(xp, target):
        if tuple(target.shape) != sample_shape:
            raise ValueError(
                f"target of class indices must have the input's shape without the class axis "
                f"(axis={axis}): expected {sample_shape}, got {tuple(target.shape)}"
                + axis_hint(tuple(input.shape), tuple(target.shape), axis)
            )
        check_class_indices(xp, target, num_classes, None)
        indices = True
    elif xp.isdtype(target.dtype, "real floating"):
        if tuple(target.shape) != tuple(input.shape):
            raise ValueError(
                f"target of one-hot or soft labels must have the input's shape {tuple(input.shape)}; "
                f"got {tuple(target.shape)} (integer label maps have the shape without axis={axis})"
            )
        check_no_nan(xp, target, "target")
        check_in_unit_interval(xp, target, "target")
        indices = False
    else:
        raise TypeError(
            f"target must be an integer label map or floating one-hot labels; got dtype {target.dtype}"
        )
    if weight is not None:
        check_float_array(xp, weight, "weight")
        if tuple(weight.shape) != (num_classes,):
            raise ValueError(
                f"weight must have shape ({num_classes},), one weight per class; got {tuple(weight.shape)}"
            )

    out_dtype = input.dtype if indices else xp.result_type(input.dtype, target.dtype)
    dtype = compute_dtype(xp, out_dtype)
    z = xp.moveaxis(cast(xp, input, dtype), axis, -1)  # (N, ..., C)
    if activation == "softmax":
        p = numerics.softmax(xp, z, -1)
    elif activation == "sigmoid":
        p = numerics.sigmoid(xp, z)
    else:
        p = z
    if indices:
        g = xp.astype(xp.expand_dims(target, axis=-1) == xp.arange(num_classes, dtype=target.dtype), dtype)
    else:
        g = xp.moveaxis(cast(xp, target, dtype), axis, -1)
    spatial = tuple(range(1, p.ndim - 1))
    state = {
        "dtype": dtype,
        "out_dtype": out_dtype,
        "indices": indices,
        "axis": axis,
        "smooth": smooth,
        "reduce": ((0,) if batch else ()) + spatial,
        "kept": slice(1, None) if ignore_background else slice(None),
    }
    return xp, p, g, state


def _summed(xp, a, state):
    """``a`` of shape ``(N, ..., C)`` summed over the spatial axes (and the batch with ``batch``)."""
    return xp.sum(a, axis=state["reduce"]) if state["reduce"] else a


def _spread(xp, coef, p, state):
    """A per-class coefficient (``(N, C)``, or ``(C,)`` with ``batch``) shaped to broadcast
    against ``p`` of shape ``(N, ..., C)``."""
    shape = tuple(1 if i in state["reduce"] else d for i, d in enumerate(p.shape))
    return xp.reshape(coef, shape)


def _to_input(xp, gp, p, activation, state):
    """The gradient with respect to the probabilities carried back to ``input``'s layout."""
    if activation == "softmax":
        gz = p * (gp - xp.sum(p * gp, axis=-1, keepdims=True))
    elif activation == "sigmoid":
        gz = gp * p * (1.0 - p)
    else:
        gz = gp
    return xp.moveaxis(gz, -1, state["axis"])


def _overlap_loss(
    input,
    target,
    *,
    num_tp,
    den_tp,
    den_p,
    den_g,
    activation,
    smooth,
    ignore_background,
    axis,
    batch,
    weight,
    reduction,
    where,
    wrt,
):
    r"""``1 - (num_tp TP + s) / (den_tp TP + den_p P + den_g G + s)`` per sample and class."""
    xp, p, g, state = _prepare(
        input,
        target,
        activation=activation,
        smooth=smooth,
        ignore_background=ignore_background,
        axis=axis,
        batch=batch,
        weight=weight,
        where=where,
    )
    dtype, kept, smooth = state["dtype"], state["kept"], state["smooth"]
    tp, p_sum, g_sum = _summed(xp, p * g, state), _summed(xp, p, state), _summed(xp, g, state)
    num = num_tp * tp + smooth
    den = den_tp * tp + den_p * p_sum + den_g * g_sum + smooth
    per_class = 1.0 - num / den  # (N, C), or (C,) with batch
    value = per_class[..., kept]
    w = None
    if weight is not None:
        w = xp.astype(weight, dtype)[kept]
        value = value * w
    reducer = make_reducer(xp, reduction, tuple(value.shape), dtype, where=where)
    grads = {}
    if wrt:
        coef = reducer.grad(xp.ones(tuple(value.shape), dtype=dtype))
        if w is not None:
            coef = coef * w
        if ignore_background:
            coef = xp.concat([xp.zeros_like(coef[..., :1]), coef], axis=-1)
        # d loss / d p_x = (B c - A) g_x + B den_p, with A = num_tp / den, B = num / den^2
        a_term = num_tp / den
        b_term = num / (den * den)
        cross = _spread(xp, coef * (b_term * den_tp - a_term), p, state)
        if 0 in wrt:
            gp = cross * g + _spread(xp, coef * b_term * den_p, p, state)
            grads[0] = _to_input(xp, gp, p, activation, state)
        if 1 in wrt and not state["indices"]:
            gg = cross * p + _spread(xp, coef * b_term * den_g, p, state)
            grads[1] = xp.moveaxis(gg, -1, state["axis"])
    return finish(xp, state["out_dtype"], reducer.value(value), grads)


@catalogued(
    family="segmentation",
    input_space="probabilities",
    formula="1 - (2 TP + s) / (P + G + s) per sample and class",
    torch=None,
    optax="optax.losses.dice_loss(smooth=5e-06, apply_softmax=False)",
    keras="Dice",
)
@loss_function
def dice(
    input: Array,
    target: Array,
    *,
    activation: str | None = None,
    smooth: float = 1e-5,
    ignore_background: bool = False,
    axis: int = -1,
    batch: bool = False,
    weight: Array | None = None,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Soft Dice loss (Milletari et al. 2016, V-Net), per sample and class:

    .. math::
        \ell_{nc} = 1 - \frac{2\,TP_{nc} + s}{P_{nc} + G_{nc} + s}

    (see the module docstring for :math:`TP, P, G`, the layout and the options).  Values lie
    in [0, 1]; 0 when the prediction equals one-hot targets.

    Optax's ``dice_loss`` writes the ratio :math:`(TP + s') / (P/2 + G/2 + s')` and applies a
    softmax by default: it equals this loss with ``smooth=s/2`` and ``apply_softmax=False``
    (``smooth=5e-06`` for the default here; Optax's own default ``smooth=1.0`` is a different
    loss, as is its softmax of the input, which is ``activation="softmax"`` here).

    Gradient with respect to the probabilities:
    :math:`\partial\ell/\partial p_x = -2 g_x / D + (2TP + s)/D^2` with
    :math:`D = P + G + s`, carried through the softmax or sigmoid when ``activation`` says
    ``input`` holds logits (``argnums=0``); symmetrically with respect to floating targets
    (``argnums=1``).

    Args:
      input: probabilities or logits (per ``activation``), ``(N, ..., C)`` with the classes
        along ``axis``.
      target: integer label map ``(N, ...)`` or one-hot / soft labels of ``input``'s shape.
      activation: ``None`` (default, probabilities), ``"softmax"`` or ``"sigmoid"``.
      smooth: :math:`s \ge 0` (default 1e-5).
      ignore_background: leave class 0 out (default False).
      axis: the class axis (default -1; ``axis=1`` for ``(N, C, H, W)``).
      batch: sum over the batch before the ratio, one loss per class (default False).
      weight: optional ``(C,)`` class weights.
      reduction: ``"mean"`` (default), ``"sum"``, ``"none"`` (``(N, C)``).
      where: optional boolean mask over the ``(N, C)`` losses.

    Equivalent: MONAI ``DiceLoss(include_background=not ignore_background,
    to_onehot_y=<integer target>, sigmoid=..., softmax=..., smooth_nr=smooth,
    smooth_dr=smooth, batch=batch, squared_pred=False, jaccard=False)`` with the class axis
    moved; ``optax.losses.dice_loss`` (:math:`(TP + s')/(\tfrac12 P + \tfrac12 G + s')`, i.e.
    this with :math:`s = 2s'`, softmax of logits, classes last); Keras ``Dice`` sums over the
    whole batch instead of per sample.
    """
    return _overlap_loss(
        input,
        target,
        num_tp=2.0,
        den_tp=0.0,
        den_p=1.0,
        den_g=1.0,
        activation=activation,
        smooth=smooth,
        ignore_background=ignore_background,
        axis=axis,
        batch=batch,
        weight=weight,
        reduction=reduction,
        where=where,
        wrt=wrt,
    )


@catalogued(
    family="segmentation",
    input_space="probabilities",
    formula="1 - (TP + s) / (TP + alpha FP + beta FN + s) per sample and class",
    torch=None,
    optax="optax.losses.dice_loss(smooth=1e-05, apply_softmax=False)",
    keras="Tversky (alpha and beta swapped)",
)
@loss_function
def tversky(
    input: Array,
    target: Array,
    alpha: float = 0.5,
    beta: float = 0.5,
    *,
    activation: str | None = None,
    smooth: float = 1e-5,
    ignore_background: bool = False,
    axis: int = -1,
    batch: bool = False,
    weight: Array | None = None,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Tversky loss (Salehi et al. 2017), per sample and class:

    .. math::
        \ell_{nc} = 1 - \frac{TP + s}{TP + \alpha\,FP + \beta\,FN + s},
        \qquad FP = P - TP,\ FN = G - TP

    (see the module docstring for the layout and the options).  :math:`\alpha` weighs false
    positives and :math:`\beta` false negatives (MONAI's and Optax's convention); raising
    :math:`\beta` trades precision for recall on small structures (the paper suggests
    :math:`\alpha = 0.3, \beta = 0.7`).  With :math:`\alpha = \beta = 1/2` and
    :math:`s = 0` this is the Dice loss.
    Optax's ``dice_loss(alpha=, beta=)`` is this loss with the same ``smooth`` once told
    ``apply_softmax=False`` (its defaults are ``smooth=1.0`` and a softmax of the input).

    Gradient with respect to the probabilities:
    :math:`\partial\ell/\partial p_x = -g_x/D + (TP + s)((1 - \alpha - \beta) g_x + \alpha)/D^2`
    with :math:`D` the denominator, carried through the activation (``argnums=0``);
    symmetrically with respect to floating targets (``argnums=1``).

    Args:
      input: probabilities or logits (per ``activation``), classes along ``axis``.
      target: integer label map or one-hot / soft labels of ``input``'s shape.
      alpha: weight of false positives, :math:`\ge 0` (default 0.5).
      beta: weight of false negatives, :math:`\ge 0` (default 0.5).
      activation, smooth, ignore_background, axis, batch, weight, reduction, where: as
        :func:`dice`.

    Equivalent: MONAI ``TverskyLoss(alpha, beta, smooth_nr=smooth, smooth_dr=smooth,
    batch=batch, soft_label=False)``; ``optax.losses.dice_loss(alpha=alpha, beta=beta,
    smooth=smooth, reduction="none")`` with softmax logits, classes last (same numbers);
    Keras ``Tversky`` sums over the whole batch instead of per sample.
    """
    alpha = check_hyperparameter(alpha, "alpha", like=input, low=0.0)
    beta = check_hyperparameter(beta, "beta", like=input, low=0.0)
    return _overlap_loss(
        input,
        target,
        num_tp=1.0,
        den_tp=1.0 - alpha - beta,
        den_p=alpha,
        den_g=beta,
        activation=activation,
        smooth=smooth,
        ignore_background=ignore_background,
        axis=axis,
        batch=batch,
        weight=weight,
        reduction=reduction,
        where=where,
        wrt=wrt,
    )


@catalogued(
    family="segmentation",
    input_space="probabilities",
    formula="1 - (TP + s) / (P + G - TP + s) per sample and class",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def jaccard(
    input: Array,
    target: Array,
    *,
    activation: str | None = None,
    smooth: float = 1e-5,
    ignore_background: bool = False,
    axis: int = -1,
    batch: bool = False,
    weight: Array | None = None,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Soft Jaccard (intersection-over-union) loss, per sample and class:

    .. math::
        \ell_{nc} = 1 - \frac{TP_{nc} + s}{P_{nc} + G_{nc} - TP_{nc} + s}

    (see the module docstring for :math:`TP, P, G`, the layout and the options): the soft
    intersection over the soft union :math:`P + G - TP`.  Values lie in [0, 1]; 0 when the
    prediction equals one-hot targets.  It is a monotone function of the Dice loss without
    smoothing (:math:`J = D / (2 - D)` for the scores).

    Gradient with respect to the probabilities:
    :math:`\partial\ell/\partial p_x = -g_x / U + (TP + s)(1 - g_x)/U^2` with
    :math:`U = P + G - TP + s`, carried through the softmax or sigmoid when ``activation`` says
    ``input`` holds logits (``argnums=0``); symmetrically with respect to floating targets
    (``argnums=1``).

    Args:
      input: probabilities or logits (per ``activation``), ``(N, ..., C)`` with the classes
        along ``axis``.
      target: integer label map ``(N, ...)`` or one-hot / soft labels of ``input``'s shape.
      activation: ``None`` (default, probabilities), ``"softmax"`` or ``"sigmoid"``.
      smooth: :math:`s \ge 0` (default 1e-5).
      ignore_background: leave class 0 out (default False).
      axis: the class axis (default -1; ``axis=1`` for ``(N, C, H, W)``).
      batch: sum over the batch before the ratio, one loss per class (default False).
      weight: optional ``(C,)`` class weights.
      reduction: ``"mean"`` (default), ``"sum"``, ``"none"`` (``(N, C)``, ``(C,)`` with
        ``batch``).
      where: optional boolean mask over those per-class losses.

    Example: one sample, two pixels, one class, :math:`p = (0.8, 0.4)`, :math:`g = (1, 0)`,
    :math:`s = 0`: :math:`TP = 0.8`, union :math:`1.2 + 1 - 0.8 = 1.4`, loss
    :math:`1 - 0.8/1.4 \approx 0.4286`.

    Reference: Rahman & Wang, "Optimizing Intersection-over-Union in Deep Neural Networks for
    Image Segmentation", ISVC 2016.

    Equivalent: MONAI ``DiceLoss(jaccard=True, smooth_nr=2 * smooth, smooth_dr=2 * smooth,
    batch=batch, squared_pred=False, soft_label=False)`` (MONAI writes the ratio as
    :math:`(2TP + s')/(2(P + G - TP) + s')`) with the class axis moved.
    """
    return _overlap_loss(
        input,
        target,
        num_tp=1.0,
        den_tp=-1.0,
        den_p=1.0,
        den_g=1.0,
        activation=activation,
        smooth=smooth,
        ignore_background=ignore_background,
        axis=axis,
        batch=batch,
        weight=weight,
        reduction=reduction,
        where=where,
        wrt=wrt,
    )
