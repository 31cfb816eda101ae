"""Numerical helpers the tests share: central finite differences, and the check that a
``where=`` mask is the same as leaving the masked samples out."""

from __future__ import annotations

import numpy as np

import losskit as lk


def finite_difference(fn, args, kwargs, n, eps):
    args = list(args)
    x = np.array(args[n], dtype=np.float64)
    grad = np.zeros_like(x)
    flat = x.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        args[n] = x.copy()
        up = float(np.sum(fn(*args, **kwargs)))
        flat[i] = old - eps
        args[n] = x.copy()
        down = float(np.sum(fn(*args, **kwargs)))
        flat[i] = old
        grad.reshape(-1)[i] = (up - down) / (2 * eps)
    return grad


def assert_where_matches_subset(fn, args, kwargs, mask, sub_args, sub_kwargs=None, reductions=None):
    """``fn(..., where=mask)`` equals ``fn`` on the selected samples (``sub_args``), for the value
    of every reduction and for the gradient of the first argument; masked samples get 0 in
    ``"none"`` and a zero gradient.  ``mask`` indexes the leading axes of ``args[0]``."""
    sub_kwargs = kwargs if sub_kwargs is None else sub_kwargs
    reductions = reductions or ("mean", "sum", "none")
    for reduction in [r for r in reductions if r != "none"]:
        value, g = lk.value_and_grad(fn)(*args, reduction=reduction, where=mask, **kwargs)
        expected, g_sub = lk.value_and_grad(fn)(*sub_args, reduction=reduction, **sub_kwargs)
        np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-14, err_msg=reduction)
        np.testing.assert_allclose(g[mask], g_sub, rtol=1e-12, atol=1e-14, err_msg=reduction)
        assert np.all(g[~mask] == 0)
    if "none" in reductions:
        none = np.asarray(fn(*args, reduction="none", where=mask, **kwargs))
        assert np.all(none[~mask] == 0)
        np.testing.assert_allclose(none[mask], fn(*sub_args, reduction="none", **sub_kwargs), rtol=1e-12)
