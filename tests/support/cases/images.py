"""Cases for the image losses: Kornia's ``charbonnier_loss`` (rescaled) and ``total_variation``,
pytorch-msssim's ``ssim`` / ``ms_ssim`` (given the float64 Gaussian window), and Barron's
general robust loss re-implemented from the paper in PyTorch (float64, autograd for the
gradients with respect to the residual, the shape and the scale)."""

from __future__ import annotations

import math

import numpy as np

import losskit as lk

from . import Case


def _reduce(per, k, r):
    """The reductions of a per-element torch tensor with the ``where`` mask."""
    import torch

    where = k.get("where")
    if where is not None:
        where = torch.broadcast_to(where, per.shape)
        per = torch.where(where, per, torch.zeros_like(per))
        if r == "mean":
            return per.sum() / where.sum()
    return per.mean() if r == "mean" else per.sum() if r == "sum" else per


# -- Charbonnier ----------------------------------------------------------------------------------


def _pair(shape=(2, 3, 4), masked=False, **options):
    def make(rng):
        kwargs = dict(options)
        if masked:
            where = rng.uniform(size=shape) < 0.7
            where.reshape(-1)[0] = False
            kwargs["where"] = where
        return (rng.normal(size=shape), rng.normal(size=shape)), kwargs

    return make


def kornia_charbonnier(a, k, r):
    """``sqrt(d^2 + eps^2) = eps (sqrt((d/eps)^2 + 1) - 1 + 1)``: Kornia's form on the data
    divided by eps."""
    from kornia.losses import charbonnier_loss

    x, y = a
    eps = k.get("eps", 1e-3)
    return _reduce(eps * (charbonnier_loss(x / eps, y / eps, reduction="none") + 1.0), k, r)


# -- Barron's general robust loss ------------------------------------------------------------------


def torch_barron(x, alpha, scale):
    """The paper's rho(x, alpha, c), with its limits at alpha = 0, 2 and +-inf in closed form."""
    import torch

    z2 = (x / scale) ** 2
    alpha = torch.broadcast_to(alpha, z2.shape)
    special = (alpha == 0) | (alpha == 2) | torch.isinf(alpha)
    a = torch.where(special, torch.full_like(alpha, 0.5), alpha)
    d = torch.abs(a - 2)
    general = d / a * ((z2 / d + 1) ** (a / 2) - 1)
    return torch.where(
        alpha == 2,
        0.5 * z2,
        torch.where(
            alpha == 0,
            torch.log1p(0.5 * z2),
            torch.where(
                alpha == -math.inf,
                -torch.expm1(-0.5 * z2),
                torch.where(alpha == math.inf, torch.expm1(0.5 * z2), general),
            ),
        ),
    )


def barron_reference(a, k, r):
    x, y, alpha = a[:3]
    scale = a[3] if len(a) > 3 else 1.0
    return _reduce(torch_barron(x - y, alpha, scale), k, r)


def _robust(shape=(2, 3, 4), alpha_shape=(2, 3, 4), scale_shape=(4,), alphas=None, masked=False, spread=1.5):
    def make(rng):
        x, y = rng.normal(size=shape) * spread, rng.normal(size=shape)
        if alphas is not None:
            alpha = np.asarray(alphas, dtype=np.float64).reshape(alpha_shape)
        else:
            alpha = rng.uniform(-4.0, 4.0, size=alpha_shape)
        args = (x, y, alpha)
        if scale_shape is not None:
            args = args + (rng.uniform(0.5, 2.0, size=scale_shape),)
        kwargs = {}
        if masked:
            where = rng.uniform(size=shape) < 0.7
            where.reshape(-1)[0] = False
            kwargs["where"] = where
        return args, kwargs

    return make


def _robust_perfect(rng):
    x = rng.normal(size=(3, 4))
    return (x, x.copy(), rng.uniform(-3, 3, size=(3, 4))), {}


# -- total variation ----------------------------------------------------------------------------


def _image(shape, masked=False):
    def make(rng):
        kwargs = {}
        if masked:
            where = rng.uniform(size=shape[:2]) < 0.7
            where[0, 0] = False
            kwargs["where"] = where
        return (rng.normal(size=shape),), kwargs

    return make


def _flat_image(rng):
    return (np.full((2, 3, 5, 4), rng.normal()),), {}


def kornia_tv(a, k, r):
    from kornia.losses import total_variation

    return _reduce(total_variation(a[0], reduction="sum"), k, r)


# -- SSIM and MS-SSIM -----------------------------------------------------------------------------


