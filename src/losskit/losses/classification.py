"""Classification losses: binary and multiclass cross-entropy, negative log-likelihood,
generalized (noise-robust) cross-entropy, the multiclass and binary Brier scores, and the
label-smoothing helper.

Class-axis convention: the class axis is the ``axis=`` keyword, default -1 (the last), so a
``[batch, seq, vocab]`` array works as is; pass ``axis=1`` for PyTorch's ``(N, C, d1, ...)``
layout.  Integer targets have the input's shape without the class axis.

Common options:

- ``reduction``: ``"mean"`` (default), ``"sum"`` or ``"none"`` (per-sample losses).
- ``where``: optional boolean mask over the per-sample losses; False samples count neither in
  the value, the mean's divisor, nor the gradient.
- When every sample is ignored or masked out, ``mean`` returns 0 with a zero gradient — a
  deliberate difference from PyTorch, which returns NaN.  Otherwise a weighted ``mean``
  divides by the counted samples' class weights summed, whatever its sign, as PyTorch does
  (negative weights flip the sign; weights summing to exactly 0 give inf or NaN).
"""

from __future__ import annotations

from ..core import numerics
from ..core.backend import (
    Array,
    Namespace,
    cast,
    compute_dtype,
    finish,
    is_floating,
    is_integer,
    library_name,
    lift,
    namespace,
)
from ..core.catalog import catalogued
from ..core.dispatch import dispatch
from ..core.gradients import LossResult, loss_function
from ..core.pointwise import pointwise_loss
from ..core.reduction import Reduction, make_reducer
from ..core.specs import CrossEntropyArrays, CrossEntropyOptions, CrossEntropySpec
from ..core.validation import (
    any_true,
    check_axis,
    check_broadcastable_to,
    check_class_indices,
    check_class_targets,
    check_float_array,
    check_hyperparameter,
    check_in_unit_interval,
    check_no_nan,
    check_nonempty,
    check_values_in,
)

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "nll",
    "generalized_cross_entropy",
    "brier",
    "binary_brier",
    "smooth_labels",
]

# PyTorch clamps log-probabilities at -100 so that log(0) stays finite; losskit applies the
# clamp only where the true value is infinite (p exactly 0 or 1), so finite losses are exact.
_LOG_FLOOR = -100.0
# ... and bounds the BCE gradient's denominator p(1 - p) only where it is exactly 0.
_GRAD_EPS = 1e-12


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
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
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
        sp_pos, sp_neg = numerics.softplus(xp, x), numerics.softplus(xp, -x)
        positive = y if pos_weight is None else pos_weight * y
        # each term 0 where its label weight is 0: a hard label at an infinite logit gives 0
        value = numerics.xlogy(xp, 1.0 - y, sp_pos) + numerics.xlogy(xp, positive, sp_neg)
        if not need_grad:
            return value, None, None
        # (1 - y) sigmoid(x) - c y sigmoid(-x): exact where sigmoid(x) - y would round to 0
        d_input = (1.0 - y) * numerics.sigmoid(xp, x) - positive * numerics.sigmoid(xp, -x)
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
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
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
    reduction: Reduction = "mean",
    where: Array | None = None,
    z_loss: float = 0.0,
    normalizer: float | Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
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

    Infinite logits give softmax's limits: a ``-inf`` logit (a masked class) has probability 0
    and a class of target probability 0 there adds nothing (:math:`0 \log 0 = 0`, Optax's
    ``safe_softmax_cross_entropy``); a ``+inf`` logit takes all the probability (shared between
    the ``+inf`` logits of a row), so the loss is 0 when the target is that class and ``+inf``
    otherwise.  A NaN logit makes its sample's loss NaN.

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
    # the options' fields are this signature's options, in its order
    options = CrossEntropyOptions(ignore_index, label_smoothing, axis, temperature, reduction, z_loss)
    arrays = CrossEntropyArrays(input, target, weight, where, normalizer)
    spec = CrossEntropySpec.of(xp, options, arrays)
    # NumPy's row kernel, torch's autograd Function and JAX's custom derivative compute the
    # same numbers faster where they apply; each declines where it does not
    return dispatch("cross_entropy", library_name(input), portable_cross_entropy, xp, spec, arrays, wrt)


