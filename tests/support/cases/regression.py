"""Cases for the regression losses: MSE, MAE, Huber, smooth L1, Poisson and Gaussian NLL
(PyTorch), log-cosh (Optax), quantile, MAPE, MSLE (Keras's formulas) and the Tweedie deviance
(scikit-learn's formula)."""

from __future__ import annotations

import numpy as np

import losskit as lk

from . import Case


def _F():
    import torch.nn.functional as F

    return F


def _reduce(value, reduction):
    if reduction == "mean":
        return value.mean()
    if reduction == "sum":
        return value.sum()
    return value


# -- PyTorch --------------------------------------------------------------------------------


def _regression(name, fn, torch_name, **options):
    return Case(
        id=name,
        fn=fn,
        make_args=lambda rng: ((rng.normal(size=(4, 5)) * 2, rng.normal(size=(4, 5))), dict(options)),
        reference=lambda a, k, r: getattr(_F(), torch_name)(*a, reduction=r, **k),
        grad_argnums=(0, 1),
        perfect=lambda rng: (lambda y: ((y.copy(), y), dict(options)))(rng.normal(size=(3, 4))),
    )


def _poisson_args(log_input, full):
    def make(rng):
        x = rng.normal(size=(4, 5))
        if not log_input:
            x = rng.uniform(0.05, 4.0, size=(4, 5))
        # non-integer counts, so the Stirling term's jump at y = 1 is never straddled by the
        # finite-difference step
        y = rng.uniform(0.0, 6.0, size=(4, 5))
        return (x, y), {"log_input": log_input, "full": full}

    return make


def _poisson(name, log_input, full):
    return Case(
        id=name,
        fn=lk.poisson_nll,
        make_args=_poisson_args(log_input, full),
        reference=lambda a, k, r: _F().poisson_nll_loss(*a, reduction=r, **k),
        grad_argnums=(0, 1),
        nonnegative=False,
    )


def _gaussian_args(var_shape, full=False, number=False):
    def make(rng):
        x, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
        var = 0.8 if number else rng.uniform(0.2, 2.0, size=var_shape)
        return (x, y, var), ({"full": True} if full else {})

    return make


def _gaussian(name, var_shape, **options):
    return Case(
        id=name,
        fn=lk.gaussian_nll,
        make_args=_gaussian_args(var_shape, **options),
        reference=lambda a, k, r: _F().gaussian_nll_loss(*a, reduction=r, **k),
        grad_argnums=(0, 1) if options.get("number") else (0, 1, 2),
        nonnegative=False,
    )


# -- Optax and formulas ---------------------------------------------------------------------


def _pair(scale=2.0):
    def make(rng):
        return (rng.normal(size=(4, 5)) * scale, rng.normal(size=(4, 5))), {}

    return make


def _perfect(options=None):
    def make(rng):
        y = rng.normal(size=(3, 4))
        return (y.copy(), y), dict(options or {})

    return make


def _log_cosh_optax(a, k, r):
    import optax

    return _reduce(optax.losses.log_cosh(*a), r)


def _quantile_args(q):
    def make(rng):
        return (rng.normal(size=(4, 5)) * 2, rng.normal(size=(4, 5))), {"q": q}

    return make


def _quantile_formula(a, k, r):
    x, y = a
    d = y - x
    q = k["q"]
    return _reduce(np.maximum(q * d, (q - 1) * d), r)


def _mape_args(rng):
    y = rng.uniform(0.3, 3.0, size=(4, 5)) * rng.choice([-1.0, 1.0], size=(4, 5))
    return (y + rng.normal(size=(4, 5)), y), {}


def _mape_formula(a, k, r):
    x, y = a
    # Keras: 100 * |(y - x) / max(|y|, epsilon)| with epsilon 1e-7
    return _reduce(100.0 * np.abs((y - x) / np.maximum(np.abs(y), 1e-7)), r)


def _msle_args(rng):
    # some predictions below zero, where Keras clips them to epsilon
    return (rng.uniform(-0.5, 3.0, size=(4, 5)), rng.uniform(0.0, 3.0, size=(4, 5))), {}


def _msle_perfect(rng):
    y = rng.uniform(0.0, 3.0, size=(3, 4))
    return (y.copy(), y), {}


def _msle_formula(a, k, r):
    x, y = a
    eps = 1e-7
    return _reduce((np.log(np.maximum(x, eps) + 1.0) - np.log(np.maximum(y, eps) + 1.0)) ** 2, r)


