"""Poisson and Gaussian NLL, log-cosh, quantile, MAPE, MSLE and Tweedie: what the shared table
cannot express — scikit-learn as a second reference, PyTorch's variance clamp, domains and
their errors, the where= mask, extreme values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import losskit as lk
from tests.support.cases.regression import tweedie_formula
from tests.support.numerics import assert_where_matches_subset

# -- the where= mask ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn,make",
    [
        (lk.poisson_nll, lambda r: (r.normal(size=12), r.uniform(0, 5, size=12))),
        (lk.gaussian_nll, lambda r: (r.normal(size=12), r.normal(size=12), r.uniform(0.5, 2, size=12))),
        (lk.log_cosh, lambda r: (r.normal(size=12), r.normal(size=12))),
        (lk.quantile, lambda r: (r.normal(size=12), r.normal(size=12))),
        (lk.mape, lambda r: (r.normal(size=12), r.uniform(0.5, 2, size=12))),
        (lk.msle, lambda r: (r.uniform(0, 3, size=12), r.uniform(0, 3, size=12))),
        (lk.tweedie, lambda r: (r.uniform(0.5, 2, size=12), r.uniform(0, 3, size=12), 1.5)),
    ],
    ids=lambda f: getattr(f, "__name__", ""),
)
def test_where_drops_elements(fn, make, rng):
    args = make(rng)
    mask = rng.uniform(size=12) > 0.4
    sub = tuple(a[mask] if isinstance(a, np.ndarray) else a for a in args)
    assert_where_matches_subset(fn, args, {}, mask, sub)


def test_gaussian_nll_where_and_shared_variance_gradient(rng):
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    var = rng.uniform(0.5, 2.0, size=(5, 1))
    mask = rng.uniform(size=(5, 3)) > 0.3
    _, g = lk.value_and_grad(lk.gaussian_nll, argnums=2)(x, y, var, where=mask, reduction="sum")
    inv = 1 / var
    expected = (0.5 * (inv - (x - y) ** 2 * inv**2) * mask).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(g, expected, rtol=1e-12)


# -- scikit-learn as a second reference ---------------------------------------------------------


@pytest.mark.parametrize("power", [0.0, 1.0, 1.2, 1.5, 1.9, 2.0, 2.5, 3.0])
def test_tweedie_matches_scikit_learn(power, rng):
    metrics = pytest.importorskip("sklearn.metrics")
    mu = rng.uniform(0.2, 3.0, size=40)
    y = rng.uniform(0.1, 4.0, size=40)
    if power < 2:
        y[::4] = 0.0
    expected = metrics.mean_tweedie_deviance(y, mu, power=power)
    assert float(lk.tweedie(mu, y, power)) == pytest.approx(expected, rel=1e-10)
    per_element = lk.tweedie(mu, y, power, reduction="none")
    np.testing.assert_allclose(per_element, tweedie_formula(y, mu, power), rtol=1e-9)
    if power == 1.0:
        assert float(lk.tweedie(mu, y, 1.0)) == pytest.approx(metrics.mean_poisson_deviance(y, mu), rel=1e-10)
    if power == 2.0:
        y = y + 0.1
        assert float(lk.tweedie(mu, y, 2.0)) == pytest.approx(metrics.mean_gamma_deviance(y, mu), rel=1e-10)


def test_mape_and_msle_match_scikit_learn(rng):
    metrics = pytest.importorskip("sklearn.metrics")
    x, y = rng.uniform(0, 3, size=30), rng.uniform(0.5, 3, size=30) * rng.choice([-1, 1], size=30)
    eps = float(np.finfo(np.float64).eps)  # scikit-learn's floor
    assert float(lk.mape(x, y, eps=eps)) == pytest.approx(100 * metrics.mean_absolute_percentage_error(y, x))
    y = np.abs(y)
    assert float(lk.msle(x, y)) == pytest.approx(metrics.mean_squared_log_error(y, x), rel=1e-6)
    assert float(lk.quantile(x, y, 0.3)) == pytest.approx(metrics.mean_pinball_loss(y, x, alpha=0.3))


# -- Tweedie: exact near the special powers, domain ---------------------------------------------


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_tweedie_is_continuous_through_the_special_powers(power, rng):
    mu, y = rng.uniform(0.2, 3.0, size=20), rng.uniform(0.1, 4.0, size=20)
    at = lk.value_and_grad(lk.tweedie, argnums=(0, 1))(mu, y, power)
    for delta in (1e-12, -1e-12, 1e-9):
        if power + delta < 1:
            continue
        near = lk.value_and_grad(lk.tweedie, argnums=(0, 1))(mu, y, power + delta)
        assert float(near[0]) == pytest.approx(float(at[0]), rel=1e-8)  # the textbook formula loses ~1e-7
        for g_near, g_at in zip(near[1], at[1]):
            np.testing.assert_allclose(g_near, g_at, rtol=1e-7, atol=1e-12)


def test_tweedie_zero_targets(rng):
    mu = rng.uniform(0.2, 3.0, size=4)
    y = np.array([0.0, 1.0, 0.0, 2.0])
    value, (g_mu, g_y) = lk.value_and_grad(lk.tweedie, argnums=(0, 1))(mu, y, 1.5, reduction="none")
    np.testing.assert_allclose(value[[0, 2]], 2 * mu[[0, 2]] ** 0.5 / 0.5, rtol=1e-12)
    assert np.all(np.isfinite(g_mu)) and np.all(g_y[[0, 2]] == -np.inf) and np.all(np.isfinite(g_y[[1, 3]]))


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: lk.tweedie(np.ones(3), np.ones(3), 0.5), ValueError, r"power must be 0 or >= 1.*0.5"),
        (lambda: lk.tweedie(np.ones(3), np.ones(3), -1.0), ValueError, "power must be 0 or >= 1"),
        (lambda: lk.tweedie(np.ones(3), np.ones(3), "1"), TypeError, "power must be a real number"),
        (lambda: lk.tweedie(np.array([1.0, 0.0]), np.ones(2), 1.5), ValueError, r"input must be > 0"),
        (lambda: lk.tweedie(np.ones(2), np.array([1.0, -1.0]), 1.0), ValueError, r"target must be >= 0"),
        (lambda: lk.tweedie(np.ones(2), np.array([1.0, 0.0]), 2.0), ValueError, r"target must be > 0"),
        (lambda: lk.poisson_nll(np.ones(2), np.array([1.0, -1.0])), ValueError, r"target must be >= 0"),
        (
            lambda: lk.poisson_nll(np.array([-1.0, 1.0]), np.ones(2), log_input=False),
            ValueError,
            r"input must be >= 0.*log_input=False",
        ),
        (lambda: lk.poisson_nll(np.ones(2), np.ones(2), log_input=1), TypeError, "log_input must be a bool"),
        (lambda: lk.poisson_nll(np.ones(2), np.ones(2), eps=-1e-3), ValueError, "eps must be in"),
        (lambda: lk.quantile(np.ones(2), np.ones(2), q=1.5), ValueError, r"q must be in \[0, 1\]"),
        (lambda: lk.mape(np.ones(2), np.ones(2), eps=0.0), ValueError, "eps must be in"),
        (lambda: lk.msle(np.ones(2), np.ones(3)), ValueError, "same shape"),
        (
            lambda: lk.gaussian_nll(np.ones((4, 3)), np.ones((4, 3)), np.ones((3,))),
            ValueError,
            r"var must have the input's shape \(4, 3\).*\(4,\).*got \(3,\)",
        ),
        (
            lambda: lk.gaussian_nll(np.ones((4, 3)), np.ones((4, 3)), np.ones((4, 2))),
            ValueError,
            r"var must have.*got \(4, 2\)",
        ),
        (
            lambda: lk.gaussian_nll(np.ones((4, 3)), np.ones((4, 3)), np.ones((1, 1))),
            ValueError,
            r"var must have.*got \(1, 1\)",
        ),
        (
            lambda: lk.gaussian_nll(np.ones(3), np.ones(3), np.array([1.0, -0.1, 1.0])),
            ValueError,
            "var must be >= 0",
        ),
        (lambda: lk.gaussian_nll(np.ones(3), np.ones(3), -1.0), ValueError, r"var must be in \[0, inf\)"),
        (
            lambda: lk.gaussian_nll(np.ones(3), np.ones(3), np.array([1.0, np.nan, 1])),
            ValueError,
            "var contains NaN",
        ),
        (lambda: lk.gaussian_nll(np.ones(3), np.ones(3), np.ones(3), eps=0.0), ValueError, "eps must be in"),
        (lambda: lk.gaussian_nll(np.ones(3), np.ones((3, 1)), np.ones(3)), ValueError, "same shape"),
        (lambda: lk.gaussian_nll(np.ones(3), np.ones(3), torch.ones(3)), TypeError, "same library"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_gaussian_nll_number_variance_has_no_gradient():
    with pytest.raises(ValueError, match=r"no analytic gradient with respect to argument 2 \(var\)"):
        lk.value_and_grad(lk.gaussian_nll, argnums=2)(np.ones(3), np.zeros(3), 0.5)


# -- PyTorch's variance clamp ---------------------------------------------------------------------


def test_gaussian_nll_clamped_variance_matches_pytorch(rng):
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    var = rng.uniform(0.5, 2.0, size=(4, 3))
    var[0, 0], var[1, 2], var[3, 1] = 0.0, 1e-9, 5e-7  # below eps = 1e-6
    tv = torch.tensor(var, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    ref = F.gaussian_nll_loss(tx, torch.tensor(y), tv, full=True)
    ref.backward()
    value, (gx, gv) = lk.value_and_grad(lk.gaussian_nll, argnums=(0, 2))(x, y, var, full=True)
    assert float(value) == pytest.approx(float(ref), rel=1e-12)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(gv, tv.grad.numpy(), rtol=1e-10)


def test_gaussian_nll_scalar_variance_forms_agree(rng):
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    number = lk.gaussian_nll(x, y, 0.7)
    zero_d = lk.gaussian_nll(x, y, np.array(0.7))
    assert float(number) == pytest.approx(float(F.gaussian_nll_loss(torch.tensor(x), torch.tensor(y), 0.7)))
    assert float(zero_d) == pytest.approx(float(number), rel=1e-14)
    _, g = lk.value_and_grad(lk.gaussian_nll, argnums=2)(x, y, np.array(0.7), reduction="sum")
    assert g.shape == () and float(g) == pytest.approx(float((0.5 * (1 / 0.7 - (x - y) ** 2 / 0.49)).sum()))


def test_gaussian_nll_variance_gradient_under_jax_jit(rng):
    import jax

    x, y, var = rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), rng.uniform(0.5, 2, size=(4,))
    j = [jax.numpy.asarray(a) for a in (x, y, var)]
    autograd = jax.jit(jax.grad(lambda v: lk.gaussian_nll(j[0], j[1], v)))(j[2])
    _, analytic = lk.value_and_grad(lk.gaussian_nll, argnums=2)(x, y, var)
    np.testing.assert_allclose(np.asarray(autograd), analytic, rtol=1e-10)


# -- extreme values -------------------------------------------------------------------------------


def test_log_cosh_is_finite_for_huge_errors():
    x = np.array([1e4, -1e4, 100.0, 0.0], dtype=np.float32)
    value, g = lk.value_and_grad(lk.log_cosh)(x, np.zeros(4, dtype=np.float32), reduction="none")
    assert value.dtype == np.float32 and g.dtype == np.float32
    np.testing.assert_allclose(value, [1e4 - np.log(2), 1e4 - np.log(2), 100 - np.log(2), 0.0], rtol=1e-6)
    np.testing.assert_array_equal(g, [1.0, -1.0, 1.0, 0.0])


def test_poisson_nll_extreme_log_rates_are_exact():
    x = np.array([-1e4, -50.0, 80.0], dtype=np.float32)
    y = np.array([0.0, 0.0, 3.0], dtype=np.float32)
    value, g = lk.value_and_grad(lk.poisson_nll)(x, y, reduction="none")
    np.testing.assert_allclose(value, [0.0, np.exp(-50.0), np.exp(80.0) - 240.0], rtol=1e-6)
    assert g[1] > 0 and np.all(np.isfinite(g))  # exp(-50), not 0


def test_msle_clips_negative_predictions_with_zero_gradient():
    x, y = np.array([-2.0, -1e-9, 0.5]), np.array([1.0, 1.0, 1.0])
    value, (gx, gy) = lk.value_and_grad(lk.msle, argnums=(0, 1))(x, y, reduction="none")
    floor = (np.log1p(1e-7) - np.log1p(1.0)) ** 2
    np.testing.assert_allclose(value[:2], [floor, floor], rtol=1e-12)
    assert gx[0] == 0 and gx[1] == 0 and gx[2] != 0 and np.all(gy != 0)


def test_mape_at_zero_target_uses_the_floor():
    value, g = lk.value_and_grad(lk.mape)(np.array([2e-7]), np.array([0.0]))
    assert float(value) == pytest.approx(100 * 2e-7 / 1e-7) and g[0] == pytest.approx(100 / 1e-7)


def test_quantile_is_minimised_at_the_quantile(rng):
    y = rng.normal(size=501)
    for q in (0.1, 0.5, 0.9):
        grid = np.linspace(-3, 3, 601)
        losses = [float(lk.quantile(np.full_like(y, c), y, q)) for c in grid]
        assert grid[int(np.argmin(losses))] == pytest.approx(np.quantile(y, q), abs=0.011)


def test_catalog_entries():
    for name in ["poisson_nll", "gaussian_nll", "log_cosh", "quantile", "mape", "msle", "tweedie"]:
        info = lk.lookup(name)
        assert info.family == "regression" and info.input_space == "values"
    assert lk.lookup("poisson_nll").torch == "F.poisson_nll_loss"
    assert lk.lookup("log_cosh").optax == "optax.losses.log_cosh"
