"""Ranking losses: scores that should put items in the right order.

- :func:`margin_ranking`: pairwise, two scores and which should be higher (PyTorch).
- :func:`ranking_softmax`: listwise, a softmax over each list's scores against graded
  relevance labels (Optax).

Options as elsewhere: ``reduction`` (``"mean"`` default, ``"sum"``, ``"none"``) and a
``where=`` mask; when nothing counts, ``mean`` is 0 with a zero gradient.
"""

from __future__ import annotations

from ..core import numerics
from ..core.backend import Array, cast, compute_dtype, finish, namespace
from ..core.catalog import catalogued
from ..core.gradients import LossResult, loss_function
from ..core.reduction import Reduction, make_reducer
from ..core.validation import (
    any_true,
    check_float_array,
    check_hyperparameter,
    check_mask,
    check_no_nan,
    check_nonempty,
    check_same_shape,
    check_values_in,
)

__all__ = ["margin_ranking", "ranking_softmax"]


@catalogued(
    family="ranking",
    input_space="scores",
    formula="max(0, -y (x1 - x2) + margin)",
    torch="F.margin_ranking_loss",
    optax=None,
    keras=None,
)
@loss_function
def margin_ranking(
    input1: Array,
    input2: Array,
    target: Array,
    margin: float = 0.0,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Margin ranking loss: :math:`\ell_i = \max(0,\ -y_i (x_{1i} - x_{2i}) + m)`, where
    :math:`y_i = 1` says :math:`x_{1i}` should rank higher (by at least :math:`m`) and
    :math:`y_i = -1` says :math:`x_{2i}` should.

    Gradients (``argnums`` 0 and 1): :math:`\mp y_i` where the hinge is active, 0 elsewhere.

    Args:
      input1, input2: scores, any shape (the same for both).
      target: same shape, holding 1 and -1 (floating).  PyTorch accepts any value (a 0 turns
        the loss into the constant :math:`m`); losskit raises ``ValueError``.
      margin: :math:`m` (default 0).
      reduction: ``"mean"`` (default), ``"sum"``, ``"none"`` (per element).
      where: optional boolean mask broadcastable to the inputs' shape.

    Equivalent: ``torch.nn.functional.margin_ranking_loss`` (same numbers).
    """
    xp = namespace(input1=input1, input2=input2, target=target, where=where)
    check_float_array(xp, input1, "input1")
    check_float_array(xp, input2, "input2")
    check_float_array(xp, target, "target")
    check_same_shape(input1, input2, "input1", "input2")
    check_same_shape(input1, target, "input1", "target")
    check_nonempty(input1, "input1")
    check_no_nan(xp, target, "target")
    check_values_in(xp, target, (1, -1), "target")
    margin = check_hyperparameter(margin, "margin", like=input1)
    out_dtype = xp.result_type(input1.dtype, input2.dtype, target.dtype)
    dtype = compute_dtype(xp, out_dtype)
    x1, x2, y = (cast(xp, a, dtype) for a in (input1, input2, target))
    raw = margin - y * (x1 - x2)
    active = ~(raw <= 0)  # a NaN score gives a NaN loss, as in PyTorch
    zero = xp.zeros_like(raw)
    shape = tuple(input1.shape)
    reducer = make_reducer(xp, reduction, shape, dtype, where=where)
    grads = {}
    if wrt:
        g = reducer.grad(xp.where(active, -y, zero))
        if 0 in wrt:
            grads[0] = g
        if 1 in wrt:
            grads[1] = -g
    return finish(xp, out_dtype, reducer.value(xp.where(active, raw, zero)), grads)


@catalogued(
    family="ranking",
    input_space="logits",
    formula="-sum_i w_i y_i log softmax(s)_i",
    torch=None,
    optax="optax.losses.ranking_softmax_loss",
    keras=None,
)
@loss_function
def ranking_softmax(
    logits: Array,
    labels: Array,
    *,
    weights: Array | None = None,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Listwise softmax ranking loss (Optax's ``ranking_softmax_loss``): per list,

    .. math::
        \ell = -\sum_i w_i\, y_i \log \frac{e^{s_i}}{\sum_{j} e^{s_j}},

    the cross-entropy between the softmax of the scores and the (unnormalised) relevance
    labels, over the list's valid items.

    Gradients: :math:`(\sum_i w_i y_i)\,\mathrm{softmax}(s) - w \odot y` with respect to
    ``logits`` (``argnums=0``); :math:`-w_i \log\mathrm{softmax}(s)_i` with respect to
    ``labels`` (``argnums=1``, floating labels).  Both are 0 on invalid items.

    Args:
      logits: scores :math:`s`, shape ``[..., list_size]``.
      labels: relevance :math:`y \ge 0`, same shape (floating, or integer grades).
      weights: optional per-item weights :math:`w`, same shape (keyword-only, as in Optax).
      reduction: ``"mean"`` (default: over the lists), ``"sum"``, ``"none"`` (one value per
        list, shape ``[...]``).
      where: optional boolean mask, same shape as ``logits``: items that are False are left
        out of the softmax and the sum; a list with no valid item does not count (0 in
        ``"none"``, out of the mean's divisor), as Optax does.

    Equivalent: ``optax.losses.ranking_softmax_loss`` (``reduce_fn=jnp.mean`` / ``jnp.sum`` /
    ``None`` are ``"mean"`` / ``"sum"`` / ``"none"``); same numbers.
    """
    xp = namespace(logits=logits, labels=labels, weights=weights, where=where)
    check_float_array(xp, logits, "logits")
    if logits.ndim == 0:
        raise ValueError("logits must have a list axis (the last); got a 0-d array")
    check_nonempty(logits, "logits")
    if not (xp.isdtype(labels.dtype, "real floating") or xp.isdtype(labels.dtype, "integral")):
        raise TypeError(f"labels must be a floating or integer array of relevance; got dtype {labels.dtype}")
    check_same_shape(logits, labels, "logits", "labels")
    check_no_nan(xp, labels, "labels")
    if any_true(xp, labels < 0):
        raise ValueError(f"labels must be relevance grades >= 0; got a minimum of {float(xp.min(labels)):g}")
    if weights is not None:
        check_float_array(xp, weights, "weights")
        check_same_shape(logits, weights, "logits", "weights")
    check_mask(xp, where, tuple(logits.shape), "logits")
    out_dtype = logits.dtype
    dtype = compute_dtype(xp, out_dtype)
    s = cast(xp, logits, dtype)
    y = xp.astype(labels, dtype)
    if weights is not None:
        y_w = y * xp.astype(weights, dtype)
    else:
        y_w = y
    valid = xp.ones(s.shape, dtype=xp.bool) if where is None else xp.broadcast_to(where, tuple(s.shape))
    zero = xp.zeros_like(s)
    y_w = xp.where(valid, y_w, zero)
    log_p, soft, has = numerics.masked_log_softmax(xp, s, valid)
    # 0 log 0 = 0: an item of relevance 0 adds nothing, even where its score is -inf
    value = -xp.sum(numerics.xlogy(xp, y_w, log_p), axis=-1)
    list_shape = tuple(s.shape[:-1])
    counted = None if where is None else xp.squeeze(has, axis=-1)
    reducer = make_reducer(xp, reduction, list_shape, dtype, where=counted)
    grads = {}
    if 0 in wrt:
        grads[0] = reducer.grad(soft * xp.sum(y_w, axis=-1, keepdims=True) - y_w, axis=-1)
    if 1 in wrt and xp.isdtype(labels.dtype, "real floating"):
        g = -log_p if weights is None else -log_p * xp.astype(weights, dtype)
        grads[1] = reducer.grad(xp.where(valid, g, zero), axis=-1)
    return finish(xp, out_dtype, reducer.value(value), grads)
