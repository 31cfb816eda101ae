"""Cases for the entropic optimal-transport losses, against POT (``ot``) in float64.

The reference is the entropic cost :math:`\\langle P, C\\rangle + \\varepsilon\\,KL(P \\| a b^T)`
of POT's own plan: ``ot.sinkhorn2(..., method="sinkhorn_log", stopThr=0)`` (the linear part,
:math:`\\langle P, C\\rangle`) plus the KL term of ``ot.sinkhorn``'s plan, with the same
regularisation and budget.  Every case uses points in the unit cube, ``epsilon >= 0.1`` and a
budget at which both have converged to machine precision (the marginals hold to ~1e-15), so the
default parity tolerance (rtol 1e-7) holds with a wide margin: the two differ only by rounding.

Gradients are the envelope gradients, exact at convergence; the finite-difference check keeps
the default ``fd_rtol=1e-5`` with a larger step ``fd_eps=1e-5``: each value is the end of a few
hundred log-sum-exp updates, whose rounding (~1e-15 relative) a step of 1e-6 would magnify to
~1e-9 of the gradient, still far below the tolerance, but the larger step halves that noise at
no cost in truncation error (the loss is smooth: ~eps^2 * third derivative ~ 1e-10).
"""

from __future__ import annotations

import warnings

import numpy as np

import losskit as lk

from . import Case


def _weights(rng, shape):
    w = rng.uniform(0.2, 1.0, size=shape)
    return w / w.sum(axis=-1, keepdims=True)


def _cloud_args(
    n=6, m=5, d=2, batch=(), weights=False, shared_weights=False, masked=False, scale=1.0, **options
):
    def make(rng):
        x = rng.uniform(size=batch + (n, d)) * scale
        y = rng.uniform(size=batch + (m, d)) * scale
        args = (x, y)
        if weights:
            wa = () if shared_weights else batch
            # not normalised: the loss normalises them
            args = args + (rng.uniform(0.2, 1.0, size=wa + (n,)) * 3.0, rng.uniform(0.2, 1.0, size=wa + (m,)))
        kwargs = dict(options)
        if masked:
            where = rng.uniform(size=batch) < 0.7
            where.reshape(-1)[0] = False
            kwargs["where"] = where
        return args, kwargs

    return make


def _perfect(weights=False, batch=(2,)):
    def make(rng):
        x = rng.uniform(size=batch + (5, 2))
        args = (x, x.copy())
        if weights:
            a = rng.uniform(0.2, 1.0, size=batch + (5,))
            args = args + (a, a.copy())
        return args, {"n_iters": 50}

    return make


def _cost_matrix(x, y, p):
    import ot

    if p == 2:
        return ot.dist(x, y, metric="sqeuclidean")
    return ot.dist(x, y, metric="euclidean") ** p


