"""ArcFace, CosFace, SphereFace, ProxyNCA and Proxy-Anchor beyond the shared table: PML's
defaults, ArcFace's two branches and its gradient at the ends of the angle range, SphereFace's
piecewise margin, ``where=`` as leaving samples out, bad input.

All comparisons with pytorch-metric-learning are in float64 with rtol 1e-7 (the formulas are
the same; only rounding differs)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pytorch_metric_learning import losses as pml
from pytorch_metric_learning.reducers import DoNothingReducer

import losskit as lk
from tests.support.numerics import assert_where_matches_subset

MARGIN_LOSSES = [lk.arcface, lk.cosface, lk.sphereface]
ALL = MARGIN_LOSSES + [lk.proxy_nca, lk.proxy_anchor]
PML = {
    lk.arcface: (pml.ArcFaceLoss, "W"),
    lk.cosface: (pml.CosFaceLoss, "W"),
    lk.sphereface: (pml.SphereFaceLoss, "W"),
    lk.proxy_nca: (pml.ProxyNCALoss, "proxies"),
    lk.proxy_anchor: (pml.ProxyAnchorLoss, "proxies"),
}


def _inputs(rng, n=8, d=5, c=4):
    return rng.normal(size=(n, d)), rng.integers(0, c, size=n), rng.normal(size=(c, d))


def _pml(fn, x, y, w, per_element=False, **init):
    """PML's value (its own reducer, or its per-element losses) and autograd gradients with
    respect to the embeddings and ours ``(C, D)`` class matrix."""
    cls, key = PML[fn]
    if per_element:
        init["reducer"] = DoNothingReducer()
    loss = cls(num_classes=w.shape[0], embedding_size=w.shape[1], **init)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    out = torch.func.functional_call(loss, {key: tw.T if key == "W" else tw}, (tx, torch.tensor(y)))
    if per_element:
        out = out["loss"]["losses"]
    gx, gw = torch.autograd.grad(out.sum(), [tx, tw])
    return out.detach().numpy(), gx.numpy(), gw.numpy()


@pytest.mark.parametrize("fn", ALL, ids=lambda f: f.__name__)
def test_pml_defaults_give_our_defaults(fn, rng):
    x, y, w = _inputs(rng)
    expected, gx, gw = _pml(fn, x, y, w)  # PML's own defaults
    # PML's ArcFace margin is 28.6 degrees; ours is in radians
    options = {"margin": math.radians(28.6)} if fn is lk.arcface else {}
    value, (ax, aw) = lk.value_and_grad(fn, (0, 2))(x, y, w, **options)
    np.testing.assert_allclose(value, expected, rtol=1e-7)
    np.testing.assert_allclose(ax, gx, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(aw, gw, rtol=1e-7, atol=1e-12)


def test_arcface_default_margin_is_half_a_radian_and_pmls_about_the_same():
    assert math.isclose(math.radians(28.6), 0.5, rel_tol=2e-3)


def test_arcface_second_branch_past_pi_minus_m_matches_pml(rng):
    m = 0.5
    w = rng.normal(size=(3, 4))
    y = np.array([0, 1, 2, 0])
    unit = w[y] / np.linalg.norm(w[y], axis=1, keepdims=True)
    x = np.concatenate([-unit[:2] + 0.05 * rng.normal(size=(2, 4)), rng.normal(size=(2, 4))])
    cos_t = np.sum(x / np.linalg.norm(x, axis=1, keepdims=True) * unit, axis=1)
    assert np.all(np.arccos(cos_t[:2]) > math.pi - m)  # these two take cos(theta) - m sin(m)
    expected, gx, gw = _pml(lk.arcface, x, y, w, per_element=True, margin=math.degrees(m), scale=16.0)
    value, (ax, aw) = lk.value_and_grad(lk.arcface, (0, 2))(x, y, w, margin=m, scale=16.0, reduction="none")
    np.testing.assert_allclose(value, expected, rtol=1e-7)
    np.testing.assert_allclose(ax, gx, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(aw, gw, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("fn", ALL, ids=lambda f: f.__name__)
@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["aligned", "opposite"])
def test_gradient_is_finite_when_an_embedding_lies_on_its_class_vector(fn, sign, rng):
    # theta = 0 or pi: where acos' gradient is infinite.  The losses differentiate cos(theta)
    # without it, so every gradient stays finite.
    w = rng.normal(size=(3, 4))
    y = np.array([0, 1, 2, 1])
    x = sign * 3.0 * w[y]
    value, (gx, gw) = lk.value_and_grad(fn, (0, 2))(x, y, w, reduction="sum")
    assert np.isfinite(value)
    assert np.all(np.isfinite(gx)) and np.all(np.isfinite(gw))


def test_arcface_gradient_near_theta_zero_matches_pml(rng):
    w = rng.normal(size=(3, 4))
    y = np.array([0, 1, 2])
    # theta about 1e-4: the ratio c / sin(theta) is large.  (Closer still, both libraries lose
    # digits alike: sin(theta) from cos(theta) carries a relative error of about eps / theta^2.)
    x = w[y] + 1e-4 * rng.normal(size=(3, 4))
    expected, gx, gw = _pml(lk.arcface, x, y, w, per_element=True, margin=math.degrees(0.5), scale=4.0)
    value, (ax, aw) = lk.value_and_grad(lk.arcface, (0, 2))(x, y, w, scale=4.0, reduction="none")
    np.testing.assert_allclose(value, expected, rtol=1e-7)
    np.testing.assert_allclose(ax, gx, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(aw, gw, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("margin", [2, 3, 4])
def test_sphereface_target_logit_is_continuous_and_decreasing_in_the_angle(margin):
    # two classes: the target along e1, the other along e3 (cos 0 for every x in the e1-e2
    # plane), so the loss of label 0 grows with the angle exactly as psi falls
    theta = np.linspace(0.0, math.pi, 721)
    x = np.stack([np.cos(theta), np.sin(theta), np.zeros_like(theta)], axis=1)
    w = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    y = np.zeros(theta.size, dtype=np.int64)
    loss = lk.sphereface(x, y, w, margin=margin, scale=4.0, reduction="none")
    assert np.all(np.diff(loss) > 0)
    assert np.max(np.diff(loss)) < 0.2  # no jump between neighbouring angles
    expected, _, _ = _pml(lk.sphereface, x, y, w, per_element=True, margin=margin, scale=4.0)
    np.testing.assert_allclose(loss, expected, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("fn", ALL, ids=lambda f: f.__name__)
def test_where_is_leaving_the_samples_out(fn, rng):
    x, y, w = _inputs(rng, n=9)
    mask = rng.uniform(size=9) < 0.6
    mask[0], mask[1] = True, False
    reductions = ("mean", "sum") if fn is lk.proxy_anchor else ("mean", "sum", "none")
    assert_where_matches_subset(fn, (x, y, w), {}, mask, (x[mask], y[mask], w), reductions=reductions)


@pytest.mark.parametrize("fn", ALL, ids=lambda f: f.__name__)
def test_nothing_counted_gives_zero_mean_and_zero_gradient(fn, rng):
    x, y, w = _inputs(rng)
    value, (gx, gw) = lk.value_and_grad(fn, (0, 2))(x, y, w, where=np.zeros(8, dtype=bool))
    assert value == 0.0
    assert np.all(gx == 0) and np.all(gw == 0)


def test_proxy_anchor_divides_the_positive_part_by_the_proxies_with_positives(rng):
    x, _, w = _inputs(rng, n=6, c=5)
    y = np.array([0, 0, 3, 3, 3, 0])  # two of five proxies have positives
    expected, gx, gw = _pml(lk.proxy_anchor, x, y, w)
    value, (ax, aw) = lk.value_and_grad(lk.proxy_anchor, (0, 2))(x, y, w)
    np.testing.assert_allclose(value, expected, rtol=1e-7)
    np.testing.assert_allclose(ax, gx, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(aw, gw, rtol=1e-7, atol=1e-12)
    per_proxy = lk.proxy_anchor(x, y, w, reduction="none")
    assert per_proxy.shape == (5,)
    np.testing.assert_allclose(lk.proxy_anchor(x, y, w, reduction="sum"), per_proxy.sum(), rtol=1e-12)


@pytest.mark.parametrize("fn", ALL, ids=lambda f: f.__name__)
def test_float32_gives_float32_close_to_float64(fn, rng):
    x, y, w = _inputs(rng)
    options = {"scale": 8.0} if fn in MARGIN_LOSSES else {}
    v64 = fn(x, y, w, **options)
    v32 = fn(x.astype(np.float32), y, w.astype(np.float32), **options)
    assert np.asarray(v32).dtype == np.float32
    np.testing.assert_allclose(v32, v64, rtol=1e-4)


@pytest.mark.parametrize(
    "fn", [lk.arcface, lk.cosface, lk.proxy_nca, lk.proxy_anchor], ids=lambda f: f.__name__
)
def test_a_zero_embedding_gives_finite_numbers(fn, rng):
    x, y, w = _inputs(rng)
    x[2] = 0.0
    value, (gx, gw) = lk.value_and_grad(fn, (0, 2))(x, y, w)
    assert np.isfinite(value) and np.all(np.isfinite(gx)) and np.all(np.isfinite(gw))


def _bad(rng):
    x, y, w = _inputs(rng)
    return [
        ((x[0], y, w), {}, ValueError, "embeddings"),
        ((x.astype(np.int64), y, w), {}, TypeError, "embeddings"),
        ((x, y.astype(np.float64), w), {}, TypeError, "labels"),
        ((x, y[:-1], w), {}, ValueError, "labels"),
        ((x, np.concatenate([y[:-1], [4]]), w), {}, ValueError, "labels"),
        ((x, y, w[:, :-1]), {}, ValueError, "CLASSES"),
        ((x, y, w[:0]), {}, ValueError, "CLASSES"),
        ((x, y, w), {"where": np.ones(7, dtype=bool)}, ValueError, "where"),
        ((x, y, w), {"where": np.ones(8)}, TypeError, "where"),
        ((x, y, w), {"reduction": "batchmean"}, ValueError, "reduction"),
    ]


@pytest.mark.parametrize("fn", ALL, ids=lambda f: f.__name__)
def test_bad_input_is_refused_naming_the_argument(fn, rng):
    classes = "weight" if fn in MARGIN_LOSSES else "proxies"
    for args, kwargs, error, name in _bad(rng):
        name = classes if name == "CLASSES" else name
        with pytest.raises(error, match=name):
            fn(*args, **kwargs)


@pytest.mark.parametrize(
    "fn,options,name",
    [
        (lk.arcface, {"margin": -0.1}, "margin"),
        (lk.arcface, {"margin": 3.5}, "margin"),
        (lk.arcface, {"scale": 0.0}, "scale"),
        (lk.cosface, {"margin": -0.1}, "margin"),
        (lk.cosface, {"scale": -1.0}, "scale"),
        (lk.sphereface, {"margin": 0}, "margin"),
        (lk.sphereface, {"margin": 2.5}, "margin"),
        (lk.sphereface, {"scale": 0.0}, "scale"),
        (lk.proxy_nca, {"softmax_scale": 0.0}, "softmax_scale"),
        (lk.proxy_anchor, {"alpha": 0.0}, "alpha"),
        (lk.proxy_anchor, {"margin": float("nan")}, "margin"),
    ],
)
def test_bad_options_are_refused_naming_them(fn, options, name, rng):
    x, y, w = _inputs(rng)
    with pytest.raises((ValueError, TypeError), match=name):
        fn(x, y, w, **options)
