r"""Metric-learning losses against learnable class vectors: the angular-margin softmax losses
(ArcFace, CosFace, SphereFace) and the proxy losses (ProxyNCA, Proxy-Anchor).

Every loss here takes

- ``embeddings``: ``(N, D)`` floating array, one embedding per sample;
- ``labels``: ``(N,)`` integer class labels in ``[0, C)``;
- a class matrix ``(C, D)``: ``weight`` (one row per class: the classifier's weight) for the
  margin losses, ``proxies`` for the proxy losses.  Both are learnable: the gradient with
  respect to them is analytic (``argnums=2``), as is the one with respect to the embeddings
  (``argnums=0``).

Both the embeddings and the class rows are L2-normalised first (each divided by
:math:`\max(\lVert v\rVert, 10^{-12})`, as ``torch.nn.functional.normalize`` does), so
:math:`\cos\theta_{nc} = \hat x_n \cdot \hat w_c`.  The gradients go back through that
normalisation.

Common options:

- ``reduction``: ``"mean"`` (default), ``"sum"`` or ``"none"``; what is per element is said in
  each docstring (per sample for the margin losses and ProxyNCA, per proxy for Proxy-Anchor).
- ``where``: optional ``(N,)`` boolean mask of the samples that count; a False sample takes no
  part at all.  When nothing counts, ``mean`` is 0 with a zero gradient.

The reference is pytorch-metric-learning (PML); its class matrix ``W`` of the margin losses is
laid out ``(D, C)``, the transpose of ``weight`` here, while its ``proxies`` are ``(C, D)`` as
here.
"""

from __future__ import annotations

import math

from ..core import numerics
from ..core.backend import Array, cast, compute_dtype, finish, namespace, stop_gradient
from ..core.catalog import catalogued
from ..core.gradients import LossResult, loss_function
from ..core.reduction import Reduction, make_reducer
from ..core.validation import (
    check_class_indices,
    check_float_array,
    check_int,
    check_integer_array,
    check_nonempty,
    check_number,
    check_reduction,
)

__all__ = ["arcface", "cosface", "sphereface", "proxy_nca", "proxy_anchor"]

# torch.nn.functional.normalize divides by max(||v||, 1e-12): that floor on the squared norm
_NORMALIZE_FLOOR = 1e-24


# -- shared pieces ---------------------------------------------------------------------------


def _normalize(xp, x):
    """``x / sqrt(max(||x||^2, floor))`` along the last axis, with what its backward needs."""
    n2 = xp.sum(x * x, axis=-1, keepdims=True)
    active = n2 > _NORMALIZE_FLOOR
    d = xp.sqrt(xp.where(active, n2, xp.full_like(n2, _NORMALIZE_FLOOR)))
    return x / d, d, active


def _normalize_back(xp, u, d, active, g):
    """Gradient with respect to ``x`` from the gradient ``g`` with respect to ``u = x / d``:
    the part of ``g`` orthogonal to ``u``, over the norm (all of ``g`` where the floor holds
    the norm constant)."""
    proj = g - u * xp.sum(u * g, axis=-1, keepdims=True)
    return xp.where(active, proj, g) / d


def _inputs(embeddings, labels, classes, classes_name, where):
    """Validate the three arrays and the mask; return the namespace, dtypes and the lifted
    floating arrays."""
    xp = namespace(embeddings=embeddings, labels=labels, **{classes_name: classes}, where=where)
    check_float_array(xp, embeddings, "embeddings")
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings must be a 2-d array (N, D); got shape {tuple(embeddings.shape)}")
    check_nonempty(embeddings, "embeddings")
    n, dim = embeddings.shape
    check_float_array(xp, classes, classes_name)
    if classes.ndim != 2 or classes.shape[1] != dim:
        raise ValueError(
            f"{classes_name} must have shape (C, {dim}): one row per class, as long as an embedding; "
            f"got shape {tuple(classes.shape)}"
        )
    check_nonempty(classes, classes_name)
    num_classes = classes.shape[0]
    check_integer_array(xp, labels, "labels")
    if tuple(labels.shape) != (n,):
        raise ValueError(
            f"labels must have shape ({n},), one integer label per embedding; got {tuple(labels.shape)}"
        )
    check_class_indices(xp, labels, num_classes, None, "labels")
    if where is not None:
        if not xp.isdtype(where.dtype, "bool"):
            raise TypeError(f"where must be a boolean array; got dtype {where.dtype}")
        if tuple(where.shape) != (n,):
            raise ValueError(
                f"where must have shape ({n},), one flag per embedding; got {tuple(where.shape)}"
            )
    out_dtype = xp.result_type(embeddings.dtype, classes.dtype)
    dtype = compute_dtype(xp, out_dtype)
    return xp, out_dtype, dtype, cast(xp, embeddings, dtype), cast(xp, classes, dtype), num_classes