def gauss_window(size, sigma, channels):
    """pytorch-msssim's 1-d window, built in float64 (the library builds it in float32)."""
    import torch

    coords = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return g.reshape(1, 1, 1, size).repeat(channels, 1, 1, 1)


def msssim_reference(multi):
    def reference(a, k, r):
        import pytorch_msssim

        x, y = a
        n, c, h, w = x.shape
        # each channel as an image of its own: size_average=False then gives the (N * C,) values
        fn = pytorch_msssim.ms_ssim if multi else pytorch_msssim.ssim
        size, sigma = k.get("window_size", 11), k.get("sigma", 1.5)
        value = fn(
            x.reshape(n * c, 1, h, w),
            y.reshape(n * c, 1, h, w),
            data_range=k.get("data_range", 1.0),
            size_average=False,
            win=gauss_window(size, sigma, 1),
            K=(k.get("k1", 0.01), k.get("k2", 0.03)),
        )
        return _reduce(1.0 - value.reshape(n, c), k, r)

    return reference


def _images(shape, masked=False, noise=0.15, **options):
    def make(rng):
        x = rng.uniform(size=shape)
        y = np.clip(x + noise * rng.normal(size=shape), 0.0, 1.0)
        kwargs = dict(options)
        if masked:
            where = rng.uniform(size=shape[:2]) < 0.7
            where[0, 0] = False
            where[-1, -1] = True
            kwargs["where"] = where
        return (x, y), kwargs

    return make


def _same_images(shape, **options):
    def make(rng):
        x = rng.uniform(size=shape)
        return (x, x.copy()), dict(options)

    return make


CASES = [
    Case(
        id="charbonnier",
        fn=lk.charbonnier,
        make_args=_pair(),
        reference=kornia_charbonnier,
        grad_argnums=(0, 1),
    ),
    Case(
        id="charbonnier-eps-masked",
        fn=lk.charbonnier,
        make_args=_pair(shape=(3, 5), masked=True, eps=0.5),
        reference=kornia_charbonnier,
    ),
    Case(
        id="general_robust",
        fn=lk.general_robust,
        make_args=_robust(),
        reference=barron_reference,
        grad_argnums=(0, 1, 2, 3),
        perfect=_robust_perfect,
    ),
    Case(
        id="general_robust-broadcast-masked",
        fn=lk.general_robust,
        make_args=_robust(shape=(3, 4), alpha_shape=(3, 1), scale_shape=(), masked=True),
        reference=barron_reference,
        grad_argnums=(0, 2, 3),
    ),
    Case(
        id="general_robust-special-alphas",
        fn=lk.general_robust,
        make_args=_robust(
            shape=(6, 4),
            alpha_shape=(6, 1),
            scale_shape=None,
            alphas=[0.0, 1.0, 2.0, -2.0, -math.inf, math.inf],
            spread=0.3,  # keeps e^(z^2/2) at alpha = +inf small enough for finite differences
        ),
        reference=barron_reference,
        grad_argnums=(0, 1),
    ),
    Case(
        id="total_variation",
        fn=lk.total_variation,
        make_args=_image((2, 3, 5, 4)),
        reference=kornia_tv,
        perfect=_flat_image,
    ),
    Case(
        id="total_variation-chw",
        fn=lk.total_variation,
        make_args=_image((3, 4, 6)),
        reference=kornia_tv,
    ),
    Case(
        id="total_variation-masked",
        fn=lk.total_variation,
        make_args=_image((2, 2, 3, 5), masked=True),
        reference=kornia_tv,
    ),
    Case(
        id="ssim_loss",
        fn=lk.ssim_loss,
        make_args=_images((1, 1, 16, 16)),
        reference=msssim_reference(False),
        grad_argnums=(0, 1),
        perfect=_same_images((1, 2, 12, 13)),
    ),
    Case(
        id="ssim_loss-window-range-masked",
        fn=lk.ssim_loss,
        make_args=_images(
            (2, 2, 9, 12), masked=True, window_size=5, sigma=1.0, data_range=2.0, k1=0.02, k2=0.05
        ),
        reference=msssim_reference(False),
    ),
    # the 5 scales need > (window_size - 1) * 16 pixels a side: a 3-tap window keeps the finite
    # differences affordable; the default window is compared in tests/losses/test_images.py
    Case(
        id="ms_ssim_loss",
        fn=lk.ms_ssim_loss,
        make_args=_images((1, 1, 33, 35), noise=0.05, window_size=3, sigma=1.0),
        reference=msssim_reference(True),
        perfect=_same_images((1, 1, 33, 33), window_size=3),
    ),
]
