"""Jensen-Shannon, generalised KL and distillation KL beyond the shared table: SciPy and
PyTorch autograd cross-checks, the divergences' defining properties, extremes, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import losskit as lk


def _dist(rng, shape=(4, 6)):
    p = rng.uniform(0.01, 1, size=shape)
    return p / p.sum(-1, keepdims=True)


def test_js_div_is_scipys_jensenshannon_squared(rng):
    from scipy.spatial.distance import jensenshannon

    p, q = _dist(rng), _dist(rng)
    per_row = lk.js_div(np.log(p), q, reduction="none").sum(-1)
    np.testing.assert_allclose(per_row, jensenshannon(p, q, axis=-1) ** 2, rtol=1e-10)
    assert lk.js_div(np.log(p), q) == pytest.approx(per_row.mean(), rel=1e-12)  # batchmean


def test_js_div_is_symmetric_bounded_and_log2_on_disjoint_supports(rng):
    p, q = _dist(rng), _dist(rng)
    assert lk.js_div(np.log(p), q) == pytest.approx(float(lk.js_div(np.log(q), p)), rel=1e-12)
    assert 0 < lk.js_div(np.log(p), q) < np.log(2)
    a = np.array([[0.5, 0.5, 0.0, 0.0]])
    b = np.array([[0.0, 0.0, 0.25, 0.75]])
    with np.errstate(divide="ignore"):
        log_a = np.log(a)
    value, (g_in, g_t) = lk.value_and_grad(lk.js_div, (0, 1))(log_a, b)
    assert value == pytest.approx(np.log(2), rel=1e-14)
    assert np.all(np.isfinite(g_in))  # log p = -inf where p = 0: gradient 0, not NaN
    np.testing.assert_array_equal(g_in[0, 2:], 0.0)
    assert np.all(g_t[0, :2] == -np.inf)  # the true derivative at q = 0 next to p > 0


def _torch_js(log_p, t, log_target):
    p = log_p.exp()
    q = t.exp() if log_target else t
    m = (p + q) / 2
    return 0.5 * (torch.special.xlogy(p, p) - p * m.log() + torch.special.xlogy(q, q) - q * m.log())


@pytest.mark.parametrize("log_target", [False, True])
def test_js_div_gradients_match_torch_autograd_of_the_formula(log_target, rng):
    p, q = _dist(rng), _dist(rng)
    t_in = torch.tensor(np.log(p), requires_grad=True)
    t_t = torch.tensor(np.log(q) if log_target else q, requires_grad=True)
    expected = _torch_js(t_in, t_t, log_target).sum() / 4
    expected.backward()
    value, (g_in, g_t) = lk.value_and_grad(lk.js_div, (0, 1))(
        t_in.detach().numpy(), t_t.detach().numpy(), log_target
    )
    assert float(value) == pytest.approx(float(expected), rel=1e-12)
    np.testing.assert_allclose(g_in, t_in.grad.numpy(), rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(g_t, t_t.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_js_div_tiny_probabilities_in_log_space_float32():
    log_p = np.array([[-200.0, 0.0]], dtype=np.float32)  # exp(-200) underflows float32
    log_q = np.array([[-150.0, 0.0]], dtype=np.float32)
    value, g = lk.value_and_grad(lk.js_div)(log_p, log_q, True)
    assert value.dtype == np.float32 and np.isfinite(value) and np.all(np.isfinite(g))
    assert float(value) == pytest.approx(0.0, abs=1e-30)


def test_generalized_kl_is_kl_div_for_normalised_distributions(rng):
    p, q = _dist(rng), _dist(rng)
    assert lk.generalized_kl(np.log(p), q) == pytest.approx(float(lk.kl_div(np.log(p), q)), rel=1e-10)
    # and adds sum p - sum q otherwise
    scaled = 3.0 * p
    expected = float(lk.kl_div(np.log(scaled), q, reduction="sum")) + scaled.sum() - q.sum()
    assert lk.generalized_kl(np.log(scaled), q, reduction="sum") == pytest.approx(expected, rel=1e-10)


def test_generalized_kl_target_zero():
    log_p = np.log(np.array([[0.2, 0.8]]))
    q = np.array([[0.0, 1.0]])
    value, (g_in, g_t) = lk.value_and_grad(lk.generalized_kl, (0, 1))(log_p, q)
    assert value == pytest.approx(-np.log(0.8) + 0.2 + 0.8 - 1.0, rel=1e-12)  # 0 log 0 = 0
    np.testing.assert_allclose(g_in, [[0.2, -0.2]], rtol=1e-12)
    assert g_t[0, 0] == -np.inf


def test_distillation_scales_with_temperature_squared(rng):
    s, t = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    for temperature in (1.0, 4.0):
        softened = lk.kl_div(
            lk.log_softmax(s, temperature=temperature), lk.softmax(t, temperature=temperature)
        )
        assert lk.distillation_kl(s, t, temperature) == pytest.approx(
            temperature**2 * float(softened), rel=1e-10
        )


def test_distillation_extreme_logits_float32_are_finite():
    s = np.array([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    t = np.array([[-1e4, 1e4, 0.0], [1e4, -1e4, 5.0]], dtype=np.float32)
    value, (gs, gt) = lk.value_and_grad(lk.distillation_kl, (0, 1))(s, t, 2.0)
    assert value.dtype == np.float32 and np.isfinite(value)
    assert np.all(np.isfinite(gs)) and np.all(np.isfinite(gt))
    exact = lk.distillation_kl(s.astype(np.float64), t.astype(np.float64), 2.0)
    assert float(value) == pytest.approx(float(exact), rel=1e-5)


def test_distillation_where_masks_samples(rng):
    s, t = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 3, 4))
    keep = rng.uniform(size=(2, 3)) < 0.6
    keep[0, 0] = True
    value = lk.distillation_kl(s, t, 3.0, where=keep)
    assert value == pytest.approx(float(lk.distillation_kl(s[keep], t[keep], 3.0)), rel=1e-12)


P = np.log(np.full((2, 3), 1 / 3))
Q = np.full((2, 3), 1 / 3)


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: lk.js_div(P, Q * 4), ValueError, r"target must hold probabilities in \[0, 1\]"),
        (lambda: lk.js_div(P, Q[:, :2]), ValueError, "target must have the same shape as input"),
        (lambda: lk.js_div(P, Q, log_target=1), TypeError, "log_target must be a bool"),
        (lambda: lk.js_div(P, Q, reduction="avg"), ValueError, "reduction must be one of"),
        (lambda: lk.generalized_kl(P, -Q), ValueError, "target must be >= 0"),
        (lambda: lk.generalized_kl(P, Q, axis=2), ValueError, "axis=2 is out of range"),
        (lambda: lk.generalized_kl(P, Q, where=np.ones((2, 4), dtype=bool)), ValueError, "where of shape"),
        (lambda: lk.distillation_kl(P, Q), TypeError, "temperature"),
        (lambda: lk.distillation_kl(P, Q, 0.0), ValueError, "temperature must be in"),
        (lambda: lk.distillation_kl(P, Q[:, :2], 2.0), ValueError, "teacher_logits must have the same shape"),
        (lambda: lk.distillation_kl(P, Q, 2.0, where=np.ones(3, dtype=bool)), ValueError, "where of shape"),
    ],
)
def test_bad_input_names_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