def _check_scale(scale, name="scale"):
    return check_number(scale, name, low=0.0, low_inclusive=False)


def _margin_softmax(embeddings, labels, weight, *, psi, scale, by_norm, reduction, where, wrt):
    r"""Cross-entropy of the logits :math:`s\,r_n\,L_{nc}`, with :math:`L_{nc} = \cos\theta_{nc}`
    off the target and :math:`\psi(\cos\theta_{ny_n})` on it; :math:`r_n = \lVert x_n\rVert`
    when ``by_norm`` (SphereFace), else 1.  ``psi(xp, c) -> (psi(c), dpsi/dc)``."""
    xp, out_dtype, dtype, x, w, num_classes = _inputs(embeddings, labels, weight, "weight", where)
    n = x.shape[0]
    u, du, au = _normalize(xp, x)
    v, dv, av = _normalize(xp, w)
    cos = u @ v.T  # (N, C)
    target = xp.expand_dims(labels, axis=-1) == xp.arange(num_classes, dtype=labels.dtype)
    onehot = xp.astype(target, dtype)
    c_t = numerics.gather_classes(xp, cos, labels, num_classes)
    psi_t, dpsi_t = psi(xp, c_t)
    logits = xp.where(target, xp.expand_dims(psi_t, axis=-1), cos)
    if by_norm:
        r = xp.sqrt(xp.sum(x * x, axis=-1, keepdims=True))  # PML scales by the raw norm
        factor = scale * r
    else:
        factor = scale
    z = factor * logits
    log_p = numerics.log_softmax(xp, z, -1)
    value = -numerics.gather_classes(xp, log_p, labels, num_classes)
    reducer = make_reducer(xp, reduction, (n,), dtype, where=where)
    grads = {}
    if wrt & {0, 2}:
        coef = xp.expand_dims(reducer.grad(xp.ones((n,), dtype=dtype)), axis=-1)
        gz = coef * (xp.exp(log_p) - onehot)  # d loss / d z
        g_logits = gz * factor
        g_cos = xp.where(target, g_logits * xp.expand_dims(dpsi_t, axis=-1), g_logits)
        if 0 in wrt:
            gx = _normalize_back(xp, u, du, au, g_cos @ v)
            if by_norm:  # d r / d x = x / r = u (0 at x = 0, where u is 0)
                gx = gx + scale * xp.sum(gz * logits, axis=-1, keepdims=True) * u
            grads[0] = gx
        if 2 in wrt:
            grads[2] = _normalize_back(xp, v, dv, av, g_cos.T @ u)
    return finish(xp, out_dtype, reducer.value(value), grads)


# -- angular-margin softmax ------------------------------------------------------------------