def tweedie_formula(y, mu, power):
    """scikit-learn's mean_tweedie_deviance, elementwise (its published formula)."""
    p = power
    if p == 0:
        return (y - mu) ** 2
    if p == 1:
        with np.errstate(divide="ignore", invalid="ignore"):
            ylogy = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)
        return 2 * (ylogy - y + mu)
    if p == 2:
        return 2 * (np.log(mu / y) + y / mu - 1)
    first = np.maximum(y, 0) ** (2 - p) / ((1 - p) * (2 - p))
    return 2 * (first - y * mu ** (1 - p) / (1 - p) + mu ** (2 - p) / (2 - p))


def _tweedie_args(power, zeros=False):
    def make(rng):
        mu = rng.uniform(0.2, 3.0, size=(4, 5))
        y = rng.uniform(0.1, 4.0, size=(4, 5)) if power != 0 else rng.normal(size=(4, 5))
        if zeros:
            y.reshape(-1)[::3] = 0.0
        return (mu, y), {"power": power}

    return make


def _tweedie_perfect(power):
    def make(rng):
        y = rng.uniform(0.1, 4.0, size=(3, 4))
        return (y.copy(), y), {"power": power}

    return make


def _tweedie(name, power, zeros=False):
    return Case(
        id=name,
        fn=lk.tweedie,
        make_args=_tweedie_args(power, zeros),
        numpy_reference=lambda a, k, r: _reduce(tweedie_formula(a[1], a[0], k["power"]), r),
        # the target gradient is -inf at y = 0
        grad_argnums=(0,) if zeros else (0, 1),
        perfect=_tweedie_perfect(power),
    )


CASES = [
    _regression("mse", lk.mse, "mse_loss"),
    _regression("mae", lk.mae, "l1_loss"),
    _regression("huber", lk.huber, "huber_loss"),
    _regression("huber-delta", lk.huber, "huber_loss", delta=0.4),
    _regression("smooth_l1", lk.smooth_l1, "smooth_l1_loss"),
    _regression("smooth_l1-beta", lk.smooth_l1, "smooth_l1_loss", beta=0.3),
    _regression("smooth_l1-beta0", lk.smooth_l1, "smooth_l1_loss", beta=0.0),
    _poisson("poisson_nll", True, False),
    _poisson("poisson_nll-full", True, True),
    _poisson("poisson_nll-rates", False, False),
    _poisson("poisson_nll-rates-full", False, True),
    _gaussian("gaussian_nll", (4, 3)),
    _gaussian("gaussian_nll-full", (4, 3), full=True),
    _gaussian("gaussian_nll-var_per_row", (4,)),
    _gaussian("gaussian_nll-var_shared_last", (4, 1)),
    _gaussian("gaussian_nll-var_shared_first", (1, 3)),
    _gaussian("gaussian_nll-var_number", None, number=True),
    Case(
        id="log_cosh",
        fn=lk.log_cosh,
        make_args=_pair(),
        optax_reference=_log_cosh_optax,
        grad_argnums=(0, 1),
        perfect=_perfect(),
    ),
    Case(
        id="quantile",
        fn=lk.quantile,
        make_args=_quantile_args(0.5),
        numpy_reference=_quantile_formula,
        grad_argnums=(0, 1),
        perfect=_perfect({"q": 0.5}),
    ),
    Case(
        id="quantile-0.1",
        fn=lk.quantile,
        make_args=_quantile_args(0.1),
        numpy_reference=_quantile_formula,
        grad_argnums=(0, 1),
        perfect=_perfect({"q": 0.1}),
    ),
    Case(
        id="quantile-0.9",
        fn=lk.quantile,
        make_args=_quantile_args(0.9),
        numpy_reference=_quantile_formula,
        grad_argnums=(0, 1),
    ),
    Case(
        id="mape",
        fn=lk.mape,
        make_args=_mape_args,
        numpy_reference=_mape_formula,
        grad_argnums=(0, 1),
        perfect=_perfect(),
    ),
    Case(
        id="msle",
        fn=lk.msle,
        make_args=_msle_args,
        numpy_reference=_msle_formula,
        grad_argnums=(0, 1),
        perfect=_msle_perfect,
    ),
    _tweedie("tweedie-0", 0.0),
    _tweedie("tweedie-1", 1.0),
    _tweedie("tweedie-1-zeros", 1.0, zeros=True),
    _tweedie("tweedie-1.5", 1.5),
    _tweedie("tweedie-1.5-zeros", 1.5, zeros=True),
    _tweedie("tweedie-2", 2.0),
    _tweedie("tweedie-3", 3.0),
]
