"""Every case against its reference (PyTorch, Optax or the paper's formula), float64."""

from __future__ import annotations

import numpy as np
import pytest

import losskit as lk
from tests.support.cases import ALL_CASES
from tests.support.reference import reference_grads, reference_value

PARAMS = [pytest.param(c, r, id=f"{c.id}-{r}") for c in ALL_CASES for r in c.reductions]


@pytest.mark.parametrize("case,reduction", PARAMS)
def test_value_matches_reference(case, reduction, rng):
    args, kwargs = case.make_args(rng)
    ours = np.asarray(case.fn(*args, reduction=reduction, **kwargs))
    expected = reference_value(case, args, kwargs, reduction)
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, rtol=case.rtol, atol=case.atol)


@pytest.mark.parametrize("case,reduction", PARAMS)
def test_analytic_gradient_matches_reference_autograd(case, reduction, rng):
    args, kwargs = case.make_args(rng)
    expected = reference_grads(case, args, kwargs, reduction, case.grad_argnums)
    if expected is None:
        pytest.skip("no autograd reference; finite differences cover this case")
    value, grads = lk.value_and_grad(case.fn, argnums=case.grad_argnums)(*args, reduction=reduction, **kwargs)
    for n, ours, ref in zip(case.grad_argnums, grads, expected):
        assert ours.shape == args[n].shape
        np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-9, err_msg=f"argnum {n}")
    np.testing.assert_allclose(
        np.asarray(value), reference_value(case, args, kwargs, reduction), rtol=case.rtol, atol=case.atol
    )
