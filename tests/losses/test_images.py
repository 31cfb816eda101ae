"""The image losses beyond the shared table: Kornia's robust losses as special shapes of
Barron's loss, the shape and scale as learnable inputs, the limits near alpha = 0 and 2,
SSIM and MS-SSIM at their default window against pytorch-msssim (float64, values rtol 1e-7,
autograd gradients rtol 1e-6), and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import losskit as lk
from tests.support.cases.images import gauss_window, torch_barron

T = torch.from_numpy


# -- Charbonnier -----------------------------------------------------------------------------------


@pytest.mark.parametrize("eps", [1e-3, 0.1, 2.0])
def test_charbonnier_is_kornias_on_rescaled_data(eps, rng):
    from kornia.losses import charbonnier_loss

    x, y = rng.normal(size=(2, 3, 5)), rng.normal(size=(2, 3, 5))
    tx = T(x).requires_grad_(True)
    ref = eps * (charbonnier_loss(tx / eps, T(y) / eps, reduction="none") + 1.0)
    (ref_grad,) = torch.autograd.grad(ref.sum(), tx)
    value, g = lk.value_and_grad(lk.charbonnier)(x, y, eps=eps, reduction="none")
    np.testing.assert_allclose(value, ref.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(g, ref_grad.numpy(), rtol=1e-10, atol=1e-14)


def test_charbonnier_at_a_perfect_prediction_is_eps():
    x = np.array([1.0, -2.0])
    np.testing.assert_allclose(lk.charbonnier(x, x, eps=0.25, reduction="none"), [0.25, 0.25])
    assert float(lk.charbonnier(np.array([1e300]), np.array([-1e300]))) == pytest.approx(2e300)


# -- Barron's general robust loss ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,alpha",
    [
        ("charbonnier_loss", 1.0),
        ("cauchy_loss", 0.0),
        ("geman_mcclure_loss", -2.0),
        ("welsch_loss", -math.inf),
    ],
)
def test_general_robust_special_shapes_are_kornias_losses(name, alpha, rng):
    import kornia.losses

    x, y = rng.normal(size=(3, 7)) * 2, rng.normal(size=(3, 7))
    ref = getattr(kornia.losses, name)(T(x), T(y), reduction="none").numpy()
    ours = lk.general_robust(x, y, alpha, reduction="none")
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-15)


def test_general_robust_is_continuous_through_its_special_shapes(rng):
    x = rng.normal(size=20) * 3
    y = np.zeros(20)
    q = x * x
    closed = {2.0: 0.5 * q, 0.0: np.log1p(0.5 * q)}
    for alpha, expected in closed.items():
        for step in (1e-12, 1e-9, 1e-6):
            for a in (alpha - step, alpha + step):
                ours = lk.general_robust(x, y, a, reduction="none")
                np.testing.assert_allclose(ours, expected, rtol=50 * step * (1 + np.log1p(q).max()))
    # very negative shapes approach Welsch's loss
    np.testing.assert_allclose(
        lk.general_robust(x, y, -1e12, reduction="none"), -np.expm1(-0.5 * q), rtol=1e-9
    )


def test_general_robust_alpha_gradient_near_zero_and_two(rng):
    x = rng.normal(size=(4, 5)) * 2
    y = rng.normal(size=(4, 5))
    q = (x - y) ** 2
    # at alpha = 0 the derivative in alpha is -L/2 + q / (2 (2 + q)) + L^2 / 4, L = log(1 + q / 2)
    lg = np.log1p(0.5 * q)
    at_zero = -lg / 2 + q / (2 * (2 + q)) + lg * lg / 4
    for a in (0.0, 1e-10, -1e-7, 3e-4):
        _, ga = lk.value_and_grad(lk.general_robust, 2)(x, y, np.full(q.shape, a), reduction="sum")
        np.testing.assert_allclose(ga, at_zero, rtol=max(1e-9, 20 * abs(a)), atol=1e-12)
    # near alpha = 2 and elsewhere: PyTorch autograd of the paper's formula (no cancellation there
    # at these distances)
    for a in (2.0 - 1e-4, 2.0 + 1e-4, 0.7, -0.4, 0.45, 0.55, 3.5, -7.0):
        alpha = T(np.full(q.shape, a)).requires_grad_(True)
        ref = torch_barron(T(x) - T(y), alpha, 1.0).sum()
        (ref_grad,) = torch.autograd.grad(ref, alpha)
        _, ga = lk.value_and_grad(lk.general_robust, 2)(x, y, np.full(q.shape, a), reduction="sum")
        np.testing.assert_allclose(ga, ref_grad.numpy(), rtol=1e-7, atol=1e-14, err_msg=f"alpha={a}")
    # at exactly 2 the loss has an |alpha - 2| log |alpha - 2| term: +inf, 0 where the residual is 0
    _, ga = lk.value_and_grad(lk.general_robust, 2)(
        np.array([0.0, 1.0]), np.zeros(2), np.array([2.0, 2.0]), reduction="sum"
    )
    assert ga[0] == 0 and np.isposinf(ga[1])


def test_general_robust_learns_alpha_and_scale_through_torch_autograd(rng):
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    alpha = torch.tensor([0.5, 1.5, -1.0], dtype=torch.float64, requires_grad=True)
    scale = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    tx = T(x).requires_grad_(True)
    value = lk.general_robust(tx, T(y), alpha, scale)
    grads = torch.autograd.grad(value, (tx, alpha, scale))
    _, ours = lk.value_and_grad(lk.general_robust, (0, 2, 3))(x, y, alpha.detach().numpy(), np.array(0.8))
    for g, o in zip(grads, ours):
        np.testing.assert_allclose(g.numpy(), o, rtol=1e-10, atol=1e-14)


def test_general_robust_refuses_bad_input(rng):
    x, y = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    with pytest.raises(ValueError, match="scale"):
        lk.general_robust(x, y, 1.0, 0.0)
    with pytest.raises(ValueError, match="scale"):
        lk.general_robust(x, y, 1.0, np.array([1.0, -1.0, 2.0]))
    with pytest.raises(ValueError, match="alpha"):
        lk.general_robust(x, y, np.array([1.0, np.nan, 2.0]))
    with pytest.raises(ValueError, match="alpha"):
        lk.general_robust(x, y, np.ones((4,)))
    with pytest.raises(TypeError, match="alpha"):
        lk.general_robust(x, y, "1")
    with pytest.raises(ValueError, match="alpha"):
        lk.value_and_grad(lk.general_robust, 2)(x, y, 1.0)
    with pytest.raises(ValueError, match="target"):
        lk.general_robust(x, y[:1], 1.0)


# -- total variation -------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 3, 6, 5), (3, 4, 7), (1, 1, 1, 5)])
def test_total_variation_is_kornias(shape, rng):
    from kornia.losses import total_variation

    img = rng.normal(size=shape)
    t = T(img).requires_grad_(True)
    ref = total_variation(t, reduction="sum")
    (ref_grad,) = torch.autograd.grad(ref.sum(), t)
    value, g = lk.value_and_grad(lk.total_variation)(img, reduction="none")
    np.testing.assert_allclose(value, ref.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(g, ref_grad.numpy(), atol=1e-15)
    assert float(lk.total_variation(img)) == pytest.approx(float(ref.mean()), rel=1e-12)


def test_total_variation_refuses_bad_input():
    with pytest.raises(ValueError, match="image"):
        lk.total_variation(np.zeros((4, 4)))
    with pytest.raises(TypeError, match="image"):
        lk.total_variation(np.zeros((1, 4, 4), dtype=np.int64))


# -- SSIM and MS-SSIM ------------------------------------------------------------------------------


def _images(rng, shape, noise=0.1):
    x = rng.uniform(size=shape)
    return x, np.clip(x + noise * rng.normal(size=shape), 0.0, 1.0)


def _per_channel(fn, x, y, **kwargs):
    n, c, h, w = x.shape
    out = fn(x.reshape(n * c, 1, h, w), y.reshape(n * c, 1, h, w), size_average=False, **kwargs)
    return out.reshape(n, c)


def test_ssim_matches_pytorch_msssim_with_its_float32_window(rng):
    import pytorch_msssim

    x, y = _images(rng, (2, 3, 20, 17))
    ref = 1 - pytorch_msssim.ssim(T(x), T(y), data_range=1.0)  # window computed in float32
    # the window's float32 rounding is the only difference
    assert float(lk.ssim_loss(x, y)) == pytest.approx(float(ref), rel=1e-6)


@pytest.mark.parametrize("argnum", [0, 1])
def test_ssim_value_and_gradients_match_pytorch_msssim(argnum, rng):
    import pytorch_msssim

    x, y = _images(rng, (2, 2, 19, 23))
    args = [T(x), T(y)]
    args[argnum] = args[argnum].requires_grad_(True)
    ref = 1 - _per_channel(pytorch_msssim.ssim, *args, data_range=1.0, win=gauss_window(11, 1.5, 1))
    (ref_grad,) = torch.autograd.grad(ref.sum(), args[argnum])
    value, g = lk.value_and_grad(lk.ssim_loss, argnum)(x, y, reduction="none")
    np.testing.assert_allclose(value, ref.detach().numpy(), rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(g, ref_grad.numpy(), rtol=1e-6, atol=1e-12)


def test_ssim_limit_at_an_infinite_pixel(rng):
    """The windows holding an infinite (or float32-overflowing) pixel take SSIM's limit, 0."""
    import pytorch_msssim

    x, y = _images(rng, (1, 2, 14, 14))
    win = gauss_window(11, 1.5, 1)
    for big in (np.inf, -np.inf):
        bad = x.copy()
        bad[0, 1, 3, 12] = big
        far = bad.copy()
        far[0, 1, 3, 12] = math.copysign(1e60, big)
        ref = 1 - _per_channel(pytorch_msssim.ssim, T(far), T(y), data_range=1.0, win=win)
        value, g = lk.value_and_grad(lk.ssim_loss)(bad, y, reduction="none")
        np.testing.assert_allclose(value, ref.numpy(), rtol=1e-12)
        assert np.isfinite(g).all() and g[0, 1, 3, 12] == 0


