"""Variants of cross-entropy: focal losses, PolyLoss, generalized (noise-robust) cross-entropy,
the Brier score, and the label-smoothing helper.

Class-axis convention as :mod:`losskit.classification`: the classes lie along ``axis``
(default -1, the last; ``axis=1`` for PyTorch's ``(N, C, d1, ...)`` layout) and integer
targets have the input's shape without that axis.  ``reduction`` is ``"mean"`` (default),
``"sum"`` or ``"none"`` (per-sample losses); ``where=`` masks samples out of the value, the
mean's divisor and the gradient.  When nothing counts, ``mean`` is 0 with a zero gradient.
"""

from __future__ import annotations

import math

from ._backend import Array, cast, compute_dtype, finish, is_integer, lift, namespace
from ._catalog import catalogued
from ._gradients import loss_function
from ._pointwise import pointwise_loss
from ._reduction import make_reducer
from ._validation import (
    check_axis,
    check_class_indices,
    check_float_array,
    check_in_unit_interval,
    check_no_nan,
    check_nonempty,
    check_number,
)
from .activations import _row_max, _softplus
from .classification import _class_targets, _class_weights, _gather_classes, _sigmoid

__all__ = [
    "sigmoid_focal",
    "softmax_focal",
    "poly1_cross_entropy",
    "generalized_cross_entropy",
    "brier",
    "smooth_labels",
]


def _log_sigmoid(xp, x):
    return -_softplus(xp, -x)


def _focal_log_u(xp, x, y):
    """log(1 - p_t) = log((1 - y) sigmoid(x) + y sigmoid(-x)), exact for every logit.

    Each term enters only where its label weight is non-zero, so a hard label never meets an
    overflowing exponential; the result is the log of a sum of terms <= 1 scaled by its max.
    """
    log_p, log_q = _log_sigmoid(xp, x), _log_sigmoid(xp, -x)
    lowest = xp.full_like(x, -math.inf)
    has_p, has_q = y < 1, y > 0
    m = xp.maximum(xp.where(has_p, log_p, lowest), xp.where(has_q, log_q, lowest))
    zero = xp.zeros_like(x)
    total = xp.where(has_p, (1.0 - y) * xp.exp(xp.where(has_p, log_p - m, zero)), zero) + xp.where(
        has_q, y * xp.exp(xp.where(has_q, log_q - m, zero)), zero
    )
    return m + xp.log(total), log_p, log_q


def _sigmoid_focal_core(alpha, gamma):
    def core(xp, x, y, need_grad):
        # binary cross-entropy with logits as (1-y) softplus(x) + y softplus(-x): the same as
        # (1-y) x + softplus(-x), without its cancellation at y = 0, x << 0 (the focal gradient
        # needs ce to full relative precision)
        ce = (1.0 - y) * _softplus(xp, x) + y * _softplus(xp, -x)
        log_u, log_p, log_q = _focal_log_u(xp, x, y)
        w = xp.exp(gamma * log_u)  # (1 - p_t)^gamma
        value = w * ce
        a_t = None
        if alpha is not None:
            a_t = alpha * y + (1.0 - alpha) * (1.0 - y)
            value = a_t * value
        if not need_grad:
            return value, None, None
        # d(1 - p_t)/dx = (1 - 2y) p (1 - p); gamma u^(gamma-1) du/dx = gamma (1-2y) w r with
        # r = p (1 - p) / u <= 1, computed in log space: no 0 * inf when u -> 0 and gamma < 1
        r = xp.exp(log_p + log_q - log_u)
        # sigmoid(x) - y, written so that neither term cancels (y = 1, x = 17 in float32)
        d_ce = (1.0 - y) * _sigmoid(xp, x) - y * _sigmoid(xp, -x)
        g = w * d_ce + ce * (gamma * (1.0 - 2.0 * y)) * w * r
        if a_t is not None:
            g = a_t * g
        return value, g, None

    return core


