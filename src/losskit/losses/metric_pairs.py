"""Metric-learning losses over a batch of embeddings with integer class labels, and the
triplet miners that pick which triplets a batch trains on.

Every loss here takes ``embeddings`` of shape ``(N, D)`` and ``labels`` of shape ``(N,)``:
every other sample of the same label is a positive, every sample of another label a negative.

- pair losses: :func:`contrastive_pairs` (Hadsell et al. 2006 over all pairs of the batch),
  :func:`multi_similarity` (Wang et al. 2019), :func:`lifted_structure` (Song et al. 2016, the
  smooth version), :func:`n_pair` (Sohn 2016);
- mined triplets: :func:`mined_triplet_margin`, the triplet hinge over the triplets that
  :func:`batch_hard_triplets` (Hermans et al. 2017) or :func:`semi_hard_triplets` (Schroff et
  al. 2015) select;
- the miners themselves return ``(anchor, positive, negative)`` index arrays to use with any
  triplet loss (e.g. ``lk.triplet_margin(e[a], e[p], e[n])``).  They are not losses: they
  carry no gradient and their output size depends on the values, so they need arrays that can
  be read now (not under ``jax.jit``, not lazy Dask arrays).

The distance-based functions take ``distance="euclidean"`` (default) or
``"squared_euclidean"``, and ``normalize=True`` (default): the embeddings are first divided by
their L2 norm (``max(||e||, 1e-12)``, as ``torch.nn.functional.normalize``), which is what
pytorch-metric-learning's default ``LpDistance`` does; ``normalize=False`` uses them as they
are.  The distances are computed from the ``(N, N, D)`` differences (exact, where the
``|a|^2 + |b|^2 - 2ab`` shortcut loses precision for close points).

Reductions: ``"mean"`` (default), ``"sum"``, ``"none"``, and for the hinge losses also
``"avg_nonzero"``: the mean over the terms that are not 0, pytorch-metric-learning's default
(``AvgNonZeroReducer``).  A NaN term counts as non-zero, so a NaN embedding gives NaN rather
than being filtered out.  Gradients with respect to ``embeddings`` are analytic
(``losskit.value_and_grad(loss, argnums=0)``); which pairs are active, and which triplets a
miner selects, are constant pieces of the gradient, as in every autograd framework.
"""

from __future__ import annotations

import math

from ..core import numerics
from ..core.backend import Array, cast, compute_dtype, finish, namespace
from ..core.catalog import catalogued
from ..core.gradients import LossResult, loss_function
from ..core.reduction import Reduction, make_reducer
from ..core.validation import check_hyperparameter, check_number, check_reduction
from .contrastive import _NORMALIZE_FLOOR, _check_embeddings, _check_labels, _normalize, _normalize_back

__all__ = [
    "contrastive_pairs",
    "multi_similarity",
    "lifted_structure",
    "n_pair",
    "mined_triplet_margin",
    "batch_hard_triplets",
    "semi_hard_triplets",
]

_DISTANCES = ("euclidean", "squared_euclidean")
_HINGE_REDUCTIONS = ("mean", "sum", "none", "avg_nonzero")
_MINERS = ("batch_hard", "semi_hard")


# -- shared pieces ---------------------------------------------------------------------------


def _inputs(embeddings, labels):
    xp = namespace(embeddings=embeddings, labels=labels)
    _check_embeddings(xp, embeddings, "embeddings")
    _check_labels(xp, labels, embeddings.shape[0])
    out_dtype = embeddings.dtype
    dtype = compute_dtype(xp, out_dtype)
    return xp, out_dtype, dtype, cast(xp, embeddings, dtype)


def _check_options(distance, normalize):
    if not isinstance(distance, str) or distance not in _DISTANCES:
        raise ValueError(f"distance must be 'euclidean' or 'squared_euclidean'; got {distance!r}")
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be a bool; got {type(normalize).__name__}")


def _pairs(xp, labels):
    """(positive, negative) pair masks: same label and not self, another label."""
    n = labels.shape[0]
    idx = xp.arange(n)
    same = labels[:, None] == labels[None, :]
    return same & (idx[:, None] != idx[None, :]), ~same


