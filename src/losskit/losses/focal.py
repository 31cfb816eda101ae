"""Focal losses and PolyLoss: cross-entropy re-weighted by how confident the prediction is.

Class-axis convention as :mod:`losskit.losses.classification`: the classes lie along ``axis``
(default -1, the last; ``axis=1`` for PyTorch's ``(N, C, d1, ...)`` layout) and integer
targets have the input's shape without that axis.  ``reduction`` is ``"mean"`` (default),
``"sum"`` or ``"none"`` (per-sample losses); ``where=`` masks samples out of the value, the
mean's divisor and the gradient.  When nothing counts, ``mean`` is 0 with a zero gradient.
"""

from __future__ import annotations

import math

from ..core import numerics
from ..core.backend import Array, compute_dtype, finish, is_integer, lift, namespace
from ..core.catalog import catalogued
from ..core.gradients import LossResult, loss_function
from ..core.pointwise import pointwise_loss
from ..core.reduction import Reduction, make_reducer
from ..core.validation import check_class_targets, check_hyperparameter, check_in_unit_interval

__all__ = ["sigmoid_focal", "softmax_focal", "poly1_cross_entropy"]


def _focal_log_u(xp, x, y):
    """log(1 - p_t) = log((1 - y) sigmoid(x) + y sigmoid(-x)), exact for every logit.

    Each term enters only where its label weight is non-zero, so a hard label never meets an
    overflowing exponential; the result is the log of a sum of terms <= 1 scaled by its max.
    """
    log_p, log_q = numerics.log_sigmoid(xp, x), numerics.log_sigmoid(xp, -x)
    lowest = xp.full_like(x, -math.inf)
    has_p, has_q = y < 1, y > 0
    m = xp.maximum(xp.where(has_p, log_p, lowest), xp.where(has_q, log_q, lowest))
    zero = xp.zeros_like(x)
    # u = 0 (an infinite logit with a hard label): no -inf - -inf, and log u = -inf
    m = xp.where(m == -math.inf, zero, m)
    total = xp.where(has_p, (1.0 - y) * xp.exp(xp.where(has_p, log_p - m, zero)), zero) + xp.where(
        has_q, y * xp.exp(xp.where(has_q, log_q - m, zero)), zero
    )
    return m + xp.log(total), log_p, log_q


def _focal_weight(xp, log_u, gamma):
    """(1 - p_t)^gamma from log(1 - p_t), 1 at gamma = 0 even where 1 - p_t = 0.  gamma may be a
    0-d array (traced, or learnable): then no Python branch reads it, and autograd never meets
    0 * inf where 1 - p_t = 0."""
    if isinstance(gamma, float):
        return xp.exp(gamma * log_u) if gamma != 0.0 else xp.ones_like(log_u)
    vanished = log_u == -math.inf
    w = xp.exp(gamma * xp.where(vanished, xp.zeros_like(log_u), log_u))
    return xp.where(vanished, xp.astype(gamma == 0, log_u.dtype) * xp.ones_like(log_u), w)


