"""Bad input gets a clear exception naming the argument — never a silent NaN or broadcast."""

from __future__ import annotations

import numpy as np
import pytest

import losskit as lk

X = np.zeros((4, 3))
T = np.array([0, 1, 2, 1])


@pytest.mark.parametrize(
    "call,error,match",
    [
        (
            lambda: lk.mse(np.zeros((4, 1)), np.zeros(4)),
            ValueError,
            r"target must have the same shape as input.*\(4, 1\).*\(4,\)",
        ),
        (lambda: lk.mae(np.zeros(3), np.zeros(4)), ValueError, "same shape"),
        (lambda: lk.cross_entropy(X, np.array([0, 1, 3, 1])), ValueError, r"class index 3.*\[0, 2\]"),
        (
            lambda: lk.cross_entropy(X, np.array([0, -1, 2, 1])),
            ValueError,
            "class index -1 other than ignore_index=-100",
        ),
        (lambda: lk.cross_entropy(X, np.array([0.0, 1.0, 2.0, 1.0])), ValueError, "float class indices"),
        (
            lambda: lk.cross_entropy(X, np.zeros((4, 2))),
            ValueError,
            "class probabilities must have the input's shape",
        ),
        (
            lambda: lk.cross_entropy(X, T, label_smoothing=1.5),
            ValueError,
            r"label_smoothing must be in \[0, 1\]",
        ),
        (lambda: lk.cross_entropy(X, T, temperature=0.0), ValueError, "temperature must be in"),
        (lambda: lk.cross_entropy(X, T, axis=2), ValueError, "axis=2 is out of range"),
        (lambda: lk.cross_entropy(X, T, reduction="avg"), ValueError, "reduction must be one of"),
        (lambda: lk.cross_entropy(X, T, weight=np.ones(4)), ValueError, r"weight must have shape \(3,\)"),
        (
            lambda: lk.cross_entropy(np.zeros((4, 3), dtype=np.int64), T),
            TypeError,
            "input must be a real floating-point array",
        ),
        (
            lambda: lk.cross_entropy(X, T.astype(bool)),
            TypeError,
            "target must be integer class indices or floating",
        ),
        (
            lambda: lk.cross_entropy(np.zeros((0, 3)), np.zeros(0, dtype=np.int64)),
            ValueError,
            "input is empty",
        ),
        (lambda: lk.mse([1.0, 2.0], np.zeros(2)), TypeError, "input must be an array.*got list"),
        (lambda: lk.mse(np.zeros(2), 0.5), TypeError, "target must be an array"),
        (
            lambda: lk.binary_cross_entropy(np.array([0.5, 1.2]), np.array([0.0, 1.0])),
            ValueError,
            r"input must hold probabilities in \[0, 1\]",
        ),
        (
            lambda: lk.binary_cross_entropy(np.array([0.5, 0.2]), np.array([0.0, 2.0])),
            ValueError,
            "target must hold probabilities",
        ),
        (
            lambda: lk.binary_cross_entropy_with_logits(np.zeros(2), np.array([0.0, np.nan])),
            ValueError,
            "target contains NaN",
        ),
        (lambda: lk.mse(np.zeros(2), np.array([0.0, np.nan])), ValueError, "target contains NaN"),
        (lambda: lk.huber(np.zeros(2), np.zeros(2), delta=0.0), ValueError, "delta must be in"),
        (lambda: lk.huber(np.zeros(2), np.zeros(2), delta=-1), ValueError, "delta must be in"),
        (lambda: lk.smooth_l1(np.zeros(2), np.zeros(2), beta=-0.5), ValueError, "beta must be in"),
        (lambda: lk.huber(np.zeros(2), np.zeros(2), delta="1"), TypeError, "delta must be a real number"),
        (
            lambda: lk.kl_div(np.zeros((2, 2)), np.full((2, 2), 0.5), reduction="avg"),
            ValueError,
            "'batchmean'",
        ),
        (
            lambda: lk.mse(np.zeros(2), np.zeros(2), reduction="batchmean"),
            ValueError,
            "reduction must be one of",
        ),
        (
            lambda: lk.mse(np.zeros(2), np.zeros(2), where=np.ones(2)),
            TypeError,
            "where must be a boolean array",
        ),
        (
            lambda: lk.mse(np.zeros((2, 3)), np.zeros((2, 3)), where=np.ones(2, dtype=bool)),
            ValueError,
            "where of shape",
        ),
        (
            lambda: lk.binary_cross_entropy_with_logits(
                np.zeros((2, 3)), np.zeros((2, 3)), pos_weight=np.ones(2)
            ),
            ValueError,
            "pos_weight of shape",
        ),
        (lambda: lk.nll(X, T.astype(np.float64)), TypeError, "target must hold integer class indices"),
        (lambda: lk.softmax(X, temperature=-1.0), ValueError, "temperature must be in"),
        (lambda: lk.softmax(np.arange(3)), TypeError, "x must be a real floating-point array"),
        (lambda: lk.cross_entropy(X, T, ignore_index=1.5), TypeError, "ignore_index must be an int"),
        (lambda: lk.value_and_grad(lk.mse, argnums=5), ValueError, "argnums must index"),
        (lambda: lk.value_and_grad(np.sum), TypeError, "not a losskit loss"),
    ],
)
def test_bad_input_is_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_mixed_array_libraries_are_refused():
    import torch

    with pytest.raises(TypeError, match=r"same library.*input is numpy.*target is torch"):
        lk.mse(np.zeros(3), torch.zeros(3))


def test_no_gradient_for_an_argument_without_one():
    with pytest.raises(ValueError, match=r"no analytic gradient with respect to argument 1 \(target\)"):
        lk.value_and_grad(lk.cross_entropy, argnums=1)(X, T)


def test_value_checks_do_not_break_jit_or_make_dask_compute():
    import dask
    import dask.array as da
    import jax
    import jax.numpy as jnp

    # inside jit the probabilities cannot be read: no error, no tracer leak
    f = jax.jit(lambda p, y: lk.binary_cross_entropy(p, y))
    assert np.isfinite(float(f(jnp.array([0.2, 0.7]), jnp.array([0.0, 1.0]))))
    # outside jit a concrete JAX array is checked
    with pytest.raises(ValueError, match="probabilities"):
        lk.binary_cross_entropy(jnp.array([0.2, 1.7]), jnp.array([0.0, 1.0]))

    def refuse(*args, **kwargs):
        raise AssertionError("dask computed")

    with dask.config.set(scheduler=refuse):
        lazy = lk.cross_entropy(da.from_array(X, chunks=2), da.from_array(T, chunks=2))
    assert float(lazy.compute()) == pytest.approx(np.log(3))


CLASS_AXIS_LOSSES = [
    lk.cross_entropy,
    lk.nll,
    lk.softmax_focal,
    lk.poly1_cross_entropy,
    lk.sparsemax_loss,
    lambda x, t, where: lk.generalized_cross_entropy(lk.softmax(x), t, where=where),
    lambda x, t, where: lk.brier(lk.softmax(x), t, where=where),
]


@pytest.mark.parametrize("loss", CLASS_AXIS_LOSSES)
@pytest.mark.parametrize(
    "where, error, match",
    [
        (np.ones(4), TypeError, "where must be a boolean array; got dtype float64"),
        (np.ones(5, bool), ValueError, r"where of shape \(5,\) does not broadcast .* \(4,\)"),
    ],
    ids=["float", "shape"],
)
def test_a_bad_where_mask_is_named_by_every_class_axis_loss(loss, where, error, match):
    with pytest.raises(error, match=match):
        loss(X, T, where=where)
