"""Masked logits: ``-inf`` logits (action masks, constrained decoding) with targets that give
those classes probability 0.  ``0 * log 0`` is 0, so the loss is that of the unmasked classes --
Optax's ``safe_softmax_cross_entropy`` -- with a finite gradient that is 0 on the masked
classes, on every path: the portable code (NumPy values, torch without autograd, JAX, every
other library), the NumPy row kernel (``value_and_grad``) and the torch autograd Function.

The same ``0 * inf`` hides in every loss with probability targets or labels: KL divergences,
distillation, PolyLoss, ranking, sparsemax, and the binary losses on logits at ``+-inf`` with
hard labels."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import losskit as lk

NEG = -np.inf
# two rows with masked classes; the target gives every masked class probability 0
X = np.array([[1.0, NEG, 0.5, 2.0], [0.3, 0.2, NEG, NEG], [0.1, -0.4, 0.9, 0.0]])
Q = np.array([[0.5, 0.0, 0.25, 0.25], [0.6, 0.4, 0.0, 0.0], [0.1, 0.2, 0.3, 0.4]])
# the same logits with the masked ones finite but so low that exp() is exactly 0 and 0 * x = 0
FINITE = np.where(np.isinf(X), -1e4, X)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


def _optax_safe(x, q):
    import jax.numpy as jnp
    import optax

    return np.asarray(optax.safe_softmax_cross_entropy(jnp.asarray(x), jnp.asarray(q)))


def _expected_grad(reduction):
    p = np.exp(FINITE - FINITE.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    g = p * Q.sum(-1, keepdims=True) - Q
    return g / len(X) if reduction == "mean" else g


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_cross_entropy_probability_targets_at_masked_logits_is_optax_safe_softmax(reduction):
    per_row = _optax_safe(X, Q)
    assert np.all(np.isfinite(per_row))
    expected = {"none": per_row, "sum": per_row.sum(), "mean": per_row.mean()}[reduction]
    np.testing.assert_allclose(_quiet(lk.cross_entropy, X, Q, reduction=reduction), expected, rtol=1e-12)
    # torch tensors autograd does not track, and JAX (the portable code on both)
    plain = _quiet(lk.cross_entropy, torch.from_numpy(X), torch.from_numpy(Q), reduction=reduction)
    np.testing.assert_allclose(plain.numpy(), expected, rtol=1e-12)
    import jax
    import jax.numpy as jnp

    jq = jnp.asarray(Q)
    value, g = jax.value_and_grad(lambda x: lk.cross_entropy(x, jq, reduction=reduction).sum())(
        jnp.asarray(X)
    )
    np.testing.assert_allclose(float(value), np.sum(expected), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(g), _expected_grad(reduction), rtol=1e-12, atol=1e-15)
    # the analytic gradient of the portable code (array-api-strict has no fast path)
    import array_api_strict as xps

    value, g = _quiet(
        lk.value_and_grad(lk.cross_entropy), xps.asarray(X), xps.asarray(Q), reduction=reduction
    )
    np.testing.assert_allclose(np.asarray(value), expected, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(g), _expected_grad(reduction), rtol=1e-12, atol=1e-15)


def test_cross_entropy_masked_logits_through_torch_autograd_of_the_portable_code():
    # a target that requires grad makes the torch Function decline: autograd runs through the
    # portable code, where 0 * log 0 must not turn into a NaN gradient either
    x = torch.from_numpy(X).requires_grad_(True)
    q = torch.from_numpy(Q).requires_grad_(True)
    value = _quiet(lk.cross_entropy, x, q, reduction="sum")
    gx, gq = torch.autograd.grad(value, (x, q))
    assert float(value) == pytest.approx(float(_optax_safe(X, Q).sum()), rel=1e-12)
    np.testing.assert_allclose(gx.numpy(), _expected_grad("sum"), rtol=1e-12, atol=1e-15)
    assert np.all(np.isfinite(gq.numpy()))


def test_cross_entropy_label_smoothing_puts_mass_on_masked_classes_so_the_loss_is_infinite():
    # smoothing gives every class probability eps / C > 0: a masked class is then impossible
    # under the model, and the loss is +inf (not NaN)
    out = _quiet(lk.cross_entropy, X, Q, label_smoothing=0.1, reduction="none")
    assert np.isposinf(out[:2]).all() and np.isfinite(out[2])


def test_cross_entropy_masked_logits_with_class_indices_and_smoothing_weights_of_zero():
    t = np.array([0, 1, 2])
    w = np.array([1.0, 2.0, 0.0, 0.5])  # weight 0 on class 2, masked in row 1
    x = X.copy()
    x[0, 1] = 0.7  # row 0's only masked class is weighted: keep the row finite
    x[1, 3] = 0.1
    value = _quiet(lk.cross_entropy, x, t, w, label_smoothing=0.1, reduction="none")
    finite = np.where(np.isinf(x), -1e4, x)
    np.testing.assert_allclose(value, lk.cross_entropy(finite, t, w, label_smoothing=0.1, reduction="none"))


def test_cross_entropy_masked_logits_numpy_kernel():
    value, g = _quiet(lk.value_and_grad(lk.cross_entropy), X, Q, reduction="none")
    np.testing.assert_allclose(value, _optax_safe(X, Q), rtol=1e-12)
    np.testing.assert_allclose(g, _expected_grad("sum"), rtol=1e-12, atol=1e-15)


def test_cross_entropy_masked_logits_torch_function():
    x = torch.from_numpy(X).requires_grad_(True)
    value = _quiet(lk.cross_entropy, x, torch.from_numpy(Q), reduction="sum")
    (g,) = torch.autograd.grad(value, x)
    assert float(value) == pytest.approx(float(_optax_safe(X, Q).sum()), rel=1e-12)
    np.testing.assert_allclose(g.numpy(), _expected_grad("sum"), rtol=1e-12, atol=1e-15)


# -- the other losses with probability targets or labels ------------------------------------


def _log_softmax(x):
    return _quiet(lk.log_softmax, x)


P_TARGET = Q / Q.sum(-1, keepdims=True)
HARD = (Q > 0).astype(float)

# name -> (call on logits X-like, argnums to check gradients for)
LOSSES = {
    "poly1_cross_entropy": lambda x, **k: lk.poly1_cross_entropy(x, Q, **k),
    "kl_div": lambda x, **k: lk.kl_div(_log_softmax(x), Q, **k),
    "kl_div-log_target": lambda x, **k: lk.kl_div(_log_softmax(x), _quiet(np.log, Q), log_target=True, **k),
    "generalized_kl": lambda x, **k: lk.generalized_kl(_log_softmax(x), Q, **k),
    "js_div": lambda x, **k: lk.js_div(_log_softmax(x), Q, **k),
    "distillation_kl-teacher": lambda x, **k: lk.distillation_kl(FINITE, x, 2.0, **k),
    "distillation_kl-both": lambda x, **k: lk.distillation_kl(x, x + 0.5, 2.0, **k),
    "ranking_softmax": lambda x, **k: lk.ranking_softmax(x, Q, **k),
    "sparsemax_loss": lambda x, **k: lk.sparsemax_loss(x, P_TARGET, **k),
    "bce_with_logits": lambda x, **k: lk.binary_cross_entropy_with_logits(x, HARD, **k),
    "multilabel_soft_margin": lambda x, **k: lk.multilabel_soft_margin(x, HARD, **k),
    "sigmoid_focal": lambda x, **k: lk.sigmoid_focal(x, HARD, **k),
}


@pytest.mark.parametrize("name", list(LOSSES))
def test_zero_probability_at_a_masked_logit_adds_nothing(name):
    fn = LOSSES[name]
    at_inf = np.asarray(_quiet(fn, X, reduction="sum"))
    at_finite = np.asarray(_quiet(fn, FINITE, reduction="sum"))
    assert np.isfinite(at_inf), f"{name}: {at_inf}"
    np.testing.assert_allclose(at_inf, at_finite, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
@pytest.mark.parametrize(
    "fn",
    [lk.binary_cross_entropy_with_logits, lk.multilabel_soft_margin, lk.sigmoid_focal],
    ids=lambda f: f.__name__,
)
def test_binary_losses_at_infinite_logits_with_the_agreeing_label_are_zero(fn, value):
    x = np.array([[value, 0.3]])
    y = np.array([[1.0 if value > 0 else 0.0, 1.0]])
    wrong = np.array([[0.0 if value > 0 else 1.0, 1.0]])
    right = _quiet(lk.value_and_grad(fn), x, y, reduction="sum")
    expected = _quiet(lk.value_and_grad(fn), x[:, 1:], y[:, 1:], reduction="sum")
    assert float(right[0]) == pytest.approx(
        float(expected[0]) * (0.5 if fn is lk.multilabel_soft_margin else 1)
    )
    assert right[1][0, 0] == 0 and np.isfinite(right[1]).all()
    assert np.isposinf(_quiet(fn, x, wrong, reduction="sum"))