def _distances(xp, x, distance, normalize):
    """The ``(N, N)`` distance matrix and ``back(G)``: the gradient with respect to ``x`` of a
    loss whose gradient with respect to the matrix is ``G``."""
    if normalize:
        u, norm, active = _normalize(xp, x, _NORMALIZE_FLOOR)
    else:
        u = x
    diff = u[:, None, :] - u[None, :, :]
    sq = xp.sum(diff * diff, axis=-1)
    if distance == "squared_euclidean":
        d = sq
    else:  # sqrt only away from 0, so that autograd through it stays finite on the diagonal
        apart = ~(sq <= 0)  # NaN stays NaN
        d = xp.where(apart, xp.sqrt(xp.where(apart, sq, xp.ones_like(sq))), xp.zeros_like(sq))

    def back(g):
        if distance == "squared_euclidean":
            h = 2.0 * g
        else:  # d ||u_i - u_j|| / d u_i = (u_i - u_j) / d_ij; 0 where the points coincide
            positive = d > 0
            h = xp.where(positive, g / xp.where(positive, d, xp.ones_like(d)), xp.zeros_like(d))
        h = h + h.T
        gu = xp.sum(h, axis=1, keepdims=True) * u - h @ u
        return _normalize_back(xp, u, norm, active, gu) if normalize else gu

    return d, back


def _cosine(xp, x):
    u, norm, active = _normalize(xp, x, _NORMALIZE_FLOOR)

    def back(g):  # s = u u^T
        return _normalize_back(xp, u, norm, active, (g + g.T) @ u)

    return u @ u.T, back


def _is_positive(xp, value):
    """Non-zero terms of a hinge (NaN included, so that it shows in the result)."""
    return ~(value <= 0)


def _reduce(xp, reduction, value, counted, dtype, groups=None):
    """The reduced value and d(reduced)/d(term) for the terms ``value`` (0 where not
    ``counted``).  ``avg_nonzero`` averages the non-zero terms of each mask in ``groups``
    (default: ``counted``) and adds the averages."""
    if reduction == "avg_nonzero":
        zero = xp.zeros_like(value)
        coef = zero
        for group in groups if groups is not None else (counted,):
            nonzero = group & _is_positive(xp, value)
            count = xp.sum(xp.astype(nonzero, dtype))
            some = count > 0
            factor = xp.where(some, 1.0 / xp.where(some, count, xp.ones_like(count)), xp.zeros_like(count))
            coef = coef + xp.where(nonzero, factor, zero)
        return xp.sum(xp.where(coef != 0, coef * value, zero)), coef
    reducer = make_reducer(xp, reduction, tuple(value.shape), dtype, where=counted)
    return reducer.value(value), reducer.grad(xp.ones(tuple(value.shape), dtype=dtype))


# -- contrastive -----------------------------------------------------------------------------


