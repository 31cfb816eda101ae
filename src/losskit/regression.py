"""Regression losses: a real-valued prediction against a real-valued target.

Every loss here takes ``input`` (the prediction, any shape, floating) and ``target`` (same
shape; no broadcasting), and the common options:

- ``reduction``: ``"mean"`` (default; divides by the number of counted elements), ``"sum"``, or
  ``"none"`` (per-element losses, same shape as ``input``).
- ``where``: optional boolean mask, broadcastable to ``input``; elements that are False count
  neither in the value, nor in the mean's divisor, nor in the gradient.  When nothing counts,
  ``mean`` is 0 with a zero gradient.

Gradients (``losskit.value_and_grad(loss, argnums=0 or 1)``) are analytic; with respect to the
target they are the negative of those with respect to the input.
"""

from __future__ import annotations

from ._backend import Array
from ._catalog import catalogued
from ._gradients import loss_function
from ._pointwise import pointwise_loss
from ._validation import check_number

__all__ = ["mse", "mae", "l1", "huber", "smooth_l1"]


def _mse_core(xp, x, y, need_grad):
    d = x - y
    g = 2.0 * d if need_grad else None
    return d * d, g, (None if g is None else -g)


@catalogued(
    family="regression",
    input_space="values",
    formula="(x - y)^2",
    torch="F.mse_loss",
    optax="optax.losses.squared_error",
    keras="MeanSquaredError",
)
@loss_function
def mse(
    input: Array,
    target: Array,
    *,
    reduction: str = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> Array:
    r"""Mean squared error (L2 loss): :math:`\ell_i = (x_i - y_i)^2`.

    Gradient: :math:`\partial\ell/\partial x_i = 2(x_i - y_i)`, divided by :math:`n` for
    ``mean``.  Worked example: ``mse([2.5, 3.1, 4.8], [2, 3, 5]) = 0.1``.

    Args:
      input: prediction, any shape.
      target: same shape as ``input``.
      reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
      where: optional boolean mask of counted elements.

    Equivalent: ``torch.nn.functional.mse_loss``; ``optax.losses.squared_error`` (unreduced).
    """
    return pointwise_loss(_mse_core, input, target, reduction=reduction, where=where, wrt=wrt)


def _mae_core(xp, x, y, need_grad):
    d = x - y
    g = xp.sign(d) if need_grad else None
    return xp.abs(d), g, (None if g is None else -g)


@catalogued(
    family="regression",
    input_space="values",
    formula="|x - y|",
    torch="F.l1_loss",
    optax=None,
    keras="MeanAbsoluteError",
)
@loss_function
def mae(
    input: Array,
    target: Array,
    *,
    reduction: str = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> Array:
    r"""Mean absolute error (L1 loss): :math:`\ell_i = |x_i - y_i|`.

    Gradient: :math:`\mathrm{sign}(x_i - y_i)` (0 where the prediction is exact, as PyTorch).
    Robust to outliers: every error pulls with the same force.  Also exported as ``l1``.

    Args as :func:`mse`.  Equivalent: ``torch.nn.functional.l1_loss``.
    """
    return pointwise_loss(_mae_core, input, target, reduction=reduction, where=where, wrt=wrt)


l1 = mae


def _huber_core(delta):
    def core(xp, x, y, need_grad):
        d = x - y
        a = xp.abs(d)
        small = a < delta
        value = xp.where(small, 0.5 * d * d, delta * (a - 0.5 * delta))
        if not need_grad:
            return value, None, None
        g = xp.where(small, d, delta * xp.sign(d))
        return value, g, -g

    return core


@catalogued(
    family="regression",
    input_space="values",
    formula="0.5 d^2 if |d| < delta else delta (|d| - delta / 2)",
    torch="F.huber_loss",
    optax="optax.losses.huber_loss",
    keras="Huber",
)
@loss_function
def huber(
    input: Array,
    target: Array,
    delta: float = 1.0,
    *,
    reduction: str = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> Array:
    r"""Huber loss: quadratic for small errors, linear for large ones.

    With :math:`d = x - y`:
    :math:`\ell = \tfrac12 d^2` if :math:`|d| < \delta`, else
    :math:`\delta(|d| - \tfrac12\delta)`.  Gradient: :math:`d`, or :math:`\delta\,\mathrm{sign}(d)`.

    Args:
      delta: the switch point, :math:`\delta > 0` (default 1.0).
      Others as :func:`mse`.

    Equivalent: ``torch.nn.functional.huber_loss``, ``optax.losses.huber_loss``.
    """
    delta = check_number(delta, "delta", low=0.0, low_inclusive=False)
    return pointwise_loss(_huber_core(delta), input, target, reduction=reduction, where=where, wrt=wrt)


def _smooth_l1_core(beta):
    def core(xp, x, y, need_grad):
        d = x - y
        a = xp.abs(d)
        if beta == 0.0:  # the limit is plain L1
            return a, (xp.sign(d) if need_grad else None), (-xp.sign(d) if need_grad else None)
        small = a < beta
        value = xp.where(small, 0.5 * d * d / beta, a - 0.5 * beta)
        if not need_grad:
            return value, None, None
        g = xp.where(small, d / beta, xp.sign(d))
        return value, g, -g

    return core


@catalogued(
    family="regression",
    input_space="values",
    formula="0.5 d^2 / beta if |d| < beta else |d| - beta / 2",
    torch="F.smooth_l1_loss",
    optax=None,
    keras=None,
)
@loss_function
def smooth_l1(
    input: Array,
    target: Array,
    beta: float = 1.0,
    *,
    reduction: str = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> Array:
    r"""Smooth L1 loss: Huber divided by :math:`\beta`, so the linear part has slope 1.

    With :math:`d = x - y`: :math:`\ell = \tfrac12 d^2/\beta` if :math:`|d| < \beta`, else
    :math:`|d| - \tfrac12\beta`.  ``beta=0`` is exactly L1.

    Args:
      beta: the switch point, :math:`\beta \ge 0` (default 1.0).
      Others as :func:`mse`.

    Equivalent: ``torch.nn.functional.smooth_l1_loss``.
    """
    beta = check_number(beta, "beta", low=0.0)
    return pointwise_loss(_smooth_l1_core(beta), input, target, reduction=reduction, where=where, wrt=wrt)
