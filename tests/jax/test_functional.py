"""losskit.jax: the custom-derivative cross-entropy and chunked linear cross-entropy that
losskit's losses take on JAX arrays, under jax.jit, against PyTorch/Optax and losskit's
array-API functions in float64, in reverse and forward mode."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import torch.nn.functional as F

import losskit as lk
import losskit.jax as lj
from losskit.core.backend import namespace
from losskit.core.specs import (
    CrossEntropyArrays,
    CrossEntropyOptions,
    CrossEntropySpec,
    LinearCrossEntropyArrays,
    LinearCrossEntropyOptions,
    LinearCrossEntropySpec,
)
from losskit.jax import functional
from losskit.losses.classification import portable_cross_entropy
from losskit.losses.linear_cross_entropy import portable_linear_cross_entropy


@pytest.fixture(autouse=True)
def _no_numba(monkeypatch):
    monkeypatch.setenv("LOSSKIT_DISABLE_NUMBA", "1")


def _upstream(rng, reduction, shape):
    return rng.random(shape) + 0.5 if reduction == "none" else 2.5


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_torch_under_jit(rng, reduction):
    x = rng.standard_normal((6, 5, 4))  # classes on axis 1
    t = rng.integers(0, 5, (6, 4))
    t[0, 0] = -100
    w = rng.random(5) + 0.1
    up = _upstream(rng, reduction, (6, 4))

    @jax.jit
    def total(a):
        loss = lj.cross_entropy(
            a, jnp.asarray(t), jnp.asarray(w), axis=1, reduction=reduction, label_smoothing=0.1
        )
        return jnp.sum(loss * up)

    v, g = jax.value_and_grad(total)(jnp.asarray(x))
    xt = torch.tensor(x, requires_grad=True)
    ref = F.cross_entropy(xt, torch.tensor(t), torch.tensor(w), reduction=reduction, label_smoothing=0.1)
    ref = (ref * torch.as_tensor(up)).sum()
    ref.backward()
    assert float(v) == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(np.asarray(g), xt.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "opts",
    [{"z_loss": 1e-2, "temperature": 0.7}, {"normalizer": 4.0}, {"where": "m"}, {"label_smoothing": 0.3}],
    ids=lambda o: "-".join(o),
)
def test_cross_entropy_options_match_losskit(rng, opts):
    x = rng.standard_normal((9, 7))
    t = rng.integers(0, 7, 9)
    t[2] = -100
    kw = dict(opts)
    if kw.get("where") == "m":
        kw["where"] = rng.random(9) > 0.3
    ref_v, ref_g = lk.value_and_grad(lk.cross_entropy)(x, t, **kw)
    jkw = {k: (jnp.asarray(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    v, g = jax.value_and_grad(lambda a: lj.cross_entropy(a, jnp.asarray(t), **jkw))(jnp.asarray(x))
    assert float(v) == pytest.approx(float(ref_v), rel=1e-12)
    np.testing.assert_allclose(np.asarray(g), ref_g, rtol=1e-12, atol=1e-15)


def test_cross_entropy_matches_optax_and_all_ignored():
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.standard_normal((8, 10)))
    t = jnp.asarray(rng.integers(0, 10, 8))
    ref = optax.losses.softmax_cross_entropy_with_integer_labels(x, t)
    np.testing.assert_allclose(lj.cross_entropy(x, t, reduction="none"), ref, rtol=1e-12)
    v, g = jax.value_and_grad(lambda a: lj.cross_entropy(a, jnp.full((8,), -100)))(x)
    assert float(v) == 0.0 and not np.any(np.asarray(g))


def test_cross_entropy_float32_and_probability_targets(rng):
    x = rng.standard_normal((32, 100))
    t = rng.integers(0, 100, 32)
    ref_v, ref_g = lk.value_and_grad(lk.cross_entropy)(x, t, label_smoothing=0.1)
    v, g = jax.value_and_grad(lambda a: lj.cross_entropy(a, jnp.asarray(t), label_smoothing=0.1))(
        jnp.asarray(x, jnp.float32)
    )
    assert v.dtype == jnp.float32 and g.dtype == jnp.float32
    assert float(v) == pytest.approx(float(ref_v), rel=1e-5)
    np.testing.assert_allclose(np.asarray(g), ref_g, rtol=1e-5, atol=1e-7 * np.abs(ref_g).max())
    q = rng.random((32, 100))
    q /= q.sum(axis=1, keepdims=True)
    assert float(lj.cross_entropy(jnp.asarray(x), jnp.asarray(q))) == pytest.approx(
        float(lk.cross_entropy(x, q)), rel=1e-12
    )


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("chunk_size", [4, "auto"])
def test_linear_cross_entropy_matches_torch(rng, reduction, chunk_size):
    x = rng.standard_normal((3, 7, 6))
    w = rng.standard_normal((13, 6))
    b = rng.standard_normal(13)
    t = rng.integers(0, 13, (3, 7))
    t[1, 2] = -100
    up = _upstream(rng, reduction, (3, 7))
    kw = dict(reduction=reduction, chunk_size=chunk_size, label_smoothing=0.1, softcap=3.0)

    @jax.jit
    def total(a, bw, bb):
        return jnp.sum(lj.linear_cross_entropy(a, bw, jnp.asarray(t), bb, **kw) * up)

    v, grads = jax.value_and_grad(total, argnums=(0, 1, 2))(jnp.asarray(x), jnp.asarray(w), jnp.asarray(b))
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    z = 3.0 * torch.tanh(F.linear(xt, wt, bt) / 3.0)
    ref = F.cross_entropy(z.transpose(1, 2), torch.tensor(t), reduction=reduction, label_smoothing=0.1)
    (ref * torch.as_tensor(up)).sum().backward()
    assert float(v) == pytest.approx((ref * torch.as_tensor(up)).sum().item(), rel=1e-12)
    for g, r in zip(grads, (xt, wt, bt)):
        np.testing.assert_allclose(np.asarray(g), r.grad.numpy(), rtol=1e-11, atol=1e-13)


def test_linear_cross_entropy_no_bias_z_loss_and_all_ignored(rng):
    x = rng.standard_normal((10, 4))
    w = rng.standard_normal((9, 4))
    t = rng.integers(0, 9, 10)
    ref_v, (rx, rw) = lk.value_and_grad(lk.linear_cross_entropy, argnums=(0, 1))(x, w, t, z_loss=1e-2)
    v, (gx, gw) = jax.value_and_grad(
        lambda a, bw: lj.linear_cross_entropy(a, bw, jnp.asarray(t), z_loss=1e-2, chunk_size=3),
        argnums=(0, 1),
    )(jnp.asarray(x), jnp.asarray(w))
    assert float(v) == pytest.approx(float(ref_v), rel=1e-12)
    np.testing.assert_allclose(np.asarray(gx), rx, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(np.asarray(gw), rw, rtol=1e-11, atol=1e-14)
    none = jnp.full((10,), -100)
    v, (gx, gw) = jax.value_and_grad(lambda a, bw: lj.linear_cross_entropy(a, bw, none), argnums=(0, 1))(
        jnp.asarray(x), jnp.asarray(w)
    )
    assert float(v) == 0.0 and not np.any(np.asarray(gx)) and not np.any(np.asarray(gw))
    with pytest.raises(ValueError, match="chunk_size"):
        lj.linear_cross_entropy(jnp.asarray(x), jnp.asarray(w), jnp.asarray(t), chunk_size=-1)


# -- the fast paths behind losskit's losses on JAX arrays ------------------------------------


def _portable(x, t, weight=None, normalizer=None, **options):
    """The array-API implementation, bypassing the seam."""
    arrays = CrossEntropyArrays(x, t, weight, None, normalizer)
    spec = CrossEntropySpec.of(namespace(x=x), CrossEntropyOptions(**options), arrays)
    return portable_cross_entropy(namespace(x=x), spec, arrays, frozenset())[0]


@pytest.fixture
def data(rng):
    x = jnp.asarray(rng.standard_normal((6, 5)))
    t = jnp.asarray(np.array([0, 4, 2, -100, 1, 3]))
    w = jnp.asarray(rng.random(5) + 0.5)
    return x, t, w


def test_lk_cross_entropy_on_jax_runs_the_custom_derivative(monkeypatch, data):
    x, t, _ = data
    calls = []
    real = functional._ce_rows
    monkeypatch.setattr(functional, "_ce_rows", lambda *a, **k: calls.append(1) or real(*a, **k))
    jax.grad(lambda a: lk.cross_entropy(a, t))(x)
    assert calls
    calls.clear()
    lk.cross_entropy(x, jax.nn.softmax(x))  # probability targets: declined, portable code
    assert not calls


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.2, "z_loss": 1e-2, "temperature": 0.7}])
def test_every_mode_of_differentiation_matches_the_portable_code(data, reduction, options):
    x, t, w = data
    up = jnp.linspace(0.5, 1.5, 6)

    scale = up if reduction == "none" else 1.0

    def fast(a):
        return jnp.sum(lk.cross_entropy(a, t, w, reduction=reduction, **options) * scale)

    def slow(a):
        return jnp.sum(_portable(a, t, w, reduction=reduction, **options) * scale)

    tangent = jnp.asarray(np.random.default_rng(1).standard_normal(x.shape))
    np.testing.assert_allclose(fast(x), slow(x), rtol=1e-12)
    np.testing.assert_allclose(jax.grad(fast)(x), jax.grad(slow)(x), rtol=1e-10, atol=1e-14)
    jvp_fast, jvp_slow = (jax.jvp(f, (x,), (tangent,))[1] for f in (fast, slow))
    np.testing.assert_allclose(jvp_fast, jvp_slow, rtol=1e-10)
    np.testing.assert_allclose(jax.hessian(fast)(x), jax.hessian(slow)(x), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(jax.jit(jax.grad(fast))(x), jax.grad(slow)(x), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
def test_class_weights_and_the_normalizer_get_their_derivatives(data, label_smoothing):
    x, t, w = data
    opts = dict(label_smoothing=label_smoothing, temperature=1.5)
    grad_w = jax.grad(lambda v: lk.cross_entropy(x, t, v, **opts))(w)
    ref_w = jax.grad(lambda v: _portable(x, t, v, **opts))(w)
    np.testing.assert_allclose(grad_w, ref_w, rtol=1e-10, atol=1e-14)
    per = jax.grad(lambda v: jnp.sum(lk.cross_entropy(x, t, v, reduction="none", **opts)))(w)
    ref = jax.grad(lambda v: jnp.sum(_portable(x, t, v, reduction="none", **opts)))(w)
    np.testing.assert_allclose(per, ref, rtol=1e-10, atol=1e-14)
    n = jnp.asarray(3.0)
    grad_n = jax.grad(lambda m: lk.cross_entropy(x, t, normalizer=m, **opts))(n)
    ref_n = jax.grad(lambda m: _portable(x, t, normalizer=m, **opts))(n)
    np.testing.assert_allclose(grad_n, ref_n, rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_linear_cross_entropy_forward_mode_for_mean_and_sum(rng, reduction):
    x = jnp.asarray(rng.standard_normal((7, 4)))
    w = jnp.asarray(rng.standard_normal((9, 4)))
    t = jnp.asarray(rng.integers(0, 9, 7))
    dx, dw = (jnp.asarray(rng.standard_normal(a.shape)) for a in (x, w))
    options = LinearCrossEntropyOptions(reduction=reduction, chunk_size=3, label_smoothing=0.1)
    spec = LinearCrossEntropySpec.of(namespace(x=x), options, LinearCrossEntropyArrays(x, w, t))

    def fast(a, b):
        return lk.linear_cross_entropy(a, b, t, reduction=reduction, chunk_size=3, label_smoothing=0.1)

    def slow(a, b):
        arrays = LinearCrossEntropyArrays(a, b, t)
        return portable_linear_cross_entropy(namespace(x=a), spec, arrays, frozenset())[0]

    jvp_fast, jvp_slow = (jax.jvp(f, (x, w), (dx, dw))[1] for f in (fast, slow))
    np.testing.assert_allclose(jvp_fast, jvp_slow, rtol=1e-10)


def test_linear_cross_entropy_per_token_is_reverse_mode_only(rng):
    x = jnp.asarray(rng.standard_normal((7, 4)))
    w = jnp.asarray(rng.standard_normal((9, 4)))
    t = jnp.asarray(rng.integers(0, 9, 7))
    with pytest.raises(TypeError, match="forward-mode"):  # per-token cotangents: only in reverse mode
        jax.jvp(lambda a: jnp.sum(lk.linear_cross_entropy(a, w, t, reduction="none")), (x,), (x,))
