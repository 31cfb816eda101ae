"""Contrastive and metric-learning losses: embeddings compared by distance or similarity.

Two kinds of input:

- explicit tuples: :func:`triplet_margin`, :func:`triplet_margin_with_distance` (anchor,
  positive, negative), :func:`cosine_embedding` (pairs with a +/-1 target),
  :func:`cosine_distance` (prediction and target vectors) and :func:`info_nce` (queries, their
  positive keys and optional negative keys);
- a batch of embeddings with integer class labels, where every other sample of the same label
  is a positive and every sample of another label a negative: :func:`ntxent`, :func:`supcon`,
  :func:`circle`.

Embeddings are ``(N, D)`` arrays (features along the last axis).  Common options:

- ``reduction``: ``"mean"`` (default), ``"sum"`` or ``"none"``; what the per-element losses are
  (per triplet, per pair, per anchor) is said in each docstring.
- ``where``: optional boolean mask.  For the batch losses it has shape ``(N,)`` and marks the
  real samples: a False sample takes no part at all (not as an anchor, a positive or a
  negative), as if it were padding.  When nothing counts, ``mean`` is 0 with a zero gradient.

Gradients with respect to every embedding argument are analytic
(``losskit.value_and_grad(loss, argnums=...)``), including the path through the L2
normalisation where a loss normalises.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..core import numerics
from ..core.backend import Array, cast, compute_dtype, finish, is_array, namespace, stop_gradient
from ..core.catalog import catalogued
from ..core.gradients import LossResult, loss_function
from ..core.reduction import Reduction, make_reducer
from ..core.validation import (
    any_true,
    check_float_array,
    check_hyperparameter,
    check_integer_array,
    check_mask,
    check_no_nan,
    check_nonempty,
    check_number,
    check_same_shape,
    check_values_in,
)

__all__ = [
    "triplet_margin",
    "triplet_margin_with_distance",
    "cosine_embedding",
    "cosine_distance",
    "info_nce",
    "ntxent",
    "supcon",
    "circle",
]

# torch.nn.functional.normalize divides by max(||x||, 1e-12); on the squared norm that floor
# is 1e-24, which keeps the square root (and autograd through it) away from 0.
_NORMALIZE_FLOOR = 1e-24


# -- shared pieces ---------------------------------------------------------------------------


def _normalize(xp, x, floor):
    """``x / sqrt(max(||x||^2, floor))`` along the last axis, with what its backward needs."""
    n2 = xp.sum(x * x, axis=-1, keepdims=True)
    active = n2 > floor
    d = xp.sqrt(xp.where(active, n2, xp.full_like(n2, floor)))
    return x / d, d, active


def _normalize_back(xp, u, d, active, g):
    """Gradient with respect to ``x`` of a loss with gradient ``g`` with respect to
    ``u = x / d``: the tangential part of ``g`` over the norm (all of ``g`` where the floor
    holds the norm constant)."""
    proj = g - u * xp.sum(u * g, axis=-1, keepdims=True)
    return xp.where(active, proj, g) / d


def _coefficients(reducer, shape, dtype):
    """d(reduced loss)/d(per-element loss): the mean's factor, 0 where masked."""
    xp = reducer.xp
    return reducer.grad(xp.ones(shape, dtype=dtype))


def _check_embeddings(xp, x, name, ndims=(2,)):
    check_float_array(xp, x, name)
    if x.ndim not in ndims:
        expected = " or ".join(f"{n}-d" for n in ndims)
        raise ValueError(
            f"{name} must be a {expected} array (features along the last axis); got shape {tuple(x.shape)}"
        )
    check_nonempty(x, name)


def _check_labels(xp, labels, n):
    check_integer_array(xp, labels, "labels")
    if tuple(labels.shape) != (n,):
        raise ValueError(
            f"labels must have shape ({n},), one integer label per embedding; got {tuple(labels.shape)}"
        )


def _check_sample_mask(xp, where, n):
    if where is None:
        return
    if not xp.isdtype(where.dtype, "bool"):
        raise TypeError(f"where must be a boolean array; got dtype {where.dtype}")
    if tuple(where.shape) != (n,):
        raise ValueError(f"where must have shape ({n},), one flag per embedding; got {tuple(where.shape)}")


def _check_temperature(temperature, like):
    return check_hyperparameter(temperature, "temperature", like=like, low=0.0, low_inclusive=False)


def _pair_masks(xp, labels, where):
    """(same label and not self, different label) over the pairs of counted samples."""
    n = labels.shape[0]
    idx = xp.arange(n)
    not_self = idx[:, None] != idx[None, :]
    same = labels[:, None] == labels[None, :]
    positive = same & not_self
    negative = ~same
    if where is not None:
        both = where[:, None] & where[None, :]
        positive = positive & both
        negative = negative & both
    return positive, negative, not_self


# -- triplets ----------------------------------------------------------------------------------


