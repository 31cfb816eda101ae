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

import math

from ..core import numerics
from ..core.backend import Array, cast, compute_dtype, finish, is_concrete, namespace
from ..core.catalog import catalogued
from ..core.gradients import LossResult, loss_function
from ..core.pointwise import pointwise_loss
from ..core.reduction import Reduction, make_reducer
from ..core.validation import (
    check_float_array,
    check_hyperparameter,
    check_no_nan,
    check_nonempty,
    check_number,
    check_same_shape,
)

__all__ = [
    "mse",
    "mae",
    "l1",
    "huber",
    "smooth_l1",
    "poisson_nll",
    "gaussian_nll",
    "log_cosh",
    "quantile",
    "mape",
    "msle",
    "tweedie",
]


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
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
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
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
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
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Huber loss: quadratic for small errors, linear for large ones.

    With :math:`d = x - y`:
    :math:`\ell = \tfrac12 d^2` if :math:`|d| < \delta`, else
    :math:`\delta(|d| - \tfrac12\delta)`.  Gradient: :math:`d`, or :math:`\delta\,\mathrm{sign}(d)`.

    Args:
      delta: the switch point, :math:`\delta > 0` (default 1.0).

    The other arguments are as in :func:`mse`.

    Equivalent: ``torch.nn.functional.huber_loss``, ``optax.losses.huber_loss``.
    """
    delta = check_hyperparameter(delta, "delta", like=input, low=0.0, low_inclusive=False)
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
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Smooth L1 loss: Huber divided by :math:`\beta`, so the linear part has slope 1.

    With :math:`d = x - y`: :math:`\ell = \tfrac12 d^2/\beta` if :math:`|d| < \beta`, else
    :math:`|d| - \tfrac12\beta`.  ``beta=0`` is exactly L1.

    Args:
      beta: the switch point, :math:`\beta \ge 0` (default 1.0).

    The other arguments are as in :func:`mse`.

    Equivalent: ``torch.nn.functional.smooth_l1_loss``.
    """
    beta = check_number(beta, "beta", low=0.0)
    return pointwise_loss(_smooth_l1_core(beta), input, target, reduction=reduction, where=where, wrt=wrt)


# -- likelihoods, robust and relative-error losses ----------------------------------------------


def _check_bound(xp, x, name, *, low, strict, why):
    """Value check (concrete arrays only): every element of ``x`` is >= ``low`` (> if strict)."""
    if not is_concrete(x):
        return
    bad = (x <= low) if strict else (x < low)
    flag = xp.any(bad)
    if is_concrete(flag) and bool(flag):
        relation = ">" if strict else ">="
        raise ValueError(f"{name} must be {relation} {low:g} ({why}); got a minimum of {float(xp.min(x)):g}")


def _poisson_nll_core(log_input, full, eps):
    def core(xp, x, y, need_grad):
        # where the rate is infinite (or overflows) its growth wins over y log(rate): +inf, not
        # inf - inf
        infinite = x == math.inf
        if log_input:
            rate = xp.exp(x)
            infinite = rate == math.inf
            value = rate - numerics.xlogy(xp, y, x)  # y = 0 at x = -inf: 0, not 0 * inf
            d_input = rate - y if need_grad else None
            d_target = -x if need_grad else None
        else:
            shifted = x + eps
            log_rate = xp.log(shifted)
            value = x - numerics.xlogy(xp, y, log_rate)
            d_input = 1.0 - y / shifted if need_grad else None
            d_target = -log_rate if need_grad else None
        value = xp.where(infinite, xp.full_like(value, math.inf), value)
        if full:
            # Stirling's approximation of log(y!), added where y > 1 only (PyTorch's rule)
            big = y > 1
            safe = xp.where(big, y, xp.ones_like(y))
            log_y = xp.log(safe)
            stirling = safe * log_y - safe + 0.5 * xp.log((2.0 * math.pi) * safe)
            value = value + xp.where(big, stirling, xp.zeros_like(stirling))
            if need_grad:
                d_target = d_target + xp.where(big, log_y + 0.5 / safe, xp.zeros_like(safe))
        return value, d_input, d_target

    return core


