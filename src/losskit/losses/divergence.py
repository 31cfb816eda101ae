"""Divergences between probability distributions.

Argument order follows :func:`kl_div` (and PyTorch's ``kl_div``): the model's prediction
first, as log-probabilities (``input``), then the target distribution.
"""

from __future__ import annotations

import math

from ..core import numerics
from ..core.backend import Array, cast, compute_dtype, finish, lift, namespace
from ..core.catalog import catalogued
from ..core.gradients import LossResult, loss_function
from ..core.reduction import BatchReduction, Reduction, make_reducer
from ..core.validation import (
    any_true,
    check_axis,
    check_float_array,
    check_hyperparameter,
    check_in_unit_interval,
    check_mask,
    check_no_nan,
    check_nonempty,
    check_same_shape,
)

__all__ = ["kl_div", "js_div", "generalized_kl", "distillation_kl"]


def _xlogy(xp, x, y):
    """x log y with 0 log 0 = 0 (the convention that makes KL finite at zero targets)."""
    safe_y = xp.where(x == 0, xp.ones_like(y), y)
    return xp.where(x == 0, xp.zeros_like(x), x * xp.log(safe_y))


def _pointwise_divergence_reducer(xp, reduction, shape, dtype, where):
    """kl_div's and js_div's reductions: PyTorch's four, batchmean dividing by shape[0]."""
    return make_reducer(
        xp,
        reduction,
        shape,
        dtype,
        where=where,
        batch_size=shape[0] if shape else 1,
        allowed=("batchmean", "mean", "sum", "none"),
    )