def portable_cross_entropy(
    xp: Namespace, spec: CrossEntropySpec, arrays: CrossEntropyArrays, wrt: frozenset[int]
) -> LossResult:
    """:func:`cross_entropy` in array-API operations, for any library: ``(value, {0: d value /
    d input})`` (the gradient only when ``0 in wrt``) for a validated ``spec``."""
    input, target, weight, where, normalizer = arrays
    axis, num_classes, sample_shape = spec.axis, spec.num_classes, spec.sample_shape
    eps, temperature, z_coef = spec.label_smoothing, spec.temperature, spec.z_loss
    reduction, ignore_index = spec.reduction, spec.ignore_index
    out_dtype = input.dtype
    dtype = compute_dtype(xp, out_dtype)
    x = xp.moveaxis(lift(xp, input, dtype), axis, -1)
    if temperature != 1.0:
        x = x / temperature
    w = None if weight is None else xp.astype(weight, dtype)
    # the shifted exponentials serve the value (through their sum) and the gradient (the
    # softmax), so neither log_softmax nor a one-hot matrix is materialised; the shift takes
    # softmax's limits at infinite logits (numerics.shift)
    xs, m = numerics.shift(xp, x, -1)
    e = xp.exp(xs)
    total = xp.sum(e, axis=-1, keepdims=True)
    log_total_k = xp.log(total)
    log_total = xp.squeeze(log_total_k, axis=-1)

    if spec.class_indices:
        valid = target != ignore_index
        safe_t = xp.where(valid, target, xp.zeros_like(target))
        picked = numerics.gather_classes(xp, xs, safe_t, num_classes) - log_total  # log p of the target
        w_t = None if w is None else numerics.class_weights(xp, w, safe_t, valid, sample_shape)
        value = -picked if w_t is None else -w_t * picked
        if eps > 0:
            # -sum_c w_c log p_c = log_total * sum_c w_c - sum_c w_c xs_c (a class of weight 0
            # adds 0, even where its logit is -inf)
            if w is None:
                smooth = num_classes * log_total - xp.sum(xs, axis=-1)
            else:
                smooth = xp.sum(w) * log_total - xp.sum(numerics.xlogy(xp, w, xs), axis=-1)
            value = (1.0 - eps) * value + (eps / num_classes) * smooth
        mask = valid if where is None else (valid & where)
        mean_weights = w_t
    else:
        q = xp.moveaxis(lift(xp, target, dtype), axis, -1)
        if eps > 0:
            q = (1.0 - eps) * q + eps / num_classes
        wq = q if w is None else q * w
        # 0 log 0 = 0: a class of probability 0 adds nothing, even where its logit is -inf
        value = -xp.sum(numerics.xlogy(xp, wq, xs - log_total_k), axis=-1)
        mask = where
        mean_weights = None
    if z_coef > 0:
        lse = xp.squeeze(m, axis=-1) + log_total
        value = value + z_coef * lse * lse
    reducer = make_reducer(
        xp, reduction, sample_shape, dtype, where=mask, weights=mean_weights, normalizer=normalizer
    )
    loss = reducer.value(value)
    grads = {}
    if 0 in wrt:
        p = e / total
        if spec.class_indices:
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
            g = g + (2.0 * z_coef) * xp.expand_dims(lse, axis=-1) * p
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
    reduction: Reduction = "mean",
    where: Array | None = None,
    normalizer: float | Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
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
    axis, num_classes, sample_shape, _ = check_class_targets(
        xp, input, target, axis, ignore_index, weight, where
    )
    out_dtype = input.dtype
    dtype = compute_dtype(xp, out_dtype)
    log_p = xp.moveaxis(lift(xp, input, dtype), axis, -1)
    valid = target != ignore_index
    safe_t = xp.where(valid, target, xp.zeros_like(target))
    picked = numerics.gather_classes(xp, log_p, safe_t, num_classes)
    w_t = None
    if weight is not None:
        w_t = numerics.class_weights(xp, xp.astype(weight, dtype), safe_t, valid, sample_shape)
    value = -picked if w_t is None else -w_t * picked
    mask = valid if where is None else (valid & where)
    reducer = make_reducer(xp, reduction, sample_shape, dtype, where=mask, weights=w_t, normalizer=normalizer)
    grads = {}
    if 0 in wrt:
        g = -numerics.one_hot(xp, safe_t, num_classes, dtype)
        if w_t is not None:
            g = g * xp.expand_dims(w_t, axis=-1)
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
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
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
    axis, num_classes, sample_shape, _ = check_class_targets(xp, input, target, axis, -100, where=where)
    check_class_indices(xp, target, num_classes, None)
    check_in_unit_interval(xp, input, "input")
    q = check_hyperparameter(q, "q", like=input, low=0.0, high=1.0, low_inclusive=False)
    out_dtype = input.dtype
    dtype = compute_dtype(xp, out_dtype)
    probs = xp.moveaxis(lift(xp, input, dtype), axis, -1)
    pt = numerics.gather_classes(xp, probs, target, num_classes)
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
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
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

    A 1-d ``input`` is *one* sample's class probabilities.  One probability per sample for a
    binary problem (scikit-learn's ``brier_score_loss(y, p)``) is :func:`binary_brier`'s
    input: ``brier`` refuses a 1-d input that is not one distribution (values that do not sum
    to 1, or one label per value) and a class axis of size 1, and says so.

    Equivalent: scikit-learn ``brier_score_loss(y, p, scale_by_half=False)`` for multiclass
    ``p`` (its binary default halves the two-class score, i.e. uses only the positive column:
    that is :func:`binary_brier`).
    """
    xp = namespace(input=input, target=target, where=where)
    _check_not_binary(xp, input, target, axis)
    axis, num_classes, sample_shape, indices = check_class_targets(xp, input, target, axis, -100, where=where)
    if indices:
        check_class_indices(xp, target, num_classes, None)
    check_in_unit_interval(xp, input, "input")
    if input.ndim == 1 and not indices:
        _check_one_distribution(xp, input, target)
    out_dtype = input.dtype if indices else xp.result_type(input.dtype, target.dtype)
    dtype = compute_dtype(xp, out_dtype)
    p = xp.moveaxis(cast(xp, input, dtype), axis, -1)
    if indices:
        y = numerics.one_hot(xp, target, num_classes, dtype)
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


_BINARY_HINT = (
    "for one probability of the positive class per sample and 0/1 labels (scikit-learn's "
    "brier_score_loss(y, p)) call losskit.binary_brier(p, y); for N samples of C classes pass "
    "input of shape (N, C)"
)


def _check_not_binary(xp: Namespace, input: Array, target: Array, axis: object) -> None:
    """Refuse what reads as a binary problem: a class axis of size 1, or a 1-d input with one
    label per value."""
    if input.ndim == 0:
        return  # check_class_targets says what is wrong
    if input.shape[check_axis(axis, input.ndim)] == 1:
        raise ValueError(f"brier needs a class axis of size >= 2 (axis={axis} has 1 class); {_BINARY_HINT}")
    if input.ndim == 1 and tuple(target.shape) == tuple(input.shape) and not is_floating(xp, target):
        raise ValueError(
            f"brier reads a 1-d input as one sample's {input.shape[0]} class probabilities, and "
            f"its target as their distribution, but target holds {target.dtype} labels, one per "
            f"value; {_BINARY_HINT}"
        )


def _check_one_distribution(xp: Namespace, input: Array, target: Array) -> None:
    """A 1-d input and target are one sample's class probabilities: each sums to 1."""
    tolerance = input.shape[0] * float(xp.finfo(compute_dtype(xp, input.dtype)).eps) ** 0.5
    for name, a in (("input", input), ("target", target)):
        error = xp.abs(xp.sum(xp.astype(a, compute_dtype(xp, a.dtype))) - 1.0)
        if any_true(xp, error > tolerance):
            raise ValueError(
                f"brier reads a 1-d input as one sample's {input.shape[0]} class probabilities, "
                f"but {name}'s values sum to {float(xp.sum(a)):g}, not 1; {_BINARY_HINT}"
            )


def _binary_brier_core(xp, p, y, need_grad):
    d = p - y
    if not need_grad:
        return d * d, None, None
    return d * d, 2.0 * d, -2.0 * d


@catalogued(
    family="classification",
    input_space="probabilities",
    formula="(p - y)^2, p = P(y = 1)",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def binary_brier(
    input: Array,
    target: Array,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Binary Brier score: :math:`\ell_i = (p_i - y_i)^2` for the predicted probability
    :math:`p_i` of the positive class and the label :math:`y_i \in \{0, 1\}` (or a soft label
    in [0, 1]).

    The mean is scikit-learn's ``brier_score_loss(y, p)``: for ``p = [0.1, 0.9, 0.8, 0.3]``
    and ``y = [0, 1, 1, 0]`` it is :math:`(0.01 + 0.01 + 0.04 + 0.09) / 4 = 0.0375`.  A strictly
    proper scoring rule, bounded in [0, 1]; it is half the two-class :func:`brier` of
    ``stack([1 - p, p], axis=-1)``.  Gradient: :math:`2(p - y)` (target: :math:`-2(p - y)` for
    floating labels).

    Args:
      input: probabilities of the positive class, any shape (e.g. ``(N,)``), values in [0, 1].
      target: labels of ``input``'s shape: integer or boolean 0/1, or floating in [0, 1].
      reduction: ``"mean"`` (default, over elements), ``"sum"`` or ``"none"``.
      where: optional boolean mask of counted elements.

    Equivalent: scikit-learn ``brier_score_loss(y, p)`` (binary labels, ``scale_by_half``
    left at its default); Keras ``MeanSquaredError`` on probabilities.  Reference: Brier,
    Verification of Forecasts Expressed in Terms of Probability, 1950.
    """
    xp = namespace(input=input, target=target, where=where)
    check_float_array(xp, input, "input")
    if not is_floating(xp, target):
        if not (is_integer(xp, target) or xp.isdtype(target.dtype, "bool")):
            raise TypeError(
                f"target must hold 0/1 labels (integer, bool or floating); got dtype {target.dtype}"
            )
        check_values_in(xp, target, (0, 1), "target")
        target = xp.astype(target, input.dtype)
        wrt = wrt - {1}  # labels, not a differentiable argument
    return pointwise_loss(
        _binary_brier_core,
        input,
        target,
        reduction=reduction,
        where=where,
        wrt=wrt,
        input_check=lambda xp, a: check_in_unit_interval(xp, a, "input"),
        target_check=lambda xp, a: check_in_unit_interval(xp, a, "target"),
    )


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
    alpha = check_hyperparameter(alpha, "alpha", like=labels, low=0.0, high=1.0)
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
        one_hot = numerics.one_hot(xp, labels, num_classes, dtype)
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
