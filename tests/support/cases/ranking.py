"""Cases for the ranking losses: PyTorch for ``margin_ranking``, Optax for ``ranking_softmax``."""

from __future__ import annotations

import numpy as np

import losskit as lk

from . import Case


def _margin_ranking_args(shape=(7,), margin=None):
    def make(rng):
        x1, x2 = rng.normal(size=shape), rng.normal(size=shape)
        y = np.where(rng.uniform(size=shape) < 0.5, 1.0, -1.0)
        return (x1, x2, y), ({} if margin is None else {"margin": margin})

    return make


def _margin_ranking_perfect(rng):
    x2 = rng.normal(size=(6,))
    y = np.array([1.0, -1.0] * 3)
    return (x2 + y * rng.uniform(0.6, 2.0, size=6), x2, y), {"margin": 0.5}


def _torch_margin_ranking(a, k, r):
    import torch.nn.functional as F

    return F.margin_ranking_loss(*a, reduction=r, **k)


def _ranking_args(shape=(4, 6), integer=False, weights=False, masked=False):
    def make(rng):
        s = rng.normal(size=shape) * 2
        if integer:
            y = rng.integers(0, 4, size=shape)
        else:
            y = rng.uniform(0, 3, size=shape)
        kwargs = {}
        if weights:
            kwargs["weights"] = rng.uniform(0.2, 2.0, size=shape)
        if masked:
            where = rng.uniform(size=shape) < 0.7
            where[0] = False  # a list with no valid item does not count
            kwargs["where"] = where
        return (s, y), kwargs

    return make


def _optax_ranking_softmax(a, k, r):
    import jax.numpy as jnp
    import optax

    reduce_fn = {"mean": jnp.mean, "sum": jnp.sum, "none": None}[r]
    return optax.losses.ranking_softmax_loss(*a, reduce_fn=reduce_fn, **k)


def _ranking_perfect(rng):
    # all relevance on one item, which the scores pick with certainty: -1 * log 1 = 0
    s = np.zeros((3, 4))
    s[:, 0] = 800.0
    y = np.zeros((3, 4))
    y[:, 0] = 1.0
    return (s, y), {}


CASES = [
    Case(
        id="margin_ranking",
        fn=lk.margin_ranking,
        make_args=_margin_ranking_args(),
        reference=_torch_margin_ranking,
        grad_argnums=(0, 1),
        perfect=_margin_ranking_perfect,
    ),
    Case(
        id="margin_ranking-margin-2d",
        fn=lk.margin_ranking,
        make_args=_margin_ranking_args(shape=(4, 3), margin=0.7),
        reference=_torch_margin_ranking,
        grad_argnums=(0, 1),
    ),
    Case(
        id="ranking_softmax",
        fn=lk.ranking_softmax,
        make_args=_ranking_args(),
        optax_reference=_optax_ranking_softmax,
        grad_argnums=(0, 1),
        perfect=_ranking_perfect,
    ),
    Case(
        id="ranking_softmax-weights-where",
        fn=lk.ranking_softmax,
        make_args=_ranking_args(shape=(2, 3, 5), weights=True, masked=True),
        optax_reference=_optax_ranking_softmax,
        grad_argnums=(0, 1),
    ),
    Case(
        id="ranking_softmax-integer-labels-1d",
        fn=lk.ranking_softmax,
        make_args=_ranking_args(shape=(6,), integer=True),
        optax_reference=_optax_ranking_softmax,
    ),
]
