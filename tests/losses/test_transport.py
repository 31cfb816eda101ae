"""Entropic optimal transport: POT's Sinkhorn iterate by iterate, POT's Sinkhorn divergence,
the envelope gradient against autograd through long-converged iterations, and the options.

Tolerances: where losskit and POT run the same iterations (same start, same order of updates),
the values agree to rounding (rtol 1e-12) at any budget; against POT's converged values rtol
1e-7, the default for exact references, with both at budgets where the marginals hold to
~1e-15.  The analytic gradient is the envelope gradient, exact only at convergence: it is
compared with autograd through 2000 iterations of a PyTorch re-implementation at rtol 1e-8.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import losskit as lk
from tests.support.cases.transport import pot_entropic_ot


def _clouds(rng, n=7, m=5, d=2):
    return rng.uniform(size=(n, d)), rng.uniform(size=(m, d))


def _simplex(rng, n):
    w = rng.uniform(0.2, 1.0, size=n)
    return w / w.sum()


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@pytest.mark.parametrize("n_iters", [1, 3, 10, 40])
def test_sinkhorn_runs_pots_iterations(rng, n_iters):
    import ot

    x, y = _clouds(rng)
    a, b = _simplex(rng, 7), _simplex(rng, 5)
    eps = 0.1
    cost = ot.dist(x, y)
    plan, log = _quiet(
        ot.sinkhorn, a, b, cost, eps, method="sinkhorn_log", numItermax=n_iters, stopThr=0, log=True
    )
    f = eps * (log["log_u"] - np.log(a))
    g = eps * (log["log_v"] - np.log(b))
    dual = a @ f + b @ g - eps * (plan.sum() - 1.0)
    ours = lk.sinkhorn(x, y, a, b, epsilon=eps, n_iters=n_iters)
    np.testing.assert_allclose(ours, dual, rtol=1e-12)


def test_sinkhorn_is_pots_linear_cost_plus_the_entropic_term(rng):
    import ot

    x, y = _clouds(rng)
    a, b = _simplex(rng, 7), _simplex(rng, 5)
    eps, n_iters = 0.1, 300
    cost = ot.dist(x, y)
    linear = _quiet(ot.sinkhorn2, a, b, cost, eps, method="sinkhorn_log", numItermax=n_iters, stopThr=0)
    plan = _quiet(ot.sinkhorn, a, b, cost, eps, method="sinkhorn_log", numItermax=n_iters, stopThr=0)
    entropic = eps * np.sum(plan * np.log(plan / np.outer(a, b)))
    ours = lk.sinkhorn(x, y, a, b, epsilon=eps, n_iters=n_iters)
    np.testing.assert_allclose(ours, float(linear) + entropic, rtol=1e-7)
    assert float(ours) > float(linear)  # the entropic term is included


def test_sinkhorn_divergence_is_pots_plus_the_entropic_terms(rng):
    import ot

    x, y = _clouds(rng)
    y = y + 0.5
    a, b = _simplex(rng, 7), _simplex(rng, 5)
    eps, n_iters = 0.1, 400
    pot = _quiet(
        ot.bregman.empirical_sinkhorn_divergence,
        x,
        y,
        eps,
        a,
        b,
        numIterMax=n_iters,
        stopThr=0,
        method="sinkhorn_log",
    )

    def kl(p, q, wp, wq):
        plan = _quiet(
            ot.sinkhorn, wp, wq, ot.dist(p, q), eps, method="sinkhorn_log", numItermax=n_iters, stopThr=0
        )
        return np.sum(plan * np.log(plan / np.outer(wp, wq)))

    expected = float(pot) + eps * (kl(x, y, a, b) - 0.5 * kl(x, x, a, a) - 0.5 * kl(y, y, b, b))
    ours = lk.sinkhorn_divergence(x, y, a, b, epsilon=eps, n_iters=n_iters)
    np.testing.assert_allclose(ours, expected, rtol=1e-7)
    formula = (
        pot_entropic_ot(x, y, a, b, eps, n_iters, 2)
        - 0.5 * pot_entropic_ot(x, x, a, a, eps, n_iters, 2)
        - 0.5 * pot_entropic_ot(y, y, b, b, eps, n_iters, 2)
    )
    np.testing.assert_allclose(ours, formula, rtol=1e-7)


def _torch_sinkhorn(x, y, a, b, eps, n_iters, p=2):
    """Log-domain Sinkhorn in PyTorch, differentiated through every iteration."""
    import torch

    a = a / a.sum()
    b = b / b.sum()
    diff = x[:, None, :] - y[None, :, :]
    cost = (diff**2).sum(-1) if p == 2 else (diff**2).sum(-1).sqrt() ** p
    la, lb = a.log(), b.log()
    u, v = -la, -lb
    for _ in range(n_iters):
        v = -torch.logsumexp(la[:, None] + u[:, None] - cost / eps, dim=0)
        u = -torch.logsumexp(lb[None, :] + v[None, :] - cost / eps, dim=1)
    plan = (la[:, None] + u[:, None] + lb[None, :] + v[None, :] - cost / eps).exp()
    return eps * ((a * u).sum() + (b * v).sum() - plan.sum() + 1.0)


@pytest.mark.parametrize("p", [2, 1])
def test_envelope_gradient_matches_autograd_through_converged_iterations(rng, p):
    import torch

    x, y = _clouds(rng)
    a = rng.uniform(0.2, 1.0, size=7)
    b = rng.uniform(0.2, 1.0, size=5)
    tx, ty, ta, tb = (torch.from_numpy(t).requires_grad_(True) for t in (x, y, a, b))
    value = _torch_sinkhorn(tx, ty, ta, tb, 0.1, 2000, p)
    auto = torch.autograd.grad(value, (tx, ty, ta, tb))
    ours, grads = lk.value_and_grad(lk.sinkhorn, argnums=(0, 1, 2, 3))(x, y, a, b, n_iters=2000, p=p)
    np.testing.assert_allclose(ours, value.item(), rtol=1e-12)
    for g, t in zip(grads, auto):
        np.testing.assert_allclose(g, t.numpy(), rtol=1e-8, atol=1e-12)
    # the weights' gradient is tangent to the simplex, the potential f centred by its a-mean
    assert abs(float(grads[2] @ a)) < 1e-12
    # after the default 100 iterations it is still within ~1e-9 of autograd through 2000
    _, g100 = lk.value_and_grad(lk.sinkhorn)(x, y, a, b, p=p)
    np.testing.assert_allclose(g100, auto[0].numpy(), rtol=1e-7, atol=1e-9)


def test_the_default_budget_agrees_with_autograd_through_the_same_iterations(rng):
    import torch

    x, y = _clouds(rng)
    tx = torch.from_numpy(x).requires_grad_(True)
    ones_a, ones_b = torch.ones(7, dtype=torch.float64), torch.ones(5, dtype=torch.float64)
    (auto,) = torch.autograd.grad(_torch_sinkhorn(tx, torch.from_numpy(y), ones_a, ones_b, 0.1, 100), tx)
    _, g = lk.value_and_grad(lk.sinkhorn)(x, y)
    assert np.max(np.abs(g - auto.numpy())) < 1e-9 * np.max(np.abs(g))
    # too few iterations: the envelope gradient is then visibly not the loop's derivative
    (auto3,) = torch.autograd.grad(_torch_sinkhorn(tx, torch.from_numpy(y), ones_a, ones_b, 0.1, 2), tx)
    _, g3 = lk.value_and_grad(lk.sinkhorn)(x, y, n_iters=2)
    assert np.max(np.abs(g3 - auto3.numpy())) > 1e-4


def test_two_points_against_their_midpoint_cost_a_quarter():
    x = np.array([[0.0], [1.0]])
    y = np.array([[0.5]])
    np.testing.assert_allclose(lk.sinkhorn(x, y), 0.25, rtol=1e-14)
    np.testing.assert_allclose(lk.sinkhorn(x, y, p=1), 0.5, rtol=1e-14)


def test_sinkhorn_is_not_zero_at_identical_clouds_but_the_divergence_is(rng):
    x = rng.uniform(size=(6, 2))
    assert float(lk.sinkhorn(x, x)) > 1e-3
    assert float(lk.sinkhorn_divergence(x, x)) == 0.0
    _, g = lk.value_and_grad(lk.sinkhorn_divergence, argnums=(0, 1))(x, x)
    assert np.max(np.abs(g[0])) < 1e-15 and np.max(np.abs(g[1])) < 1e-15


def test_divergence_grows_as_the_clouds_move_apart(rng):
    x = rng.uniform(size=(6, 2))
    values = [float(lk.sinkhorn_divergence(x, x + shift, n_iters=300)) for shift in (0.0, 0.1, 0.3, 1.0)]
    assert values == sorted(values) and values[0] == 0.0


def test_weights_are_normalised_and_zero_weight_points_do_not_count(rng):
    x, y = _clouds(rng)
    a, b = _simplex(rng, 7), _simplex(rng, 5)
    np.testing.assert_allclose(lk.sinkhorn(x, y, 3.0 * a, b), lk.sinkhorn(x, y, a, b), rtol=1e-12)
    a0 = a.copy()
    a0[2] = 0.0
    keep = np.arange(7) != 2
    np.testing.assert_allclose(lk.sinkhorn(x, y, a0, b), lk.sinkhorn(x[keep], y, a0[keep], b), rtol=1e-12)
    _, g = lk.value_and_grad(lk.sinkhorn, argnums=(0, 2))(x, y, a0, b)
    assert np.all(np.isfinite(g[1])) and np.all(g[0][2] == 0)


def test_uniform_weights_are_the_default(rng):
    x, y = _clouds(rng)
    np.testing.assert_allclose(lk.sinkhorn(x, y), lk.sinkhorn(x, y, np.ones(7), np.ones(5)), rtol=1e-13)


def test_batched_clouds_give_one_loss_each(rng):
    x, y = rng.uniform(size=(3, 6, 2)), rng.uniform(size=(3, 4, 2))
    for fn in (lk.sinkhorn, lk.sinkhorn_divergence):
        none = fn(x, y, reduction="none")
        assert none.shape == (3,)
        np.testing.assert_allclose(none, [fn(x[i], y[i]) for i in range(3)], rtol=1e-12)
        np.testing.assert_allclose(fn(x, y), none.mean(), rtol=1e-12)


def test_runs_under_jit_for_any_epsilon_without_recompiling_the_budget(rng):
    import jax
    import jax.numpy as jnp

    x, y = _clouds(rng)
    f = jax.jit(lambda x, y: lk.sinkhorn_divergence(x, y, epsilon=0.05, n_iters=200))
    np.testing.assert_allclose(
        f(jnp.asarray(x), jnp.asarray(y)), lk.sinkhorn_divergence(x, y, epsilon=0.05, n_iters=200), rtol=1e-10
    )


def test_small_epsilon_stays_finite_in_the_log_domain(rng):
    x, y = _clouds(rng)
    value = lk.sinkhorn(x, y, epsilon=1e-4, n_iters=50)
    _, g = lk.value_and_grad(lk.sinkhorn)(x, y, epsilon=1e-4, n_iters=50)
    assert np.isfinite(value) and np.all(np.isfinite(g))


@pytest.mark.parametrize(
    "call,error,message",
    [
        (lambda x, y: lk.sinkhorn(x, y, epsilon=0.0), ValueError, "epsilon"),
        (lambda x, y: lk.sinkhorn(x, y, n_iters=0), ValueError, "n_iters must be >= 1"),
        (lambda x, y: lk.sinkhorn(x, y, n_iters=2.5), TypeError, "n_iters must be an int"),
        (lambda x, y: lk.sinkhorn(x, y, p=0.5), ValueError, "p must be in"),
        (lambda x, y: lk.sinkhorn(x[0], y), ValueError, "x must be a point cloud"),
        (lambda x, y: lk.sinkhorn(x, y[:, :1]), ValueError, "same batch axes and point dimension"),
        (lambda x, y: lk.sinkhorn(x, y, np.ones(3)), ValueError, "one weight per point of x"),
        (lambda x, y: lk.sinkhorn(x, y, None, -np.ones(5)), ValueError, "b must be >= 0"),
        (lambda x, y: lk.sinkhorn(x.astype(int), y), TypeError, "x must be a real floating"),
    ],
)
def test_bad_inputs_are_refused_by_name(rng, call, error, message):
    x, y = _clouds(rng)
    with pytest.raises(error, match=message):
        call(x, y)


# -- histograms over a given cost (rtol 1e-7 against POT at budgets where both have converged;
# rtol 1e-12 where the two run the same iterations) ---------------------------------------------


def test_sinkhorn_histograms_is_pots_cost_and_its_cost_gradient_is_pots_plan(rng):
    import ot

    x, y = _clouds(rng)
    a, b = rng.uniform(0.2, 1.0, size=7) * 4.0, rng.uniform(0.2, 1.0, size=5)
    an, bn = a / a.sum(), b / b.sum()
    eps, n_iters = 0.1, 300
    cost = ot.dist(x, y)
    linear = _quiet(ot.sinkhorn2, an, bn, cost, eps, method="sinkhorn_log", numItermax=n_iters, stopThr=0)
    plan = _quiet(ot.sinkhorn, an, bn, cost, eps, method="sinkhorn_log", numItermax=n_iters, stopThr=0)
    expected = float(linear) + eps * np.sum(plan * np.log(plan / np.outer(an, bn)))
    value, grads = lk.value_and_grad(lk.sinkhorn_histograms, argnums=(0, 1, 2))(
        a, b, cost, epsilon=eps, n_iters=n_iters
    )
    np.testing.assert_allclose(value, expected, rtol=1e-7)
    np.testing.assert_allclose(grads[2], plan, rtol=1e-7, atol=1e-15)
    # the same solver as sinkhorn: the same value and weight gradients on the clouds' cost
    v_pts, g_pts = lk.value_and_grad(lk.sinkhorn, argnums=(2, 3))(x, y, a, b, epsilon=eps, n_iters=n_iters)
    np.testing.assert_allclose(value, v_pts, rtol=1e-12)
    np.testing.assert_allclose(grads[0], g_pts[0], rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(grads[1], g_pts[1], rtol=1e-10, atol=1e-15)
    assert abs(float(grads[0] @ a)) < 1e-12  # tangent to the simplex


@pytest.mark.parametrize("n_iters", [1, 3, 10])
def test_sinkhorn_histograms_runs_pots_iterations(rng, n_iters):
    import ot

    a, b = _simplex(rng, 6), _simplex(rng, 4)
    cost = rng.uniform(size=(6, 4))
    eps = 0.1
    plan, log = _quiet(
        ot.sinkhorn, a, b, cost, eps, method="sinkhorn_log", numItermax=n_iters, stopThr=0, log=True
    )
    f = eps * (log["log_u"] - np.log(a))
    g = eps * (log["log_v"] - np.log(b))
    dual = a @ f + b @ g - eps * (plan.sum() - 1.0)
    np.testing.assert_allclose(lk.sinkhorn_histograms(a, b, cost, n_iters=n_iters), dual, rtol=1e-12)


def test_sinkhorn_histograms_batches_share_a_cost(rng):
    a, b = rng.uniform(0.2, 1.0, size=(3, 6)), rng.uniform(0.2, 1.0, size=(3, 4))
    cost = rng.uniform(size=(6, 4))
    none = lk.sinkhorn_histograms(a, b, cost, reduction="none")
    assert none.shape == (3,)
    np.testing.assert_allclose(none, [lk.sinkhorn_histograms(a[i], b[i], cost) for i in range(3)], rtol=1e-12)
    _, g = lk.value_and_grad(lk.sinkhorn_histograms, argnums=2)(a, b, cost, reduction="sum")
    assert g.shape == (6, 4)


@pytest.mark.parametrize(
    "args,error,message",
    [
        ((-np.ones(3), np.ones(2), np.ones((3, 2))), ValueError, "a must be >= 0"),
        ((np.ones(3), np.array([1.0, -1.0]), np.ones((3, 2))), ValueError, "b must be >= 0"),
        ((np.ones(3), np.ones(2), np.ones((2, 3))), ValueError, "cost must be a ground-cost matrix"),
        ((np.ones((2, 3)), np.ones((4, 2)), np.ones((3, 2))), ValueError, "same batch axes"),
        ((np.ones(3, dtype=int), np.ones(2), np.ones((3, 2))), TypeError, "a must be a real floating"),
    ],
)
def test_sinkhorn_histograms_refuses_bad_inputs_by_name(args, error, message):
    with pytest.raises(error, match=message):
        lk.sinkhorn_histograms(*args)
