"""Classification losses: binary and multiclass cross-entropy, negative log-likelihood.

Class-axis convention: the class axis is the ``axis=`` keyword, default -1 (the last), so a
``[batch, seq, vocab]`` array works as is; pass ``axis=1`` for PyTorch's ``(N, C, d1, ...)``
layout.  Integer targets have the input's shape without the class axis.

Common options:

- ``reduction``: ``"mean"`` (default), ``"sum"`` or ``"none"`` (per-sample losses).
- ``where``: optional boolean mask over the per-sample losses; False samples count neither in
  the value, the mean's divisor, nor the gradient.
- When every sample is ignored or masked out, ``mean`` returns 0 with a zero gradient — a
  deliberate difference from PyTorch, which returns NaN.
"""

from __future__ import annotations

from ._backend import (
    Array,
    compute_dtype,
    finish,
    is_integer,
    lift,
    namespace,
)
from ._catalog import catalogued
from ._gradients import loss_function
from ._pointwise import pointwise_loss
from ._reduction import make_reducer
from ._validation import (
    check_axis,
    check_broadcastable_to,
    check_class_indices,
    check_float_array,
    check_in_unit_interval,
    check_no_nan,
    check_nonempty,
    check_number,
)
from .activations import _row_max, _softplus

__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "nll"]

# PyTorch clamps log-probabilities at -100 so that log(0) stays finite; losskit applies the
# clamp only where the true value is infinite (p exactly 0 or 1), so finite losses are exact.
_LOG_FLOOR = -100.0
# ... and bounds the BCE gradient's denominator p(1 - p) only where it is exactly 0.
_GRAD_EPS = 1e-12


def _sigmoid(xp, x):
    e = xp.exp(-xp.abs(x))
    one = xp.ones_like(e)
    return xp.where(x >= 0, one / (one + e), e / (one + e))


def _bce_core(xp, p, y, need_grad):
    floor = xp.full_like(p, _LOG_FLOOR)
    log_p = xp.where(p > 0, xp.log(xp.where(p > 0, p, xp.ones_like(p))), floor)
    log_1mp = xp.where(p < 1, xp.log1p(-xp.where(p < 1, p, xp.zeros_like(p))), floor)
    value = -(y * log_p + (1.0 - y) * log_1mp)
    if not need_grad:
        return value, None, None
    denom = p * (1.0 - p)
    denom = xp.where(denom > 0, denom, xp.full_like(denom, _GRAD_EPS))
    return value, (p - y) / denom, log_1mp - log_p