@catalogued(
    family="metric",
    input_space="embeddings",
    formula="-log softmax(s cos(theta_c + m [c = y]))[y], cos theta = x.w / |x||w|",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def arcface(
    embeddings: Array,
    labels: Array,
    weight: Array,
    *,
    margin: float = 0.5,
    scale: float = 64.0,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""ArcFace, the additive angular margin loss (Deng et al. 2019), per sample:

    .. math::
        \ell_n = -\log \frac{e^{s\,\psi(\theta_{ny})}}
                 {e^{s\,\psi(\theta_{ny})} + \sum_{c \ne y} e^{s\cos\theta_{nc}}},
        \qquad
        \psi(\theta) = \begin{cases} \cos(\theta + m) & \theta \le \pi - m \\
                                     \cos\theta - m \sin m & \text{otherwise,} \end{cases}

    with :math:`y = y_n`, :math:`\cos\theta_{nc} = \hat x_n\cdot\hat w_c` (clipped to
    :math:`[-1, 1]` for the angle) and the second branch keeping :math:`\psi` decreasing past
    :math:`\pi - m` (PML's and InsightFace's rule; :math:`\psi` jumps there).

    Gradient: the softmax cross-entropy's :math:`p - e_y` times :math:`s`, carried through
    :math:`\psi'(\cos\theta) = \sin(\theta + m) / \sin\theta = \cos m + \cos\theta\,\sin m /
    \sin\theta` on the target, then through :math:`\cos\theta = \hat x\cdot\hat w` and the two
    normalisations to ``embeddings`` (``argnums=0``) and ``weight`` (``argnums=2``).

    Args:
      embeddings: ``(N, D)``.
      labels: ``(N,)`` integer labels in ``[0, C)``.
      weight: ``(C, D)`` class weights (normalised inside).
      margin: the angular margin :math:`m` in radians, :math:`0 \le m < \pi` (default 0.5).
      scale: :math:`s > 0` (default 64).
      reduction: ``"mean"`` (default, over samples), ``"sum"`` or ``"none"`` (``(N,)``).
      where: optional ``(N,)`` mask of the samples that count.

    Equivalent: ``pytorch_metric_learning.losses.ArcFaceLoss(C, D,
    margin=math.degrees(margin), scale=scale)`` with its ``W`` set to ``weight.T`` (PML takes
    the margin in degrees; its default 28.6 is about 0.5 rad).
    """
    m = check_number(margin, "margin", low=0.0, high=math.pi, high_inclusive=False)
    s = _check_scale(scale)
    cos_m, sin_m, threshold = math.cos(m), math.sin(m), math.pi - m

    def psi(xp, c):
        cc = xp.clip(c, -1.0, 1.0)
        theta = xp.acos(cc)
        first = theta <= threshold
        value = xp.where(first, xp.cos(theta + m), cc - m * sin_m)
        # d cos(theta + m) / d c = sin(theta + m) / sin(theta) = cos m + c sin m / sin(theta),
        # written with sin(theta) = sqrt((1 - c)(1 + c)) rather than through acos' gradient
        # (-1 / sin(theta), infinite at c = +-1).  For |c| < 1 in floating point sin(theta) >=
        # sqrt(eps) > 0, so the ratio is finite; at c = +-1 exactly (theta = 0 or pi, the cone
        # point of psi as a function of the embedding) the term is dropped: there the
        # gradient of c itself with respect to both vectors is 0.  Outside [-1, 1] (rounding)
        # the clip holds c constant.
        sin_t = xp.sqrt((1.0 - cc) * (1.0 + cc))
        positive = sin_t > 0
        ratio = xp.where(positive, cc / xp.where(positive, sin_t, xp.ones_like(sin_t)), xp.zeros_like(cc))
        inside = (c >= -1.0) & (c <= 1.0)
        slope = xp.where(first, cos_m + sin_m * ratio, xp.ones_like(cc))
        return value, xp.where(inside, slope, xp.zeros_like(cc))

    return _margin_softmax(
        embeddings, labels, weight, psi=psi, scale=s, by_norm=False, reduction=reduction, where=where, wrt=wrt
    )


@catalogued(
    family="metric",
    input_space="embeddings",
    formula="-log softmax(s (cos theta_c - m [c = y]))[y], cos theta = x.w / |x||w|",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def cosface(
    embeddings: Array,
    labels: Array,
    weight: Array,
    *,
    margin: float = 0.35,
    scale: float = 64.0,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""CosFace, the large margin cosine loss (Wang et al. 2018), per sample:

    .. math::
        \ell_n = -\log \frac{e^{s(\cos\theta_{ny} - m)}}
                 {e^{s(\cos\theta_{ny} - m)} + \sum_{c \ne y} e^{s\cos\theta_{nc}}},
        \qquad \cos\theta_{nc} = \hat x_n\cdot\hat w_c,\ y = y_n.

    Gradient: :math:`s\,(p - e_y)` with respect to the cosines, carried through
    :math:`\cos\theta = \hat x\cdot\hat w` and the normalisations to ``embeddings``
    (``argnums=0``) and ``weight`` (``argnums=2``).

    Args:
      embeddings: ``(N, D)``.
      labels: ``(N,)`` integer labels in ``[0, C)``.
      weight: ``(C, D)`` class weights (normalised inside).
      margin: the cosine margin :math:`m \ge 0` (default 0.35).
      scale: :math:`s > 0` (default 64).
      reduction: ``"mean"`` (default, over samples), ``"sum"`` or ``"none"`` (``(N,)``).
      where: optional ``(N,)`` mask of the samples that count.

    Equivalent: ``pytorch_metric_learning.losses.CosFaceLoss(C, D, margin=margin,
    scale=scale)`` with its ``W`` set to ``weight.T``.
    """
    m = check_number(margin, "margin", low=0.0)
    s = _check_scale(scale)

    def psi(xp, c):
        return c - m, xp.ones_like(c)

    return _margin_softmax(
        embeddings, labels, weight, psi=psi, scale=s, by_norm=False, reduction=reduction, where=where, wrt=wrt
    )


def _chebyshev_terms(m):
    """``cos(m theta)`` as a polynomial in ``c = cos(theta)``: the terms
    ``(-1)^j binom(m, 2j) c^(m - 2j) (1 - c^2)^j`` of the multiple-angle formula, as
    ``(coefficient, power of c, power of 1 - c^2)``."""
    return [((-1) ** j * math.comb(m, 2 * j), m - 2 * j, j) for j in range(m // 2 + 1)]


@catalogued(
    family="metric",
    input_space="embeddings",
    formula="-log softmax(s |x| psi_c)[y], psi = (-1)^k cos(m theta) - 2k on the target, cos theta off it",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def sphereface(
    embeddings: Array,
    labels: Array,
    weight: Array,
    *,
    margin: int = 4,
    scale: float = 1.0,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""SphereFace, the multiplicative angular margin softmax (A-Softmax, Liu et al. 2017), per
    sample, as pytorch-metric-learning computes it:

    .. math::
        \ell_n = -\log \frac{e^{s r_n \psi(\theta_{ny})}}
                 {e^{s r_n \psi(\theta_{ny})} + \sum_{c \ne y} e^{s r_n \cos\theta_{nc}}},
        \qquad r_n = \lVert x_n\rVert,
        \qquad
        \psi(\theta) = (-1)^k \cos(m\theta) - 2k,\ \ k = \lfloor m\theta/\pi \rfloor,

    with :math:`\cos\theta_{nc} = \hat x_n\cdot\hat w_c` (the class weights are normalised, the
    embedding's norm :math:`\lVert x_n\rVert` scales the logits) and :math:`\cos(m\theta)` the
    Chebyshev polynomial :math:`T_m(\cos\theta)` (the multiple-angle formula), so no angle is
    differentiated.  :math:`\psi` is continuous and decreasing on :math:`[0, \pi]`.

    Gradient: :math:`(p - e_y)` times :math:`s\lVert x\rVert` with respect to the cosines,
    through :math:`\psi' = (-1)^k T_m'(\cos\theta)` on the target (:math:`k` is piecewise
    constant), through the normalisations, plus the path through :math:`\lVert x_n\rVert` to
    ``embeddings`` (``argnums=0``); to ``weight`` (``argnums=2``).

    Args:
      embeddings: ``(N, D)`` (their norms matter here).
      labels: ``(N,)`` integer labels in ``[0, C)``.
      weight: ``(C, D)`` class weights (normalised inside).
      margin: the integer angle multiplier :math:`m \ge 1` (default 4; 1 is the normalised-weight
        softmax).
      scale: :math:`s > 0` (default 1, PML's).
      reduction: ``"mean"`` (default, over samples), ``"sum"`` or ``"none"`` (``(N,)``).
      where: optional ``(N,)`` mask of the samples that count.

    Equivalent: ``pytorch_metric_learning.losses.SphereFaceLoss(C, D, margin=margin,
    scale=scale)`` with its ``W`` set to ``weight.T``.
    """
    m = check_int(margin, "margin")
    if m < 1:
        raise ValueError(f"margin must be an integer >= 1 (the angle multiplier); got {m}")
    s = _check_scale(scale)
    terms = _chebyshev_terms(m)

    def psi(xp, c):
        one = xp.ones_like(c)
        sin2 = one - c * c
        value = xp.zeros_like(c)
        slope = xp.zeros_like(c)
        for coefficient, a, j in terms:
            value = value + coefficient * (c**a) * (sin2**j)
            if a > 0:
                slope = slope + coefficient * a * (c ** (a - 1)) * (sin2**j)
            if j > 0:
                slope = slope - coefficient * 2 * j * (c ** (a + 1)) * (sin2 ** (j - 1))
        theta = xp.acos(xp.clip(c, -1.0, 1.0))
        k = stop_gradient(xp.floor(theta / (math.pi / m)))  # piecewise constant
        sign = one - 2.0 * xp.remainder(k, 2.0)
        return sign * value - 2.0 * k, sign * slope

    return _margin_softmax(
        embeddings, labels, weight, psi=psi, scale=s, by_norm=True, reduction=reduction, where=where, wrt=wrt
    )


# -- proxies ---------------------------------------------------------------------------------


@catalogued(
    family="metric",
    input_space="embeddings",
    formula="-log softmax_c(-s |x^ - p^_c|^2)[y]",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def proxy_nca(
    embeddings: Array,
    labels: Array,
    proxies: Array,
    *,
    softmax_scale: float = 1.0,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""ProxyNCA (Movshovitz-Attias et al. 2017), per sample:

    .. math::
        \ell_n = -\log \frac{e^{-s\,d_{ny}}}{\sum_c e^{-s\,d_{nc}}},
        \qquad d_{nc} = \lVert \hat x_n - \hat p_c\rVert^2,\ y = y_n,

    the neighbourhood-component softmax of the negative squared distances between the
    normalised embedding and every normalised proxy (one per class).

    Gradient: with :math:`g = s\,(e_y - \mathrm{softmax})` with respect to the distances,
    :math:`2 g (\hat x - \hat p)` and its opposite, through the normalisations to
    ``embeddings`` (``argnums=0``) and ``proxies`` (``argnums=2``).

    Args:
      embeddings: ``(N, D)``.
      labels: ``(N,)`` integer labels in ``[0, C)``.
      proxies: ``(C, D)`` one proxy per class (normalised inside).
      softmax_scale: :math:`s > 0` (default 1, PML's; the paper's proxies and embeddings of
        norm 3 are :math:`s = 9`).
      reduction: ``"mean"`` (default, over samples), ``"sum"`` or ``"none"`` (``(N,)``).
      where: optional ``(N,)`` mask of the samples that count.

    Equivalent: ``pytorch_metric_learning.losses.ProxyNCALoss(C, D, softmax_scale=s)`` with
    its ``proxies`` set to ``proxies``.  PML computes :math:`-\log` of the softmax and drops
    samples whose probability underflows to 0; this computes the log-softmax, so such a sample
    keeps its large finite loss.
    """
    s = _check_scale(softmax_scale, "softmax_scale")
    xp, out_dtype, dtype, x, p, num_classes = _inputs(embeddings, labels, proxies, "proxies", where)
    n = x.shape[0]
    u, du, au = _normalize(xp, x)
    v, dv, av = _normalize(xp, p)
    nu = xp.sum(u * u, axis=-1, keepdims=True)  # 1, or 0 for a zero vector
    nv = xp.sum(v * v, axis=-1, keepdims=True)
    dist = nu + nv.T - 2.0 * (u @ v.T)
    z = -s * dist
    log_p = numerics.log_softmax(xp, z, -1)
    value = -numerics.gather_classes(xp, log_p, labels, num_classes)
    reducer = make_reducer(xp, reduction, (n,), dtype, where=where)
    grads = {}
    if wrt & {0, 2}:
        coef = xp.expand_dims(reducer.grad(xp.ones((n,), dtype=dtype)), axis=-1)
        onehot = numerics.one_hot(xp, labels, num_classes, dtype)
        g_dist = -s * coef * (xp.exp(log_p) - onehot)  # d loss / d dist, (N, C)
        if 0 in wrt:
            gu = 2.0 * (u * xp.sum(g_dist, axis=-1, keepdims=True) - g_dist @ v)
            grads[0] = _normalize_back(xp, u, du, au, gu)
        if 2 in wrt:
            gv = 2.0 * (v * xp.expand_dims(xp.sum(g_dist, axis=0), axis=-1) - g_dist.T @ u)
            grads[2] = _normalize_back(xp, v, dv, av, gv)
    return finish(xp, out_dtype, reducer.value(value), grads)


@catalogued(
    family="metric",
    input_space="embeddings",
    formula=(
        "1/|P+| sum_p log(1 + sum_{x in X_p+} e^(-a(cos(x,p) - m))) "
        "+ 1/C sum_p log(1 + sum_{x in X_p-} e^(a(cos(x,p) + m)))"
    ),
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def proxy_anchor(
    embeddings: Array,
    labels: Array,
    proxies: Array,
    *,
    margin: float = 0.1,
    alpha: float = 32.0,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Proxy-Anchor (Kim et al. 2020): each proxy is an anchor pulling the batch's embeddings
    of its class and pushing the others,

    .. math::
        \ell^+_c = \log\Big(1 + \sum_{n:\,y_n = c} e^{-\alpha(\cos\theta_{nc} - m)}\Big),
        \qquad
        \ell^-_c = \log\Big(1 + \sum_{n:\,y_n \ne c} e^{\alpha(\cos\theta_{nc} + m)}\Big),

    with :math:`\cos\theta_{nc} = \hat x_n\cdot\hat p_c`, and

    .. math::
        L = \frac{1}{|P^+|} \sum_c \ell^+_c + \frac{1}{C} \sum_c \ell^-_c,

    :math:`P^+` the proxies with at least one positive in the batch (an empty sum is 0).

    The elements are per proxy: ``reduction="none"`` gives the ``(C,)`` array
    :math:`\ell^+_c + \ell^-_c`, ``"sum"`` its sum, and ``"mean"`` (default) the paper's
    :math:`L` above, which divides the two parts differently.

    Gradient: with respect to :math:`\cos\theta_{nc}`, :math:`-\alpha\,\sigma(\Lambda^+_c)\,
    \pi^+_{nc}` on the positives and :math:`\alpha\,\sigma(\Lambda^-_c)\,\pi^-_{nc}` on the
    negatives (:math:`\Lambda` the log-sum-exp inside each log, :math:`\pi` its softmax
    weights), times each part's divisor, through the normalisations to ``embeddings``
    (``argnums=0``) and ``proxies`` (``argnums=2``).

    Args:
      embeddings: ``(N, D)``.
      labels: ``(N,)`` integer labels in ``[0, C)``.
      proxies: ``(C, D)`` one proxy per class (normalised inside).
      margin: :math:`m` (default 0.1).
      alpha: :math:`\alpha > 0` (default 32).
      reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (``(C,)``), see above.
      where: optional ``(N,)`` mask of the samples that count: a False sample is neither a
        positive nor a negative of any proxy.

    Equivalent: ``pytorch_metric_learning.losses.ProxyAnchorLoss(C, D, margin=margin,
    alpha=alpha)`` with its ``proxies`` set to ``proxies`` (its value is ``"mean"``).
    """
    m = check_number(margin, "margin")
    a = check_number(alpha, "alpha", low=0.0, low_inclusive=False)
    check_reduction(reduction)
    xp, out_dtype, dtype, x, p, num_classes = _inputs(embeddings, labels, proxies, "proxies", where)
    u, du, au = _normalize(xp, x)
    v, dv, av = _normalize(xp, p)
    cos = u @ v.T  # (N, C)
    same = xp.expand_dims(labels, axis=-1) == xp.arange(num_classes, dtype=labels.dtype)
    other = ~same
    if where is not None:
        counted = xp.expand_dims(where, axis=-1)
        same = same & counted
        other = other & counted
    lse_pos, w_pos, has_pos = numerics.masked_logsumexp(xp, a * (m - cos), same, axis=0)
    lse_neg, w_neg, has_neg = numerics.masked_logsumexp(xp, a * (cos + m), other, axis=0)
    zero = xp.zeros_like(lse_pos)
    pos = xp.where(has_pos, numerics.softplus(xp, lse_pos), zero)  # (1, C)
    neg = xp.where(has_neg, numerics.softplus(xp, lse_neg), zero)
    if reduction == "mean":
        with_pos = xp.sum(xp.astype(has_pos, dtype))
        pos_factor = 1.0 / xp.where(with_pos > 0, with_pos, xp.ones_like(with_pos))
        neg_factor = 1.0 / num_classes
        value = xp.sum(pos) * pos_factor + xp.sum(neg) * neg_factor
    else:
        pos_factor = neg_factor = 1.0
        per_proxy = xp.reshape(pos + neg, (num_classes,))
        value = per_proxy if reduction == "none" else xp.sum(per_proxy)
    grads = {}
    if wrt & {0, 2}:
        g_pos = xp.where(has_pos, numerics.sigmoid(xp, lse_pos), zero) * pos_factor
        g_neg = xp.where(has_neg, numerics.sigmoid(xp, lse_neg), zero) * neg_factor
        g_cos = a * (g_neg * w_neg - g_pos * w_pos)  # (N, C)
        if 0 in wrt:
            grads[0] = _normalize_back(xp, u, du, au, g_cos @ v)
        if 2 in wrt:
            grads[2] = _normalize_back(xp, v, dv, av, g_cos.T @ u)
    return finish(xp, out_dtype, value, grads)