def pot_entropic_ot(x, y, a, b, epsilon, n_iters, p):
    """<P, C> + eps KL(P | a b^T) of POT's log-domain Sinkhorn plan (weights normalised)."""
    import ot

    a = a / a.sum()
    b = b / b.sum()
    cost = _cost_matrix(x, y, p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "did not converge": stopThr=0 runs the whole budget
        linear = ot.sinkhorn2(a, b, cost, epsilon, method="sinkhorn_log", numItermax=n_iters, stopThr=0)
        plan = ot.sinkhorn(a, b, cost, epsilon, method="sinkhorn_log", numItermax=n_iters, stopThr=0)
    ab = np.outer(a, b)
    kl = np.sum(np.where(plan > 0, plan * np.log(np.where(plan > 0, plan, 1.0) / ab), 0.0)) - plan.sum() + 1.0
    return float(linear) + epsilon * kl


def _per_pair(a, k, debiased):
    x, y = a[0], a[1]
    batch = x.shape[:-2]
    n, m = x.shape[-2], y.shape[-2]
    wa = a[2] if len(a) > 2 else np.ones(n)
    wb = a[3] if len(a) > 3 else np.ones(m)
    wa = np.broadcast_to(wa, batch + (n,))
    wb = np.broadcast_to(wb, batch + (m,))
    eps, iters, p = k.get("epsilon", 0.1), k.get("n_iters", 100), k.get("p", 2.0)
    out = np.zeros(batch)
    for idx in np.ndindex(*batch):
        v = pot_entropic_ot(x[idx], y[idx], wa[idx], wb[idx], eps, iters, p)
        if debiased:
            v -= 0.5 * pot_entropic_ot(x[idx], x[idx], wa[idx], wa[idx], eps, iters, p)
            v -= 0.5 * pot_entropic_ot(y[idx], y[idx], wb[idx], wb[idx], eps, iters, p)
        out[idx] = v
    return out


def _finish(per, k, r):
    where = k.get("where")
    if where is not None:
        per = np.where(where, per, 0.0)
        if r == "mean":
            return per.sum() / where.sum()
    return per.mean() if r == "mean" else per.sum() if r == "sum" else per


def numpy_sinkhorn(a, k, r):
    return _finish(_per_pair(a, k, debiased=False), k, r)


def numpy_sinkhorn_divergence(a, k, r):
    return _finish(_per_pair(a, k, debiased=True), k, r)


# Dask builds one task per array operation and iteration: a few hundred iterations make graphs
# of thousands of tasks, seconds to build and compute.  Three cases (weights, batches with a
# mask, the divergence) run on Dask with short budgets; the others on the eager backends.
NO_DASK = ("numpy", "torch", "jax", "array_api_strict")

CASES = [
    Case(
        id="sinkhorn",
        backends=NO_DASK,
        fn=lk.sinkhorn,
        make_args=_cloud_args(n_iters=100),
        numpy_reference=numpy_sinkhorn,
        grad_argnums=(0, 1),
        fd_eps=1e-5,
    ),
    Case(
        id="sinkhorn-weights",
        fn=lk.sinkhorn,
        make_args=_cloud_args(n=5, m=4, d=3, weights=True, epsilon=0.2, n_iters=60),
        numpy_reference=numpy_sinkhorn,
        grad_argnums=(0, 1, 2, 3),
        fd_eps=1e-5,
    ),
    Case(
        id="sinkhorn-batched-p1-where",
        fn=lk.sinkhorn,
        make_args=_cloud_args(n=4, m=5, batch=(3,), masked=True, p=1, n_iters=100),
        numpy_reference=numpy_sinkhorn,
        grad_argnums=(0, 1),
        fd_eps=1e-5,
    ),
    Case(
        id="sinkhorn-batched-shared-weights",
        backends=NO_DASK,
        fn=lk.sinkhorn,
        make_args=_cloud_args(
            n=4, m=3, batch=(2,), weights=True, shared_weights=True, epsilon=0.2, n_iters=100
        ),
        numpy_reference=numpy_sinkhorn,
        grad_argnums=(2, 0, 3),
        fd_eps=1e-5,
    ),
    Case(
        id="sinkhorn_divergence",
        backends=NO_DASK,
        fn=lk.sinkhorn_divergence,
        make_args=_cloud_args(batch=(2,), epsilon=0.2, n_iters=120),
        numpy_reference=numpy_sinkhorn_divergence,
        grad_argnums=(0, 1),
        perfect=_perfect(),
        fd_eps=1e-5,
    ),
    Case(
        id="sinkhorn_divergence-weights-p1",
        fn=lk.sinkhorn_divergence,
        make_args=_cloud_args(n=5, m=4, d=3, weights=True, p=1, epsilon=0.3, n_iters=400),
        numpy_reference=numpy_sinkhorn_divergence,
        grad_argnums=(0, 1, 2, 3),
        perfect=_perfect(weights=True, batch=()),
        fd_eps=1e-5,
    ),
]


# -- histograms over a given cost -------------------------------------------------------------


def _histogram_args(n=5, m=4, batch=(), shared_cost=False, masked=False, **options):
    def make(rng):
        import ot

        a = rng.uniform(0.2, 1.0, size=batch + (n,)) * 2.0  # not normalised: the loss normalises
        b = rng.uniform(0.2, 1.0, size=batch + (m,))
        if shared_cost:
            cost = ot.dist(rng.uniform(size=(n, 2)), rng.uniform(size=(m, 2)))
        else:
            cost = rng.uniform(size=batch + (n, m))
        kwargs = dict(options)
        if masked:
            where = rng.uniform(size=batch) < 0.7
            where.reshape(-1)[0] = False
            kwargs["where"] = where
        return (a, b, cost), kwargs

    return make


def pot_entropic_ot_histograms(a, b, cost, epsilon, n_iters):
    """<P, C> + eps KL(P | a b^T) of POT's log-domain Sinkhorn plan on a given cost matrix."""
    import ot

    a = a / a.sum()
    b = b / b.sum()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "did not converge": stopThr=0 runs the whole budget
        linear = ot.sinkhorn2(a, b, cost, epsilon, method="sinkhorn_log", numItermax=n_iters, stopThr=0)
        plan = ot.sinkhorn(a, b, cost, epsilon, method="sinkhorn_log", numItermax=n_iters, stopThr=0)
    kl = np.sum(plan * np.log(plan / np.outer(a, b))) - plan.sum() + 1.0
    return float(linear) + epsilon * kl


def numpy_sinkhorn_histograms(args, k, r):
    a, b, cost = args
    batch = max((a.shape[:-1], b.shape[:-1], cost.shape[:-2]), key=len)
    a = np.broadcast_to(a, batch + a.shape[-1:])
    b = np.broadcast_to(b, batch + b.shape[-1:])
    cost = np.broadcast_to(cost, batch + cost.shape[-2:])
    eps, iters = k.get("epsilon", 0.1), k.get("n_iters", 100)
    per = np.zeros(batch)
    for idx in np.ndindex(*batch):
        per[idx] = pot_entropic_ot_histograms(a[idx], b[idx], cost[idx], eps, iters)
    return _finish(per, k, r)


CASES += [
    Case(
        id="sinkhorn_histograms",
        fn=lk.sinkhorn_histograms,
        make_args=_histogram_args(n_iters=60, epsilon=0.2),
        numpy_reference=numpy_sinkhorn_histograms,
        grad_argnums=(0, 1, 2),
        fd_eps=1e-5,
    ),
    Case(
        id="sinkhorn_histograms-batched-shared-cost-where",
        backends=NO_DASK,
        fn=lk.sinkhorn_histograms,
        make_args=_histogram_args(n=4, m=5, batch=(3,), shared_cost=True, masked=True, n_iters=150),
        numpy_reference=numpy_sinkhorn_histograms,
        grad_argnums=(2, 0, 1),
        fd_eps=1e-5,
    ),
]