def _pairwise_distance(xp, x1, x2, p, eps, need_grad):
    """PyTorch's ``pairwise_distance``: ``||x1 - x2 + eps||_p`` along the last axis, and its
    gradient with respect to ``x1`` (that with respect to ``x2`` is its negative)."""
    v = x1 - x2 + eps
    zero = xp.zeros_like(v)
    if p == 2.0:
        d = xp.sqrt(xp.sum(v * v, axis=-1))
        if not need_grad:
            return d, None
        safe = xp.where(d > 0, d, xp.ones_like(d))
        return d, v / safe[..., None]
    a = xp.abs(v)
    if p == 1.0:
        return xp.sum(a, axis=-1), (xp.sign(v) if need_grad else None)
    if math.isinf(p):
        d = xp.max(a, axis=-1)
        if not need_grad:
            return d, None
        hit = xp.astype(a == d[..., None], v.dtype)  # ties share the gradient, as in PyTorch
        return d, xp.sign(v) * hit / xp.sum(hit, axis=-1, keepdims=True)
    d = xp.sum(a**p, axis=-1) ** (1.0 / p)
    if not need_grad:
        return d, None
    safe = xp.where(d > 0, d, xp.ones_like(d))
    ratio = xp.where(a > 0, a, xp.ones_like(a)) / safe[..., None]
    return d, xp.where(a > 0, xp.sign(v) * ratio ** (p - 1.0), zero)


def _check_triplet(xp, anchor, positive, negative):
    for name, x in (("anchor", anchor), ("positive", positive), ("negative", negative)):
        _check_embeddings(xp, x, name, ndims=(1, 2))
    check_same_shape(anchor, positive, "anchor", "positive")
    check_same_shape(anchor, negative, "anchor", "negative")


def _check_margin_positive(margin, like):
    # PyTorch refuses margin <= 0 for both triplet losses
    return check_hyperparameter(margin, "margin", like=like, low=0.0, low_inclusive=False)


def _triplet(xp, a, p, n, distance, margin, swap, reduction, where, wrt, dtype, out_dtype):
    """The triplet hinge on distances from ``distance(x1, x2, need_grad) -> (d, d d/d x1)``."""
    need = bool(wrt)
    d_ap, g_ap = distance(a, p, need)
    d_an, g_an = distance(a, n, need)
    if swap:
        d_pn, g_pn = distance(p, n, need)
        use_swap = d_pn < d_an
        d_neg = xp.where(use_swap, d_pn, d_an)
    else:
        d_neg = d_an
    raw = margin + d_ap - d_neg
    active = ~(raw <= 0)  # a NaN embedding gives a NaN loss, as in PyTorch
    value = xp.where(active, raw, xp.zeros_like(raw))
    sample_shape = tuple(a.shape[:-1])
    reducer = make_reducer(xp, reduction, sample_shape, dtype, where=where)
    grads = {}
    if need:
        coef = _coefficients(reducer, sample_shape, dtype)
        c = xp.where(active, coef, xp.zeros_like(coef))[..., None]
        zero = xp.zeros_like(g_an)
        if swap:
            s = use_swap[..., None]
            dneg_a = xp.where(s, zero, g_an)
            dneg_p = xp.where(s, g_pn, zero)
            dneg_n = xp.where(s, -g_pn, -g_an)
        else:
            dneg_a, dneg_p, dneg_n = g_an, zero, -g_an
        if 0 in wrt:
            grads[0] = c * (g_ap - dneg_a)
        if 1 in wrt:
            grads[1] = c * (-g_ap - dneg_p)
        if 2 in wrt:
            grads[2] = -c * dneg_n
    return finish(xp, out_dtype, reducer.value(value), grads)


def _lift_all(xp, *arrays):
    out_dtype = arrays[0].dtype
    for x in arrays[1:]:
        out_dtype = xp.result_type(out_dtype, x.dtype)
    dtype = compute_dtype(xp, out_dtype)
    return out_dtype, dtype, [cast(xp, x, dtype) for x in arrays]


