"""Hyperparameters as arrays: a NumPy scalar or 0-d array, a torch tensor (a learnable
temperature), a JAX array or a value traced by ``jax.jit`` / ``jax.grad`` give the numbers a
Python float gives, and the gradient reaches them where the loss is smooth in them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import losskit as lk
from tests.support.backends import BY_NAME


@dataclass(frozen=True)
class Hyper:
    id: str
    fn: Callable[..., Any]
    name: str
    value: float
    make: Callable[[np.random.Generator], tuple]

    def call(self, args, value, **extra):
        out = self.fn(*args, **{self.name: value}, **extra)
        return out


def _pm1(rng, n):
    return np.where(rng.random(n) < 0.5, -1.0, 1.0)


def _probs(rng, shape):
    e = np.exp(rng.standard_normal(shape))
    return e / e.sum(axis=-1, keepdims=True)


def _segmentation(rng):
    return _probs(rng, (3, 6, 4)), rng.integers(0, 4, (3, 6))


def _pairs(rng, n=8, d=4):
    return (rng.standard_normal((n, d)), np.arange(n) // 2)


# hyperparameters the loss is smooth in: kept as arrays when a framework may differentiate them
SMOOTH = [
    Hyper("huber-delta", lk.huber, "delta", 0.7, lambda r: (r.standard_normal(7), r.standard_normal(7))),
    Hyper("quantile-q", lk.quantile, "q", 0.3, lambda r: (r.standard_normal(7), r.standard_normal(7))),
    Hyper(
        "sigmoid_focal-alpha",
        lk.sigmoid_focal,
        "alpha",
        0.25,
        lambda r: (r.standard_normal(7), (r.random(7) < 0.5).astype(float)),
    ),
    Hyper(
        "sigmoid_focal-gamma",
        lk.sigmoid_focal,
        "gamma",
        1.5,
        lambda r: (r.standard_normal(7), (r.random(7) < 0.5).astype(float)),
    ),
    Hyper(
        "softmax_focal-gamma",
        lk.softmax_focal,
        "gamma",
        2.0,
        lambda r: (r.standard_normal((6, 4)), r.integers(0, 4, 6)),
    ),
    Hyper(
        "poly1-epsilon",
        lk.poly1_cross_entropy,
        "epsilon",
        1.5,
        lambda r: (r.standard_normal((6, 4)), r.integers(0, 4, 6)),
    ),
    Hyper(
        "generalized_cross_entropy-q",
        lk.generalized_cross_entropy,
        "q",
        0.6,
        lambda r: (_probs(r, (6, 4)), r.integers(0, 4, 6)),
    ),
    Hyper(
        "distillation_kl-temperature",
        lk.distillation_kl,
        "temperature",
        2.0,
        lambda r: (r.standard_normal((5, 4)), r.standard_normal((5, 4))),
    ),
    Hyper("softmax-temperature", lk.softmax, "temperature", 0.7, lambda r: (r.standard_normal((3, 5)),)),
    Hyper(
        "log_softmax-temperature", lk.log_softmax, "temperature", 0.7, lambda r: (r.standard_normal((3, 5)),)
    ),
    Hyper(
        "info_nce-temperature",
        lk.info_nce,
        "temperature",
        0.2,
        lambda r: (r.standard_normal((6, 4)), r.standard_normal((6, 4))),
    ),
    Hyper("ntxent-temperature", lk.ntxent, "temperature", 0.3, _pairs),
    Hyper("supcon-temperature", lk.supcon, "temperature", 0.2, _pairs),
    Hyper("circle-m", lk.circle, "m", 0.25, _pairs),
    Hyper("circle-gamma", lk.circle, "gamma", 16.0, _pairs),
    Hyper(
        "triplet_margin-margin",
        lk.triplet_margin,
        "margin",
        0.8,
        lambda r: tuple(r.standard_normal((5, 3)) for _ in range(3)),
    ),
    Hyper(
        "triplet_margin_with_distance-margin",
        lk.triplet_margin_with_distance,
        "margin",
        0.8,
        lambda r: tuple(r.standard_normal((5, 3)) for _ in range(3)),
    ),
    Hyper(
        "cosine_embedding-margin",
        lk.cosine_embedding,
        "margin",
        -0.3,
        lambda r: (r.standard_normal((6, 3)), r.standard_normal((6, 3)), _pm1(r, 6)),
    ),
    Hyper(
        "margin_ranking-margin",
        lk.margin_ranking,
        "margin",
        0.3,
        lambda r: (r.standard_normal(7), r.standard_normal(7), _pm1(r, 7)),
    ),
    Hyper(
        "hinge_embedding-margin",
        lk.hinge_embedding,
        "margin",
        1.2,
        lambda r: (np.abs(r.standard_normal(7)) * 2, _pm1(r, 7)),
    ),
    Hyper(
        "multi_margin-margin",
        lk.multi_margin,
        "margin",
        0.9,
        lambda r: (r.standard_normal((6, 4)), r.integers(0, 4, 6)),
    ),
    Hyper("dice-smooth", lk.dice, "smooth", 0.5, _segmentation),
    Hyper("tversky-alpha", lk.tversky, "alpha", 0.3, _segmentation),
    Hyper("tversky-beta", lk.tversky, "beta", 0.7, _segmentation),
    Hyper(
        "smooth_labels-alpha",
        lambda labels, alpha: lk.smooth_labels(labels, alpha)[..., 0],
        "alpha",
        0.1,
        lambda r: (np.eye(4)[r.integers(0, 4, 6)],),
    ),
    Hyper("l1_penalty-scale", lk.l1_penalty, "scale", 0.01, lambda r: (r.standard_normal((3, 4)),)),
    Hyper("l2_penalty-scale", lk.l2_penalty, "scale", 0.01, lambda r: (r.standard_normal((3, 4)),)),
]

# options that set the form of the loss (an exponent, a branch, a floor): fixed numbers only
FIXED = [
    Hyper("smooth_l1-beta", lk.smooth_l1, "beta", 0.5, lambda r: (r.random(7) * 2, r.random(7) * 2)),
    Hyper("msle-eps", lk.msle, "eps", 1e-6, lambda r: (r.random(7), r.random(7))),
    Hyper("mape-eps", lk.mape, "eps", 1e-3, lambda r: (r.standard_normal(7), r.standard_normal(7))),
    Hyper("poisson_nll-eps", lk.poisson_nll, "eps", 1e-3, lambda r: (r.random(7) + 0.5, r.random(7))),
    Hyper(
        "gaussian_nll-eps",
        lk.gaussian_nll,
        "eps",
        1e-3,
        lambda r: (r.standard_normal(7), r.standard_normal(7), r.random(7) + 0.1),
    ),
    Hyper(
        "cosine_distance-epsilon",
        lk.cosine_distance,
        "epsilon",
        1e-3,
        lambda r: (r.standard_normal((5, 3)), r.standard_normal((5, 3))),
    ),
    Hyper(
        "triplet_margin-eps",
        lk.triplet_margin,
        "eps",
        1e-3,
        lambda r: tuple(r.standard_normal((5, 3)) for _ in range(3)),
    ),
    Hyper("tweedie-power", lk.tweedie, "power", 1.5, lambda r: (r.random(7) + 0.1, r.random(7))),
    Hyper(
        "triplet_margin-p",
        lk.triplet_margin,
        "p",
        1.5,
        lambda r: tuple(r.standard_normal((5, 3)) for _ in range(3)),
    ),
    Hyper(
        "cross_entropy-label_smoothing",
        lk.cross_entropy,
        "label_smoothing",
        0.1,
        lambda r: (r.standard_normal((6, 4)), r.integers(0, 4, 6)),
    ),
    Hyper(
        "cross_entropy-z_loss",
        lk.cross_entropy,
        "z_loss",
        1e-3,
        lambda r: (r.standard_normal((6, 4)), r.integers(0, 4, 6)),
    ),
    Hyper(
        "linear_cross_entropy-softcap",
        lk.linear_cross_entropy,
        "softcap",
        5.0,
        lambda r: (r.standard_normal((6, 3)), r.standard_normal((4, 3)), r.integers(0, 4, 6)),
    ),
    Hyper(
        "cross_entropy-temperature",
        lk.cross_entropy,
        "temperature",
        0.5,
        lambda r: (r.standard_normal((6, 4)), r.integers(0, 4, 6)),
    ),
]

ALL = SMOOTH + FIXED


def _total(out):
    return float(np.sum(np.asarray(out, dtype=np.float64)))


@pytest.mark.parametrize("h", ALL, ids=lambda h: h.id)
@pytest.mark.parametrize(
    "as_array",
    [
        np.float32,
        lambda v: np.array(v),
        lambda v: torch.tensor(v),
        lambda v: jnp.asarray(v),
    ],
    ids=["numpy-scalar", "numpy-0d", "torch-tensor", "jax-array"],
)
def test_an_array_gives_the_number_a_float_gives(h, as_array, rng):
    args = h.make(rng)
    expected = _total(h.call(args, h.value))
    got = _total(h.call(args, as_array(h.value)))
    # np.float32 and torch.tensor hold the value in float32: it differs from the float by 1e-8
    assert got == pytest.approx(expected, rel=1e-6)
    if as_array is not np.float32:  # in float64, exactly the float's numbers
        assert _total(h.call(args, as_array(np.float64(h.value)))) == pytest.approx(expected, rel=1e-12)


def _finite_difference(h, args, step=1e-6):
    up, down = h.value + step, h.value - step
    return (_total(h.call(args, up)) - _total(h.call(args, down))) / (2 * step)


@pytest.mark.parametrize("h", SMOOTH, ids=lambda h: h.id)
def test_torch_autograd_reaches_a_learnable_hyperparameter(h, rng):
    args = h.make(rng)
    torch_args = BY_NAME["torch"].args(args, {})[0]
    param = torch.tensor(h.value, dtype=torch.float64, requires_grad=True)
    out = h.call(torch_args, param)
    assert out.requires_grad
    out.sum().backward()
    assert float(out.sum()) == pytest.approx(_total(h.call(args, h.value)), rel=1e-12)
    assert float(param.grad) == pytest.approx(_finite_difference(h, args), rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("h", SMOOTH, ids=lambda h: h.id)
def test_jax_grad_and_jit_over_a_hyperparameter(h, rng):
    args = h.make(rng)
    jax_args = BY_NAME["jax"].args(args, {})[0]

    def total(v):
        return jnp.sum(h.call(jax_args, v))

    grad = jax.grad(total)(jnp.asarray(h.value))
    assert float(grad) == pytest.approx(_finite_difference(h, args), rel=1e-5, abs=1e-8)
    jitted = jax.jit(total)
    assert float(jitted(h.value)) == pytest.approx(_total(h.call(args, h.value)), rel=1e-12)
    # one compilation serves every value: the hyperparameter is traced, not baked in
    assert float(jitted(h.value * 1.01)) == pytest.approx(_total(h.call(args, h.value * 1.01)), rel=1e-12)


@pytest.mark.parametrize("h", FIXED, ids=lambda h: h.id)
def test_a_form_setting_option_refuses_a_differentiable_array(h, rng):
    args = h.make(rng)
    torch_args = BY_NAME["torch"].args(args, {})[0]
    with pytest.raises(TypeError, match=rf"{h.name} must be a fixed number"):
        h.call(torch_args, torch.tensor(h.value, dtype=torch.float64, requires_grad=True))
    jax_args = BY_NAME["jax"].args(args, {})[0]
    with pytest.raises(TypeError, match=rf"{h.name} must be a fixed number"):
        jax.jit(lambda v: jnp.sum(h.call(jax_args, v)))(h.value)


def test_range_is_checked_on_concrete_arrays_and_shape_and_dtype_on_all(rng):
    x, y = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    with pytest.raises(ValueError, match=r"temperature must be in \(0, inf\); got -1.0"):
        lk.info_nce(x, y, temperature=np.array(-1.0))
    with pytest.raises(ValueError, match=r"temperature must be in \(0, inf\)"):
        lk.info_nce(torch.tensor(x), torch.tensor(y), temperature=torch.tensor(0.0, requires_grad=True))
    with pytest.raises(ValueError, match=r"delta must be a number or a 0-d array; got an array of shape"):
        lk.huber(x, y, delta=np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="delta must be a real number; got an array of dtype bool"):
        lk.huber(x, y, delta=np.array(True))
    with pytest.raises(TypeError, match="delta must be a real number or a 0-d array; got str"):
        lk.huber(x, y, delta="1")


def test_a_learnable_hyperparameter_must_come_from_the_inputs_library(rng):
    x, y = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    with pytest.raises(TypeError, match="temperature is a torch array that may be differentiated"):
        lk.info_nce(x, y, temperature=torch.tensor(0.1, requires_grad=True))
    # a fixed torch value is just a number
    assert float(lk.info_nce(x, y, temperature=torch.tensor(0.1, dtype=torch.float64))) == pytest.approx(
        float(lk.info_nce(x, y, temperature=0.1)), rel=1e-12
    )


def test_a_learnable_temperature_trains_like_clips(rng):
    """The CLIP set-up: log of the inverse temperature is a parameter; one SGD step moves it the way
    the gradient of the contrastive loss says."""
    q = torch.tensor(rng.standard_normal((8, 4)))
    k = q + 0.1 * torch.tensor(rng.standard_normal((8, 4)))
    log_scale = torch.nn.Parameter(torch.tensor(np.log(1 / 0.07), dtype=torch.float64))
    loss = lk.info_nce(q, k, temperature=torch.exp(-log_scale))
    loss.backward()
    ref = log_scale.detach().clone().requires_grad_()
    logits = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(k, dim=1).T * ref.exp()
    torch.nn.functional.cross_entropy(logits, torch.arange(8)).backward()
    assert float(log_scale.grad) == pytest.approx(float(ref.grad), rel=1e-10)
