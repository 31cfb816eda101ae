"""Margin losses: label conventions, the class axis, PyTorch's multilabel target lists, masks,
bad input and extreme scores — what the shared table cannot express."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import losskit as lk
from losskit.losses import margin
from tests.support.numerics import assert_where_matches_subset

# -- label conventions ----------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [lk.hinge, lk.squared_hinge, lk.perceptron], ids=lambda f: f.__name__)
def test_zero_one_labels_mean_the_same_as_signed_labels(fn, rng):
    x = rng.normal(size=(4, 3)) * 2
    signed = rng.choice([-1.0, 1.0], size=(4, 3))
    binary = (signed + 1) / 2
    for labels in (binary, binary.astype(np.int64), signed.astype(np.int32)):
        np.testing.assert_allclose(fn(x, labels, reduction="none"), fn(x, signed, reduction="none"))
        np.testing.assert_allclose(lk.grad(fn)(x, labels), lk.grad(fn)(x, signed))
    # all-positive labels are the same in both conventions
    np.testing.assert_allclose(fn(x, np.ones((4, 3))), fn(x, np.ones((4, 3), dtype=np.int64)))


def test_hinge_worked_example():
    # Keras's docs: y_true [[0, 1], [0, 0]], y_pred [[0.6, 0.4], [0.4, 0.6]] -> 1.3
    y = np.array([[0.0, 1.0], [0.0, 0.0]])
    x = np.array([[0.6, 0.4], [0.4, 0.6]])
    assert float(lk.hinge(x, y)) == pytest.approx(1.3)
    assert float(lk.squared_hinge(x, y)) == pytest.approx(1.86)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: lk.hinge(np.zeros(3), np.array([0.0, -1.0, 1.0])), "got both 0 and -1"),
        (lambda: lk.hinge(np.zeros(3), np.array([0.0, 2.0, 1.0])), r"target must only hold the values \[-1"),
        (lambda: lk.perceptron(np.zeros(2), np.array([0.5, 1.0])), "target must only hold the values"),
        (
            lambda: lk.soft_margin(np.zeros(2), np.array([0.0, 1.0])),
            r"target must only hold the values \[-1.0, 1.0\]",
        ),
        (
            lambda: lk.hinge_embedding(np.zeros(2), np.array([0, 1])),
            r"target must only hold the values \[-1.0, 1.0\]",
        ),
    ],
)
def test_bad_labels(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# -- multiclass ---------------------------------------------------------------------------------


def test_multiclass_hinge_differs_from_keras_categorical_hinge_only_with_negative_scores():
    x = np.array([[-5.0, -3.0], [2.0, 0.5]])
    t = np.array([0, 0])
    # Crammer-Singer: max(s_0, s_1 + 1) - s_0; Keras takes max(0, others) instead of the others
    np.testing.assert_allclose(lk.multiclass_hinge(x, t, reduction="none"), [3.0, 0.0])


def test_multiclass_subgradient_is_argmax_minus_target(rng):
    x = rng.normal(size=(5, 4))
    t = rng.integers(0, 4, size=5)
    g = lk.grad(lk.multiclass_perceptron)(x, t, reduction="sum")
    expected = np.eye(4)[x.argmax(1)] - np.eye(4)[t]
    np.testing.assert_array_equal(g, expected)
    shifted = x + 1 - np.eye(4)[t]
    g = lk.grad(lk.multiclass_hinge)(x, t, reduction="sum")
    np.testing.assert_array_equal(g, np.eye(4)[shifted.argmax(1)] - np.eye(4)[t])


@pytest.mark.parametrize(
    "fn,kwargs",
    [
        (lk.multi_margin, {"p": 2, "margin": 0.5}),
        (lk.multiclass_hinge, {}),
        (lk.multiclass_perceptron, {}),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_class_axis_is_a_layout_choice(fn, kwargs, rng):
    x = rng.normal(size=(3, 5, 2))
    t = rng.integers(0, 5, size=(3, 2))
    last = np.moveaxis(x, 1, -1)
    for reduction in ("mean", "none"):
        np.testing.assert_allclose(
            fn(x, t, axis=1, reduction=reduction, **kwargs),
            fn(last, t, reduction=reduction, **kwargs),
            rtol=1e-14,
        )
    g = lk.grad(fn)(x, t, axis=1, **kwargs)
    np.testing.assert_allclose(np.moveaxis(g, 1, -1), lk.grad(fn)(last, t, **kwargs), rtol=1e-14)


def test_multi_margin_matches_pytorch_with_a_zero_dimensional_target(rng):
    x = rng.normal(size=6)
    t = np.array(2)
    expected = F.multi_margin_loss(torch.tensor(x), torch.tensor(t), p=2, margin=0.3)
    assert float(lk.multi_margin(x, t, p=2, margin=0.3)) == pytest.approx(float(expected), rel=1e-12)


def test_multilabel_margin_reads_targets_up_to_the_first_minus_one(rng):
    x = rng.normal(size=(2, 5))
    t = np.array([[3, 0, -1, 1, 4], [-1, 2, 2, 2, 2]])
    garbage = np.array([[3, 0, -1, 4, -1], [-1, 0, 1, 3, 4]])
    np.testing.assert_allclose(
        lk.multilabel_margin(x, t, reduction="none"), lk.multilabel_margin(x, garbage, reduction="none")
    )
    assert float(lk.multilabel_margin(x, t, reduction="none")[1]) == 0.0  # no target classes
    expected = F.multilabel_margin_loss(torch.tensor(x), torch.tensor(t), reduction="none")
    np.testing.assert_allclose(lk.multilabel_margin(x, t, reduction="none"), expected.numpy(), rtol=1e-12)


def test_multilabel_margin_class_axis(rng):
    x = rng.normal(size=(2, 5, 3))
    t = np.stack([np.array([[3, 0, -1, 1, 4], [1, -1, 0, 0, 0]])] * 3, axis=-1)
    last = np.moveaxis(x, 1, -1)
    t_last = np.moveaxis(t, 1, -1)
    np.testing.assert_allclose(
        lk.multilabel_margin(x, t, axis=1, reduction="none"),
        lk.multilabel_margin(last, t_last, reduction="none"),
    )
    g = lk.grad(lk.multilabel_margin)(x, t, axis=1)
    np.testing.assert_allclose(np.moveaxis(g, 1, -1), lk.grad(lk.multilabel_margin)(last, t_last))


def test_multilabel_soft_margin_class_weight_follows_the_axis(rng):
    x = rng.normal(size=(3, 4, 2))
    y = (rng.uniform(size=(3, 4, 2)) > 0.5).astype(np.float64)
    w = rng.uniform(0.5, 2, size=4)
    ours = lk.multilabel_soft_margin(x, y, w, axis=1, reduction="none")
    last = lk.multilabel_soft_margin(np.moveaxis(x, 1, -1), np.moveaxis(y, 1, -1), w, reduction="none")
    np.testing.assert_allclose(ours, last, rtol=1e-14)
    # integer labels are accepted
    np.testing.assert_allclose(
        lk.multilabel_soft_margin(x, y.astype(np.int64), w, axis=1, reduction="none"), ours
    )


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: lk.multi_margin(np.zeros((2, 3)), np.array([0, 1]), p=3), ValueError, "p must be 1 or 2"),
        (
            lambda: lk.multi_margin(np.zeros((2, 3)), np.array([0, 1]), weight=np.ones(2)),
            ValueError,
            r"weight must have shape \(3,\)",
        ),
        (lambda: lk.multi_margin(np.zeros((2, 3)), np.array([0, 3])), ValueError, r"class index 3.*\[0, 2\]"),
        (
            lambda: lk.multi_margin(np.zeros((2, 3)), np.array([0.0, 1.0])),
            TypeError,
            "target must hold integer",
        ),
        (
            lambda: lk.multiclass_hinge(np.zeros((2, 3)), np.array([0, 1, 2])),
            ValueError,
            r"without the class axis.*expected \(2,\), got \(3,\)",
        ),
        (lambda: lk.multiclass_perceptron(np.zeros(()), np.array(0)), ValueError, "must have a class axis"),
        (
            lambda: lk.multiclass_hinge(np.zeros((2, 3)), np.array([0, 1]), axis=2),
            ValueError,
            "axis=2 is out of range",
        ),
        (
            lambda: lk.multilabel_margin(np.zeros((2, 3)), np.array([[0, -2, 1], [0, 1, 2]])),
            ValueError,
            r"target holds -2, outside \[-1, 2\]",
        ),
        (
            lambda: lk.multilabel_margin(np.zeros((2, 3)), np.array([[0, 3, 1], [0, 1, 2]])),
            ValueError,
            r"target holds 3",
        ),
        (
            lambda: lk.multilabel_margin(np.zeros((2, 3)), np.zeros(2, dtype=np.int64)),
            ValueError,
            "input's shape",
        ),
        (
            lambda: lk.multilabel_soft_margin(np.zeros((2, 3)), np.full((2, 3), 1.5)),
            ValueError,
            r"target must hold probabilities in \[0, 1\]",
        ),
        (
            lambda: lk.multilabel_soft_margin(np.zeros((2, 3)), np.zeros((2, 3)), np.ones((3, 3))),
            ValueError,
            "weight of shape",
        ),
        (
            lambda: lk.hinge(np.zeros(2, dtype=np.int64), np.ones(2)),
            TypeError,
            "input must be a real floating",
        ),
        (
            lambda: lk.hinge_embedding(np.zeros(2), np.ones(2), margin="1"),
            TypeError,
            "margin must be a real number",
        ),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


# -- masks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn,make",
    [
        (lk.hinge, lambda r: ((r.normal(size=10),), r.choice([-1.0, 1.0], size=10), {})),
        (lk.soft_margin, lambda r: ((r.normal(size=10),), r.choice([-1.0, 1.0], size=10), {})),
        (lk.hinge_embedding, lambda r: ((np.abs(r.normal(size=10)),), r.choice([-1.0, 1.0], size=10), {})),
        (lk.multiclass_hinge, lambda r: ((r.normal(size=(10, 4)),), r.integers(0, 4, size=10), {})),
        (lk.multiclass_perceptron, lambda r: ((r.normal(size=(10, 4)),), r.integers(0, 4, size=10), {})),
        (
            lk.multi_margin,
            lambda r: (
                (r.normal(size=(10, 4)),),
                r.integers(0, 4, size=10),
                {"weight": r.uniform(0.5, 2, 4)},
            ),
        ),
        (lk.multilabel_margin, lambda r: ((r.normal(size=(10, 4)),), np.tile([2, 0, -1, 1], (10, 1)), {})),
        (
            lk.multilabel_soft_margin,
            lambda r: ((r.normal(size=(10, 4)),), (r.uniform(size=(10, 4)) > 0.5) * 1.0, {}),
        ),
    ],
    ids=lambda f: getattr(f, "__name__", ""),
)
def test_where_drops_samples(fn, make, rng):
    (x,), t, kwargs = make(rng)
    mask = rng.uniform(size=10) > 0.4
    assert_where_matches_subset(fn, (x, t), kwargs, mask, (x[mask], t[mask]))


# -- extreme scores -------------------------------------------------------------------------------


def test_soft_margin_and_multilabel_soft_margin_are_exact_at_huge_logits():
    x = np.array([1e4, -1e4, 1e4, -1e4], dtype=np.float32)
    y = np.array([1.0, 1.0, -1.0, -1.0], dtype=np.float32)
    value, g = lk.value_and_grad(lk.soft_margin)(x, y, reduction="none")
    assert value.dtype == np.float32
    np.testing.assert_allclose(value, [0.0, 1e4, 1e4, 0.0])
    np.testing.assert_allclose(g, [0.0, -1.0, 1.0, 0.0])
    value, g = lk.value_and_grad(lk.multilabel_soft_margin)(x[None], (y[None] + 1) / 2)
    assert np.isfinite(value) and np.all(np.isfinite(g))
    np.testing.assert_allclose(value, 0.5e4, rtol=1e-6)


def test_multi_margin_float32_and_float16_keep_their_dtype(rng):
    x = rng.normal(size=(4, 3))
    t = rng.integers(0, 3, size=4)
    for dtype in (np.float32, np.float16):
        value, g = lk.value_and_grad(lk.multi_margin)(x.astype(dtype), t)
        assert value.dtype == dtype and g.dtype == dtype
        assert float(value) == pytest.approx(float(lk.multi_margin(x, t)), rel=1e-2)


def test_catalog_entries():
    for name in margin.__all__:
        info = lk.lookup(name)
        assert info.family == "classification" and info.input_space in ("scores", "logits")
    assert lk.lookup("multilabel_margin").torch == "F.multilabel_margin_loss"
    assert lk.lookup("hinge").optax == "optax.losses.hinge_loss"
