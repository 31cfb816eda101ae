"""The JAX cross-entropy fast path (the custom_jvp) at infinite and NaN logits and with weighted
means over weights that sum to <= 0: the portable code's numbers, in value and every
derivative.

The reference is the portable code: its analytic value and gradient on array-api-strict (no fast
path there) and JAX's own differentiation of it (``portable_cross_entropy`` on JAX arrays).
Samples that do not count (ignored, masked) get a gradient of exactly 0 from the fast path."""

from __future__ import annotations

import warnings

import array_api_strict as xps
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import losskit as lk
from losskit.core.backend import namespace
from losskit.core.specs import CrossEntropyArrays, CrossEntropyOptions, CrossEntropySpec
from losskit.jax import functional
from losskit.losses.classification import portable_cross_entropy
from tests.kernels.test_cross_entropy_limits import MASK, OPTIONS, T, W, X

# the rows of X whose loss is finite (with the class weights W and no smoothing): +inf at the
# target, masked classes, every class at +inf, ignored rows whatever they hold
FINITE_ROWS = [0, 1, 3, 5, 9, 10, 11, 12, 13]


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


def _strict(x, t, **kw):
    conv = {k: (xps.asarray(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    value, g = _quiet(lk.value_and_grad(lk.cross_entropy), xps.asarray(x), xps.asarray(t), **conv)
    return np.asarray(value), np.asarray(g)


def _portable(x, t, weight=None, where=None, normalizer=None, **options):
    """The array-API implementation on JAX arrays, bypassing the fast path."""
    arrays = CrossEntropyArrays(x, t, weight, where, normalizer)
    spec = CrossEntropySpec.of(namespace(x=x), CrossEntropyOptions(**options), arrays)
    return portable_cross_entropy(namespace(x=x), spec, arrays, frozenset())[0]


def _jax_kw(kw):
    return {k: (jnp.asarray(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}


def test_the_fast_path_runs(monkeypatch):
    calls = []
    real = functional._ce_rows
    monkeypatch.setattr(functional, "_ce_rows", lambda *a, **k: calls.append(1) or real(*a, **k))
    jax.grad(lambda a: lk.cross_entropy(a, jnp.asarray(T)))(jnp.asarray(X))
    assert calls


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("opts", list(OPTIONS), ids=str)
def test_value_and_gradient_match_the_portable_code(reduction, opts):
    kw = OPTIONS[opts]
    ref_value, ref_g = _strict(X, T, reduction=reduction, **kw)
    jkw, t = _jax_kw(kw), jnp.asarray(T)

    def total(a):
        return jnp.sum(lk.cross_entropy(a, t, reduction=reduction, **jkw))

    value = lk.cross_entropy(jnp.asarray(X), t, reduction=reduction, **jkw)
    np.testing.assert_allclose(np.asarray(value), ref_value, rtol=1e-12, atol=1e-12)
    g = np.asarray(jax.jit(jax.grad(total))(jnp.asarray(X)))
    counted = (T != -100) & (kw["where"] if "where" in kw else True)
    np.testing.assert_allclose(g[counted], ref_g[counted], rtol=1e-12, atol=1e-12)
    assert np.all(g[~counted] == 0)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("options", [{}, {"temperature": 0.5, "z_loss": 1e-2}])
def test_every_mode_of_differentiation_at_infinite_logits(reduction, options):
    # rows with +inf at the target, several +inf, masked classes, ignored rows of +inf and NaN
    x, t, w = (jnp.asarray(a) for a in (X[FINITE_ROWS], T[FINITE_ROWS], W))
    up = jnp.linspace(0.5, 1.5, len(FINITE_ROWS))
    scale = up if reduction == "none" else 1.0
    if options.get("z_loss"):  # lse**2 is +inf at a +inf logit: only the finite rows
        keep = jnp.asarray(np.isfinite(X[FINITE_ROWS]).all(-1) | (T[FINITE_ROWS] == -100))
        opts = dict(options, where=keep)
    else:
        opts = dict(options)

    def fast(a):
        return jnp.sum(lk.cross_entropy(a, t, w, reduction=reduction, **opts) * scale)

    def slow(a):
        return jnp.sum(_portable(a, t, w, reduction=reduction, **opts) * scale)

    assert np.isfinite(float(fast(x)))
    np.testing.assert_allclose(fast(x), slow(x), rtol=1e-12)
    # the gradient: the portable code's analytic one (JAX's differentiation of the portable code
    # stops at its where() on the +inf entries, so it is compared off them)
    ref_g = _strict(X[FINITE_ROWS], T[FINITE_ROWS], weight=W, reduction=reduction, **_numpy_kw(opts))[1]
    ref_g = ref_g * (np.asarray(up)[:, None] if reduction == "none" else 1.0)
    g_fast, g_slow = np.asarray(jax.grad(fast)(x)), np.asarray(jax.grad(slow)(x))
    counted = (np.asarray(t) != -100) & np.asarray(opts.get("where", True))
    ref_g = np.where(counted[:, None], ref_g, 0.0)
    np.testing.assert_allclose(g_fast, ref_g, rtol=1e-10, atol=1e-14)
    assert np.isfinite(g_fast).all()
    finite = np.isfinite(X[FINITE_ROWS]) & counted[:, None]
    np.testing.assert_allclose(g_fast[finite], g_slow[finite], rtol=1e-10, atol=1e-14)
    # forward mode along the finite logits (an infinite logit has no direction to move in)
    tangent = jnp.asarray(np.where(finite, np.random.default_rng(1).standard_normal(x.shape), 0.0))
    jvp_fast, jvp_slow = (jax.jvp(f, (x,), (tangent,))[1] for f in (fast, slow))
    np.testing.assert_allclose(jvp_fast, jvp_slow, rtol=1e-10)
    np.testing.assert_allclose(jvp_fast, np.sum(ref_g * np.asarray(tangent)), rtol=1e-10)


def _numpy_kw(kw):
    return {k: (np.asarray(v) if isinstance(v, jax.Array) else v) for k, v in kw.items()}


@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
def test_class_weight_derivative_with_a_masked_class_of_weight_zero(label_smoothing):
    # row 11 holds -inf at class 3, whose weight is 0: it adds 0 to the smoothing term, and the
    # weights' derivative there is that of the portable code's 0 log 0
    rows = [0, 11, 13] if label_smoothing else FINITE_ROWS
    x, t = jnp.asarray(X[rows]), jnp.asarray(T[rows])
    opts = dict(label_smoothing=label_smoothing, temperature=1.5)
    fast = jax.grad(lambda v: lk.cross_entropy(x, t, v, **opts))(jnp.asarray(W))
    slow = jax.grad(lambda v: _portable(x, t, v, **opts))(jnp.asarray(W))
    assert np.isfinite(np.asarray(fast)).all()
    np.testing.assert_allclose(fast, slow, rtol=1e-10, atol=1e-14)
    per = jax.grad(lambda v: jnp.sum(lk.cross_entropy(x, t, v, reduction="none", **opts)))(jnp.asarray(W))
    ref = jax.grad(lambda v: jnp.sum(_portable(x, t, v, reduction="none", **opts)))(jnp.asarray(W))
    np.testing.assert_allclose(per, ref, rtol=1e-10, atol=1e-14)


def test_nan_logit_gives_nan_and_an_ignored_nan_row_nothing():
    value = lk.cross_entropy(jnp.asarray(X[[0, 7]]), jnp.asarray(T[[0, 7]]), reduction="none")
    assert np.isfinite(value[0]) and np.isnan(value[1])
    x, t = jnp.asarray(X[[0, 10, 13]]), jnp.asarray(T[[0, 10, 13]])
    value, g = jax.value_and_grad(lambda a: lk.cross_entropy(a, t))(x)
    assert np.isfinite(float(value)) and np.isfinite(np.asarray(g)).all() and np.all(np.asarray(g)[1] == 0)
    masked = jnp.asarray(MASK[[0, 7, 13]])
    x, t = jnp.asarray(X[[0, 7, 13]]), jnp.asarray(T[[0, 7, 13]])
    value, g = jax.value_and_grad(lambda a: lk.cross_entropy(a, t, where=masked))(x)
    assert np.isfinite(float(value)) and np.all(np.asarray(g)[1] == 0)


# -- weighted means whose weights sum to <= 0 ---------------------------------------------------

_X = np.array([[1.0, 2.0, 0.5], [0.3, -1.0, 2.0], [0.7, 0.1, -0.4], [-1.2, 0.4, 0.9]])
_T = np.array([0, 2, -100, 0])


def _torch(x, t, w, **kw):
    xt = torch.from_numpy(x).requires_grad_(True)
    value = torch.nn.functional.cross_entropy(xt, torch.from_numpy(t), torch.from_numpy(w), **kw)
    (g,) = torch.autograd.grad(value, xt)
    return value.detach().numpy(), g.numpy()


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
@pytest.mark.parametrize(
    "weight", [[-1.0, 1.0, -2.0], [1.0, 1.0, -2.0], [0.0, 1.0, 0.0]], ids=["negative", "sum-0", "all-0"]
)
def test_weighted_mean_divides_by_the_signed_sum_as_pytorch(weight, label_smoothing):
    w = np.array(weight)
    ref_value, ref_g = _torch(_X, _T, w, label_smoothing=label_smoothing)
    t = jnp.asarray(_T)

    def loss(a, v):
        return lk.cross_entropy(a, t, v, label_smoothing=label_smoothing)

    value, g = jax.jit(jax.value_and_grad(loss))(jnp.asarray(_X), jnp.asarray(w))
    if np.isfinite(ref_value):
        assert float(value) == pytest.approx(float(ref_value), rel=1e-12)
        np.testing.assert_allclose(np.asarray(g), ref_g, rtol=1e-10, atol=1e-15)
        # and the derivative with respect to the weights, through the signed divisor
        fast = jax.grad(loss, argnums=1)(jnp.asarray(_X), jnp.asarray(w))
        slow = jax.grad(lambda a, v: _portable(a, t, v, label_smoothing=label_smoothing), argnums=1)(
            jnp.asarray(_X), jnp.asarray(w)
        )
        np.testing.assert_allclose(fast, slow, rtol=1e-10, atol=1e-14)
    else:  # a sum of exactly 0: inf or NaN as PyTorch (the portable code's), never a silent 0
        assert not np.isfinite(np.asarray(value))
        portable, _ = _strict(_X, _T, weight=w, label_smoothing=label_smoothing)
        np.testing.assert_array_equal(np.asarray(value), portable)
        assert not np.isfinite(np.asarray(g)[_T != -100]).any()
        assert np.all(np.asarray(g)[_T == -100] == 0)


def test_mean_with_nothing_counted_is_zero_with_a_zero_gradient():
    t = jnp.full(4, -100)
    value, g = jax.value_and_grad(lambda a: lk.cross_entropy(a, t, jnp.asarray([-1.0, 1.0, -2.0])))(
        jnp.asarray(_X)
    )
    assert float(value) == 0.0 and not np.any(np.asarray(g))