@catalogued(
    family="metric",
    input_space="embeddings",
    formula="[d_ij - m_pos]_+ over positive pairs, [m_neg - d_ij]_+ over negative pairs",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def contrastive_pairs(
    embeddings: Array,
    labels: Array,
    *,
    pos_margin: float = 0.0,
    neg_margin: float = 1.0,
    distance: str = "euclidean",
    normalize: bool = True,
    reduction: Reduction = "mean",
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Pairwise contrastive loss (Hadsell, Chopra and LeCun 2006) over every ordered pair of
    the batch:

    .. math::
        \ell_{ij} = \begin{cases}
            [d_{ij} - m_{pos}]_+ & y_i = y_j,\ i \ne j \\
            [m_{neg} - d_{ij}]_+ & y_i \ne y_j
        \end{cases}

    with :math:`d` the Euclidean (or squared Euclidean) distance of the embeddings, L2
    normalised first when ``normalize=True``.  Gradient: :math:`\pm 1` times
    :math:`\partial d_{ij}/\partial e_i = (e_i - e_j)/d_{ij}` on the active pairs, carried back
    through the normalisation.

    Args:
      embeddings: ``(N, D)``.
      labels: ``(N,)`` integer labels.
      pos_margin: :math:`m_{pos}` (default 0), the distance a positive pair may keep for free.
      neg_margin: :math:`m_{neg}` (default 1), the distance a negative pair must exceed.
      distance: ``"euclidean"`` (default) or ``"squared_euclidean"``.
      normalize: L2-normalise the embeddings first (default True, as pytorch-metric-learning).
      reduction: ``"mean"`` (default: over all :math:`N(N-1)` ordered pairs), ``"sum"``,
        ``"none"`` (the ``(N, N)`` matrix of :math:`\ell_{ij}`, 0 on the diagonal), or
        ``"avg_nonzero"``: the mean of the non-zero positive-pair terms plus the mean of the
        non-zero negative-pair terms.

    Example: ``contrastive_pairs(e, y, reduction="avg_nonzero")`` is pytorch-metric-learning's
    ``ContrastiveLoss(pos_margin, neg_margin)(e, y)`` (same numbers, float64); ``"mean"``
    averages over every pair instead, zero terms included.  No PyTorch, Optax or Keras function.
    """
    xp, out_dtype, dtype, x = _inputs(embeddings, labels)
    pos_margin = check_hyperparameter(pos_margin, "pos_margin", like=embeddings)
    neg_margin = check_hyperparameter(neg_margin, "neg_margin", like=embeddings)
    _check_options(distance, normalize)
    check_reduction(reduction, _HINGE_REDUCTIONS)
    d, back = _distances(xp, x, distance, normalize)
    positive, negative = _pairs(xp, labels)
    zero = xp.zeros_like(d)
    raw = xp.where(positive, d - pos_margin, xp.where(negative, neg_margin - d, zero))
    counted = positive | negative
    active = counted & _is_positive(xp, raw)
    value = xp.where(active, raw, zero)
    reduced, coef = _reduce(xp, reduction, value, counted, dtype, groups=(positive, negative))
    grads = {}
    if 0 in wrt:
        sign = xp.where(positive, xp.ones_like(d), -xp.ones_like(d))
        grads[0] = back(xp.where(active, coef * sign, zero))
    return finish(xp, out_dtype, reduced, grads)


# -- multi-similarity ------------------------------------------------------------------------


@catalogued(
    family="metric",
    input_space="embeddings",
    formula="1/a log(1 + sum_P e^(-a(s - base))) + 1/b log(1 + sum_N e^(b(s - base)))",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def multi_similarity(
    embeddings: Array,
    labels: Array,
    *,
    alpha: float = 2.0,
    beta: float = 50.0,
    base: float = 0.5,
    reduction: Reduction = "mean",
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Multi-similarity loss (Wang et al. 2019), per anchor :math:`i`:

    .. math::
        \ell_i = \frac{1}{\alpha}\log\Big[1 + \sum_{p \in P(i)} e^{-\alpha(s_{ip} - \lambda)}\Big]
               + \frac{1}{\beta}\log\Big[1 + \sum_{n \in N(i)} e^{\beta(s_{in} - \lambda)}\Big],

    with :math:`s` the cosine similarity (embeddings divided by :math:`\max(\lVert e\rVert,
    10^{-12})`), :math:`P(i)` / :math:`N(i)` the other samples of the same / another label and
    :math:`\lambda` = ``base``.  An empty :math:`P(i)` or :math:`N(i)` contributes 0.  Computed
    as softplus of masked log-sum-exps, so large :math:`\beta` does not overflow.  Every pair
    takes part (no pair mining, as pytorch-metric-learning without a miner).

    Gradient: :math:`\partial\ell_i/\partial s_{ip} = -w_{ip}` and
    :math:`\partial\ell_i/\partial s_{in} = w_{in}`, the softmax weights of each bracket
    (the ``1`` included), carried back through :math:`S = \hat E\hat E^\top`.

    Args:
      embeddings: ``(N, D)``.
      labels: ``(N,)`` integer labels.
      alpha: :math:`\alpha > 0`, positive-pair scale (default 2).
      beta: :math:`\beta > 0`, negative-pair scale (default 50).
      base: :math:`\lambda`, the similarity offset (default 0.5).
      reduction: ``"mean"`` (default, over all :math:`N` anchors), ``"sum"``, ``"none"``
        (``(N,)``).

    Equivalent: pytorch-metric-learning's ``MultiSimilarityLoss(alpha, beta, base)`` (same
    numbers with ``"mean"``).  No PyTorch, Optax or Keras function.
    """
    xp, out_dtype, dtype, x = _inputs(embeddings, labels)
    alpha = check_hyperparameter(alpha, "alpha", like=embeddings, low=0.0, low_inclusive=False)
    beta = check_hyperparameter(beta, "beta", like=embeddings, low=0.0, low_inclusive=False)
    base = check_hyperparameter(base, "base", like=embeddings)
    check_reduction(reduction)
    s, back = _cosine(xp, x)
    positive, negative = _pairs(xp, labels)
    lse_p, soft_p, has_p = numerics.masked_logsumexp(xp, alpha * (base - s), positive)
    lse_n, soft_n, has_n = numerics.masked_logsumexp(xp, beta * (s - base), negative)
    zero = xp.zeros_like(lse_p)
    term_p = xp.where(has_p, numerics.softplus(xp, lse_p) / alpha, zero)
    term_n = xp.where(has_n, numerics.softplus(xp, lse_n) / beta, zero)
    value = xp.squeeze(term_p + term_n, axis=1)
    reduced, coef = _reduce(xp, reduction, value, None, dtype)
    grads = {}
    if 0 in wrt:
        c = coef[:, None]
        g = c * (soft_n * numerics.sigmoid(xp, lse_n) - soft_p * numerics.sigmoid(xp, lse_p))
        grads[0] = back(g)
    return finish(xp, out_dtype, reduced, grads)


# -- lifted structure ------------------------------------------------------------------------


@catalogued(
    family="metric",
    input_space="embeddings",
    formula="1/2 [log(sum_{N(i)} e^(m - d_ik) + sum_{N(j)} e^(m - d_jl)) + d_ij]_+^2 per positive pair",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def lifted_structure(
    embeddings: Array,
    labels: Array,
    *,
    margin: float = 1.0,
    distance: str = "euclidean",
    normalize: bool = True,
    reduction: Reduction = "mean",
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Lifted structured loss, the smooth version of Song et al. 2016 (their eq. 4), per
    ordered positive pair :math:`(i, j)`:

    .. math::
        J_{ij} = \log\Big(\sum_{k \in N(i)} e^{m - d_{ik}} + \sum_{l \in N(j)} e^{m - d_{jl}}\Big)
                 + d_{ij}, \qquad \ell_{ij} = \tfrac12 [J_{ij}]_+^2,

    :math:`N(i)` the samples of another label than :math:`i`.  The mean over the positive pairs
    is the paper's :math:`\frac{1}{2|P|}\sum_{(i,j)\in P}[J_{ij}]_+^2`.  A pair with no negative
    in the batch contributes 0.

    Gradient: :math:`\partial\ell_{ij}/\partial d_{ij} = [J_{ij}]_+`, and on each negative
    distance :math:`-[J_{ij}]_+` times its softmax weight within the log-sum-exp; carried back
    through the distances and the normalisation.

    Args:
      embeddings: ``(N, D)``.
      labels: ``(N,)`` integer labels.
      margin: :math:`m` (default 1).
      distance: ``"euclidean"`` (default) or ``"squared_euclidean"``.
      normalize: L2-normalise the embeddings first (default True, as pytorch-metric-learning;
        the paper uses them as they are: ``False``).
      reduction: ``"mean"`` (default, over the ordered positive pairs), ``"sum"``, ``"none"``
        (the ``(N, N)`` matrix of :math:`\ell_{ij}`, 0 off the positive pairs) or
        ``"avg_nonzero"`` (over the non-zero terms only).

    Equivalent: pytorch-metric-learning's ``LiftedStructureLoss(neg_margin=margin)`` with
    ``reduction="avg_nonzero"`` (same numbers; its ``GeneralizedLiftedStructureLoss`` is
    another loss, Hermans et al.'s per-anchor variant).  No PyTorch, Optax or Keras function.
    """
    xp, out_dtype, dtype, x = _inputs(embeddings, labels)
    margin = check_hyperparameter(margin, "margin", like=embeddings)
    _check_options(distance, normalize)
    check_reduction(reduction, _HINGE_REDUCTIONS)
    d, back = _distances(xp, x, distance, normalize)
    positive, negative = _pairs(xp, labels)
    lse, soft, has = numerics.masked_logsumexp(xp, margin - d, negative)
    row = xp.squeeze(lse, axis=1)
    gap = row[:, None] - row[None, :]
    # log(e^lse_i + e^lse_j), with finite log-sum-exps wherever the pair counts
    j = row[:, None] + numerics.softplus(xp, -gap) + d
    counted = positive & has  # the partner has negatives exactly when i has
    zero = xp.zeros_like(d)
    active = counted & _is_positive(xp, j)
    hinge = xp.where(active, j, zero)
    value = 0.5 * hinge * hinge
    reduced, coef = _reduce(xp, reduction, value, counted, dtype)
    grads = {}
    if 0 in wrt:
        c = coef * hinge
        weight = xp.sum((c + c.T) * numerics.sigmoid(xp, gap), axis=1, keepdims=True)
        grads[0] = back(c - weight * soft)
    return finish(xp, out_dtype, reduced, grads)


# -- N-pair ----------------------------------------------------------------------------------


@catalogued(
    family="metric",
    input_space="embeddings",
    formula="log(1 + sum_{j != i} e^(f_i.f_j+ - f_i.f_i+)) over one pair per label",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def n_pair(
    embeddings: Array,
    labels: Array,
    *,
    normalize: bool = True,
    reduction: Reduction = "mean",
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Multi-class N-pair loss (Sohn 2016).  From each label with at least two samples one
    pair is taken, its first sample in the batch as the anchor :math:`f_i` and its second as the
    positive :math:`f_i^+`; each anchor's positive is then told apart from the other labels'
    positives by a softmax cross-entropy:

    .. math::
        \ell_i = \log\Big(1 + \sum_{j \ne i} e^{f_i^\top f_j^+ - f_i^\top f_i^+}\Big)
               = -\log\mathrm{softmax}_j(f_i^\top f_j^+)_i .

    Gradient with respect to the logits :math:`\mathrm{softmax} - \mathrm{onehot}`, carried
    back to the anchors and the positives (and through the normalisation).

    Args:
      embeddings: ``(N, D)``.
      labels: ``(N,)`` integer labels.
      normalize: L2-normalise the embeddings first, so the logits are cosine similarities
        (default True, as pytorch-metric-learning; the paper uses plain inner products:
        ``False``).
      reduction: ``"mean"`` (default, over the pairs, one per label with two samples or
        more; 0 when there is none), ``"sum"``, ``"none"`` (``(N,)``: :math:`\ell_i` at each
        pair's anchor, 0 elsewhere).

    Equivalent: pytorch-metric-learning's ``NPairsLoss()`` (same numbers with ``"mean"``; it
    picks the same pairs).  No PyTorch, Optax or Keras function.
    """
    xp, out_dtype, dtype, x = _inputs(embeddings, labels)
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be a bool; got {type(normalize).__name__}")
    check_reduction(reduction)
    if normalize:
        s, back = _cosine(xp, x)
    else:
        s = x @ x.T

        def back(g):
            return (g + g.T) @ x

    n = labels.shape[0]
    idx = xp.arange(n)
    same = labels[:, None] == labels[None, :]
    earlier = xp.sum(xp.astype(same & (idx[None, :] < idx[:, None]), xp.int32), axis=1)
    second = earlier == 1
    anchor = (earlier == 0) & xp.any(same & (idx[:, None] != idx[None, :]), axis=1)
    columns = xp.broadcast_to(second[None, :], s.shape)
    target = same & columns
    lse, soft, _ = numerics.masked_logsumexp(xp, s, columns)
    s_target = xp.sum(xp.where(target, s, xp.zeros_like(s)), axis=1)
    value = xp.where(anchor, xp.squeeze(lse, axis=1) - s_target, xp.zeros_like(s_target))
    reduced, coef = _reduce(xp, reduction, value, anchor, dtype)
    grads = {}
    if 0 in wrt:
        c = xp.where(anchor, coef, xp.zeros_like(coef))[:, None]
        grads[0] = back(c * (soft - xp.astype(target, dtype)))
    return finish(xp, out_dtype, reduced, grads)


# -- miners and the mined triplet loss -------------------------------------------------------


def _hardest(xp, d, positive, negative):
    """Per anchor: the farthest positive and the nearest negative (first index on ties), as
    indices and as one-hot ``(N, N)`` masks, their distances, and whether the anchor has both."""
    idx = xp.arange(d.shape[0])
    far = xp.argmax(xp.where(positive, d, xp.full_like(d, -math.inf)), axis=1)
    near = xp.argmin(xp.where(negative, d, xp.full_like(d, math.inf)), axis=1)
    hard_p = idx[None, :] == far[:, None]
    hard_n = idx[None, :] == near[:, None]
    zero = xp.zeros_like(d)
    d_p = xp.sum(xp.where(hard_p, d, zero), axis=1)
    d_n = xp.sum(xp.where(hard_n, d, zero), axis=1)
    keep = xp.any(positive, axis=1) & xp.any(negative, axis=1)
    return (far, near), hard_p, hard_n, d_p, d_n, keep


def _semi_hard(xp, d, positive, negative, margin):
    """``(N, N, N)`` mask of the triplets with ``0 < d_an - d_ap <= margin`` (NaN kept) and the
    gaps ``d_an - d_ap``."""
    gap = d[:, None, :] - d[:, :, None]
    inside = ~(gap <= 0) & ~(gap > margin)
    return positive[:, :, None] & negative[:, None, :] & inside, gap


def _miner_inputs(embeddings, labels, distance, normalize):
    xp, _, _, x = _inputs(embeddings, labels)
    _check_options(distance, normalize)
    d, _ = _distances(xp, x, distance, normalize)
    positive, negative = _pairs(xp, labels)
    return xp, d, positive, negative


def batch_hard_triplets(
    embeddings: Array,
    labels: Array,
    *,
    distance: str = "euclidean",
    normalize: bool = True,
) -> tuple[Array, Array, Array]:
    r"""Batch-hard mining (Hermans et al. 2017): for every anchor that has a positive and a
    negative in the batch, its farthest positive and its nearest negative.

    Returns ``(anchor, positive, negative)``, three integer index arrays of equal length
    (anchors in increasing order; the first index wins a tie), to index the embeddings with
    for any triplet loss: ``lk.triplet_margin(e[a], e[p], e[n])``.  No gradient; the arrays
    must be readable now (not traced by ``jax.jit``, not lazy).

    Args:
      embeddings: ``(N, D)``.
      labels: ``(N,)`` integer labels.
      distance: ``"euclidean"`` (default) or ``"squared_euclidean"`` (same triplets).
      normalize: L2-normalise the embeddings first (default True).

    Equivalent: pytorch-metric-learning's ``BatchHardMiner()`` (same indices).
    """
    xp, d, positive, negative = _miner_inputs(embeddings, labels, distance, normalize)
    (far, near), _, _, _, _, keep = _hardest(xp, d, positive, negative)
    anchor = xp.nonzero(keep)[0]
    return anchor, xp.take(far, anchor), xp.take(near, anchor)


def semi_hard_triplets(
    embeddings: Array,
    labels: Array,
    *,
    margin: float = 0.2,
    distance: str = "euclidean",
    normalize: bool = True,
) -> tuple[Array, Array, Array]:
    r"""Semi-hard mining (Schroff et al. 2015, FaceNet): every triplet whose negative is
    farther from the anchor than the positive but within the margin,
    :math:`d_{ap} < d_{an} \le d_{ap} + m`.

    Returns ``(anchor, positive, negative)`` integer index arrays of equal length, in
    lexicographic order, to index the embeddings with for any triplet loss.  No gradient; the
    arrays must be readable now (not traced by ``jax.jit``, not lazy).

    Args:
      embeddings: ``(N, D)``.
      labels: ``(N,)`` integer labels.
      margin: :math:`m > 0` (default 0.2, FaceNet's value).
      distance: ``"euclidean"`` (default) or ``"squared_euclidean"``.
      normalize: L2-normalise the embeddings first (default True).

    Equivalent: pytorch-metric-learning's ``TripletMarginMiner(margin,
    type_of_triplets="semihard")`` (same indices; it too includes :math:`d_{an} = d_{ap} + m`).
    """
    margin = check_number(margin, "margin", low=0.0, low_inclusive=False)
    xp, d, positive, negative = _miner_inputs(embeddings, labels, distance, normalize)
    mined, _ = _semi_hard(xp, d, positive, negative, margin)
    a, p, n = xp.nonzero(mined)
    return a, p, n


@catalogued(
    family="metric",
    input_space="embeddings",
    formula="max(0, d(a, p) - d(a, n) + margin) over batch-hard or semi-hard mined triplets",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def mined_triplet_margin(
    embeddings: Array,
    labels: Array,
    *,
    margin: float = 0.2,
    miner: str = "batch_hard",
    distance: str = "euclidean",
    normalize: bool = True,
    reduction: Reduction = "mean",
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Triplet margin loss over the triplets a miner selects from the batch:
    :math:`\ell = [d_{ap} - d_{an} + m]_+`.

    - ``miner="batch_hard"`` (default; Hermans et al. 2017): one triplet per anchor, its
      farthest positive and nearest negative (:func:`batch_hard_triplets`); anchors without a
      positive or a negative are left out.
    - ``miner="semi_hard"`` (Schroff et al. 2015): every triplet with
      :math:`0 < d_{an} - d_{ap} \le m` (:func:`semi_hard_triplets` with the same margin).

    Unlike the miners themselves this is written with array operations only (masks, no index
    arrays of data-dependent size), so it works under ``jax.jit`` and stays lazy on Dask.
    Memory: the ``(N, N, D)`` differences behind the distances, and for semi-hard mining the
    ``(N, N, N)`` triplet mask.
    Gradient: :math:`\pm\partial d/\partial e` on the active triplets; the selection is
    constant, as in autograd.

    Args:
      embeddings: ``(N, D)``.
      labels: ``(N,)`` integer labels.
      margin: :math:`m > 0` (default 0.2), used by the miner and the hinge alike.
      miner: ``"batch_hard"`` (default) or ``"semi_hard"``.
      distance: ``"euclidean"`` (default) or ``"squared_euclidean"``.
      normalize: L2-normalise the embeddings first (default True, as pytorch-metric-learning).
      reduction: ``"mean"`` (default, over the mined triplets, zero terms included), ``"sum"``,
        ``"none"`` (``(N,)`` per anchor for batch-hard, 0 for anchors left out; ``(N, N, N)``
        indexed by anchor, positive, negative for semi-hard, 0 off the mined triplets) or
        ``"avg_nonzero"`` (over the non-zero terms).

    Equivalent: pytorch-metric-learning's ``TripletMarginLoss(margin)`` given the indices of
    ``BatchHardMiner()`` or ``TripletMarginMiner(margin, type_of_triplets="semihard")``
    (same numbers with ``reduction="avg_nonzero"``, its default reducer).  No PyTorch, Optax
    or Keras function.
    """
    xp, out_dtype, dtype, x = _inputs(embeddings, labels)
    margin = check_number(margin, "margin", low=0.0, low_inclusive=False)
    if not isinstance(miner, str) or miner not in _MINERS:
        raise ValueError(f"miner must be 'batch_hard' or 'semi_hard'; got {miner!r}")
    _check_options(distance, normalize)
    check_reduction(reduction, _HINGE_REDUCTIONS)
    d, back = _distances(xp, x, distance, normalize)
    positive, negative = _pairs(xp, labels)
    if miner == "batch_hard":
        _, hard_p, hard_n, d_p, d_n, counted = _hardest(xp, d, positive, negative)
        zero = xp.zeros_like(d_p)
        raw = xp.where(counted, d_p - d_n + margin, zero)
        active = counted & _is_positive(xp, raw)
        value = xp.where(active, raw, zero)
        reduced, coef = _reduce(xp, reduction, value, counted, dtype)
        if 0 in wrt:
            c = xp.where(active, coef, zero)[:, None]
            g = c * (xp.astype(hard_p, dtype) - xp.astype(hard_n, dtype))
    else:
        mined, gap = _semi_hard(xp, d, positive, negative, margin)
        raw = margin - gap
        zero = xp.zeros_like(raw)
        active = mined & _is_positive(xp, raw)
        value = xp.where(active, raw, zero)
        reduced, coef = _reduce(xp, reduction, value, mined, dtype)
        if 0 in wrt:
            c = xp.where(active, coef, zero)  # d/d d_ap = c, d/d d_an = -c
            g = xp.sum(c, axis=2) - xp.sum(c, axis=1)
    grads = {}
    if 0 in wrt:
        grads[0] = back(g)
    return finish(xp, out_dtype, reduced, grads)