@pytest.mark.parametrize("argnum", [0, 1])
def test_ms_ssim_value_and_gradients_match_pytorch_msssim(argnum, rng):
    import pytorch_msssim

    x, y = _images(rng, (1, 2, 161, 166), noise=0.2)  # an odd and an even side
    args = [T(x), T(y)]
    args[argnum] = args[argnum].requires_grad_(True)
    ref = 1 - _per_channel(pytorch_msssim.ms_ssim, *args, data_range=1.0, win=gauss_window(11, 1.5, 1))
    (ref_grad,) = torch.autograd.grad(ref.sum(), args[argnum])
    value, g = lk.value_and_grad(lk.ms_ssim_loss, argnum)(x, y, reduction="none")
    np.testing.assert_allclose(value, ref.detach().numpy(), rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(g, ref_grad.numpy(), rtol=1e-6, atol=1e-12)
    mean = 1 - pytorch_msssim.ms_ssim(T(x), T(y), data_range=1.0, win=gauss_window(11, 1.5, 2))
    assert float(lk.ms_ssim_loss(x, y)) == pytest.approx(float(mean), rel=1e-7)


def test_ms_ssim_tends_to_one_as_a_pixel_grows(rng):
    x, y = _images(rng, (1, 1, 33, 33), noise=0.05)
    kwargs = {"window_size": 3, "sigma": 1.0}
    for big in (np.inf, -np.inf):
        bad = x.copy()
        bad[0, 0, 16, 5] = big
        value, g = lk.value_and_grad(lk.ms_ssim_loss)(bad, y, **kwargs)
        assert float(value) == 1.0 and np.isfinite(g).all()
    grows = []
    for t in (1e8, 1e30, 1e100):
        far = x.copy()
        far[0, 0, 16, 5] = t
        grows.append(float(lk.ms_ssim_loss(far, y, **kwargs)))
    assert grows[0] < grows[1] < grows[2] <= 1.0 and grows[2] == pytest.approx(1.0, abs=1e-12)


def test_ssim_losses_refuse_bad_input(rng):
    x, y = _images(rng, (1, 1, 16, 16))
    with pytest.raises(ValueError, match="window_size=11 pixels"):
        lk.ssim_loss(x[..., :10, :], y[..., :10, :])
    with pytest.raises(ValueError, match="window_size"):
        lk.ssim_loss(x, y, window_size=4)
    with pytest.raises(ValueError, match="sigma"):
        lk.ssim_loss(x, y, sigma=0.0)
    with pytest.raises(ValueError, match="data_range"):
        lk.ssim_loss(x, y, data_range=-1.0)
    with pytest.raises(ValueError, match=r"input must be a batch of images \(N, C, H, W\)"):
        lk.ssim_loss(x[0], y[0])
    with pytest.raises(ValueError, match="target"):
        lk.ssim_loss(x, y[..., :15])
    big = np.zeros((1, 1, 160, 200))
    with pytest.raises(ValueError, match=r"at least 161\) for 5 scales"):
        lk.ms_ssim_loss(big, big)
    with pytest.raises(ValueError, match=r"at least 33\)"):
        lk.ms_ssim_loss(x, y, window_size=3)
