"""Ranking losses beyond the shared table: masks, extreme scores, label conventions, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import losskit as lk


def test_margin_ranking_is_zero_once_the_order_clears_the_margin():
    x1 = np.array([2.0, 0.0, 1.0])
    x2 = np.array([1.0, 1.0, 1.0])
    y = np.array([1.0, -1.0, 1.0])
    per = lk.margin_ranking(x1, x2, y, margin=0.5, reduction="none")
    np.testing.assert_allclose(per, [0.0, 0.0, 0.5])
    _, (g1, g2) = lk.value_and_grad(lk.margin_ranking, (0, 1))(x1, x2, y, margin=0.5, reduction="sum")
    np.testing.assert_array_equal(g1, [0.0, 0.0, -1.0])
    np.testing.assert_array_equal(g2, [0.0, 0.0, 1.0])


def test_margin_ranking_where(rng):
    x1, x2 = rng.normal(size=8), rng.normal(size=8)
    y = np.where(rng.uniform(size=8) < 0.5, 1.0, -1.0)
    keep = rng.uniform(size=8) < 0.6
    assert lk.margin_ranking(x1, x2, y, where=keep) == pytest.approx(
        float(lk.margin_ranking(x1[keep], x2[keep], y[keep])), rel=1e-12
    )


def test_ranking_softmax_masked_items_are_out_of_the_softmax(rng):
    s, y = rng.normal(size=(3, 6)), rng.uniform(0, 2, size=(3, 6))
    keep = np.ones((3, 6), dtype=bool)
    keep[:, 4:] = False
    value, g = lk.value_and_grad(lk.ranking_softmax)(s, y, where=keep, reduction="none")
    sub, g_sub = lk.value_and_grad(lk.ranking_softmax)(s[:, :4], y[:, :4], reduction="none")
    np.testing.assert_allclose(value, sub, rtol=1e-12)
    np.testing.assert_allclose(g[:, :4], g_sub, rtol=1e-12)
    assert np.all(g[:, 4:] == 0)


def test_ranking_softmax_all_masked_is_zero_with_zero_gradient(rng):
    s, y = rng.normal(size=(2, 4)), rng.uniform(size=(2, 4))
    value, g = lk.value_and_grad(lk.ranking_softmax)(s, y, where=np.zeros((2, 4), dtype=bool))
    assert value == 0 and np.all(g == 0)


def test_ranking_softmax_is_cross_entropy_for_one_relevant_item(rng):
    s = rng.normal(size=(5, 7))
    t = rng.integers(0, 7, size=5)
    y = np.eye(7)[t]
    assert lk.ranking_softmax(s, y) == pytest.approx(float(lk.cross_entropy(s, t)), rel=1e-12)


def test_ranking_softmax_extreme_scores_float32():
    s = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]], dtype=np.float32)
    y = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 0.0]], dtype=np.float32)
    value, g = lk.value_and_grad(lk.ranking_softmax, (0, 1))(s, y)
    assert value.dtype == np.float32 and np.isfinite(value)
    assert all(np.all(np.isfinite(a)) for a in g)
    # -(1 * -2e4 + 2 * -1e4) for the first list, -(-2e4) for the second, averaged
    assert float(value) == pytest.approx((4e4 + 2e4) / 2, rel=1e-6)


def test_ranking_softmax_integer_labels_have_no_label_gradient(rng):
    s, y = rng.normal(size=(2, 3)), np.array([[0, 1, 2], [2, 0, 0]])
    assert lk.ranking_softmax(s, y) == pytest.approx(float(lk.ranking_softmax(s, y.astype(float))), rel=1e-15)
    with pytest.raises(ValueError, match=r"no analytic gradient with respect to argument 1 \(labels\)"):
        lk.value_and_grad(lk.ranking_softmax, (0, 1))(s, y)


def test_torch_autograd_reaches_labels(rng):
    s = torch.tensor(rng.normal(size=(2, 4)), requires_grad=True)
    y = torch.tensor(rng.uniform(size=(2, 4)), requires_grad=True)
    lk.ranking_softmax(s, y, reduction="sum").backward()
    _, (gs, gy) = lk.value_and_grad(lk.ranking_softmax, (0, 1))(
        s.detach().numpy(), y.detach().numpy(), reduction="sum"
    )
    np.testing.assert_allclose(s.grad.numpy(), gs, rtol=1e-12)
    np.testing.assert_allclose(y.grad.numpy(), gy, rtol=1e-12)


S = np.zeros((2, 3))
Y = np.ones((2, 3))


@pytest.mark.parametrize(
    "call,error,match",
    [
        (
            lambda: lk.margin_ranking(S, S, np.zeros((2, 3))),
            ValueError,
            r"target must only hold the values \[1, -1\]",
        ),
        (lambda: lk.margin_ranking(S, S[:, :2], Y), ValueError, "input2 must have the same shape as input1"),
        (lambda: lk.margin_ranking(S, S, Y, margin="1"), TypeError, "margin must be a real number"),
        (lambda: lk.margin_ranking(S, S, Y.astype(np.int64)), TypeError, "target must be a real floating"),
        (lambda: lk.ranking_softmax(S, -Y), ValueError, "labels must be relevance grades >= 0"),
        (lambda: lk.ranking_softmax(S, Y[:, :2]), ValueError, "labels must have the same shape as logits"),
        (
            lambda: lk.ranking_softmax(S, Y, weights=np.ones(3)),
            ValueError,
            "weights must have the same shape",
        ),
        (lambda: lk.ranking_softmax(S, Y, where=np.ones((2, 3))), TypeError, "where must be a boolean"),
        (lambda: lk.ranking_softmax(np.zeros(()), np.zeros(())), ValueError, "logits must have a list axis"),
        (lambda: lk.ranking_softmax(S, Y.astype(bool)), TypeError, "labels must be a floating or integer"),
        (lambda: lk.ranking_softmax(S, Y, reduction="batchmean"), ValueError, "reduction must be one of"),
    ],
)
def test_bad_input_names_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