@catalogued(
    family="contrastive",
    input_space="embeddings",
    formula="max(0, margin + ||a - p + eps||_p - ||a - n + eps||_p)",
    torch="F.triplet_margin_loss",
    optax="optax.losses.triplet_margin_loss (eps inside the root)",
    keras=None,
)
@loss_function
def triplet_margin(
    anchor: Array,
    positive: Array,
    negative: Array,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-6,
    swap: bool = False,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Triplet margin loss:
    :math:`\ell_i = \max(0,\ m + d(a_i, p_i) - d(a_i, n_i))` with PyTorch's pairwise distance
    :math:`d(x, y) = \lVert x - y + \epsilon \rVert_p` (``eps`` is added to the difference
    before the norm, exactly as ``torch.nn.functional.pairwise_distance`` does).

    With ``swap=True`` (Balntas et al. 2016) the negative distance is
    :math:`\min(d(a_i, n_i), d(p_i, n_i))`: the harder of the two.

    Gradients with respect to all three embeddings (``argnums`` 0, 1, 2); for :math:`p = 2`,
    :math:`\partial d(x, y)/\partial x = (x - y + \epsilon) / d(x, y)`, and the hinge passes
    them only where :math:`\ell_i > 0`.

    Args:
      anchor, positive, negative: ``(N, D)`` or ``(D,)`` embeddings, all the same shape.
      margin: :math:`m > 0` (default 1; PyTorch refuses :math:`m \le 0`).
      p: the norm's degree, :math:`p > 0` (default 2; ``math.inf`` for the max norm).
      eps: :math:`\epsilon` added to each difference (default 1e-6).
      swap: use the distance swap (default False).
      reduction: ``"mean"`` (default), ``"sum"``, ``"none"`` (per triplet, shape ``(N,)``).
      where: optional boolean mask over the triplets, shape ``(N,)``.

    Equivalent: ``torch.nn.functional.triplet_margin_loss`` (same numbers).
    ``optax.losses.triplet_margin_loss`` puts its ``eps`` inside the root instead
    (:math:`(\sum |a - p|^p + \epsilon)^{1/p}`), so its values differ slightly.
    """
    xp = namespace(anchor=anchor, positive=positive, negative=negative, where=where)
    _check_triplet(xp, anchor, positive, negative)
    margin = _check_margin_positive(margin, anchor)
    p = check_number(p, "p", low=0.0, low_inclusive=False)
    eps = check_number(eps, "eps")
    if not isinstance(swap, bool):
        raise TypeError(f"swap must be a bool; got {type(swap).__name__}")
    out_dtype, dtype, (a, pos, neg) = _lift_all(xp, anchor, positive, negative)

    def distance(x1, x2, need_grad):
        return _pairwise_distance(xp, x1, x2, p, eps, need_grad)

    return _triplet(xp, a, pos, neg, distance, margin, swap, reduction, where, wrt, dtype, out_dtype)


@catalogued(
    family="contrastive",
    input_space="embeddings",
    formula="max(0, margin + d(a, p) - d(a, n))",
    torch="F.triplet_margin_with_distance_loss",
    optax=None,
    keras=None,
)
@loss_function
def triplet_margin_with_distance(
    anchor: Array,
    positive: Array,
    negative: Array,
    *,
    distance_function: Callable[[Array, Array], Array] | None = None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Triplet margin loss with any distance:
    :math:`\ell_i = \max(0,\ m + d(a_i, p_i) - d(a_i, n_i))`.

    ``distance_function(x1, x2)`` receives two ``(N, D)`` arrays (of the caller's library) and
    returns the ``(N,)`` distances; ``None`` (default) is PyTorch's ``pairwise_distance``
    (:math:`\lVert x_1 - x_2 + 10^{-6}\rVert_2`).  ``swap=True`` uses
    :math:`\min(d(a_i, n_i), d(p_i, n_i))` as the negative distance.

    Gradients:

    - ``distance_function=None``: analytic, with respect to all three embeddings
      (``argnums`` 0, 1, 2), as :func:`triplet_margin` with ``p=2, eps=1e-6``.
    - a custom ``distance_function``: losskit cannot know its derivative, so
      :func:`losskit.value_and_grad` raises ``ValueError`` saying so.  The value itself is
      computed with the caller's arrays, so framework autograd works through it: call the loss
      on tensors that require grad (PyTorch) or inside ``jax.grad`` with a ``jax.numpy``
      distance.

    Args:
      anchor, positive, negative: ``(N, D)`` or ``(D,)`` embeddings, all the same shape.
      distance_function: keyword-only, as in PyTorch (default ``None``).
      margin: :math:`m > 0` (default 1).
      swap: use the distance swap (default False).
      reduction: ``"mean"`` (default), ``"sum"``, ``"none"`` (per triplet).
      where: optional boolean mask over the triplets.

    Equivalent: ``torch.nn.functional.triplet_margin_with_distance_loss`` (same numbers).
    """
    xp = namespace(anchor=anchor, positive=positive, negative=negative, where=where)
    _check_triplet(xp, anchor, positive, negative)
    margin = _check_margin_positive(margin, anchor)
    if not isinstance(swap, bool):
        raise TypeError(f"swap must be a bool; got {type(swap).__name__}")
    if distance_function is not None and not callable(distance_function):
        raise TypeError(
            "distance_function must be callable (x1, x2) -> distances, or None; "
            f"got {type(distance_function).__name__}"
        )
    out_dtype, dtype, (a, pos, neg) = _lift_all(xp, anchor, positive, negative)
    if distance_function is None:

        def distance(x1, x2, need_grad):
            return _pairwise_distance(xp, x1, x2, 2.0, 1e-6, need_grad)

    else:
        if wrt:
            raise ValueError(
                "triplet_margin_with_distance has no analytic gradient for a custom distance_function "
                "(losskit cannot differentiate an arbitrary callable); use distance_function=None for "
                "value_and_grad, or differentiate with your framework's autograd (torch.autograd, "
                "jax.grad), which flows through the loss"
            )
        sample_shape = tuple(anchor.shape[:-1])

        def distance(x1, x2, need_grad):
            d = distance_function(x1, x2)
            if not is_array(d):
                raise TypeError(f"distance_function must return an array; got {type(d).__name__}")
            namespace(anchor=anchor, distance=d)  # same library as the embeddings
            if tuple(d.shape) != sample_shape:
                raise ValueError(
                    f"distance_function must return one distance per triplet, shape {sample_shape}; "
                    f"got {tuple(d.shape)}"
                )
            return xp.astype(d, dtype), None

    return _triplet(xp, a, pos, neg, distance, margin, swap, reduction, where, wrt, dtype, out_dtype)


# -- cosine ------------------------------------------------------------------------------------

# ATen's cosine_embedding_loss adds this to each squared norm
_COSINE_EMBEDDING_EPS = 1e-12


@catalogued(
    family="contrastive",
    input_space="embeddings",
    formula="1 - cos(x1, x2) if y = 1; max(0, cos(x1, x2) - margin) if y = -1",
    torch="F.cosine_embedding_loss",
    optax=None,
    keras=None,
)
@loss_function
def cosine_embedding(
    input1: Array,
    input2: Array,
    target: Array,
    margin: float = 0.0,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Cosine embedding loss: pull pairs labelled 1 together, push pairs labelled -1 below a
    cosine margin.

    With :math:`\cos_i = x_{1i}\cdot x_{2i} / \sqrt{(\lVert x_{1i}\rVert^2 + \epsilon)
    (\lVert x_{2i}\rVert^2 + \epsilon)}` and :math:`\epsilon = 10^{-12}` (PyTorch's, added to
    each squared norm): :math:`\ell_i = 1 - \cos_i` if :math:`y_i = 1`, and
    :math:`\max(0, \cos_i - m)` if :math:`y_i = -1`.

    Gradient (``argnums`` 0 and 1):
    :math:`\partial\cos/\partial x_1 = x_2/\sqrt{s_1 s_2} - \cos\, x_1 / s_1` with
    :math:`s_k = \lVert x_k\rVert^2 + \epsilon`, times -1 (:math:`y = 1`) or 1 (:math:`y = -1`,
    where the hinge is active).

    Args:
      input1, input2: ``(N, D)`` or ``(D,)`` embeddings, the same shape.
      target: ``(N,)`` (or 0-d) of 1 and -1, floating or integer.  PyTorch silently scores any
        other value as 0; losskit raises ``ValueError``.
      margin: :math:`m` (default 0; PyTorch suggests values in [0, 0.5]).
      reduction: ``"mean"`` (default), ``"sum"``, ``"none"`` (per pair).
      where: optional boolean mask over the pairs.

    Equivalent: ``torch.nn.functional.cosine_embedding_loss`` (same numbers).
    """
    xp = namespace(input1=input1, input2=input2, target=target, where=where)
    _check_embeddings(xp, input1, "input1", ndims=(1, 2))
    _check_embeddings(xp, input2, "input2", ndims=(1, 2))
    check_same_shape(input1, input2, "input1", "input2")
    sample_shape = tuple(input1.shape[:-1])
    if tuple(target.shape) != sample_shape:
        raise ValueError(
            f"target must have shape {sample_shape}, one +/-1 per pair; got {tuple(target.shape)}"
        )
    if not (xp.isdtype(target.dtype, "real floating") or xp.isdtype(target.dtype, "integral")):
        raise TypeError(f"target must hold 1 and -1 as a floating or integer array; got dtype {target.dtype}")
    check_no_nan(xp, target, "target")
    check_values_in(xp, target, (1, -1), "target")
    margin = check_hyperparameter(margin, "margin", like=input1)
    out_dtype, dtype, (x1, x2) = _lift_all(xp, input1, input2)
    s1 = xp.sum(x1 * x1, axis=-1) + _COSINE_EMBEDDING_EPS
    s2 = xp.sum(x2 * x2, axis=-1) + _COSINE_EMBEDDING_EPS
    den = xp.sqrt(s1 * s2)
    cos = xp.sum(x1 * x2, axis=-1) / den
    similar = target == 1
    zero = xp.zeros_like(cos)
    hinge = cos - margin
    pushed = ~(hinge <= 0)  # a NaN embedding gives a NaN loss, as in PyTorch
    value = xp.where(similar, 1.0 - cos, xp.where(pushed, hinge, zero))
    reducer = make_reducer(xp, reduction, sample_shape, dtype, where=where)
    grads = {}
    if wrt:
        coef = _coefficients(reducer, sample_shape, dtype)
        dcos = xp.where(similar, -coef, xp.where(pushed, coef, zero))[..., None]
        if 0 in wrt:
            grads[0] = dcos * (x2 / den[..., None] - (cos / s1)[..., None] * x1)
        if 1 in wrt:
            grads[1] = dcos * (x1 / den[..., None] - (cos / s2)[..., None] * x2)
    return finish(xp, out_dtype, reducer.value(value), grads)


@catalogued(
    family="contrastive",
    input_space="embeddings",
    formula="1 - x.y / (max(|x|^2, eps) max(|y|^2, eps))^(1/2)",
    torch=None,
    optax="optax.losses.cosine_distance",
    keras="CosineSimilarity (as -cos)",
)
@loss_function
def cosine_distance(
    input: Array,
    target: Array,
    *,
    epsilon: float = 0.0,
    axis: int = -1,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Cosine distance :math:`1 - \cos(x, y)` between vectors along ``axis``, Optax's
    definition: :math:`\ell = 1 - \sum_k \hat x_k \hat y_k` with
    :math:`\hat x = x / \sqrt{\max(\lVert x\rVert^2, \epsilon)}` (likewise :math:`\hat y`).

    Gradient with respect to ``input`` (``argnums=0``; ``target`` symmetrically, 1):
    :math:`-(\hat y - \cos\,\hat x) / \lVert x\rVert` (:math:`-\hat y/\sqrt\epsilon` where the
    :math:`\epsilon` floor holds the norm).  The value lies in [0, 2].

    Args:
      input: vectors, any shape with the vector along ``axis``.
      target: same shape.
      epsilon: floor on the squared norms (default 0, as Optax: a zero vector gives NaN).
      axis: the vector axis (default -1).
      reduction: ``"mean"`` (default; over the vectors), ``"sum"``, ``"none"`` (``input``'s
        shape without ``axis``).
      where: optional boolean mask broadcastable to ``input``'s shape, Optax's meaning:
        components that are False are left out of the dot product and both norms; a vector
        with no component left does not count (0 in ``"none"``, out of the mean's divisor).
        Mask whole vectors with ``where=mask[..., None]``.

    Equivalent: ``optax.losses.cosine_distance`` (unreduced, i.e. ``reduction="none"``; for a
    fully masked vector Optax returns 1, losskit leaves it out).  Keras ``CosineSimilarity``
    returns :math:`-\cos`, i.e. this minus 1.
    """
    from ..core.validation import check_axis

    xp = namespace(input=input, target=target, where=where)
    check_float_array(xp, input, "input")
    check_float_array(xp, target, "target")
    check_same_shape(input, target, "input", "target")
    if input.ndim == 0:
        raise ValueError("input must have a vector axis; got a 0-d array")
    check_nonempty(input, "input")
    axis = check_axis(axis, input.ndim)
    epsilon = check_number(epsilon, "epsilon", low=0.0)
    check_mask(xp, where, tuple(input.shape), "input")
    out_dtype, dtype, (x, y) = _lift_all(xp, input, target)
    x, y = xp.moveaxis(x, axis, -1), xp.moveaxis(y, axis, -1)
    w = None
    if where is not None:
        w = xp.moveaxis(xp.broadcast_to(where, tuple(input.shape)), axis, -1)
        zero = xp.zeros_like(x)
        x, y = xp.where(w, x, zero), xp.where(w, y, zero)
    u, du, au = _normalize(xp, x, epsilon)
    v, dv, av = _normalize(xp, y, epsilon)
    cos = xp.sum(u * v, axis=-1)
    sample_shape = tuple(cos.shape)
    counted = None if w is None else xp.any(w, axis=-1)
    reducer = make_reducer(xp, reduction, sample_shape, dtype, where=counted)
    grads = {}
    if wrt:
        coef = -_coefficients(reducer, sample_shape, dtype)[..., None]
        for argnum, a, b, d, active in ((0, u, v, du, au), (1, v, u, dv, av)):
            if argnum in wrt:
                g = _normalize_back(xp, a, d, active, coef * b)
                if w is not None:
                    g = xp.where(w, g, xp.zeros_like(g))
                grads[argnum] = xp.moveaxis(g, -1, axis)
    return finish(xp, out_dtype, reducer.value(1.0 - cos), grads)


# -- InfoNCE ---------------------------------------------------------------------------------


@catalogued(
    family="contrastive",
    input_space="embeddings",
    formula="-log softmax(q.k / T)[k+] over k+ and the negatives",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def info_nce(
    query: Array,
    positive_key: Array,
    negative_keys: Array | None = None,
    temperature: float = 0.1,
    normalize: bool = True,
    negative_mode: str = "unpaired",
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""InfoNCE (van den Oord et al. 2018; the contrastive loss of CPC, MoCo, CLIP's halves):
    cross-entropy of picking each query's positive key among its candidates,

    .. math::
        \ell_i = -\log \frac{\exp(s(q_i, k^+_i)/T)}
                 {\exp(s(q_i, k^+_i)/T) + \sum_{k \in \mathcal N_i} \exp(s(q_i, k)/T)},

    with :math:`s` the cosine similarity (``normalize=True``, each vector divided by
    :math:`\max(\lVert v\rVert, 10^{-12})` as ``torch.nn.functional.normalize`` does) or the
    raw dot product (``normalize=False``).  The negatives :math:`\mathcal N_i`:

    - ``negative_keys=None``: in-batch — the other rows' positive keys (logits
      :math:`Q K^\top / T`, target the diagonal);
    - ``negative_mode="unpaired"``: ``negative_keys`` of shape ``(M, D)``, shared by every query;
    - ``negative_mode="paired"``: ``negative_keys`` of shape ``(N, M, D)``, row :math:`i` for
      query :math:`i` only.

    Gradient with respect to the logits is :math:`(\mathrm{softmax} - e_{+}) / T`, carried
    back analytically to ``query`` (``argnums=0``), ``positive_key`` (1) and ``negative_keys``
    (2), through the normalisation when ``normalize=True``.

    Args:
      query: ``(N, D)``.
      positive_key: ``(N, D)``.
      negative_keys: ``None`` (default), ``(M, D)`` or ``(N, M, D)`` per ``negative_mode``.
      temperature: :math:`T > 0` (default 0.1).
      normalize: cosine similarity (default True) or raw dot products.
      negative_mode: ``"unpaired"`` (default) or ``"paired"``.
      reduction: ``"mean"`` (default), ``"sum"``, ``"none"`` (per query, ``(N,)``).
      where: optional boolean mask over the rows, ``(N,)``: a False row's query does not
        count, and with in-batch negatives its positive key is not a negative for the others
        either (a padded row).

    Equivalent: the ``info-nce-pytorch`` package's ``info_nce`` (same arguments and numbers);
    no PyTorch, Optax or Keras function.
    """
    xp = namespace(query=query, positive_key=positive_key, negative_keys=negative_keys, where=where)
    _check_embeddings(xp, query, "query")
    _check_embeddings(xp, positive_key, "positive_key")
    check_same_shape(query, positive_key, "query", "positive_key")
    n, dim = query.shape
    if negative_mode not in ("unpaired", "paired"):
        raise ValueError(f"negative_mode must be 'unpaired' or 'paired'; got {negative_mode!r}")
    if negative_keys is not None:
        check_float_array(xp, negative_keys, "negative_keys")
        if negative_mode == "unpaired" and (negative_keys.ndim != 2 or negative_keys.shape[1] != dim):
            raise ValueError(
                f"negative_keys must have shape (M, {dim}) with negative_mode='unpaired'; "
                f"got {tuple(negative_keys.shape)}"
            )
        if negative_mode == "paired" and (
            negative_keys.ndim != 3 or negative_keys.shape[0] != n or negative_keys.shape[2] != dim
        ):
            raise ValueError(
                f"negative_keys must have shape ({n}, M, {dim}) with negative_mode='paired'; "
                f"got {tuple(negative_keys.shape)}"
            )
        check_nonempty(negative_keys, "negative_keys")
    temperature = _check_temperature(temperature, query)
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be a bool; got {type(normalize).__name__}")
    _check_sample_mask(xp, where, n)
    arrays = [query, positive_key] + ([] if negative_keys is None else [negative_keys])
    out_dtype, dtype, lifted = _lift_all(xp, *arrays)
    if normalize:
        parts = [_normalize(xp, a, _NORMALIZE_FLOOR) for a in lifted]
        units = [part[0] for part in parts]
    else:
        units = lifted
    q, k = units[0], units[1]
    inv_t = 1.0 / temperature
    idx = xp.arange(n)
    if negative_keys is None:
        logits = (q @ k.T) * inv_t
        is_target = idx[:, None] == idx[None, :]
        columns = (
            xp.ones(logits.shape, dtype=xp.bool)
            if where is None
            else xp.broadcast_to(where[None, :], logits.shape)
        )
        positive_logit = xp.sum(q * k, axis=-1) * inv_t
    else:
        neg = units[2]
        positive_logit = xp.sum(q * k, axis=-1) * inv_t
        if negative_mode == "unpaired":
            negative_logits = (q @ neg.T) * inv_t
        else:
            negative_logits = xp.sum(q[:, None, :] * neg, axis=-1) * inv_t
        logits = xp.concat([positive_logit[:, None], negative_logits], axis=1)
        cols = xp.arange(logits.shape[1])
        is_target = xp.broadcast_to(cols[None, :] == 0, logits.shape)
        columns = xp.ones(logits.shape, dtype=xp.bool)
    lse, soft, _ = numerics.masked_logsumexp(xp, logits, columns)
    value = xp.squeeze(lse, axis=1) - positive_logit
    reducer = make_reducer(xp, reduction, (n,), dtype, where=where)
    grads = {}
    if wrt:
        coef = _coefficients(reducer, (n,), dtype)[:, None] * inv_t
        g = coef * (soft - xp.astype(is_target, dtype))  # d loss / d (similarity)
        if negative_keys is None:
            gq, gk, gn = g @ k, g.T @ q, None
        else:
            g0, g1 = g[:, :1], g[:, 1:]
            gk = g0 * q
            if negative_mode == "unpaired":
                gq = g0 * k + g1 @ neg
                gn = g1.T @ q
            else:
                gq = g0 * k + xp.sum(g1[:, :, None] * neg, axis=1)
                gn = g1[:, :, None] * q[:, None, :]
        for argnum, gu in ((0, gq), (1, gk), (2, gn)):
            if argnum in wrt and gu is not None:
                if normalize:
                    u, d, active = parts[argnum]
                    gu = _normalize_back(xp, u, d, active, gu)
                grads[argnum] = gu
    return finish(xp, out_dtype, reducer.value(value), grads)


# -- batch losses: embeddings with labels ------------------------------------------------------


def _batch_inputs(xp, embeddings, labels, where, temperature=None):
    _check_embeddings(xp, embeddings, "embeddings")
    n = embeddings.shape[0]
    _check_labels(xp, labels, n)
    _check_sample_mask(xp, where, n)
    t = None if temperature is None else _check_temperature(temperature, embeddings)
    out_dtype = embeddings.dtype
    dtype = compute_dtype(xp, out_dtype)
    return n, t, out_dtype, dtype, cast(xp, embeddings, dtype)


@catalogued(
    family="contrastive",
    input_space="embeddings",
    formula="-log(e^(s_ij/T) / (e^(s_ij/T) + sum_{k: y_k != y_i} e^(s_ik/T))), mean over positive pairs",
    torch=None,
    optax="optax.losses.ntxent",
    keras=None,
)
@loss_function
def ntxent(
    embeddings: Array,
    labels: Array,
    temperature: float = 0.07,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR (Chen et al. 2020),
    with Optax's semantics: for every positive pair :math:`(i, j)` (same label, :math:`i \ne j`),

    .. math::
        \ell_{ij} = -\log \frac{e^{s_{ij}/T}}{e^{s_{ij}/T} + \sum_{k:\,y_k \ne y_i} e^{s_{ik}/T}}
                  = \mathrm{softplus}\Big(\log\!\sum_{k:\,y_k \ne y_i} e^{s_{ik}/T} - s_{ij}/T\Big),

    where :math:`s` is the cosine similarity with Optax's floor (each squared norm clipped at
    the dtype's machine epsilon).  Only the anchor's negatives share the denominator with its
    positive (other positives do not).  A row with no negative contributes 0 per positive pair.

    The gradient with respect to the similarities — :math:`-\sigma(L_i - s_{ij}/T)/T` on the
    positive, that weight spread over the negatives by their softmax — is carried back
    analytically to ``embeddings`` through :math:`S = \hat E \hat E^\top` and the
    normalisation.

    Args:
      embeddings: ``(N, D)``.
      labels: ``(N,)`` integer labels; samples sharing a label are positives of each other.
      temperature: :math:`T > 0` (default 0.07).
      reduction: ``"mean"`` (default: over the positive pairs, Optax's value), ``"sum"``, or
        ``"none"`` (the ``(N, N)`` matrix of :math:`\ell_{ij}`, 0 off the positive pairs).
      where: optional ``(N,)`` mask of real samples (see the module docstring).

    With no positive pair at all, ``mean`` is 0 with a zero gradient (Optax returns NaN).

    Equivalent: ``optax.losses.ntxent`` (same numbers).
    """
    xp = namespace(embeddings=embeddings, labels=labels, where=where)
    n, t, out_dtype, dtype, x = _batch_inputs(xp, embeddings, labels, where, temperature)
    u, d, active = _normalize(xp, x, float(xp.finfo(out_dtype).eps))
    s = (u @ u.T) / t
    positive, negative, _ = _pair_masks(xp, labels, where)
    lse, soft, has_negative = numerics.masked_logsumexp(xp, s, negative)
    zero = xp.zeros_like(s)
    value = xp.where(positive & has_negative, numerics.softplus(xp, lse - s), zero)
    reducer = make_reducer(xp, reduction, (n, n), dtype, where=positive)
    grads = {}
    if 0 in wrt:
        coef = _coefficients(reducer, (n, n), dtype)
        w = xp.where(positive & has_negative, coef * numerics.sigmoid(xp, lse - s), zero)
        g = (soft * xp.sum(w, axis=1, keepdims=True) - w) / t
        grads[0] = _normalize_back(xp, u, d, active, (g + g.T) @ u)
    return finish(xp, out_dtype, reducer.value(value), grads)


@catalogued(
    family="contrastive",
    input_space="embeddings",
    formula="-1/|P(i)| sum_{p in P(i)} log softmax_{a != i}(z_i.z_a / T)[p]",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def supcon(
    embeddings: Array,
    labels: Array,
    temperature: float = 0.1,
    *,
    normalize: bool = True,
    no_positive: str = "raise",
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Supervised contrastive loss (Khosla et al. 2020, :math:`\mathcal L^{sup}_{out}`): for
    each anchor :math:`i`, with :math:`P(i)` the other samples of its label and :math:`A(i)`
    every other sample,

    .. math::
        \ell_i = -\frac{1}{|P(i)|} \sum_{p \in P(i)}
                 \log \frac{\exp(z_i \cdot z_p / T)}{\sum_{a \in A(i)} \exp(z_i \cdot z_a / T)},

    on L2-normalised embeddings :math:`z` (``normalize=True``; pass ``False`` if they already
    are).  For several views per sample, stack the views as rows and repeat the labels.  The
    reference code's extra factor ``temperature / base_temperature`` is not applied
    (multiply by it yourself to reproduce those numbers).

    An anchor with no positive (the only sample of its label in the batch) has no defined
    :math:`\ell_i` (an average over an empty set).  ``no_positive`` says what happens:

    - ``"raise"`` (default): ``ValueError`` naming the sample and its label.  Labels that
      cannot be read without tracing or computing (under ``jax.jit``, on Dask) are not
      checked; such an anchor's loss is NaN, so the problem still shows;
    - ``"exclude"``: such anchors are left out — 0 in ``"none"``, not in the mean's divisor —
      while still serving as negatives for the others.

    Gradient with respect to the logits: :math:`(\mathrm{softmax}_{A(i)} - 1_{P(i)}/|P(i)|)/T`
    per anchor, carried back analytically to ``embeddings``.

    Args:
      embeddings: ``(N, D)``.
      labels: ``(N,)`` integer labels.
      temperature: :math:`T > 0` (default 0.1).
      normalize: L2-normalise the embeddings first (default True).
      no_positive: ``"raise"`` (default) or ``"exclude"``.
      reduction: ``"mean"`` (default, over the anchors), ``"sum"``, ``"none"`` (``(N,)``).
      where: optional ``(N,)`` mask of real samples (see the module docstring).

    No PyTorch, Optax or Keras function; the reference implementation is the authors'
    ``SupConLoss``.
    """
    xp = namespace(embeddings=embeddings, labels=labels, where=where)
    n, t, out_dtype, dtype, x = _batch_inputs(xp, embeddings, labels, where, temperature)
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be a bool; got {type(normalize).__name__}")
    if no_positive not in ("raise", "exclude"):
        raise ValueError(f"no_positive must be 'raise' or 'exclude'; got {no_positive!r}")
    if normalize:
        u, d, active = _normalize(xp, x, _NORMALIZE_FLOOR)
    else:
        u = x
    s = (u @ u.T) / t
    positive, _, others = _pair_masks(xp, labels, where)
    if where is not None:
        others = others & where[:, None] & where[None, :]
    lse, soft, _ = numerics.masked_logsumexp(xp, s, others)
    count = xp.sum(xp.astype(positive, dtype), axis=1)
    has_positive = count > 0
    safe_count = xp.where(has_positive, count, xp.ones_like(count))
    mean_positive = xp.sum(xp.where(positive, s, xp.zeros_like(s)), axis=1) / safe_count
    value = xp.squeeze(lse, axis=1) - mean_positive
    if no_positive == "exclude":
        mask = has_positive if where is None else (has_positive & where)
    else:
        lonely = ~has_positive if where is None else (~has_positive & where)
        if any_true(xp, lonely):
            i = int(xp.argmax(xp.astype(lonely, xp.int32)))
            raise ValueError(
                f"labels: sample {i} (label {int(labels[i])}) has no positive — no other sample "
                "in the batch shares its label, so its supervised contrastive loss is undefined; "
                "give every label at least two samples, or pass no_positive='exclude' to leave "
                "such anchors out"
            )
        # labels not readable now: an undefined anchor shows as NaN rather than a silent 0
        value = xp.where(has_positive, value, xp.full_like(value, math.nan))
        mask = where
    reducer = make_reducer(xp, reduction, (n,), dtype, where=mask)
    grads = {}
    if 0 in wrt:
        coef = _coefficients(reducer, (n,), dtype)
        coef = xp.where(has_positive, coef, xp.zeros_like(coef))[:, None]
        g = coef * (soft - xp.astype(positive, dtype) / safe_count[:, None]) / t
        gu = (g + g.T) @ u
        grads[0] = _normalize_back(xp, u, d, active, gu) if normalize else gu
    return finish(xp, out_dtype, reducer.value(value), grads)


@catalogued(
    family="contrastive",
    input_space="embeddings",
    formula="softplus(lse_p(-g a_p (s_p - 1 + m)) + lse_n(g a_n (s_n - m)))",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def circle(
    embeddings: Array,
    labels: Array,
    m: float = 0.25,
    gamma: float = 256.0,
    *,
    detach_weights: bool = True,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Circle loss (Sun et al. 2020) on a batch of embeddings with class labels, per anchor:

    .. math::
        \ell_i = \log\Big[1 + \sum_{j \in N(i)} e^{\gamma \alpha_n^{ij}(s_{ij} - \Delta_n)}
                 \sum_{k \in P(i)} e^{-\gamma \alpha_p^{ik}(s_{ik} - \Delta_p)}\Big],

    with :math:`s` the cosine similarity of the embeddings (each divided by
    :math:`\max(\lVert e\rVert, 10^{-12})`), :math:`P(i)` / :math:`N(i)` the other samples of
    the same / another label, :math:`\alpha_p = [1 + m - s]_+`, :math:`\alpha_n = [s + m]_+`,
    :math:`\Delta_p = 1 - m`, :math:`\Delta_n = m`.  Computed as a softplus of two
    log-sum-exps, so :math:`\gamma = 256` does not overflow.

    The weights :math:`\alpha` are, as in the paper and its reference code, constants in
    back-propagation (``detach_weights=True``, default): the gradient with respect to
    :math:`s_{ik}` is :math:`-\gamma\alpha_p^{ik}` times the softmax weight, not the full
    derivative of the value.  losskit's analytic gradient, torch autograd and ``jax.grad``
    through losskit all give that gradient.  ``detach_weights=False`` differentiates
    :math:`\alpha` too (the exact gradient of the value).

    Anchors without a positive or without a negative have :math:`\ell_i = 0` by the formula
    and are left out of the mean.

    Args:
      embeddings: ``(N, D)``.
      labels: ``(N,)`` integer labels.
      m: the relaxation margin, in [0, 1) (default 0.25, the paper's face-recognition value).
      gamma: the scale :math:`\gamma > 0` (default 256).
      detach_weights: treat :math:`\alpha` as constants in the gradient (default True).
      reduction: ``"mean"`` (default, over the anchors with a positive and a negative),
        ``"sum"``, ``"none"`` (``(N,)``).
      where: optional ``(N,)`` mask of real samples (see the module docstring).

    Equivalent: pytorch-metric-learning's ``CircleLoss(m, gamma)`` per-anchor terms (its
    default reducer averages only the non-zero ones); no PyTorch, Optax or Keras function.
    """
    xp = namespace(embeddings=embeddings, labels=labels, where=where)
    n, _, out_dtype, dtype, x = _batch_inputs(xp, embeddings, labels, where)
    m = check_hyperparameter(m, "m", like=embeddings, low=0.0, high=1.0, high_inclusive=False)
    gamma = check_hyperparameter(gamma, "gamma", like=embeddings, low=0.0, low_inclusive=False)
    if not isinstance(detach_weights, bool):
        raise TypeError(f"detach_weights must be a bool; got {type(detach_weights).__name__}")
    u, d, active = _normalize(xp, x, _NORMALIZE_FLOOR)
    s = u @ u.T
    positive, negative, _ = _pair_masks(xp, labels, where)
    zero = xp.zeros_like(s)
    raw_p = 1.0 + m - s
    raw_n = s + m
    weights_source = stop_gradient(s) if detach_weights else s
    alpha_p = xp.where(1.0 + m - weights_source > 0, 1.0 + m - weights_source, zero)
    alpha_n = xp.where(weights_source + m > 0, weights_source + m, zero)
    logit_p = -gamma * alpha_p * (s - (1.0 - m))
    logit_n = gamma * alpha_n * (s - m)
    lse_p, soft_p, has_p = numerics.masked_logsumexp(xp, logit_p, positive)
    lse_n, soft_n, has_n = numerics.masked_logsumexp(xp, logit_n, negative)
    counted = xp.squeeze(has_p & has_n, axis=1)
    z = xp.squeeze(lse_p + lse_n, axis=1)
    value = xp.where(counted, numerics.softplus(xp, z), xp.zeros_like(z))
    mask = counted if where is None else (counted & where)
    reducer = make_reducer(xp, reduction, (n,), dtype, where=mask)
    grads = {}
    if 0 in wrt:
        coef = _coefficients(reducer, (n,), dtype)
        r = xp.where(counted, coef * numerics.sigmoid(xp, z), xp.zeros_like(z))[:, None]
        if detach_weights:
            dp, dn = -gamma * alpha_p, gamma * alpha_n
        else:
            dp = -gamma * (alpha_p - xp.where(raw_p > 0, s - (1.0 - m), zero))
            dn = gamma * (alpha_n + xp.where(raw_n > 0, s - m, zero))
        g = r * (soft_p * dp + soft_n * dn)
        grads[0] = _normalize_back(xp, u, d, active, (g + g.T) @ u)
    return finish(xp, out_dtype, reducer.value(value), grads)
