"""The worked numbers of the field's teaching material."""

from __future__ import annotations

import math

import numpy as np
import pytest

import losskit as lk


def test_mse_of_three_predictions():
    y_hat, y = np.array([2.5, 3.1, 4.8]), np.array([2.0, 3.0, 5.0])
    assert lk.mse(y_hat, y) == pytest.approx(0.1, abs=1e-15)
    loss, g = lk.value_and_grad(lk.mse)(y_hat, y)
    np.testing.assert_allclose(g, 2 * (y_hat - y) / 3)  # dMSE/dy_hat = 2(y_hat - y)/n


def test_single_squared_error():
    assert lk.mse(np.array([0.7]), np.array([1.0])) == pytest.approx(0.09, abs=1e-15)
    assert lk.mse(np.array([0.95]), np.array([1.0])) == pytest.approx(0.0025, abs=1e-15)


def test_uniform_logits_over_27_classes_cost_ln_27():
    loss = lk.cross_entropy(np.zeros((5, 27)), np.arange(5))
    assert loss == pytest.approx(math.log(27), abs=1e-12)
    assert round(float(loss), 4) == 3.2958


def test_cross_entropy_of_a_confident_correct_prediction():
    loss = lk.cross_entropy(np.array([2.0, 1.0, 0.1]), np.array(0))
    assert round(float(loss), 4) == 0.4170
    probs = lk.softmax(np.array([2.0, 1.0, 0.1]))
    np.testing.assert_allclose(probs, [0.659, 0.2424, 0.0986], atol=5e-4)


def test_softmax_temperature_sharpens_and_flattens():
    x = np.array([2.0, 1.0, 0.1])
    cold, warm = lk.softmax(x, temperature=0.5), lk.softmax(x, temperature=2.0)
    assert cold[0] > lk.softmax(x)[0] > warm[0]


def test_nll_of_probabilities():
    p = np.array([[0.7, 0.2, 0.1]])
    assert lk.nll(np.log(p), np.array([0])) == pytest.approx(-math.log(0.7))