@catalogued(
    family="classification",
    input_space="probabilities",
    formula="-[y log p + (1 - y) log(1 - p)]",
    torch="F.binary_cross_entropy",
    optax=None,
    keras="BinaryCrossentropy",
)
@loss_function
def binary_cross_entropy(
    input: Array,
    target: Array,
    weight: Array | None = None,
    *,
    reduction: str = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> Array:
    r"""Binary cross-entropy on probabilities:
    :math:`\ell_i = -w_i\,[\,y_i \log p_i + (1 - y_i) \log(1 - p_i)\,]`.

    Gradient: :math:`\partial\ell/\partial p_i = w_i (p_i - y_i) / (p_i (1 - p_i))`.

    Prefer :func:`binary_cross_entropy_with_logits` on raw scores: it is exact where a
    sigmoid would round to 0 or 1.  Unlike PyTorch, the log is not clamped at -100 wherever
    it is finite, so values and gradients are exact; the clamp applies only where the true
    loss is infinite (``p`` exactly 0 with ``y > 0``, or exactly 1 with ``y < 1``).

    Args:
      input: probabilities :math:`p` in [0, 1], any shape.
      target: same shape, in [0, 1] (soft labels allowed).
      weight: optional per-element rescaling, broadcastable to ``input``.
      reduction, where: see the module docstring.

    Equivalent: ``torch.nn.functional.binary_cross_entropy``; Keras ``BinaryCrossentropy``.
    """
    return pointwise_loss(
        _bce_core,
        input,
        target,
        reduction=reduction,
        where=where,
        wrt=wrt,
        weight=weight,
        input_check=lambda xp, a: check_in_unit_interval(xp, a, "input"),
        target_check=lambda xp, a: check_in_unit_interval(xp, a, "target"),
    )


def _bce_logits_core(pos_weight):
    # Written as (1 - y) softplus(x) + c y softplus(-x) rather than (1 - y) x + softplus(-x):
    # the same number, without the cancellation that rounds small losses to 0 in float32.
    def core(xp, x, y, need_grad):
        sp_pos, sp_neg = _softplus(xp, x), _softplus(xp, -x)
        positive = y if pos_weight is None else pos_weight * y
        value = (1.0 - y) * sp_pos + positive * sp_neg
        if not need_grad:
            return value, None, None
        # (1 - y) sigmoid(x) - c y sigmoid(-x): exact where sigmoid(x) - y would round to 0
        d_input = (1.0 - y) * _sigmoid(xp, x) - positive * _sigmoid(xp, -x)
        d_target = -sp_pos + (sp_neg if pos_weight is None else pos_weight * sp_neg)
        return value, d_input, d_target

    return core


@catalogued(
    family="classification",
    input_space="logits",
    formula="-w [pw y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))]",
    torch="F.binary_cross_entropy_with_logits",
    optax="optax.losses.sigmoid_binary_cross_entropy",
    keras="BinaryCrossentropy(from_logits=True)",
)
@loss_function
def binary_cross_entropy_with_logits(
    input: Array,
    target: Array,
    weight: Array | None = None,
    pos_weight: Array | None = None,
    *,
    reduction: str = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> Array:
    r"""Binary cross-entropy on logits (sigmoid and BCE fused, numerically stable).

    With :math:`\sigma` the sigmoid and :math:`c` the positive-class weight:
    :math:`\ell_i = w_i\,[\,(1 - y_i)\,x_i + (1 + (c - 1) y_i)\,\mathrm{softplus}(-x_i)\,]`,
    which equals :math:`-w_i[c\,y_i\log\sigma(x_i) + (1-y_i)\log(1-\sigma(x_i))]`.

    Gradient: :math:`\sigma(x_i) - y_i` without ``pos_weight`` (times :math:`w_i`), exact for
    every logit: at :math:`x = -50, y = 0` it is :math:`\sigma(-50) \approx 1.9\times10^{-22}`,
    not 0.

    Args:
      input: logits, any shape.
      target: same shape, in [0, 1].
      weight: optional per-element rescaling, broadcastable to ``input``.
      pos_weight: optional weight of positive examples, broadcastable to ``input`` (typically
        shape ``(C,)`` for ``C`` labels along the last axis); > 1 raises recall.
      reduction, where: see the module docstring.

    Equivalent: ``torch.nn.functional.binary_cross_entropy_with_logits``;
    ``optax.losses.sigmoid_binary_cross_entropy``.
    """
    pw = None
    if pos_weight is not None:
        xp = namespace(input=input, pos_weight=pos_weight)
        check_float_array(xp, pos_weight, "pos_weight")
        check_broadcastable_to(pos_weight, tuple(input.shape), "pos_weight", "input")
        pw = xp.astype(pos_weight, compute_dtype(xp, xp.result_type(input.dtype, target.dtype)))
    return pointwise_loss(
        _bce_logits_core(pw),
        input,
        target,
        reduction=reduction,
        where=where,
        wrt=wrt,
        weight=weight,
        target_check=lambda xp, a: check_in_unit_interval(xp, a, "target"),
    )


# -- multiclass -----------------------------------------------------------------------------


def _one_hot(xp, index, num_classes, dtype):
    classes = xp.arange(num_classes, dtype=index.dtype)
    return xp.astype(xp.expand_dims(index, axis=-1) == classes, dtype)


def _cross_entropy_options(label_smoothing, temperature, z_loss) -> tuple[float, float, float]:
    """Check cross-entropy's scalar options; return (label_smoothing, temperature, z_loss)."""
    return (
        check_number(label_smoothing, "label_smoothing", low=0.0, high=1.0),
        check_number(temperature, "temperature", low=0.0, low_inclusive=False),
        check_number(z_loss, "z_loss", low=0.0),
    )


def _class_targets(xp, input, target, axis, ignore_index, weight, where, name="target"):
    """Validate the class-axis inputs shared by cross_entropy and nll; return the per-sample
    shape, whether targets are indices, and the class weights as an array (or None)."""
    check_float_array(xp, input, "input")
    if input.ndim == 0:
        raise ValueError("input must have a class axis; got a 0-d array")
    check_nonempty(input, "input")
    axis = check_axis(axis, input.ndim)
    num_classes = input.shape[axis]
    sample_shape = tuple(d for i, d in enumerate(input.shape) if i != axis)
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(f"ignore_index must be an int; got {type(ignore_index).__name__}")
    if is_integer(xp, target):
        if tuple(target.shape) != sample_shape:
            raise ValueError(
                f"{name} of class indices must have the input's shape without the class axis "
                f"(axis={axis}): expected {sample_shape}, got {tuple(target.shape)}"
            )
        check_class_indices(xp, target, num_classes, ignore_index, name)
        indices = True
    elif xp.isdtype(target.dtype, "real floating"):
        if tuple(target.shape) != tuple(input.shape):
            hint = (
                " (float class indices? cast them to an integer dtype)"
                if tuple(target.shape) == sample_shape
                else ""
            )
            raise ValueError(
                f"{name} of class probabilities must have the input's shape {tuple(input.shape)}; "
                f"got {tuple(target.shape)}{hint}"
            )
        check_no_nan(xp, target, name)
        check_in_unit_interval(xp, target, name)
        indices = False
    else:
        raise TypeError(
            f"{name} must be integer class indices or floating class probabilities; got dtype {target.dtype}"
        )
    if weight is not None:
        check_float_array(xp, weight, "weight")
        if tuple(weight.shape) != (num_classes,):
            raise ValueError(
                f"weight must have shape ({num_classes},), one weight per class; got {tuple(weight.shape)}"
            )
    return axis, num_classes, sample_shape, indices


def _class_weights(xp, w, index, valid, sample_shape):
    """w[index] per sample, 0 where the sample is ignored."""
    w_t = xp.reshape(xp.take(w, xp.reshape(index, (-1,))), sample_shape)
    return xp.where(valid, w_t, xp.zeros_like(w_t))


def _gather_classes(xp, values, index, num_classes):
    """values[..., index] along the last axis, for index of shape values.shape[:-1]."""
    take_along_axis = getattr(xp, "take_along_axis", None)
    if take_along_axis is not None:
        try:
            idx = xp.expand_dims(xp.astype(index, xp.int64), axis=-1)
            return xp.squeeze(take_along_axis(values, idx, axis=-1), axis=-1)
        except (TypeError, NotImplementedError, AttributeError):
            pass
    return xp.sum(values * _one_hot(xp, index, num_classes, values.dtype), axis=-1)


def _torch_autograd(input, target, weight, where, normalizer) -> bool:
    """Torch logits that autograd will differentiate, and nothing else that needs a gradient."""
    import array_api_compat

    if not array_api_compat.is_torch_array(input) or not input.requires_grad:
        return False
    import torch

    if not torch.is_grad_enabled():
        return False
    others = (target, weight, where, normalizer)
    return not any(isinstance(a, torch.Tensor) and a.requires_grad for a in others)


def _fusable(*arrays, normalizer) -> bool:
    """Plain NumPy arrays (or None) only: the fused kernel in losskit.fused handles them."""
    import numpy as np

    if not isinstance(normalizer, (type(None), int, float, np.ndarray)):
        return False
    return all(a is None or type(a) is np.ndarray for a in arrays) and arrays[0].dtype.kind == "f"


@catalogued(
    family="classification",
    input_space="logits",
    formula="-sum_c q_c log softmax(x / T)_c",
    torch="F.cross_entropy",
    optax="optax.losses.softmax_cross_entropy(_with_integer_labels)",
    keras="(Sparse)CategoricalCrossentropy(from_logits=True)",
)
@loss_function
def cross_entropy(
    input: Array,
    target: Array,
    weight: Array | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    axis: int = -1,
    temperature: float = 1.0,
    *,
    reduction: str = "mean",
    where: Array | None = None,
    z_loss: float = 0.0,
    normalizer: float | Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> Array:
    r"""Cross-entropy between logits and class indices or class probabilities.

    With :math:`\log p = \mathrm{log\_softmax}(x / T)` along ``axis``, :math:`C` classes,
    class weights :math:`w` (all 1 by default) and smoothing :math:`\varepsilon`:

    - integer targets :math:`t`:
      :math:`\ell = -(1-\varepsilon)\,w_t \log p_t - \tfrac{\varepsilon}{C}\sum_c w_c \log p_c`;
      ``mean`` divides the sum by :math:`\sum w_t` over the counted samples (PyTorch's
      weighted mean), and samples whose target is ``ignore_index`` do not count;
    - probability targets :math:`q` (same shape as ``input``):
      :math:`\ell = -\sum_c w_c\,q'_c \log p_c` with
      :math:`q' = (1-\varepsilon)q + \varepsilon/C`; ``mean`` divides by the number of samples.

    ``z_loss`` adds :math:`\lambda\,(\log\sum_c e^{x_c/T})^2` per counted sample, which keeps
    the normaliser near 0 in large-model training.

    Gradient with respect to the logits:
    :math:`\tfrac1T[(1-\varepsilon)w_t(p - e_t) + \tfrac{\varepsilon}{C}(p\sum_c w_c - w)
    + 2\lambda\,\mathrm{lse}\,p]`.  Worked examples: uniform logits over 27 classes give
    :math:`\ln 27 = 3.2958`; logits ``[2.0, 1.0, 0.1]`` with target 0 give 0.4170.

    Args:
      input: logits, at least 1-d, with the classes along ``axis``.
      target: integer class indices (``input``'s shape without ``axis``) or class
        probabilities (``input``'s shape).
      weight: optional class weights, shape ``(C,)``.
      ignore_index: integer target value that does not count (default -100).
      label_smoothing: :math:`\varepsilon` in [0, 1] (default 0).
      axis: the class axis (default -1; PyTorch's layout is ``axis=1``).
      temperature: :math:`T > 0` dividing the logits (default 1).
      reduction: ``"mean"`` (default), ``"sum"``, ``"none"`` (per-sample, shape of ``target``
        for indices).
      where: optional boolean mask over samples.
      z_loss: :math:`\lambda \ge 0` (default 0).
      normalizer: if given, ``mean`` divides the sum by this count instead (e.g. the global
        number of tokens under gradient accumulation).

    Equivalent: ``torch.nn.functional.cross_entropy`` (with ``dim`` moved to ``axis``);
    ``optax.losses.softmax_cross_entropy_with_integer_labels`` / ``softmax_cross_entropy``.
    """
    xp = namespace(input=input, target=target, weight=weight, where=where)
    if not wrt and _torch_autograd(input, target, weight, where, normalizer):
        # torch logits that need a gradient: the fused Function is the same loss with the
        # gradient computed in the forward (its backward stays differentiable)
        from .torch.functional import cross_entropy as fused_torch

        value = fused_torch(
            input, target, weight, ignore_index, label_smoothing, axis, temperature,
            reduction=reduction, where=where, z_loss=z_loss, normalizer=normalizer,
        )
        return value, {}
    if wrt == {0} and _fusable(input, target, weight, where, normalizer=normalizer):
        # NumPy with a gradient: the fused row-blocked kernel gives the same numbers in one sweep
        from .fused import fused_cross_entropy

        value, g = fused_cross_entropy(
            input, target, weight, ignore_index, label_smoothing, axis, temperature,
            reduction=reduction, where=where, z_loss=z_loss, normalizer=normalizer,
        )
        return value, {0: g}
    axis, num_classes, sample_shape, indices = _class_targets(
        xp, input, target, axis, ignore_index, weight, where
    )
    eps, temperature, z_coef = _cross_entropy_options(label_smoothing, temperature, z_loss)
    out_dtype = input.dtype
    dtype = compute_dtype(xp, out_dtype)
    x = xp.moveaxis(lift(xp, input, dtype), axis, -1)
    if temperature != 1.0:
        x = x / temperature
    w = None if weight is None else xp.astype(weight, dtype)
    # the shifted exponentials serve the value (through their sum) and the gradient (the
    # softmax), so neither log_softmax nor a one-hot matrix is materialised
    m = _row_max(xp, x, -1)
    e = xp.exp(x - m)
    total = xp.sum(e, axis=-1, keepdims=True)
    lse_k = m + xp.log(total)
    lse = xp.squeeze(lse_k, axis=-1)

    if indices:
        valid = target != ignore_index
        safe_t = xp.where(valid, target, xp.zeros_like(target))
        picked = _gather_classes(xp, x, safe_t, num_classes) - lse  # log p of the target
        w_t = None if w is None else _class_weights(xp, w, safe_t, valid, sample_shape)
        value = -picked if w_t is None else -w_t * picked
        if eps > 0:
            # -sum_c w_c log p_c = lse * sum_c w_c - sum_c w_c x_c
            if w is None:
                smooth = num_classes * lse - xp.sum(x, axis=-1)
            else:
                smooth = xp.sum(w) * lse - xp.sum(x * w, axis=-1)
            value = (1.0 - eps) * value + (eps / num_classes) * smooth
        mask = valid if where is None else (valid & where)
        mean_weights = w_t
    else:
        q = xp.moveaxis(lift(xp, target, dtype), axis, -1)
        if eps > 0:
            q = (1.0 - eps) * q + eps / num_classes
        wq = q if w is None else q * w
        value = -xp.sum(wq * (x - lse_k), axis=-1)
        mask = where
        mean_weights = None
    if z_coef > 0:
        value = value + z_coef * lse * lse
    reducer = make_reducer(
        xp, reduction, sample_shape, dtype, where=mask, weights=mean_weights, normalizer=normalizer
    )
    loss = reducer.value(value)
    grads = {}
    if 0 in wrt:
        p = e / total
        if indices:
            # (1 - eps) w_t (p - onehot): the one-hot subtraction is a single where
            is_target = xp.expand_dims(safe_t, axis=-1) == xp.arange(num_classes, dtype=safe_t.dtype)
            g = xp.where(is_target, p - 1.0, p)
            if w_t is not None:
                g = g * xp.expand_dims(w_t, axis=-1)
            if eps > 0:
                total_w = float(num_classes) if w is None else xp.sum(w)
                g = (1.0 - eps) * g + (eps / num_classes) * (p * total_w - (1.0 if w is None else w))
        else:
            g = p * xp.sum(wq, axis=-1, keepdims=True) - wq
        if z_coef > 0:
            g = g + (2.0 * z_coef) * lse_k * p
        if temperature != 1.0:
            g = g / temperature
        grads[0] = xp.moveaxis(reducer.grad(g, axis=-1), -1, axis)
    return finish(xp, out_dtype, loss, grads)


@catalogued(
    family="classification",
    input_space="log-probabilities",
    formula="-w_t log p_t",
    torch="F.nll_loss",
    optax=None,
    keras=None,
)
@loss_function
def nll(
    input: Array,
    target: Array,
    weight: Array | None = None,
    ignore_index: int = -100,
    axis: int = -1,
    *,
    reduction: str = "mean",
    where: Array | None = None,
    normalizer: float | Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> Array:
    r"""Negative log-likelihood of integer targets under log-probabilities:
    :math:`\ell = -w_t \log p_t`.

    Pair with :func:`losskit.log_softmax` (``nll(log_softmax(x), t)`` equals
    ``cross_entropy(x, t)``).  ``mean`` divides by :math:`\sum w_t` over the counted samples.
    Gradient: :math:`-w_t` at the target class, 0 elsewhere.

    Args:
      input: log-probabilities, classes along ``axis``.
      target: integer class indices, ``input``'s shape without ``axis``.
      weight, ignore_index, axis, reduction, where, normalizer: as :func:`cross_entropy`.

    Equivalent: ``torch.nn.functional.nll_loss``.
    """
    xp = namespace(input=input, target=target, weight=weight, where=where)
    if not is_integer(xp, target):
        raise TypeError(f"target must hold integer class indices; got dtype {target.dtype}")
    axis, num_classes, sample_shape, _ = _class_targets(xp, input, target, axis, ignore_index, weight, where)
    out_dtype = input.dtype
    dtype = compute_dtype(xp, out_dtype)
    log_p = xp.moveaxis(lift(xp, input, dtype), axis, -1)
    valid = target != ignore_index
    safe_t = xp.where(valid, target, xp.zeros_like(target))
    picked = _gather_classes(xp, log_p, safe_t, num_classes)
    w_t = None
    if weight is not None:
        w_t = _class_weights(xp, xp.astype(weight, dtype), safe_t, valid, sample_shape)
    value = -picked if w_t is None else -w_t * picked
    mask = valid if where is None else (valid & where)
    reducer = make_reducer(xp, reduction, sample_shape, dtype, where=mask, weights=w_t, normalizer=normalizer)
    grads = {}
    if 0 in wrt:
        g = -_one_hot(xp, safe_t, num_classes, dtype)
        if w_t is not None:
            g = g * xp.expand_dims(w_t, axis=-1)
        grads[0] = xp.moveaxis(reducer.grad(g, axis=-1), -1, axis)
    return finish(xp, out_dtype, reducer.value(value), grads)