@catalogued(
    family="divergence",
    input_space="log-probabilities",
    formula="sum q (log q - log p)",
    torch="F.kl_div",
    optax="optax.losses.kl_divergence",
    keras="KLDivergence",
)
@loss_function
def kl_div(
    input: Array,
    target: Array,
    log_target: bool = False,
    *,
    reduction: BatchReduction = "batchmean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Kullback-Leibler divergence :math:`D_{KL}(q\,\|\,p) = \sum q (\log q - \log p)`.

    Note the argument order, as in PyTorch: ``input`` is :math:`\log p` (the model's
    log-probabilities, e.g. from :func:`losskit.log_softmax`) and ``target`` is :math:`q`
    (or :math:`\log q` when ``log_target=True``).  Pointwise
    :math:`\ell = q(\log q - \log p)`, with :math:`0 \log 0 = 0`: an element whose target is
    0 adds 0, even where ``input`` is ``-inf`` too (PyTorch gives NaN there).

    Gradient with respect to ``input``: :math:`-q`.

    Args:
      input: log-probabilities, any shape (first axis is the batch).
      target: same shape: probabilities in [0, 1], or log-probabilities if ``log_target``.
      log_target: whether ``target`` is given in log space (default False).
      reduction: ``"batchmean"`` (default: sum divided by the batch size ``input.shape[0]``,
        the true mean KL per sample), ``"sum"``, ``"none"``, or ``"mean"`` (the mean over
        every element, as in PyTorch — this divides by the number of classes too, which is
        rarely what is meant).
      where: optional boolean mask of counted elements (affects every reduction's sum; the
        ``batchmean`` divisor stays the batch size).

    Equivalent: ``torch.nn.functional.kl_div`` (whose default ``mean`` is a known trap);
    ``optax.losses.kl_divergence`` (which takes ``(log_predictions, targets)`` too).
    """
    xp = namespace(input=input, target=target, where=where)
    check_float_array(xp, input, "input")
    check_float_array(xp, target, "target")
    check_same_shape(input, target, "input", "target")
    check_nonempty(input, "input")
    check_no_nan(xp, target, "target")
    if not isinstance(log_target, bool):
        raise TypeError(f"log_target must be a bool; got {type(log_target).__name__}")
    if not log_target:
        check_in_unit_interval(xp, target, "target")
    out_dtype = xp.result_type(input.dtype, target.dtype)
    dtype = compute_dtype(xp, out_dtype)
    log_p = lift(xp, input, dtype)
    t = lift(xp, target, dtype)
    # 0 (log 0 - log p) = 0: a class the target gives probability 0 adds nothing, even where
    # the prediction gives it 0 too (log p = -inf)
    if log_target:
        q = xp.exp(t)
        value = numerics.xlogy(xp, q, t - log_p)
    else:
        q = t
        value = _xlogy(xp, q, q) - numerics.xlogy(xp, q, log_p)
    reducer = _pointwise_divergence_reducer(xp, reduction, tuple(input.shape), dtype, where)
    grads = {}
    if 0 in wrt:
        grads[0] = reducer.grad(-q)
    return finish(xp, out_dtype, reducer.value(value), grads)


def _check_distributions(xp, input, target, where, log_target):
    check_float_array(xp, input, "input")
    check_float_array(xp, target, "target")
    check_same_shape(input, target, "input", "target")
    check_nonempty(input, "input")
    check_no_nan(xp, target, "target")
    if not isinstance(log_target, bool):
        raise TypeError(f"log_target must be a bool; got {type(log_target).__name__}")
    if not log_target:
        check_in_unit_interval(xp, target, "target")


def _safe_log(xp, x, positive):
    """log x where ``positive``, 0 elsewhere (no log 0 reaches autograd)."""
    return xp.where(positive, xp.log(xp.where(positive, x, xp.ones_like(x))), xp.zeros_like(x))


@catalogued(
    family="divergence",
    input_space="log-probabilities",
    formula="(KL(p || m) + KL(q || m)) / 2, m = (p + q) / 2",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def js_div(
    input: Array,
    target: Array,
    log_target: bool = False,
    *,
    reduction: BatchReduction = "batchmean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Jensen-Shannon divergence
    :math:`\mathrm{JS}(p, q) = \tfrac12 \mathrm{KL}(p\,\|\,m) + \tfrac12 \mathrm{KL}(q\,\|\,m)`,
    :math:`m = (p + q)/2`, in nats (so at most :math:`\ln 2` per distribution).

    Arguments as :func:`kl_div`: ``input`` is :math:`\log p` (the model's log-probabilities),
    ``target`` is :math:`q` (or :math:`\log q` with ``log_target=True``).  Pointwise
    :math:`\ell = \tfrac12 p (\log p - \log m) + \tfrac12 q (\log q - \log m)` with
    :math:`0 \log 0 = 0`; every such term is :math:`\ge 0`, and the divergence is symmetric
    and finite even where one distribution is 0 (unlike KL).  :math:`\log m` is computed as a
    log-sum-exp of :math:`\log p` and :math:`\log q`, so tiny probabilities keep their
    precision, and ``input = -inf`` (:math:`p = 0`) is fine.

    Gradients: with respect to ``input`` (:math:`\log p`),
    :math:`\tfrac12 p (\log p - \log m)`; with respect to ``target`` (``argnums=1``),
    :math:`\tfrac12(\log q - \log m)` (:math:`\tfrac12 q(\log q - \log m)` for a log target;
    for a probability target exactly 0 where :math:`p > 0` the true derivative is
    :math:`-\infty`, and that is what is returned).

    Args:
      input: log-probabilities, any shape (first axis the batch).
      target: same shape: probabilities in [0, 1], or log-probabilities if ``log_target``.
      log_target: whether ``target`` is in log space (default False).
      reduction: ``"batchmean"`` (default: sum over everything divided by ``input.shape[0]``,
        the mean divergence per sample), ``"sum"``, ``"none"`` (pointwise), or ``"mean"``
        (over every element, as :func:`kl_div`'s ``mean``).
      where: optional boolean mask of counted elements.

    No PyTorch, Optax or Keras function; ``scipy.spatial.distance.jensenshannon(p, q) ** 2``
    is the same number per distribution (natural log).
    """
    xp = namespace(input=input, target=target, where=where)
    _check_distributions(xp, input, target, where, log_target)
    out_dtype = xp.result_type(input.dtype, target.dtype)
    dtype = compute_dtype(xp, out_dtype)
    log_p = lift(xp, input, dtype)
    t = lift(xp, target, dtype)
    p = xp.exp(log_p)
    has_p = p > 0
    if log_target:
        q = xp.exp(t)
        has_q = q > 0
        log_q = xp.where(has_q, t, xp.zeros_like(t))
    else:
        q = t
        has_q = q > 0
        log_q = _safe_log(xp, q, has_q)
    log_p = xp.where(has_p, log_p, xp.zeros_like(log_p))
    zero = xp.zeros_like(p)
    # log m = logaddexp(log p, log q) - log 2 over the terms that are there
    top = xp.where(has_p & has_q, xp.maximum(log_p, log_q), xp.where(has_p, log_p, log_q))
    e_p = xp.where(has_p, xp.exp(xp.where(has_p, log_p - top, zero)), zero)
    e_q = xp.where(has_q, xp.exp(xp.where(has_q, log_q - top, zero)), zero)
    either = has_p | has_q
    log_m = top + xp.log(xp.where(either, e_p + e_q, xp.ones_like(p))) - math.log(2.0)
    half_p = xp.where(has_p, 0.5 * (log_p - log_m), zero)  # d/dp of the pointwise term
    half_q = xp.where(has_q, 0.5 * (log_q - log_m), zero)  # d/dq
    value = p * half_p + q * half_q
    reducer = _pointwise_divergence_reducer(xp, reduction, tuple(input.shape), dtype, where)
    grads = {}
    if 0 in wrt:
        grads[0] = reducer.grad(p * half_p)
    if 1 in wrt:
        if log_target:
            grads[1] = reducer.grad(q * half_q)
        else:
            # at q = 0: -inf where p > 0 (the true derivative), (1/2) log 2 where p = 0 too
            at_zero = xp.where(has_p, xp.full_like(p, -math.inf), xp.full_like(p, 0.5 * math.log(2.0)))
            grads[1] = reducer.grad(xp.where(has_q, half_q, at_zero))
    return finish(xp, out_dtype, reducer.value(value), grads)


@catalogued(
    family="divergence",
    input_space="log-probabilities",
    formula="sum q (log q - log p) + p - q",
    torch=None,
    optax="optax.losses.generalized_kl_divergence",
    keras=None,
)
@loss_function
def generalized_kl(
    input: Array,
    target: Array,
    axis: int = -1,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Generalised Kullback-Leibler divergence between unnormalised distributions,
    :math:`D(q\,\|\,p) = \sum_k q_k (\log q_k - \log p_k) + p_k - q_k` along ``axis`` — the
    Bregman divergence of :math:`x \log x - x` (Optax's ``generalized_kl_divergence``).  It is
    the KL divergence plus :math:`\sum p - \sum q`, so equal to :func:`kl_div` (per sample)
    when both sum to 1; every term is :math:`\ge 0` and it is 0 exactly at :math:`p = q`.

    Gradients: :math:`p - q` with respect to ``input`` (:math:`\log p`);
    :math:`\log q - \log p` with respect to ``target`` (``argnums=1``; :math:`-\infty` where
    :math:`q = 0`, the true derivative).

    Args:
      input: :math:`\log p`, log of the predicted (possibly unnormalised) distribution.
      target: :math:`q \ge 0`, same shape (possibly unnormalised; Optax expects it > 0, and
        :math:`0 \log 0 = 0` here).
      axis: the axis summed over (default -1).
      reduction: ``"mean"`` (default: over the samples, the other axes), ``"sum"``,
        ``"none"`` (per sample: ``input``'s shape without ``axis``).
      where: optional boolean mask broadcastable to ``input``'s shape, Optax's meaning:
        elements that are False are left out of the sum; a sample with no element left does
        not count (0 in ``"none"``, out of the mean's divisor).

    Equivalent: ``optax.losses.generalized_kl_divergence(log_predictions, targets, axis,
    where)`` (unreduced; same numbers).
    """
    xp = namespace(input=input, target=target, where=where)
    check_float_array(xp, input, "input")
    check_float_array(xp, target, "target")
    check_same_shape(input, target, "input", "target")
    if input.ndim == 0:
        raise ValueError("input must have an axis to sum over; got a 0-d array")
    check_nonempty(input, "input")
    check_no_nan(xp, target, "target")
    if any_true(xp, target < 0):
        raise ValueError(
            f"target must be >= 0 (an unnormalised distribution); got a minimum of {float(xp.min(target)):g}"
        )
    axis = check_axis(axis, input.ndim)
    check_mask(xp, where, tuple(input.shape), "input")
    out_dtype = xp.result_type(input.dtype, target.dtype)
    dtype = compute_dtype(xp, out_dtype)
    log_p = xp.moveaxis(lift(xp, input, dtype), axis, -1)
    q = xp.moveaxis(lift(xp, target, dtype), axis, -1)
    p = xp.exp(log_p)
    has_q = q > 0
    log_q = _safe_log(xp, q, has_q)
    terms = numerics.xlogy(xp, q, log_q - log_p) + p - q  # 0 where q = 0, even at log p = -inf
    zero = xp.zeros_like(terms)
    w = None
    if where is not None:
        w = xp.moveaxis(xp.broadcast_to(where, tuple(input.shape)), axis, -1)
        terms = xp.where(w, terms, zero)
    value = xp.sum(terms, axis=-1)
    sample_shape = tuple(value.shape)
    reducer = make_reducer(
        xp, reduction, sample_shape, dtype, where=None if w is None else xp.any(w, axis=-1)
    )
    grads = {}
    for argnum, g in ((0, p - q), (1, None)):
        if argnum not in wrt:
            continue
        if g is None:
            g = xp.where(has_q, log_q - log_p, xp.full_like(q, -math.inf))
        if w is not None:
            g = xp.where(w, g, zero)
        grads[argnum] = xp.moveaxis(reducer.grad(g, axis=-1), -1, axis)
    return finish(xp, out_dtype, reducer.value(value), grads)


@catalogued(
    family="divergence",
    input_space="logits",
    formula="T^2 KL(softmax(t / T) || softmax(s / T))",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def distillation_kl(
    student_logits: Array,
    teacher_logits: Array,
    temperature: float,
    axis: int = -1,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Knowledge-distillation loss (Hinton et al. 2015): the KL divergence from the teacher's
    softened distribution to the student's, scaled by :math:`T^2`,

    .. math::
        \ell = T^2 \sum_c q_c (\log q_c - \log p_c), \qquad
        p = \mathrm{softmax}(s / T),\ q = \mathrm{softmax}(t / T),

    along ``axis``.  The :math:`T^2` keeps the gradient's size independent of :math:`T`
    (the softened gradients shrink as :math:`1/T^2`), so the term can be mixed with the hard-
    label cross-entropy without retuning its weight when :math:`T` changes.

    Gradients: :math:`T\,(p - q)` with respect to ``student_logits`` (``argnums=0``);
    :math:`T\, q \odot (\log q - \log p - \mathrm{KL})` with respect to ``teacher_logits``
    (``argnums=1``, for teachers trained jointly), with KL the unscaled divergence of the
    sample.  Both are finite for logits of any size (computed from log-softmaxes).

    Args:
      student_logits: logits :math:`s`, classes along ``axis``.
      teacher_logits: logits :math:`t`, same shape.
      temperature: :math:`T > 0` (required; Hinton et al. used values from 1 to 20).
      axis: the class axis (default -1).
      reduction: ``"mean"`` (default: over the samples, i.e. PyTorch's ``batchmean`` for
        ``(N, C)`` logits, per token for ``(batch, seq, vocab)``), ``"sum"``, ``"none"``.
      where: optional boolean mask over the samples (the shape without ``axis``).

    Equivalent to the usual PyTorch recipe
    ``F.kl_div(F.log_softmax(s / T, -1), F.log_softmax(t / T, -1), log_target=True,
    reduction="batchmean") * T**2`` for ``(N, C)`` logits; no library function.
    """

    xp = namespace(student_logits=student_logits, teacher_logits=teacher_logits, where=where)
    check_float_array(xp, student_logits, "student_logits")
    check_float_array(xp, teacher_logits, "teacher_logits")
    check_same_shape(student_logits, teacher_logits, "student_logits", "teacher_logits")
    if student_logits.ndim == 0:
        raise ValueError("student_logits must have a class axis; got a 0-d array")
    check_nonempty(student_logits, "student_logits")
    check_no_nan(xp, teacher_logits, "teacher_logits")
    temperature = check_hyperparameter(
        temperature, "temperature", like=student_logits, low=0.0, low_inclusive=False
    )
    axis = check_axis(axis, student_logits.ndim)
    out_dtype = xp.result_type(student_logits.dtype, teacher_logits.dtype)
    dtype = compute_dtype(xp, out_dtype)
    s = xp.moveaxis(cast(xp, student_logits, dtype), axis, -1) / temperature
    t = xp.moveaxis(cast(xp, teacher_logits, dtype), axis, -1) / temperature
    log_p = numerics.log_softmax(xp, s, -1)
    log_q = numerics.log_softmax(xp, t, -1)
    q = xp.exp(log_q)
    # classes the teacher rules out (q = 0) add nothing, even where the student does too
    diff = xp.where(q == 0, xp.zeros_like(log_q), log_q - log_p)
    kl = xp.sum(q * diff, axis=-1)
    scale = temperature * temperature
    sample_shape = tuple(kl.shape)
    reducer = make_reducer(xp, reduction, sample_shape, dtype, where=where)
    grads = {}
    if 0 in wrt:
        g = temperature * (xp.exp(log_p) - q)
        grads[0] = xp.moveaxis(reducer.grad(g, axis=-1), -1, axis)
    if 1 in wrt:
        g = temperature * q * (diff - xp.expand_dims(kl, axis=-1))
        grads[1] = xp.moveaxis(reducer.grad(g, axis=-1), -1, axis)
    return finish(xp, out_dtype, reducer.value(scale * kl), grads)
