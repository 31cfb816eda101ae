"""The same call on every array library gives the same number, in the caller's array type."""

from __future__ import annotations

import numpy as np
import pytest

import losskit as lk
from tests.support.cases import ALL_CASES


def _expected_type(backend, x):
    if backend.name == "numpy":  # reductions give NumPy scalars, as np.sum does
        return (np.ndarray, np.generic)
    return type(backend.convert(np.zeros(1)))


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
def test_every_backend_gives_the_same_value_and_gradient(case, backend, rng):
    if backend.name not in case.backends:
        pytest.skip(f"{case.id} does not run on {backend.name}")
    args, kwargs = case.make_args(rng)
    b_args, b_kwargs = backend.args(args, kwargs)
    for reduction in case.reductions:
        expected = np.asarray(case.fn(*args, reduction=reduction, **kwargs))
        value = case.fn(*b_args, reduction=reduction, **b_kwargs)
        assert isinstance(value, _expected_type(backend, value)), type(value)
        np.testing.assert_allclose(backend.back(value), expected, rtol=1e-12, atol=1e-12)
    n = case.grad_argnums[0]
    _, g_np = lk.value_and_grad(case.fn, argnums=n)(*args, **kwargs)
    _, g = lk.value_and_grad(case.fn, argnums=n)(*b_args, **b_kwargs)
    assert isinstance(g, _expected_type(backend, g))
    np.testing.assert_allclose(backend.back(g), g_np, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", [c for c in ALL_CASES if "dask" in c.backends], ids=lambda c: c.id)
def test_dask_stays_lazy(case, rng):
    import dask
    import dask.array as da

    from tests.support.backends import BY_NAME

    args, kwargs = case.make_args(rng)
    d_args, d_kwargs = BY_NAME["dask"].args(args, kwargs)
    computed = []

    def count(*_args, **_kwargs):
        computed.append(1)

    with dask.config.set(scheduler=lambda dsk, keys, **kw: count() or dask.get(dsk, keys)):
        value = case.fn(*d_args, **d_kwargs)
        _, g = lk.value_and_grad(case.fn, argnums=case.grad_argnums[0])(*d_args, **d_kwargs)
    assert isinstance(value, da.Array) and isinstance(g, da.Array)
    assert computed == [], "building the loss made Dask compute"