def _sigmoid_focal_core(alpha, gamma):
    def core(xp, x, y, need_grad):
        # binary cross-entropy with logits as (1-y) softplus(x) + y softplus(-x): the same as
        # (1-y) x + softplus(-x), without its cancellation at y = 0, x << 0 (the focal gradient
        # needs ce to full relative precision); each term is 0 where its label weight is 0,
        # so a hard label at an infinite logit gives 0, not 0 * inf
        ce = numerics.xlogy(xp, 1.0 - y, numerics.softplus(xp, x)) + numerics.xlogy(
            xp, y, numerics.softplus(xp, -x)
        )
        log_u, log_p, log_q = _focal_log_u(xp, x, y)
        w = _focal_weight(xp, log_u, gamma)  # (1 - p_t)^gamma
        value = w * ce
        a_t = None
        if alpha is not None:
            a_t = alpha * y + (1.0 - alpha) * (1.0 - y)
            value = a_t * value
        if not need_grad:
            return value, None, None
        # d(1 - p_t)/dx = (1 - 2y) p (1 - p); gamma u^(gamma-1) du/dx = gamma (1-2y) w r with
        # r = p (1 - p) / u <= 1, computed in log space: no 0 * inf when u -> 0 and gamma < 1
        # (u = 0 only at an infinite logit with a hard label, where r -> 1)
        vanished = log_u == -math.inf
        r = xp.where(
            vanished, xp.ones_like(x), xp.exp(log_p + log_q - xp.where(vanished, xp.zeros_like(x), log_u))
        )
        # sigmoid(x) - y, written so that neither term cancels (y = 1, x = 17 in float32)
        d_ce = (1.0 - y) * numerics.sigmoid(xp, x) - y * numerics.sigmoid(xp, -x)
        g = w * d_ce + numerics.xlogy(xp, r, ce) * (gamma * (1.0 - 2.0 * y)) * w  # r = 0 at ce = inf
        if a_t is not None:
            g = a_t * g
        return value, g, None

    return core