@catalogued(
    family="regression",
    input_space="values",
    formula="exp(x) - y x (log_input) or x - y log(x + eps)",
    torch="F.poisson_nll_loss",
    optax=None,
    keras="Poisson",
)
@loss_function
def poisson_nll(
    input: Array,
    target: Array,
    log_input: bool = True,
    full: bool = False,
    eps: float = 1e-8,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Negative log-likelihood of a Poisson count ``target`` with rate :math:`\lambda`.

    - ``log_input=True`` (default): ``input`` is :math:`\log\lambda` and
      :math:`\ell = e^{x} - y\,x`; gradient :math:`e^{x} - y` (target: :math:`-x`).
    - ``log_input=False``: ``input`` is :math:`\lambda \ge 0` and
      :math:`\ell = x - y \log(x + \epsilon)`; gradient :math:`1 - y/(x + \epsilon)`
      (target: :math:`-\log(x + \epsilon)`).
    - ``full=True`` adds Stirling's approximation of :math:`\log y!`,
      :math:`y\log y - y + \tfrac12\log(2\pi y)`, where :math:`y > 1` (0 elsewhere, as PyTorch).

    The constant :math:`\log y!` is otherwise left out, so the loss can be negative.

    Args:
      input: log-rates (or rates when ``log_input=False``, then >= 0), any shape.
      target: counts, same shape, >= 0 (non-integer values are accepted, as in PyTorch).
      log_input: whether ``input`` is the log-rate (default True).
      full: add the Stirling term (default False).
      eps: :math:`\epsilon \ge 0` added to the rate before its log when ``log_input=False``
        (default 1e-8).
      reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
      where: optional boolean mask of counted elements.

    Equivalent: ``torch.nn.functional.poisson_nll_loss``; Keras ``Poisson`` is
    ``log_input=False`` with ``eps=1e-7``.
    """
    if not isinstance(log_input, bool):
        raise TypeError(f"log_input must be a bool; got {type(log_input).__name__}")
    if not isinstance(full, bool):
        raise TypeError(f"full must be a bool; got {type(full).__name__}")
    eps = check_number(eps, "eps", low=0.0)

    def input_check(xp, x):
        if not log_input:
            _check_bound(xp, x, "input", low=0.0, strict=False, why="Poisson rates when log_input=False")

    return pointwise_loss(
        _poisson_nll_core(log_input, full, eps),
        input,
        target,
        reduction=reduction,
        where=where,
        wrt=wrt,
        input_check=input_check,
        target_check=lambda xp, y: _check_bound(xp, y, "target", low=0.0, strict=False, why="Poisson counts"),
    )


def _var_layout(var_shape, input_shape):
    """How ``var`` lines up with ``input`` under PyTorch's rules: the shape to view ``var`` in
    (broadcastable to ``input``), or None when the shapes do not fit."""
    var_shape, input_shape = tuple(var_shape), tuple(input_shape)
    if var_shape == input_shape:
        return var_shape
    if var_shape == ():  # one variance for everything, like a Python number
        return (1,) * len(input_shape)
    if input_shape and var_shape == input_shape[:-1]:  # one variance per row, shared by the last axis
        return var_shape + (1,)
    if len(var_shape) == len(input_shape):
        differing = [(a, b) for a, b in zip(input_shape, var_shape) if a != b]
        if len(differing) == 1 and differing[0][1] == 1:  # homoscedastic along one axis
            return var_shape
    return None


@catalogued(
    family="regression",
    input_space="values",
    formula="0.5 (log max(var, eps) + (x - y)^2 / max(var, eps))",
    torch="F.gaussian_nll_loss",
    optax=None,
    keras=None,
)
@loss_function
def gaussian_nll(
    input: Array,
    target: Array,
    var: Array | float,
    full: bool = False,
    eps: float = 1e-6,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Negative log-likelihood of ``target`` under a Gaussian with mean ``input`` and variance
    ``var``: :math:`\ell = \tfrac12\,(\log v + (x - y)^2 / v)` with :math:`v = \max(\mathrm{var},
    \epsilon)`, plus :math:`\tfrac12\log 2\pi` when ``full``.

    Gradients: :math:`(x - y)/v` for ``input`` (its negative for ``target``) and
    :math:`\tfrac12\,(1/v - (x - y)^2/v^2)` for ``var`` (``argnums=2``), summed over the axes
    along which one variance is shared.  As in PyTorch, the clamp at :math:`\epsilon` is not
    differentiated: a variance below :math:`\epsilon` receives the gradient evaluated at
    :math:`\epsilon`, so it is pushed back up instead of getting a zero gradient.

    Args:
      input: predicted means, any shape.
      target: samples, same shape as ``input`` (losskit does not broadcast it; PyTorch also
        accepts one axis of size 1).
      var: non-negative variances, in one of PyTorch's layouts: the shape of ``input``
        (heteroscedastic); ``input``'s shape without its last axis (one variance per row); the
        shape of ``input`` with exactly one axis of size 1 (shared along that axis); a 0-d
        array (one variance for everything; PyTorch needs a Python number for that); or a
        Python number (no gradient with respect to it then).
      full: add the constant :math:`\tfrac12\log 2\pi` (default False).
      eps: :math:`\epsilon > 0`, the smallest variance used (default 1e-6).
      reduction: ``"mean"`` (default; over every element of ``input``), ``"sum"``, ``"none"``
        (shape of ``input``).
      where: optional boolean mask over the elements of ``input``.

    Equivalent: ``torch.nn.functional.gaussian_nll_loss``.
    """
    var_is_number = isinstance(var, (int, float)) and not isinstance(var, bool)
    xp = namespace(input=input, target=target, var=None if var_is_number else var, where=where)
    check_float_array(xp, input, "input")
    check_float_array(xp, target, "target")
    check_same_shape(input, target, "input", "target")
    check_nonempty(input, "input")
    check_no_nan(xp, target, "target")
    if not isinstance(full, bool):
        raise TypeError(f"full must be a bool; got {type(full).__name__}")
    eps = check_number(eps, "eps", low=0.0, low_inclusive=False)
    shape = tuple(input.shape)
    if var_is_number:
        check_number(var, "var", low=0.0)
        layout = None
    else:
        check_float_array(xp, var, "var")
        layout = _var_layout(var.shape, shape)
        if layout is None:
            raise ValueError(
                f"var must have the input's shape {shape}, the input's shape without its last axis "
                f"{shape[:-1]}, or the input's shape with one axis of size 1; got {tuple(var.shape)}"
            )
        check_no_nan(xp, var, "var")
        _check_bound(xp, var, "var", low=0.0, strict=False, why="variances")
    types = [input.dtype, target.dtype] + ([] if var_is_number else [var.dtype])
    out_dtype = xp.result_type(*types)
    dtype = compute_dtype(xp, out_dtype)
    x = cast(xp, input, dtype)
    y = cast(xp, target, dtype)
    if var_is_number:
        v = xp.full_like(x, float(var))
    else:
        v = cast(xp, var, dtype)
        if tuple(v.shape) != layout:
            v = xp.reshape(v, layout)
    v = xp.maximum(v, xp.full_like(v, eps))
    d = x - y
    value = 0.5 * (xp.log(v) + d * d / v)
    if full:
        value = value + 0.5 * math.log(2.0 * math.pi)
    reducer = make_reducer(xp, reduction, shape, dtype, where=where)
    grads = {}
    if wrt & {0, 1}:
        g = reducer.grad(d / v)
        if 0 in wrt:
            grads[0] = g
        if 1 in wrt:
            grads[1] = -g
    if 2 in wrt and not var_is_number:
        inv = 1.0 / v
        g = reducer.grad(0.5 * (inv - d * d * inv * inv))
        shared = tuple(i for i, (a, b) in enumerate(zip(shape, layout)) if a != b)
        if shared:
            g = xp.sum(g, axis=shared, keepdims=True)
        grads[2] = xp.reshape(g, tuple(var.shape))
    return finish(xp, out_dtype, reducer.value(value), grads)


def _log_cosh_core(xp, x, y, need_grad):
    d = x - y
    a = xp.abs(d)
    # log cosh d = |d| + log(1 + e^{-2|d|}) - log 2: no overflow for any |d|
    value = a + xp.log1p(xp.exp(-2.0 * a)) - math.log(2.0)
    if not need_grad:
        return value, None, None
    g = xp.tanh(d)
    return value, g, -g


@catalogued(
    family="regression",
    input_space="values",
    formula="log cosh(x - y)",
    torch=None,
    optax="optax.losses.log_cosh",
    keras="LogCosh",
)
@loss_function
def log_cosh(
    input: Array,
    target: Array,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Log-cosh loss: :math:`\ell = \log\cosh(x - y)`, about :math:`d^2/2` for small errors and
    :math:`|d| - \log 2` for large ones — a twice-differentiable Huber.

    Computed as :math:`|d| + \log(1 + e^{-2|d|}) - \log 2`, exact and finite for every
    :math:`d` (``cosh`` itself overflows at :math:`|d| \approx 89` in float32).
    Gradient: :math:`\tanh(x - y)`.

    Args as :func:`mse`.  Equivalent: ``optax.losses.log_cosh``; Keras ``LogCosh``.
    """
    return pointwise_loss(_log_cosh_core, input, target, reduction=reduction, where=where, wrt=wrt)


def _quantile_core(q):
    def core(xp, x, y, need_grad):
        d = y - x
        value = xp.where(d >= 0, q * d, (q - 1.0) * d)
        if not need_grad:
            return value, None, None
        zero = xp.zeros_like(d)
        # at d = 0 the loss is at its minimum and 0 is a subgradient (as sign(0) = 0 for mae)
        g = xp.where(d > 0, zero - q, xp.where(d < 0, zero + (1.0 - q), zero))
        return value, g, -g

    return core


@catalogued(
    family="regression",
    input_space="values",
    formula="max(q (y - x), (q - 1)(y - x))",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def quantile(
    input: Array,
    target: Array,
    q: float = 0.5,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Quantile (pinball) loss, whose minimiser is the ``q``-quantile of the target:
    with :math:`d = y - x`, :math:`\ell = \max(q\,d, (q - 1)\,d)`.

    Under-prediction costs :math:`q` per unit, over-prediction :math:`1 - q`; ``q=0.5`` is half
    the absolute error.  Gradient: :math:`-q` where :math:`y > x`, :math:`1 - q` where
    :math:`y < x`, 0 where they are equal (a subgradient at the minimum).

    Args:
      input: predicted quantiles, any shape.
      target: same shape.
      q: the quantile in [0, 1] (default 0.5).
      reduction, where: as :func:`mse`.

    Equivalent: TensorFlow Addons ``PinballLoss(tau=q)``; scikit-learn
    ``mean_pinball_loss(alpha=q)``.
    """
    q = check_hyperparameter(q, "q", like=input, low=0.0, high=1.0)
    return pointwise_loss(_quantile_core(q), input, target, reduction=reduction, where=where, wrt=wrt)


def _mape_core(eps):
    def core(xp, x, y, need_grad):
        d = x - y
        a = xp.abs(y)
        big = a > eps
        scale = xp.where(big, a, xp.full_like(a, eps))
        value = 100.0 * xp.abs(d) / scale
        if not need_grad:
            return value, None, None
        d_input = 100.0 * xp.sign(d) / scale
        # the denominator depends on the target too, where |y| > eps
        d_scale = xp.where(big, value * xp.sign(y) / scale, xp.zeros_like(a))
        return value, d_input, -d_input - d_scale

    return core


@catalogued(
    family="regression",
    input_space="values",
    formula="100 |x - y| / max(|y|, eps)",
    torch=None,
    optax=None,
    keras="MeanAbsolutePercentageError",
)
@loss_function
def mape(
    input: Array,
    target: Array,
    *,
    eps: float = 1e-7,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Mean absolute percentage error: :math:`\ell = 100\,|x - y| / \max(|y|, \epsilon)`.

    Gradient: :math:`100\,\mathrm{sign}(x - y)/\max(|y|, \epsilon)`.  Targets near 0 make the
    loss explode (bounded only by :math:`\epsilon`); prefer :func:`msle` or a scaled
    :func:`mae` when targets can be 0.

    Args:
      input: predictions, any shape.
      target: same shape.
      eps: :math:`\epsilon > 0`, the smallest denominator (default 1e-7, Keras's epsilon).
      reduction, where: as :func:`mse`.

    Equivalent: Keras ``MeanAbsolutePercentageError`` (same numbers); scikit-learn's
    ``mean_absolute_percentage_error`` is this divided by 100 with ``eps`` the machine epsilon.
    """
    eps = check_number(eps, "eps", low=0.0, low_inclusive=False)
    return pointwise_loss(_mape_core(eps), input, target, reduction=reduction, where=where, wrt=wrt)


def _msle_core(eps):
    def core(xp, x, y, need_grad):
        floor_x, floor_y = ~(x <= eps), y > eps  # a NaN prediction stays NaN, not eps
        cx = xp.where(floor_x, x, xp.full_like(x, eps))
        cy = xp.where(floor_y, y, xp.full_like(y, eps))
        r = xp.log1p(cx) - xp.log1p(cy)
        value = r * r
        if not need_grad:
            return value, None, None
        zero = xp.zeros_like(r)
        d_input = xp.where(floor_x, 2.0 * r / (1.0 + cx), zero)
        d_target = xp.where(floor_y, -2.0 * r / (1.0 + cy), zero)
        return value, d_input, d_target

    return core


@catalogued(
    family="regression",
    input_space="values",
    formula="(log1p(max(x, eps)) - log1p(max(y, eps)))^2",
    torch=None,
    optax=None,
    keras="MeanSquaredLogarithmicError",
)
@loss_function
def msle(
    input: Array,
    target: Array,
    *,
    eps: float = 1e-7,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Mean squared logarithmic error:
    :math:`\ell = (\log(1 + \max(x, \epsilon)) - \log(1 + \max(y, \epsilon)))^2`.

    Measures relative error for non-negative quantities (counts, prices).  Domain: values
    below :math:`\epsilon` are clipped to :math:`\epsilon` (Keras's rule), so a negative
    prediction costs as much as :math:`\epsilon` and gets **zero gradient** — put a softplus
    or exp on the output when it can go negative.  Gradient where :math:`x > \epsilon`:
    :math:`2\,(\log(1 + x) - \log(1 + y))/(1 + x)`.

    Args:
      input: predictions, any shape (meant to be >= 0).
      target: same shape (meant to be >= 0).
      eps: the clipping floor :math:`\epsilon \ge 0` (default 1e-7, Keras's epsilon).
      reduction, where: as :func:`mse`.

    Equivalent: Keras ``MeanSquaredLogarithmicError`` (same numbers); scikit-learn's
    ``mean_squared_log_error`` equals it on non-negative values (it refuses negative ones).
    """
    eps = check_number(eps, "eps", low=0.0)
    return pointwise_loss(_msle_core(eps), input, target, reduction=reduction, where=where, wrt=wrt)


def _relative_power_difference(xp, a_pow, b_pow, s, delta):
    """(a^s - b^s) / s from a^s, b^s and delta = log a - log b, exact as s -> 0 (where it is
    delta) and near powers 1, 2 (no cancellation of the textbook formula): b^s expm1(s delta) / s
    where a^s <= b^s, a^s (-expm1(-s delta)) / s where a^s > b^s, so the expm1 never overflows
    (b^s underflowing to 0 while e^(s delta) overflows would give 0 * inf)."""
    if s == 0.0:
        return delta
    sd = s * delta
    above = sd > 0
    smaller = xp.where(above, -sd, sd)  # <= 0
    return xp.where(above, a_pow * -xp.expm1(smaller), b_pow * xp.expm1(smaller)) / s


def _tweedie_core(power):
    def core(xp, mu, y, need_grad):
        if power == 0.0:
            d = mu - y
            g = 2.0 * d if need_grad else None
            return d * d, g, (None if g is None else -g)
        s1, s2 = 1.0 - power, 2.0 - power
        positive = y > 0
        safe_y = xp.where(positive, y, xp.ones_like(y))
        log_mu = xp.log(mu)
        log_y = xp.log(safe_y)
        delta = log_y - log_mu
        one = xp.ones_like(mu)
        # mu^s as exp(s log mu), 1 for s = 0 (not exp(0 * inf) at mu = inf)
        mu_s1 = one if s1 == 0.0 else xp.exp(s1 * log_mu)
        mu_s2 = one if s2 == 0.0 else xp.exp(s2 * log_mu)
        y_s1 = one if s1 == 0.0 else xp.exp(s1 * log_y)
        y_s2 = one if s2 == 0.0 else xp.exp(s2 * log_y)
        # deviance / 2 = y (y^s1 - mu^s1)/s1 - (y^s2 - mu^s2)/s2
        first = _relative_power_difference(xp, y_s1, mu_s1, s1, delta)
        half = safe_y * first - _relative_power_difference(xp, y_s2, mu_s2, s2, delta)
        if power < 2.0:  # y = 0 is in the domain: the deviance is 2 mu^(2-p) / (2-p)
            half = xp.where(positive, half, mu_s2 / s2)
        value = 2.0 * half
        infinite = mu == math.inf
        if power <= 2.0:  # the deviance grows without bound with mu (mu - y log mu at p = 1)
            value = xp.where(infinite, xp.full_like(value, math.inf), value)
        if not need_grad:
            return value, None, None
        d_input = 2.0 * (mu - y) * mu_s1 / mu  # 2 mu^-p (mu - y)
        # its limit at mu = inf: 2 at p = 1, 0 above
        d_input = xp.where(infinite, xp.full_like(d_input, 2.0 if power == 1.0 else 0.0), d_input)
        # d/dy = 2 (y^s1 - mu^s1)/s1: -inf at y = 0 (the deviance has a vertical tangent there)
        d_target = xp.where(positive, 2.0 * first, xp.full_like(first, -math.inf))
        return value, d_input, d_target

    return core


@catalogued(
    family="regression",
    input_space="values",
    formula="2 [y^(2-p)/((1-p)(2-p)) - y x^(1-p)/(1-p) + x^(2-p)/(2-p)]",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def tweedie(
    input: Array,
    target: Array,
    power: float,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Tweedie deviance of a predicted mean :math:`\mu` (``input``) for targets :math:`y`,
    with power :math:`p`:

    .. math::
        \ell = 2\Big[\frac{y^{2-p}}{(1-p)(2-p)} - \frac{y\,\mu^{1-p}}{1-p} + \frac{\mu^{2-p}}{2-p}\Big]

    and its limits: :math:`p = 0` normal, :math:`(y - \mu)^2`; :math:`p = 1` Poisson,
    :math:`2(y\log(y/\mu) - y + \mu)`; :math:`p = 2` Gamma,
    :math:`2(\log(\mu/y) + y/\mu - 1)`; :math:`p = 3` inverse Gaussian;
    :math:`1 < p < 2` compound Poisson-Gamma (insurance claims, rainfall: exact zeros plus
    positive amounts).  Computed in a form that stays exact as :math:`p` approaches 1 or 2
    (the textbook formula cancels catastrophically there).

    Gradient: :math:`\partial\ell/\partial\mu = 2\,\mu^{-p}(\mu - y)`; with respect to the
    target :math:`2(y^{1-p} - \mu^{1-p})/(1-p)` (:math:`2\log(y/\mu)` at :math:`p = 1`;
    :math:`-\infty` at :math:`y = 0`).

    Args:
      input: predicted means :math:`\mu`, any shape; > 0 unless ``power=0``.
      target: same shape; any real for ``power=0``, >= 0 for :math:`1 \le p < 2`, > 0 for
        :math:`p \ge 2`.
      power: :math:`p`, 0 or >= 1 (no Tweedie distribution exists for :math:`0 < p < 1`;
        negative powers are not supported).
      reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
      where: optional boolean mask of counted elements.

    Equivalent: scikit-learn ``mean_tweedie_deviance(y, mu, power=p)`` (same numbers, its
    domain checks; also ``mean_poisson_deviance``, ``mean_gamma_deviance``).
    """
    power = check_number(power, "power")
    if not (power == 0.0 or power >= 1.0):
        raise ValueError(
            f"power must be 0 or >= 1 (Tweedie deviance is undefined for 0 < power < 1; negative "
            f"powers are not supported); got {power!r}"
        )

    def input_check(xp, mu):
        if power != 0.0:
            _check_bound(xp, mu, "input", low=0.0, strict=True, why=f"predicted means for power={power:g}")

    def target_check(xp, y):
        if power >= 2.0:
            _check_bound(xp, y, "target", low=0.0, strict=True, why=f"Tweedie targets for power={power:g}")
        elif power >= 1.0:
            _check_bound(xp, y, "target", low=0.0, strict=False, why=f"Tweedie targets for power={power:g}")

    return pointwise_loss(
        _tweedie_core(power),
        input,
        target,
        reduction=reduction,
        where=where,
        wrt=wrt,
        input_check=input_check,
        target_check=target_check,
    )
