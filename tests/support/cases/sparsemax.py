"""Cases for the sparsemax loss: Optax's multiclass_sparsemax_loss for integer labels, the
paper's formula (with a plain sort-based projection in NumPy) for probability targets."""

from __future__ import annotations

import numpy as np

import losskit as lk

from . import Case


def _reduce(value, reduction):
    if reduction == "mean":
        return value.mean()
    if reduction == "sum":
        return value.sum()
    return value


def numpy_sparsemax(z):
    """Sparsemax of each row of a 2-d array, by the textbook loop (Martins & Astudillo, Alg. 1)."""
    out = np.zeros_like(z)
    for i, row in enumerate(z):
        s = np.sort(row)[::-1]
        k = 1
        for j in range(1, len(s) + 1):
            if 1 + j * s[j - 1] > s[:j].sum():
                k = j
        tau = (s[:k].sum() - 1) / k
        out[i] = np.maximum(row - tau, 0)
    return out


def _args(shape=(6, 5), axis=-1, soft=False):
    def make(rng):
        x = rng.normal(size=shape) * 1.5
        c = shape[axis]
        sample_shape = tuple(d for i, d in enumerate(shape) if i != axis % len(shape))
        if soft:
            t = rng.uniform(size=shape) ** 3
            t = t / t.sum(axis=axis, keepdims=True)
        else:
            t = np.array(rng.integers(0, c, size=sample_shape))
        return (x, t), ({} if axis == -1 else {"axis": axis})

    return make


def _optax_sparsemax(a, k, r):
    import jax.numpy as jnp
    import optax

    x, t = a
    x = jnp.moveaxis(x, k.get("axis", -1), -1)
    flat = optax.losses.multiclass_sparsemax_loss(x.reshape(-1, x.shape[-1]), t.reshape(-1))
    return _reduce(flat.reshape(t.shape), r)


def _formula(a, k, r):
    x, q = a
    axis = k.get("axis", -1)
    z = np.moveaxis(x, axis, -1)
    q = np.moveaxis(q, axis, -1)
    flat = z.reshape(-1, z.shape[-1])
    p = numpy_sparsemax(flat).reshape(z.shape)
    value = (p * z).sum(-1) - (q * z).sum(-1) + 0.5 * ((q * q).sum(-1) - (p * p).sum(-1))
    return _reduce(value, r)


def _perfect(rng):
    x = rng.normal(size=(4, 5))
    t = rng.integers(0, 5, size=4)
    x[np.arange(4), t] = x.max(axis=1) + 1.2
    return (x, t), {}


CASES = [
    Case(
        id="sparsemax_loss",
        fn=lk.sparsemax_loss,
        make_args=_args(),
        optax_reference=_optax_sparsemax,
        perfect=_perfect,
    ),
    Case(
        id="sparsemax_loss-axis1",
        fn=lk.sparsemax_loss,
        make_args=_args(shape=(3, 4, 2), axis=1),
        optax_reference=_optax_sparsemax,
    ),
    Case(
        id="sparsemax_loss-probabilities",
        fn=lk.sparsemax_loss,
        make_args=_args(soft=True),
        numpy_reference=_formula,
    ),
]