@catalogued(
    family="classification",
    input_space="logits",
    formula="-alpha_t (1 - p_t)^gamma log p_t, p = sigmoid(x)",
    torch="torchvision.ops.sigmoid_focal_loss",
    optax="optax.losses.sigmoid_focal_loss(alpha=0.25)",
    keras="BinaryFocalCrossentropy(apply_class_balancing=True, from_logits=True)",
)
@loss_function
def sigmoid_focal(
    input: Array,
    target: Array,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
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
        alpha = check_hyperparameter(alpha, "alpha", like=input, low=0.0, high=1.0)
    gamma = check_hyperparameter(gamma, "gamma", like=input, low=0.0)
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
    """Logits moved to the last axis and shifted by the row max (with softmax's limits at
    infinite logits, :func:`~losskit.core.numerics.shift`), their exponentials, and the sum of
    those exponentials other than the (first) maximiser's, whose term is exactly 1.

    Keeping that 1 apart is what lets 1 - p_t = rest / (1 + rest) keep its full relative
    precision when p_t rounds to 1 (a confident, correct prediction): the gradient there is
    tiny, not 0.  A NaN logit makes its whole row NaN (rest included)."""
    x = xp.moveaxis(lift(xp, input, dtype), axis, -1)
    # the max is the top logit's value here, not only a shift: autograd must see it
    xs, _ = numerics.shift(xp, x, -1, detach=False)
    e = xp.exp(xs)
    top = xp.argmax(x, axis=-1)
    is_top = xp.expand_dims(top, axis=-1) == xp.arange(x.shape[-1], dtype=top.dtype)
    rest = xp.sum(xp.where(is_top, xp.zeros_like(e), e), axis=-1)
    return xs, e, rest, top


def _target_terms(xp, xs, rest, top, safe_t, num_classes):
    """log p_t and 1 - p_t for integer targets, both to full precision."""
    log_pt = numerics.gather_classes(xp, xs, safe_t, num_classes) - xp.log1p(rest)
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
    keras="CategoricalFocalCrossentropy(alpha=1.0, from_logits=True)",
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
    reduction: Reduction = "mean",
    where: Array | None = None,
    normalizer: float | Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Softmax focal loss for integer labels:
    :math:`\ell = -w_t\,(1 - p_t)^\gamma \log p_t` with :math:`p = \mathrm{softmax}(x)`.

    ``gamma=0`` is exactly :func:`losskit.cross_entropy` with the same ``weight``,
    ``ignore_index`` and ``mean`` (the weighted mean divides by :math:`\sum w_t` over counted
    samples, PyTorch's convention for cross-entropy).

    Gradient with :math:`u = 1 - p_t` and :math:`l = \log p_t`:
    :math:`w_t\,u^\gamma\,(1 - \gamma\,p_t\,l/u)\,(p - e_t)`.  The ratio :math:`l/u \to -1`
    as :math:`p_t \to 1` and is evaluated as such, so the gradient stays finite for
    :math:`\gamma < 1` and logits of any size.  A ``+inf`` logit takes all the probability: the
    loss is 0 when it is the target's and ``+inf`` otherwise.

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
    targets = check_class_targets(xp, input, target, axis, ignore_index, weight, where)
    axis, num_classes, sample_shape, _ = targets
    gamma = check_hyperparameter(gamma, "gamma", like=input, low=0.0)
    out_dtype = input.dtype
    dtype = compute_dtype(xp, out_dtype)
    xs, e, rest, top = _softmax_parts(xp, input, axis, dtype)
    valid = target != ignore_index
    safe_t = xp.where(valid, target, xp.zeros_like(target))
    log_pt, u = _target_terms(xp, xs, rest, top, safe_t, num_classes)
    w_focal = xp.ones_like(u) if isinstance(gamma, float) and gamma == 0.0 else xp.pow(u, gamma)
    w_t = None
    if weight is not None:
        w_t = numerics.class_weights(xp, xp.astype(weight, dtype), safe_t, valid, sample_shape)
    value = -w_focal * log_pt
    if w_t is not None:
        value = w_t * value
    mask = valid if where is None else (valid & where)
    reducer = make_reducer(xp, reduction, sample_shape, dtype, where=mask, weights=w_t, normalizer=normalizer)
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
    optax="optax.losses.poly_loss_cross_entropy(epsilon=1.0)",
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
    reduction: Reduction = "mean",
    where: Array | None = None,
    normalizer: float | Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Poly-1 cross-entropy (PolyLoss): cross-entropy plus :math:`\epsilon` times the first
    polynomial term of its expansion, :math:`\ell = -\log p_t + \epsilon\,(1 - p_t)`.

    - integer targets :math:`t`: :math:`\ell = w_t\,[-\log p_t + \epsilon(1 - p_t)]`; ``mean``
      divides by :math:`\sum w_t` over counted samples (as :func:`losskit.cross_entropy`);
      ``ignore_index`` samples do not count;
    - probability targets :math:`q` (``input``'s shape):
      :math:`\ell = \sum_c w_c q_c\,[-\log p_c + \epsilon(1 - p_c)]`; ``mean`` divides by the
      number of samples.

    ``epsilon=0`` is :func:`losskit.cross_entropy`, infinite logits included (a ``+inf``
    logit takes all the probability; a class of target probability 0 adds nothing at a
    ``-inf`` logit).  Gradient (integer targets):
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
    targets = check_class_targets(xp, input, target, axis, ignore_index, weight, where)
    axis, num_classes, sample_shape, indices = targets
    epsilon = check_hyperparameter(epsilon, "epsilon", like=input)
    out_dtype = input.dtype
    dtype = compute_dtype(xp, out_dtype)
    xs, e, rest, top = _softmax_parts(xp, input, axis, dtype)
    p = e / xp.expand_dims(1.0 + rest, axis=-1)
    w = None if weight is None else xp.astype(weight, dtype)
    if indices:
        valid = target != ignore_index
        safe_t = xp.where(valid, target, xp.zeros_like(target))
        log_pt, u = _target_terms(xp, xs, rest, top, safe_t, num_classes)
        pt = xp.exp(log_pt)
        w_t = None if w is None else numerics.class_weights(xp, w, safe_t, valid, sample_shape)
        value = -log_pt + epsilon * u
        if w_t is not None:
            value = w_t * value
        mask = valid if where is None else (valid & where)
        mean_weights = w_t
    else:
        q = xp.moveaxis(lift(xp, target, dtype), axis, -1)
        wq = q if w is None else q * w
        log_p = xs - xp.expand_dims(xp.log1p(rest), axis=-1)
        # 0 log 0 = 0: a class of probability 0 adds nothing, even where its logit is -inf
        value = -xp.sum(numerics.xlogy(xp, wq, log_p), axis=-1) + epsilon * xp.sum(wq * (1.0 - p), axis=-1)
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
