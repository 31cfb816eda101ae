"""Property tests (hypothesis): non-negativity, zero at a perfect prediction, monotone growth
of regression losses with the error, and analytic gradient = finite difference on random
inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import losskit as lk
from tests.support.cases import ALL_CASES
from tests.support.numerics import finite_difference

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
seeds = st.integers(min_value=0, max_value=2**32 - 1)


def _total(case):
    return "sum" if "sum" in case.reductions else case.reductions[0]


@pytest.mark.parametrize("case", [c for c in ALL_CASES if c.nonnegative], ids=lambda c: c.id)
@SETTINGS
@given(seed=seeds)
def test_loss_is_nonnegative(case, seed):
    args, kwargs = case.make_args(np.random.default_rng(seed))
    value = np.asarray(case.fn(*args, reduction=_total(case), **kwargs))
    assert np.all(value >= -1e-12), value


@pytest.mark.parametrize("case", [c for c in ALL_CASES if c.perfect is not None], ids=lambda c: c.id)
@SETTINGS
@given(seed=seeds)
def test_loss_is_zero_at_a_perfect_prediction(case, seed):
    args, kwargs = case.perfect(np.random.default_rng(seed))
    for reduction in case.reductions:
        value = np.asarray(case.fn(*args, reduction=reduction, **kwargs))
        np.testing.assert_allclose(value, 0.0, atol=1e-12)
    if case.zero_grad_at_perfect:
        _, g = lk.value_and_grad(case.fn, argnums=case.grad_argnums[0])(*args, **kwargs)
        np.testing.assert_allclose(g, 0.0, atol=1e-12)


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=seeds)
def test_gradient_equals_finite_difference_on_random_inputs(case, seed):
    args, kwargs = case.make_args(np.random.default_rng(seed))
    reduction = _total(case)
    n = case.grad_argnums[0]
    _, g = lk.value_and_grad(case.fn, argnums=n)(*args, reduction=reduction, **kwargs)
    fd = finite_difference(case.fn, args, dict(kwargs, reduction=reduction), n, case.fd_eps)
    np.testing.assert_allclose(g, fd, rtol=case.fd_rtol, atol=case.fd_rtol * 1e-2)


finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, width=64)
REGRESSION = [lk.mse, lk.mae, lk.huber, lk.smooth_l1]


@pytest.mark.parametrize("fn", REGRESSION, ids=lambda f: f.__name__)
@SETTINGS
@given(
    target=arrays(np.float64, st.integers(1, 8), elements=finite),
    error=st.floats(min_value=0.0, max_value=100.0),
    scale=st.floats(min_value=1.0, max_value=10.0),
)
def test_regression_loss_grows_with_the_error(fn, target, error, scale):
    direction = np.where(np.arange(target.size) % 2 == 0, 1.0, -1.0)
    small = fn(target + error * direction, target)
    large = fn(target + scale * error * direction, target)
    assert large >= small - 1e-9 * max(1.0, abs(small))


@pytest.mark.parametrize("fn", REGRESSION, ids=lambda f: f.__name__)
@SETTINGS
@given(x=arrays(np.float64, st.integers(1, 8), elements=finite))
def test_regression_loss_is_zero_only_at_the_target(fn, x):
    assert fn(x, x) == 0.0
    assert fn(x + 0.5, x) > 0.0


@SETTINGS
@given(
    logits=arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(2, 6)), elements=finite),
    data=st.data(),
)
def test_cross_entropy_is_nll_of_log_softmax_and_bounded_below_by_zero(logits, data):
    t = np.array(
        data.draw(
            st.lists(st.integers(0, logits.shape[1] - 1), min_size=logits.shape[0], max_size=logits.shape[0])
        )
    )
    ce = lk.cross_entropy(logits, t, reduction="none")
    assert np.all(ce >= 0)
    np.testing.assert_allclose(
        ce, lk.nll(lk.log_softmax(logits), t, reduction="none"), rtol=1e-12, atol=1e-12
    )
