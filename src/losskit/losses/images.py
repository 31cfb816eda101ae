r"""Image losses: robust pixel penalties, total variation and structural similarity.

- :func:`charbonnier` and :func:`general_robust` compare a prediction and a target element by
  element (any shape; ``reduction`` over the elements, ``where=`` a mask of counted elements).
- :func:`total_variation` scores one image batch on its own, per image and channel.
- :func:`ssim_loss` and :func:`ms_ssim_loss` compare images per image and channel: their
  per-element losses have shape ``(N, C)``.

Images are ``(N, C, H, W)`` (:func:`total_variation` also takes ``(C, H, W)``).  The Gaussian
filtering of SSIM is a product with two banded matrices (rows and columns), so it runs in every
array library, and its gradient is the product with their transposes.
"""

from __future__ import annotations

import math

from ..core.backend import Array, cast, compute_dtype, finish, namespace
from ..core.catalog import catalogued
from ..core.gradients import LossResult, loss_function
from ..core.pointwise import pointwise_loss
from ..core.reduction import Reduction, make_reducer
from ..core.validation import (
    any_true,
    check_broadcastable_to,
    check_float_array,
    check_hyperparameter,
    check_int,
    check_no_nan,
    check_nonempty,
    check_number,
    check_same_shape,
)

__all__ = ["charbonnier", "general_robust", "total_variation", "ssim_loss", "ms_ssim_loss"]

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _device(x):
    try:
        return x.device
    except Exception:  # Dask arrays have no device; a default one is right for them
        return None


# -- Charbonnier ---------------------------------------------------------------------------------


def _charbonnier_core(eps):
    def core(xp, x, y, need_grad):
        d = x - y
        big = xp.isinf(d)
        d_fin = xp.where(big, xp.zeros_like(d), d)
        a = xp.abs(d_fin)
        # sqrt(d^2 + eps^2) without overflowing d^2: m * sqrt((a/m)^2 + (eps/m)^2), m = max(a, eps)
        m = xp.maximum(a, xp.zeros_like(a) + eps)
        ra, re = a / m, eps / m
        finite = m * xp.sqrt(ra * ra + re * re)
        value = xp.where(big, xp.abs(d), finite)
        if not need_grad:
            return value, None, None
        g = xp.where(big, xp.sign(d), d_fin / finite)
        return value, g, -g

    return core


