"""Divergences between probability distributions."""

from __future__ import annotations

from ._backend import Array, compute_dtype, finish, lift, namespace
from ._catalog import catalogued
from ._gradients import loss_function
from ._reduction import make_reducer
from ._validation import (
    check_float_array,
    check_in_unit_interval,
    check_no_nan,
    check_nonempty,
    check_same_shape,
)

__all__ = ["kl_div"]


def _xlogy(xp, x, y):
    """x log y with 0 log 0 = 0 (the convention that makes KL finite at zero targets)."""
    safe_y = xp.where(x == 0, xp.ones_like(y), y)
    return xp.where(x == 0, xp.zeros_like(x), x * xp.log(safe_y))


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
    reduction: str = "batchmean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> Array:
    r"""Kullback-Leibler divergence :math:`D_{KL}(q\,\|\,p) = \sum q (\log q - \log p)`.

    Note the argument order, as in PyTorch: ``input`` is :math:`\log p` (the model's
    log-probabilities, e.g. from :func:`losskit.log_softmax`) and ``target`` is :math:`q`
    (or :math:`\log q` when ``log_target=True``).  Pointwise
    :math:`\ell = q(\log q - \log p)`, with :math:`0 \log 0 = 0`.

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
    log_p = xp.astype(lift(xp, input, dtype), dtype)
    t = xp.astype(lift(xp, target, dtype), dtype)
    if log_target:
        q = xp.exp(t)
        value = q * (t - log_p)
    else:
        q = t
        value = _xlogy(xp, q, q) - q * log_p
    shape = tuple(input.shape)
    reducer = make_reducer(
        xp,
        reduction,
        shape,
        dtype,
        where=where,
        batch_size=shape[0] if shape else 1,
        allowed=("batchmean", "mean", "sum", "none"),
    )
    grads = {}
    if 0 in wrt:
        grads[0] = reducer.grad(-q)
    return finish(xp, out_dtype, reducer.value(value), grads)