@catalogued(
    family="classification",
    input_space="logits",
    formula="-alpha_t (1 - p_t)^gamma log p_t, p = sigmoid(x)",
    torch="torchvision.ops.sigmoid_focal_loss",
    optax="optax.losses.sigmoid_focal_loss",
    keras="BinaryFocalCrossentropy(apply_class_balancing=True, from_logits=True)",
)
@loss_function
def sigmoid_focal(
    input: Array,
    target: Array,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    *,
    reduction: str = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> Array:
    r"""Sigmoid focal loss (RetinaNet): binary cross-entropy on logits, scaled down for
    well-classified examples.

    With :math:`p = \sigma(x)`, :math:`p_t = p\,y + (1 - p)(1 - y)` and
    :math:`\alpha_t = \alpha y + (1 - \alpha)(1 - y)`:
    :math:`\ell = \alpha_t\,(1 - p_t)^\gamma\,\mathrm{BCE}(x, y)`, which for hard labels is
    :math:`-\alpha_t(1 - p_t)^\gamma\log p_t`.

    :math:`\log(1 - p_t)` is computed in log space, so the loss and its gradient are exact
    and finite for every logit (``|x| = 1e4`` in float32) and every :math:`\gamma \ge 0`; for
    :math:`\gamma < 1` the factor :math:`(1 - p_t)^{\gamma - 1}` of the derivative is
    combined with :math:`p(1-p)` before it can overflow (a known NaN trap elsewhere).

    Args:
      input: logits, any shape.
      target: labels in [0, 1] (hard 0/1 or soft), same shape.
      alpha: weight of the positive class :math:`\alpha \in [0, 1]` (default 0.25, as
        torchvision), or ``None`` for no balancing (Optax's default).
      gamma: focusing exponent :math:`\gamma \ge 0` (default 2); 0 gives (alpha-weighted) BCE.
      reduction: ``"mean"`` (default, over elements), ``"sum"`` or ``"none"``.
      where: optional boolean mask of counted elements.

    Equivalent: ``torchvision.ops.sigmoid_focal_loss(x, y, alpha, gamma)`` (alpha < 0 there is
    ``alpha=None`` here); ``optax.losses.sigmoid_focal_loss(x, y, alpha=alpha, gamma=gamma)``.
    """
    if alpha is not None:
        alpha = check_number(alpha, "alpha", low=0.0, high=1.0)
    gamma = check_number(gamma, "gamma", low=0.0)
    return pointwise_loss(
        _sigmoid_focal_core(alpha, gamma),
        input,
        target,
        reduction=reduction,
        where=where,
        wrt=wrt,
        target_check=lambda xp, y: check_in_unit_interval(xp, y, "target"),
    )


def _softmax_parts(xp, input, axis, dtype):
    """Logits moved to the last axis, their exponentials shifted by the row max, and the sum
    of those exponentials other than the (first) maximiser's, whose term is exactly 1.

    Keeping that 1 apart is what lets 1 - p_t = rest / (1 + rest) keep its full relative
    precision when p_t rounds to 1 (a confident, correct prediction): the gradient there is
    tiny, not 0."""
    x = xp.moveaxis(lift(xp, input, dtype), axis, -1)
    m = _row_max(xp, x, -1, detach=False)  # m is the top logit's value here, not only a shift
    e = xp.exp(x - m)
    top = xp.argmax(x, axis=-1)
    is_top = xp.expand_dims(top, axis=-1) == xp.arange(x.shape[-1], dtype=top.dtype)
    rest = xp.sum(xp.where(is_top, xp.zeros_like(e), e), axis=-1)
    return x, m, e, rest, top


def _target_terms(xp, x, m, rest, top, safe_t, num_classes):
    """log p_t and 1 - p_t for integer targets, both to full precision."""
    log_pt = _gather_classes(xp, x - m, safe_t, num_classes) - xp.log1p(rest)
    at_top = top == xp.astype(safe_t, top.dtype)
    u = xp.where(at_top, rest / (1.0 + rest), -xp.expm1(log_pt))
    return log_pt, u


def _minus_target(xp, p, u, safe_t, num_classes):
    """p - e_t, with the target's entry -(1 - p_t) taken from ``u`` (exact as p_t -> 1)."""
    is_target = xp.expand_dims(safe_t, axis=-1) == xp.arange(num_classes, dtype=safe_t.dtype)
    return xp.where(is_target, -xp.expand_dims(u, axis=-1), p)


@catalogued(
    family="classification",
    input_space="logits",
    formula="-w_t (1 - p_t)^gamma log p_t, p = softmax(x)",
    torch=None,
    optax=None,
    keras="CategoricalFocalCrossentropy(from_logits=True)",
)
@loss_function
def softmax_focal(
    input: Array,
    target: Array,
    gamma: float = 2.0,
    weight: Array | None = None,
    ignore_index: int = -100,
    axis: int = -1,
    *,
    reduction: str = "mean",
    where: Array | None = None,
    normalizer: float | Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> Array:
    r"""Softmax focal loss for integer labels:
    :math:`\ell = -w_t\,(1 - p_t)^\gamma \log p_t` with :math:`p = \mathrm{softmax}(x)`.

    ``gamma=0`` is exactly :func:`losskit.cross_entropy` with the same ``weight``,
    ``ignore_index`` and ``mean`` (the weighted mean divides by :math:`\sum w_t` over counted
    samples, PyTorch's convention for cross-entropy).

    Gradient with :math:`u = 1 - p_t` and :math:`l = \log p_t`:
    :math:`w_t\,u^\gamma\,(1 - \gamma\,p_t\,l/u)\,(p - e_t)`.  The ratio :math:`l/u \to -1`
    as :math:`p_t \to 1` and is evaluated as such, so the gradient stays finite for
    :math:`\gamma < 1` and logits of any size.

    Args:
      input: logits, classes along ``axis``.
      target: integer class indices, ``input``'s shape without ``axis``.
      gamma: focusing exponent :math:`\gamma \ge 0` (default 2).
      weight: optional class weights :math:`w`, shape ``(C,)`` (the :math:`\alpha` of the
        paper, per class).
      ignore_index: target value that does not count (default -100).
      axis: the class axis (default -1).
      reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
      where: optional boolean mask over samples.
      normalizer: if given, ``mean`` divides the sum by this count instead (e.g. the global
        number of tokens under gradient accumulation or data parallelism).

    Reference: Lin et al., Focal Loss for Dense Object Detection, 2017.  Keras
    ``CategoricalFocalCrossentropy(alpha=a, gamma=g, from_logits=True)`` on one-hot labels
    equals ``a * softmax_focal(x, t, gamma=g)`` (its alpha is one factor for every class and
    its mean is plain; it also clips probabilities to [1e-7, 1 - 1e-7]).
    """
    xp = namespace(input=input, target=target, weight=weight, where=where)
    if not is_integer(xp, target):
        raise TypeError(f"target must hold integer class indices; got dtype {target.dtype}")
    axis, num_classes, sample_shape, _ = _class_targets(xp, input, target, axis, ignore_index, weight, where)
    gamma = check_number(gamma, "gamma", low=0.0)
    out_dtype = input.dtype
    dtype = compute_dtype(xp, out_dtype)
    x, m, e, rest, top = _softmax_parts(xp, input, axis, dtype)
    valid = target != ignore_index
    safe_t = xp.where(valid, target, xp.zeros_like(target))
    log_pt, u = _target_terms(xp, x, m, rest, top, safe_t, num_classes)
    w_focal = xp.pow(u, gamma) if gamma != 0.0 else xp.ones_like(u)
    w_t = None
    if weight is not None:
        w_t = _class_weights(xp, xp.astype(weight, dtype), safe_t, valid, sample_shape)
    value = -w_focal * log_pt
    if w_t is not None:
        value = w_t * value
    mask = valid if where is None else (valid & where)
    reducer = make_reducer(
        xp, reduction, sample_shape, dtype, where=mask, weights=w_t, normalizer=normalizer
    )
    grads = {}
    if 0 in wrt:
        positive = u > 0
        ratio = xp.where(positive, log_pt / xp.where(positive, u, xp.ones_like(u)), -xp.ones_like(u))
        scale = w_focal * (1.0 - gamma * xp.exp(log_pt) * ratio)
        if w_t is not None:
            scale = scale * w_t
        p = e / xp.expand_dims(1.0 + rest, axis=-1)
        g = _minus_target(xp, p, u, safe_t, num_classes) * xp.expand_dims(scale, axis=-1)
        grads[0] = xp.moveaxis(reducer.grad(g, axis=-1), -1, axis)
    return finish(xp, out_dtype, reducer.value(value), grads)


@catalogued(
    family="classification",
    input_space="logits",
    formula="-log p_t + epsilon (1 - p_t)",
    torch=None,
    optax="optax.losses.poly_loss_cross_entropy",
    keras=None,
)
@loss_function
def poly1_cross_entropy(
    input: Array,
    target: Array,
    epsilon: float = 1.0,
    weight: Array | None = None,
    ignore_index: int = -100,
    axis: int = -1,
    *,
    reduction: str = "mean",
    where: Array | None = None,
    normalizer: float | Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> Array:
    r"""Poly-1 cross-entropy (PolyLoss): cross-entropy plus :math:`\epsilon` times the first
    polynomial term of its expansion, :math:`\ell = -\log p_t + \epsilon\,(1 - p_t)`.

    - integer targets :math:`t`: :math:`\ell = w_t\,[-\log p_t + \epsilon(1 - p_t)]`; ``mean``
      divides by :math:`\sum w_t` over counted samples (as :func:`losskit.cross_entropy`);
      ``ignore_index`` samples do not count;
    - probability targets :math:`q` (``input``'s shape):
      :math:`\ell = \sum_c w_c q_c\,[-\log p_c + \epsilon(1 - p_c)]`; ``mean`` divides by the
      number of samples.

    ``epsilon=0`` is :func:`losskit.cross_entropy`.  Gradient (integer targets):
    :math:`w_t\,(1 + \epsilon p_t)(p - e_t)`.

    Args:
      input: logits, classes along ``axis``.
      target: integer class indices (``input``'s shape without ``axis``) or class
        probabilities (``input``'s shape).
      epsilon: :math:`\epsilon` (default 1.0; the paper suggests 2 for ImageNet and -1 for
        detection; :math:`\epsilon \ge -1` keeps the loss non-negative).
      weight: optional class weights, shape ``(C,)``.
      ignore_index: integer target value that does not count (default -100).
      axis: the class axis (default -1).
      reduction, where: see the module docstring.
      normalizer: if given, ``mean`` divides the sum by this count instead.

    Reference: Leng et al., PolyLoss, 2022.  Equivalent:
    ``optax.losses.poly_loss_cross_entropy(x, q, epsilon=epsilon)`` (probability targets, no
    weights; Optax's default epsilon is 2).
    """
    xp = namespace(input=input, target=target, weight=weight, where=where)
    axis, num_classes, sample_shape, indices = _class_targets(
        xp, input, target, axis, ignore_index, weight, where
    )
    epsilon = check_number(epsilon, "epsilon")
    out_dtype = input.dtype
    dtype = compute_dtype(xp, out_dtype)
    x, m, e, rest, top = _softmax_parts(xp, input, axis, dtype)
    p = e / xp.expand_dims(1.0 + rest, axis=-1)
    w = None if weight is None else xp.astype(weight, dtype)
    if indices:
        valid = target != ignore_index
        safe_t = xp.where(valid, target, xp.zeros_like(target))
        log_pt, u = _target_terms(xp, x, m, rest, top, safe_t, num_classes)
        pt = xp.exp(log_pt)
        w_t = None if w is None else _class_weights(xp, w, safe_t, valid, sample_shape)
        value = -log_pt + epsilon * u
        if w_t is not None:
            value = w_t * value
        mask = valid if where is None else (valid & where)
        mean_weights = w_t
    else:
        q = xp.moveaxis(lift(xp, target, dtype), axis, -1)
        wq = q if w is None else q * w
        log_p = (x - m) - xp.expand_dims(xp.log1p(rest), axis=-1)
        value = -xp.sum(wq * log_p, axis=-1) + epsilon * xp.sum(wq * (1.0 - p), axis=-1)
        mask = where
        mean_weights = None
    reducer = make_reducer(
        xp, reduction, sample_shape, dtype, where=mask, weights=mean_weights, normalizer=normalizer
    )
    grads = {}
    if 0 in wrt:
        if indices:
            scale = 1.0 + epsilon * pt
            if w_t is not None:
                scale = scale * w_t
            g = _minus_target(xp, p, u, safe_t, num_classes) * xp.expand_dims(scale, axis=-1)
        else:
            # CE: p sum(wq) - wq;  poly: d/dx sum_c wq_c (1 - p_c) = p sum(wq p) - wq p
            wqp = wq * p
            g = p * xp.sum(wq + epsilon * wqp, axis=-1, keepdims=True) - wq - epsilon * wqp
        grads[0] = xp.moveaxis(reducer.grad(g, axis=-1), -1, axis)
    return finish(xp, out_dtype, reducer.value(value), grads)


@catalogued(
    family="classification",
    input_space="probabilities",
    formula="(1 - p_t^q) / q",
    torch=None,
    optax=None,
    keras="CategoricalGeneralizedCrossEntropy",
)
@loss_function
def generalized_cross_entropy(
    input: Array,
    target: Array,
    q: float = 0.5,
    axis: int = -1,
    *,
    reduction: str = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> Array:
    r"""Generalized cross-entropy (:math:`L_q` loss), robust to noisy labels:
    :math:`\ell = (1 - p_t^{\,q})/q` for the predicted probability :math:`p_t` of the target.

    It tends to cross-entropy :math:`-\log p_t` as :math:`q \to 0` and is :math:`1 - p_t`
    (MAE on the one-hot target, up to a factor 2) at :math:`q = 1`.  Gradient with respect to
    the probabilities: :math:`-p_t^{\,q-1}` at the target class, 0 elsewhere (infinite at
    :math:`p_t = 0`, like the true derivative).

    Args:
      input: class probabilities (e.g. :func:`losskit.softmax` output), classes along
        ``axis``, values in [0, 1].
      target: integer class indices, ``input``'s shape without ``axis``.
      q: :math:`q \in (0, 1]` (default 0.5, Keras's default).
      axis: the class axis (default -1).
      reduction, where: see the module docstring.

    Reference: Zhang & Sabuncu, Generalized Cross Entropy Loss for Training Deep Neural
    Networks with Noisy Labels, 2018.  Equivalent: Keras
    ``CategoricalGeneralizedCrossEntropy(q=q)`` (integer labels, probabilities).
    """
    xp = namespace(input=input, target=target, where=where)
    if not is_integer(xp, target):
        raise TypeError(
            f"target must hold integer class indices (Keras's convention for this loss); got dtype "
            f"{target.dtype}"
        )
    axis, num_classes, sample_shape, _ = _class_targets(xp, input, target, axis, -100, None, where)
    check_class_indices(xp, target, num_classes, None)
    check_in_unit_interval(xp, input, "input")
    q = check_number(q, "q", low=0.0, high=1.0, low_inclusive=False)
    out_dtype = input.dtype
    dtype = compute_dtype(xp, out_dtype)
    probs = xp.moveaxis(lift(xp, input, dtype), axis, -1)
    pt = _gather_classes(xp, probs, target, num_classes)
    pt_q = xp.pow(pt, q)
    value = (1.0 - pt_q) / q
    reducer = make_reducer(xp, reduction, sample_shape, dtype, where=where)
    grads = {}
    if 0 in wrt:
        is_target = xp.expand_dims(target, axis=-1) == xp.arange(num_classes, dtype=target.dtype)
        d = -xp.pow(pt, q - 1.0)
        g = xp.where(is_target, xp.expand_dims(d, axis=-1), xp.zeros_like(probs))
        grads[0] = xp.moveaxis(reducer.grad(g, axis=-1), -1, axis)
    return finish(xp, out_dtype, reducer.value(value), grads)


@catalogued(
    family="classification",
    input_space="probabilities",
    formula="sum_c (p_c - y_c)^2",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def brier(
    input: Array,
    target: Array,
    axis: int = -1,
    *,
    reduction: str = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> Array:
    r"""Multiclass Brier score on **probabilities**: :math:`\ell = \sum_c (p_c - y_c)^2` per
    sample, with :math:`y` the one-hot target (or the given class probabilities).

    A strictly proper scoring rule, bounded in [0, 2]; pass logits through
    :func:`losskit.softmax` first.  Gradient: :math:`2(p - y)` (target: :math:`-2(p - y)`
    for probability targets).

    Args:
      input: class probabilities, classes along ``axis``, values in [0, 1].
      target: integer class indices (``input``'s shape without ``axis``) or class
        probabilities (``input``'s shape).
      axis: the class axis (default -1).
      reduction, where: see the module docstring.

    Equivalent: scikit-learn ``brier_score_loss(y, p, scale_by_half=False)`` for multiclass
    ``p`` (its binary default halves the two-class score, i.e. uses only the positive column).
    """
    xp = namespace(input=input, target=target, where=where)
    axis, num_classes, sample_shape, indices = _class_targets(xp, input, target, axis, -100, None, where)
    if indices:
        check_class_indices(xp, target, num_classes, None)
    check_in_unit_interval(xp, input, "input")
    out_dtype = input.dtype if indices else xp.result_type(input.dtype, target.dtype)
    dtype = compute_dtype(xp, out_dtype)
    p = xp.moveaxis(cast(xp, input, dtype), axis, -1)
    if indices:
        y = xp.astype(xp.expand_dims(target, axis=-1) == xp.arange(num_classes, dtype=target.dtype), dtype)
    else:
        y = xp.moveaxis(cast(xp, target, dtype), axis, -1)
    d = p - y
    value = xp.sum(d * d, axis=-1)
    reducer = make_reducer(xp, reduction, sample_shape, dtype, where=where)
    grads = {}
    if wrt & {0, 1}:
        g = xp.moveaxis(reducer.grad(2.0 * d, axis=-1), -1, axis)
        if 0 in wrt:
            grads[0] = g
        if 1 in wrt and not indices:
            grads[1] = -g
    return finish(xp, out_dtype, reducer.value(value), grads)


def smooth_labels(
    labels: Array,
    alpha: float,
    num_classes: int | None = None,
    axis: int = -1,
) -> Array:
    r"""Label smoothing: :math:`(1 - \alpha)\,y + \alpha / C`.

    Args:
      labels: one-hot (or any probability) labels with the classes along ``axis``; or integer
        class indices, which are one-hot encoded first (then ``num_classes`` is required and
        the new class axis is placed at ``axis``).
      alpha: smoothing factor :math:`\alpha \in [0, 1]`.
      num_classes: :math:`C`; for floating labels it defaults to (and must equal)
        ``labels.shape[axis]``.
      axis: the class axis (default -1).

    Returns:
      The smoothed labels, floating: the labels' dtype, or the library's default floating dtype
      for integer labels.  Feed them to :func:`losskit.cross_entropy` as probability targets
      (``cross_entropy(x, smooth_labels(t, a, C))`` equals
      ``cross_entropy(x, t, label_smoothing=a)``).

    Equivalent: ``optax.smooth_labels(labels, alpha)`` (one-hot labels).
    """
    xp = namespace(labels=labels)
    alpha = check_number(alpha, "alpha", low=0.0, high=1.0)
    if num_classes is not None and (
        isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1
    ):
        raise ValueError(f"num_classes must be a positive int; got {num_classes!r}")
    if is_integer(xp, labels):
        if num_classes is None:
            raise ValueError("num_classes is required to one-hot encode integer labels")
        check_nonempty(labels, "labels")
        check_class_indices(xp, labels, num_classes, None, "labels")
        axis = check_axis(axis, labels.ndim + 1)
        dtype = xp.zeros(()).dtype
        classes = xp.arange(num_classes, dtype=labels.dtype)
        one_hot = xp.astype(xp.expand_dims(labels, axis=-1) == classes, dtype)
        return xp.moveaxis((1.0 - alpha) * one_hot + alpha / num_classes, -1, axis)
    check_float_array(xp, labels, "labels")
    if labels.ndim == 0:
        raise ValueError("labels must have a class axis; got a 0-d array")
    axis = check_axis(axis, labels.ndim)
    size = labels.shape[axis]
    if num_classes is not None and num_classes != size:
        raise ValueError(
            f"num_classes={num_classes} does not match labels.shape[{axis}] = {size} for floating labels"
        )
    check_no_nan(xp, labels, "labels")
    return (1.0 - alpha) * labels + alpha / size