@catalogued(
    family="images",
    input_space="values",
    formula="sqrt((x - y)^2 + eps^2)",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def charbonnier(
    input: Array,
    target: Array,
    *,
    eps: float = 1e-3,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Charbonnier loss (a smooth L1): :math:`\ell_i = \sqrt{(x_i - y_i)^2 + \varepsilon^2}`.

    Gradient: :math:`\partial\ell/\partial x_i = (x_i - y_i) / \ell_i` (bounded by 1).  The loss
    is :math:`\varepsilon` (not 0) at a perfect prediction, the convention of LapSRN (Lai et al.
    2017) and most image-restoration code.  Worked example:
    ``charbonnier([0.0, 3.0], [0.0, 0.0], eps=4.0)`` is ``(4 + 5) / 2 = 4.5``.

    Args:
      input: prediction, any shape.
      target: same shape as ``input``.
      eps: :math:`\varepsilon > 0` (default 1e-3), a number or a 0-d array.
      reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
      where: optional boolean mask of counted elements.

    Equivalent: Kornia's ``charbonnier_loss`` is Barron's form at :math:`\alpha = 1, c = 1`,
    :math:`\sqrt{d^2 + 1} - 1`; this loss is
    ``eps * (kornia.losses.charbonnier_loss(input / eps, target / eps) + 1)``.
    """
    eps = check_hyperparameter(eps, "eps", like=input, low=0.0, low_inclusive=False)
    return pointwise_loss(_charbonnier_core(eps), input, target, reduction=reduction, where=where, wrt=wrt)


# -- Barron's general robust loss ----------------------------------------------------------------

# Taylor coefficients of phi'(u), phi(u) = expm1(u) / u: sum_k u^k (k + 1) / (k + 2)!
_DPHI = tuple((k + 1) / math.factorial(k + 2) for k in range(9))
_SERIES_BELOW = 0.1  # |u| below which phi' is taken from its series (no cancellation)
_SMALL_ALPHA = 0.5  # |alpha| below which the expm1(u)/u form is used (no division by alpha)


def _robust_parts(xp, z, alpha, need_grad):
    """Barron's rho(z, alpha) at scale 1 and, when asked, d rho / d (z^2) and d rho / d alpha.

    ``z`` and ``alpha`` are broadcast to one shape.
    """
    dtype = z.dtype
    zero, one = xp.zeros_like(z), xp.ones_like(z)
    tiny = float(xp.finfo(dtype).eps)
    q = z * z
    q_inf = xp.isinf(q)
    q_safe = xp.where(q_inf, one, q)
    is_two = alpha == 2.0
    neg_inf = alpha == -math.inf
    pos_inf = alpha == math.inf
    special = is_two | neg_inf | pos_inf
    a = xp.where(special, one, alpha)  # a finite alpha != 2 for the general form
    s = xp.where(a > 2.0, one, -one)  # sign(alpha - 2)
    delta = xp.maximum(xp.abs(a - 2.0), zero + tiny)
    r = q_safe / delta
    lg = xp.log1p(r)  # L
    u = 0.5 * a * lg
    small = xp.abs(a) < _SMALL_ALPHA
    u_nz = xp.where(u == 0.0, one, u)
    phi = xp.where(u == 0.0, one, xp.expm1(u) / u_nz)
    a_nz = xp.where(small, one, a)
    general = xp.where(small, 0.5 * delta * lg * phi, (delta / a_nz) * xp.expm1(u))
    half_q = 0.5 * q_safe
    value = xp.where(
        is_two,
        half_q,
        xp.where(neg_inf, -xp.expm1(-half_q), xp.where(pos_inf, xp.expm1(half_q), general)),
    )
    # an infinite residual: the loss grows without bound for alpha >= 0, and tends to
    # |alpha - 2| / |alpha| for alpha < 0 (1 for alpha = -inf)
    a_lim = xp.where((alpha < 0.0) & ~neg_inf, alpha, -one)
    at_inf = xp.where(
        neg_inf, one, xp.where(alpha < 0.0, xp.abs(a_lim - 2.0) / xp.abs(a_lim), zero + math.inf)
    )
    value = xp.where(q_inf, at_inf, value)
    if not need_grad:
        return value, None, None
    # d rho / d q = (1/2) (1 + q / delta)^(alpha/2 - 1)
    dq_general = 0.5 * xp.exp((0.5 * a - 1.0) * lg)
    dq = xp.where(
        is_two,
        0.5 * one,
        xp.where(neg_inf, 0.5 * xp.exp(-half_q), xp.where(pos_inf, 0.5 * xp.exp(half_q), dq_general)),
    )
    dq = xp.where(q_inf, zero, dq)
    # d rho / d alpha, two forms free of cancellation in their own ranges
    # (a) |alpha| small: rho = (delta L / 2) phi(u)
    u_small = xp.where(xp.abs(u) < _SERIES_BELOW, u, zero)
    series = zero + _DPHI[-1]
    for c in reversed(_DPHI[:-1]):
        series = series * u_small + c
    u_big = xp.where(xp.abs(u) < _SERIES_BELOW, one, u)
    dphi_direct = (xp.exp(u_big) * (u_big - 1.0) + 1.0) / (u_big * u_big)
    dphi = xp.where(xp.abs(u) < _SERIES_BELOW, series, dphi_direct)
    frac = q_safe / (delta + q_safe)  # r / (1 + r)
    d_small = 0.5 * s * (lg - frac) * phi + 0.5 * delta * lg * dphi * (0.5 * lg - 0.5 * a * s * frac / delta)
    # (b) elsewhere: rho = (delta / alpha)(E - 1), E = (1 + r)^(alpha/2)
    e = xp.exp(u)
    d_large = (
        (delta * e / (2.0 * a_nz)) * (lg - (2.0 + a_nz) / a_nz)
        - 2.0 * s / (a_nz * a_nz)
        + s * e / (2.0 * (1.0 + r))
    )
    da = xp.where(small, d_small, d_large)
    # at alpha = 2 the loss has a |alpha - 2| log |alpha - 2| term: the derivative is +inf
    # (0 where the residual is 0); it tends to 0 as alpha -> +-inf
    da = xp.where(is_two, xp.where(q > 0.0, zero + math.inf, zero), da)
    da = xp.where(neg_inf | pos_inf, zero, da)
    return value, dq, da


def _sum_to_shape(xp, g, shape):
    """Sum a broadcast gradient back to the shape of the argument it came from."""
    lead = g.ndim - len(shape)
    if lead:
        g = xp.sum(g, axis=tuple(range(lead)))
    axes = tuple(i for i, d in enumerate(shape) if d == 1 and g.shape[i] != 1)
    if axes:
        g = xp.sum(g, axis=axes, keepdims=True)
    return xp.reshape(g, tuple(shape))


def _as_parameter(xp, value, name, like, dtype):
    """A number or an array of ``like``'s library, as an array of ``dtype``."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a real number or a floating array; got bool")
    if isinstance(value, (int, float)):
        return xp.asarray(float(value), dtype=dtype, device=_device(like)), False
    if not hasattr(value, "shape") or not hasattr(value, "dtype"):
        raise TypeError(f"{name} must be a real number or a floating array; got {type(value).__name__}")
    check_float_array(xp, value, name)
    check_broadcastable_to(value, tuple(like.shape), name, "input")
    check_no_nan(xp, value, name)
    return cast(xp, value, dtype), True


@catalogued(
    family="images",
    input_space="values",
    formula="|a-2|/a (((d/c)^2/|a-2| + 1)^(a/2) - 1)",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def general_robust(
    input: Array,
    target: Array,
    alpha: Array | float,
    scale: Array | float = 1.0,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Barron's general and adaptive robust loss (CVPR 2019), with the shape :math:`\alpha` an
    input.  With :math:`d = x - y`, :math:`z = d / c`:

    .. math::
        \rho(d, \alpha, c) = \frac{|\alpha - 2|}{\alpha}
            \left( \left( \frac{z^2}{|\alpha - 2|} + 1 \right)^{\alpha/2} - 1 \right)

    and its limits, taken in closed form: :math:`\tfrac12 z^2` at :math:`\alpha = 2`,
    :math:`\log(\tfrac12 z^2 + 1)` at :math:`\alpha = 0`, :math:`1 - e^{-z^2/2}` (Welsch) at
    :math:`\alpha = -\infty`, :math:`e^{z^2/2} - 1` at :math:`+\infty`; :math:`\alpha = 1` is
    :math:`\sqrt{z^2 + 1} - 1` (pseudo-Huber), :math:`\alpha = -2` Geman-McClure.  Near
    :math:`\alpha = 0` the loss is evaluated as :math:`\tfrac12|\alpha-2| L\,
    \mathrm{expm1}(u)/u` with :math:`L = \log(1 + z^2/|\alpha-2|)`, :math:`u = \alpha L / 2`,
    which is smooth through 0 (no division by :math:`\alpha`); near 2, :math:`|\alpha - 2|` is
    kept above the dtype's epsilon.

    Gradients (``argnums`` 0, 1, 2, 3):
    :math:`\partial\rho/\partial x = (d / c^2)(1 + z^2/|\alpha-2|)^{\alpha/2 - 1}`
    (the negative for the target), :math:`\partial\rho/\partial c = -(z^2/c)(1 +
    z^2/|\alpha-2|)^{\alpha/2-1}`, and :math:`\partial\rho/\partial\alpha` in a form free of
    cancellation near 0 and near 2 (a series for :math:`\mathrm{expm1}(u)/u`'s derivative near
    :math:`u = 0`).  At :math:`\alpha = 2` exactly the derivative in :math:`\alpha` is
    :math:`+\infty` wherever :math:`d \ne 0` (the loss has a :math:`|\alpha-2|\log|\alpha-2|`
    term there); it is 0 at :math:`\alpha = \pm\infty`.  Gradients of a broadcast ``alpha`` or
    ``scale`` are summed back to their shape.

    Args:
      input: prediction, any shape.
      target: same shape as ``input``.
      alpha: the shape, a number or an array broadcastable to ``input`` (any real, or +-inf).
      scale: :math:`c > 0` (default 1.0), a number or a broadcastable array.
      reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
      where: optional boolean mask of counted elements.

    Worked example: ``general_robust([3.0], [0.0], 1.0, reduction="sum")`` is
    :math:`\sqrt{10} - 1 \approx 2.1623`.

    Equivalent: Barron's ``robust_loss_pytorch.general.lossfun(x, alpha, scale)`` (which
    clamps :math:`|\alpha - 2|` and :math:`|\alpha|` at 1e-5 instead); Kornia's
    ``charbonnier_loss``, ``cauchy_loss``, ``geman_mcclure_loss`` and ``welsch_loss`` are
    :math:`\alpha = 1, 0, -2, -\infty` at :math:`c = 1`.
    """
    xp = namespace(input=input, target=target, where=where)
    check_float_array(xp, input, "input")
    check_float_array(xp, target, "target")
    check_same_shape(input, target, "input", "target")
    check_nonempty(input, "input")
    check_no_nan(xp, target, "target")
    out_dtype = xp.result_type(input.dtype, target.dtype)
    dtype = compute_dtype(xp, out_dtype)
    a, alpha_is_array = _as_parameter(xp, alpha, "alpha", input, dtype)
    if isinstance(scale, (int, float)) and not isinstance(scale, bool):
        check_number(scale, "scale", low=0.0, low_inclusive=False)
    c, scale_is_array = _as_parameter(xp, scale, "scale", input, dtype)
    if scale_is_array and any_true(xp, ~(c > 0.0)):
        raise ValueError("scale must be > 0 everywhere")
    shape = tuple(input.shape)
    x, y = cast(xp, input, dtype), cast(xp, target, dtype)
    d = x - y
    z = d / c
    z_b = xp.broadcast_to(z, shape) if tuple(z.shape) != shape else z
    a_b = xp.broadcast_to(a, shape)
    reducer = make_reducer(xp, reduction, shape, dtype, where=where)
    value, dq, da = _robust_parts(xp, z_b, a_b, bool(wrt))
    grads: dict[int, Array] = {}
    if wrt:
        coef = reducer.grad(xp.ones(shape, dtype=dtype))
        dx = coef * 2.0 * dq * z_b / c
        if 0 in wrt:
            grads[0] = dx
        if 1 in wrt:
            grads[1] = -dx
        if 2 in wrt:
            if not alpha_is_array:
                raise ValueError("general_robust: pass alpha as an array to differentiate with respect to it")
            grads[2] = _sum_to_shape(xp, coef * da, tuple(alpha.shape))
        if 3 in wrt:
            if not scale_is_array:
                raise ValueError("general_robust: pass scale as an array to differentiate with respect to it")
            q = z_b * z_b
            grads[3] = _sum_to_shape(xp, coef * (-2.0) * q * dq / c, tuple(scale.shape))
    return finish(xp, out_dtype, reducer.value(value), grads)


# -- total variation ------------------------------------------------------------------------------


@catalogued(
    family="images",
    input_space="values",
    formula="sum |I[i+1, j] - I[i, j]| + |I[i, j+1] - I[i, j]| per image and channel",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def total_variation(
    image: Array,
    *,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Anisotropic total variation, per image and channel:

    .. math::
        TV(I) = \sum_{i, j} |I_{i+1, j} - I_{i, j}| + \sum_{i, j} |I_{i, j+1} - I_{i, j}|

    over the last two axes (height, width).  Gradient: for each difference,
    :math:`\mathrm{sign}` of it added to the later pixel and subtracted from the earlier one
    (0 where two neighbours are equal, as PyTorch's ``abs``).

    Args:
      image: ``(N, C, H, W)`` or ``(C, H, W)``.
      reduction: over the per-image-and-channel sums, shape ``(N, C)`` (or ``(C,)``):
        ``"mean"`` (default), ``"sum"`` or ``"none"``.
      where: optional boolean mask over those ``(N, C)`` values.

    Worked example: ``total_variation([[[0, 1], [3, 1]]], reduction="none")`` is
    ``|3-0| + |1-1| + |1-0| + |1-3| = [6]``.

    Equivalent: ``kornia.losses.total_variation(image, reduction="sum")`` gives the
    ``reduction="none"`` values (Kornia's ``reduction="mean"`` is a per-image normalisation,
    not offered here).
    """
    xp = namespace(image=image, where=where)
    check_float_array(xp, image, "image")
    if image.ndim not in (3, 4):
        raise ValueError(f"image must be (N, C, H, W) or (C, H, W); got shape {tuple(image.shape)}")
    check_nonempty(image, "image")
    out_dtype = image.dtype
    dtype = compute_dtype(xp, out_dtype)
    img = cast(xp, image, dtype)
    dv = img[..., 1:, :] - img[..., :-1, :]
    dh = img[..., :, 1:] - img[..., :, :-1]
    per = xp.sum(xp.abs(dv), axis=(-2, -1)) + xp.sum(xp.abs(dh), axis=(-2, -1))
    shape = tuple(per.shape)
    reducer = make_reducer(xp, reduction, shape, dtype, where=where)
    grads: dict[int, Array] = {}
    if 0 in wrt:
        coef = xp.reshape(reducer.grad(xp.ones(shape, dtype=dtype)), shape + (1, 1))
        sv, sh = xp.sign(dv), xp.sign(dh)
        zrow = xp.zeros_like(img[..., :1, :])
        zcol = xp.zeros_like(img[..., :, :1])
        g = xp.concat([zrow, sv], axis=-2) - xp.concat([sv, zrow], axis=-2)
        g = g + xp.concat([zcol, sh], axis=-1) - xp.concat([sh, zcol], axis=-1)
        grads[0] = coef * g
    return finish(xp, out_dtype, reducer.value(per), grads)


# -- SSIM and MS-SSIM -----------------------------------------------------------------------------


def _gauss_matrix(xp, n, size, sigma, dtype, device):
    """``(n - size + 1, n)``: row ``i`` holds the normalised Gaussian window over columns
    ``i .. i + size - 1`` (a 'valid' 1-d convolution as a matrix)."""
    m = n - size + 1
    half = size // 2
    taps = xp.arange(size, dtype=dtype, device=device) - half
    norm = xp.sum(xp.exp(-(taps * taps) / (2.0 * sigma * sigma)))
    k = xp.arange(n, dtype=dtype, device=device)[None, :] - xp.arange(m, dtype=dtype, device=device)[:, None]
    inside = (k >= 0.0) & (k <= size - 1.0)
    off = k - half
    w = xp.exp(-(off * off) / (2.0 * sigma * sigma)) / norm
    zero = xp.zeros_like(w)
    return xp.where(inside, w, zero), xp.where(inside, zero + 1.0, zero)


def _pool_matrix(xp, n, dtype, device):
    """``(n_out, n)``: 2-wide average pooling with stride 2 and ``n % 2`` zero padding on each
    side, the padding counted in the average (PyTorch's ``avg_pool2d`` defaults)."""
    pad = n % 2
    m = (n + 2 * pad - 2) // 2 + 1
    j = xp.arange(n, device=device) + pad
    i = xp.arange(m, device=device)
    hit = (j[None, :] // 2) == i[:, None]
    half = xp.full((m, n), 0.5, dtype=dtype, device=device)
    return xp.where(hit, half, xp.zeros_like(half))


def _window_matrices(xp, h, w, size, sigma, dtype, device):
    rows = _gauss_matrix(xp, h, size, sigma, dtype, device)
    cols = rows if w == h else _gauss_matrix(xp, w, size, sigma, dtype, device)
    return rows, cols


def _clean(xp, x, y):
    """x and y with the pixels whose square overflows set to 0, and where those are."""
    bad = xp.isinf(x * x) | xp.isinf(y * y)
    zero = xp.zeros_like(x)
    return xp.where(bad, zero, x), xp.where(bad, zero, y), bad


def _apply(xp, a, mh, mw):
    return xp.matmul(xp.matmul(mh, a), xp.matrix_transpose(mw))


def _apply_t(xp, g, mh, mw):
    return xp.matmul(xp.matmul(xp.matrix_transpose(mh), g), mw)


class _SSIMLevel:
    """The maps of one SSIM evaluation, kept for the backward pass."""

    def __init__(self, xp, x, y, bad, mats, c1, c2):
        # ``bad``: pixels whose square overflows (+-inf, or huge in float32), set to 0 in x and
        # y; every window holding one takes the limit of SSIM and cs there, 0
        (mh, bh), (mw, bw) = mats
        self.xp, self.x, self.y, self.mh, self.mw = xp, x, y, mh, mw
        self.touched = _apply(xp, xp.astype(bad, x.dtype), bh, bw) > 0.0
        mx, my = _apply(xp, x, mh, mw), _apply(xp, y, mh, mw)
        sxx = _apply(xp, x * x, mh, mw) - mx * mx
        syy = _apply(xp, y * y, mh, mw) - my * my
        sxy = _apply(xp, x * y, mh, mw) - mx * my
        self.mx, self.my = mx, my
        self.a1 = 2.0 * mx * my + c1
        self.a2 = mx * mx + my * my + c1
        self.b1 = 2.0 * sxy + c2
        self.b2 = sxx + syy + c2
        self.lum = self.a1 / self.a2
        self.cs_map = self.b1 / self.b2
        self.count = mx.shape[-2] * mx.shape[-1]
        zero = xp.zeros_like(mx)
        self.ssim = xp.sum(xp.where(self.touched, zero, self.lum * self.cs_map), axis=(-2, -1)) / self.count
        self.cs = xp.sum(xp.where(self.touched, zero, self.cs_map), axis=(-2, -1)) / self.count

    def backward(self, d_ssim, d_cs, wrt):
        """Gradients wrt x (0) and y (1) from per-(N, C) derivatives of ``ssim`` and ``cs``."""
        xp = self.xp
        zero = xp.zeros_like(self.mx)
        g_s = xp.where(self.touched, zero, xp.reshape(d_ssim, tuple(d_ssim.shape) + (1, 1)) / self.count)
        g_b = xp.where(self.touched, zero, xp.reshape(d_cs, tuple(d_cs.shape) + (1, 1)) / self.count)
        h_b = g_s * self.lum + g_b  # total upstream on the contrast-structure map
        d_sq = h_b * (-self.b1 / (self.b2 * self.b2))  # on E[x^2] (and E[y^2])
        d_xy = h_b * (2.0 / self.b2)  # on E[xy]
        g_lum = g_s * self.cs_map
        inv = 1.0 / self.a2
        out = {}
        ft_sq = _apply_t(xp, d_sq, self.mh, self.mw)
        ft_xy = _apply_t(xp, d_xy, self.mh, self.mw)
        for n, (u, v, mu, mv) in (
            (0, (self.x, self.y, self.mx, self.my)),
            (1, (self.y, self.x, self.my, self.mx)),
        ):
            if n not in wrt:
                continue
            d_lum_dmu = 2.0 * mv * inv - 2.0 * mu * self.a1 * inv * inv
            d_mu = g_lum * d_lum_dmu - 2.0 * mu * d_sq - mv * d_xy
            out[n] = _apply_t(xp, d_mu, self.mh, self.mw) + 2.0 * u * ft_sq + v * ft_xy
        return out


def _check_images(xp, input, target, window_size, sigma, data_range, k1, k2):
    check_float_array(xp, input, "input")
    check_float_array(xp, target, "target")
    if input.ndim != 4:
        raise ValueError(f"input must be a batch of images (N, C, H, W); got shape {tuple(input.shape)}")
    check_same_shape(input, target, "input", "target")
    check_nonempty(input, "input")
    check_no_nan(xp, target, "target")
    window_size = check_int(window_size, "window_size")
    if window_size < 1 or window_size % 2 == 0:
        raise ValueError(f"window_size must be a positive odd int; got {window_size}")
    sigma = check_number(sigma, "sigma", low=0.0, low_inclusive=False)
    data_range = check_number(data_range, "data_range", low=0.0, low_inclusive=False)
    k1 = check_number(k1, "k1", low=0.0, low_inclusive=False)
    k2 = check_number(k2, "k2", low=0.0, low_inclusive=False)
    return window_size, sigma, (k1 * data_range) ** 2, (k2 * data_range) ** 2


@catalogued(
    family="images",
    input_space="values",
    formula="1 - mean SSIM map (Gaussian window, valid) per image and channel",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def ssim_loss(
    input: Array,
    target: Array,
    *,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Structural dissimilarity :math:`1 - \mathrm{SSIM}` (Wang et al. 2004), per image and
    channel.  With :math:`\mu, \sigma^2, \sigma_{xy}` the local means, variances and covariance
    under a Gaussian window (``window_size`` taps, standard deviation ``sigma``, normalised to
    sum 1; 'valid' filtering: only windows fully inside the image):

    .. math::
        \mathrm{SSIM} = \operatorname{mean}_{ij}
          \frac{(2\mu_x\mu_y + C_1)(2\sigma_{xy} + C_2)}
               {(\mu_x^2 + \mu_y^2 + C_1)(\sigma_x^2 + \sigma_y^2 + C_2)},
        \qquad C_1 = (k_1 R)^2,\ C_2 = (k_2 R)^2

    with :math:`R` = ``data_range``.  Gradient: through the SSIM map to the filtered moments,
    then through the filtering's adjoint (the transposed window matrices) to the pixels, for
    the prediction (``argnums=0``) and the target (``argnums=1``).

    Args:
      input: ``(N, C, H, W)`` images, ``H, W >= window_size``.
      target: same shape.
      data_range: the value range :math:`R` of the images (default 1.0).
      window_size: odd number of Gaussian taps (default 11).
      sigma: the Gaussian's standard deviation (default 1.5).
      k1, k2: stabilising constants (defaults 0.01, 0.03).
      reduction: over the ``(N, C)`` losses: ``"mean"`` (default), ``"sum"``, ``"none"``.
      where: optional boolean mask over the ``(N, C)`` losses.

    Equivalent: ``1 - pytorch_msssim.ssim(input, target, data_range=R, win_size=window_size,
    win_sigma=sigma, K=(k1, k2))`` for ``reduction="mean"`` (``size_average=False`` with the
    channels kept for ``"none"``), which computes its window in float32; Kornia's ``ssim_loss``
    pads the images ('same' filtering) and halves the result, so it differs.  Images smaller
    than the window are refused (pytorch-msssim skips the filtering along such an axis).  A
    pixel whose square overflows (+-inf, or beyond about 1.8e19 in float32) takes the limit as
    it grows: the windows holding it score 0 in both terms, and its gradient is 0; NaN spreads.
    """
    xp = namespace(input=input, target=target, where=where)
    window_size, sigma, c1, c2 = _check_images(xp, input, target, window_size, sigma, data_range, k1, k2)
    h, w = input.shape[-2], input.shape[-1]
    if h < window_size or w < window_size:
        raise ValueError(
            f"ssim_loss needs images of at least window_size={window_size} pixels on each side; got {h}x{w}"
        )
    out_dtype = xp.result_type(input.dtype, target.dtype)
    dtype = compute_dtype(xp, out_dtype)
    x, y, bad = _clean(xp, cast(xp, input, dtype), cast(xp, target, dtype))
    dev = _device(x)
    level = _SSIMLevel(xp, x, y, bad, _window_matrices(xp, h, w, window_size, sigma, dtype, dev), c1, c2)
    value = 1.0 - level.ssim
    shape = tuple(value.shape)
    reducer = make_reducer(xp, reduction, shape, dtype, where=where)
    grads: dict[int, Array] = {}
    if wrt:
        coef = reducer.grad(xp.ones(shape, dtype=dtype))
        grads = level.backward(-coef, xp.zeros_like(coef), wrt)
        grads = {n: xp.where(bad, xp.zeros_like(g), g) for n, g in grads.items()}
    return finish(xp, out_dtype, reducer.value(value), grads)


@catalogued(
    family="images",
    input_space="values",
    formula="1 - prod_j cs_j^w_j * ssim_5^w_5 over 5 scales per image and channel",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def ms_ssim_loss(
    input: Array,
    target: Array,
    *,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Multi-scale structural dissimilarity :math:`1 - \mathrm{MS\text{-}SSIM}` (Wang et al.
    2003), per image and channel, over 5 scales:

    .. math::
        \mathrm{MS\text{-}SSIM} = \prod_{j=1}^{4} \max(cs_j, 0)^{w_j}\;
            \max(\mathrm{SSIM}_5, 0)^{w_5},
        \qquad w = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

    where :math:`cs_j` is the mean contrast-structure term (SSIM without its luminance factor)
    at scale :math:`j` (see :func:`ssim_loss` for the window and constants), and each scale is
    the previous one average-pooled 2x2 (an odd side padded by one zero on each side, the zero
    counted, as PyTorch's ``avg_pool2d``).  Gradient: through the product, each scale's
    SSIM maps, the filtering's adjoint and the pooling's adjoint, for ``argnums`` 0 and 1 (a
    clipped scale contributes no gradient).

    Args as :func:`ssim_loss`; the images must be larger than ``(window_size - 1) * 16`` pixels
    on each side (at least 161 for the default window) for the 4 downsamplings.

    Equivalent: ``1 - pytorch_msssim.ms_ssim(input, target, data_range=R,
    win_size=window_size, win_sigma=sigma, K=(k1, k2))`` (``reduction="mean"``).
    """
    xp = namespace(input=input, target=target, where=where)
    window_size, sigma, c1, c2 = _check_images(xp, input, target, window_size, sigma, data_range, k1, k2)
    h, w = input.shape[-2], input.shape[-1]
    need = (window_size - 1) * 16
    if min(h, w) <= need:
        raise ValueError(
            f"ms_ssim_loss needs images larger than {need} pixels on each side (at least {need + 1}) "
            f"for 5 scales with window_size={window_size}; got {h}x{w}"
        )
    out_dtype = xp.result_type(input.dtype, target.dtype)
    dtype = compute_dtype(xp, out_dtype)
    x, y, bad0 = _clean(xp, cast(xp, input, dtype), cast(xp, target, dtype))
    dev = _device(x)
    bad = bad0
    levels, pools = [], []
    for j in range(len(MS_SSIM_WEIGHTS)):
        h, w = x.shape[-2], x.shape[-1]
        levels.append(
            _SSIMLevel(xp, x, y, bad, _window_matrices(xp, h, w, window_size, sigma, dtype, dev), c1, c2)
        )
        if j < len(MS_SSIM_WEIGHTS) - 1:
            ph = _pool_matrix(xp, h, dtype, dev)
            pw = ph if w == h else _pool_matrix(xp, w, dtype, dev)
            pools.append((ph, pw))
            x, y = _apply(xp, x, ph, pw), _apply(xp, y, ph, pw)
            bad = _apply(xp, xp.astype(bad, dtype), ph, pw) > 0.0
    last = len(MS_SSIM_WEIGHTS) - 1
    terms = [lv.cs for lv in levels[:last]] + [levels[last].ssim]
    clipped = [xp.maximum(t, xp.zeros_like(t)) for t in terms]
    prod = None
    for t, wj in zip(clipped, MS_SSIM_WEIGHTS):
        f = t**wj
        prod = f if prod is None else prod * f
    value = 1.0 - prod
    shape = tuple(value.shape)
    reducer = make_reducer(xp, reduction, shape, dtype, where=where)
    grads: dict[int, Array] = {}
    if wrt:
        coef = reducer.grad(xp.ones(shape, dtype=dtype))
        upstream = []
        for t, wj in zip(clipped, MS_SSIM_WEIGHTS):
            pos = t > 0.0
            safe = xp.where(pos, t, xp.ones_like(t))
            upstream.append(xp.where(pos, -coef * wj * prod / safe, xp.zeros_like(t)))
        carried: dict[int, Array] = {}
        for j in range(last, -1, -1):
            zero = xp.zeros_like(upstream[j])
            if j == last:
                own = levels[j].backward(upstream[j], zero, wrt)
            else:
                own = levels[j].backward(zero, upstream[j], wrt)
                ph, pw = pools[j]
                own = {n: g + _apply_t(xp, carried[n], ph, pw) for n, g in own.items()}
            carried = own
        grads = {n: xp.where(bad0, xp.zeros_like(g), g) for n, g in carried.items()}
    return finish(xp, out_dtype, reducer.value(value), grads)
