"""Cases for the segmentation losses: Optax's ``dice_loss`` where it computes the same thing
(softmax of logits), MONAI's formula in NumPy otherwise (probabilities, sigmoid)."""

from __future__ import annotations

import functools

import numpy as np

import losskit as lk

from . import Case


def _seg_args(
    shape=(2, 3, 4, 3),
    axis=-1,
    activation=None,
    integer=False,
    soft=False,
    weight=False,
    masked=False,
    **options,
):
    def make(rng):
        ax = axis % len(shape)
        c = shape[ax]
        sample_shape = tuple(d for i, d in enumerate(shape) if i != ax)
        if activation is None:
            x = rng.uniform(0.02, 1.0, size=shape)
            if c > 1:
                x = x / x.sum(axis=ax, keepdims=True)
        else:
            x = rng.normal(size=shape) * 2
        labels = rng.integers(0, c, size=sample_shape)
        if integer:
            t = labels
        elif soft:
            t = rng.uniform(0.01, 0.99, size=shape)  # room for finite differences
        else:
            t = np.moveaxis(np.eye(c)[labels], -1, ax)
        kwargs = dict(options)
        if activation is not None:
            kwargs["activation"] = activation
        if axis != -1:
            kwargs["axis"] = axis
        if weight:
            kwargs["weight"] = rng.uniform(0.3, 2.0, size=(c,))
        if masked:
            kept = c - 1 if options.get("ignore_background") else c
            where = rng.uniform(size=(shape[0], kept)) < 0.7
            where[0, 0] = False
            kwargs["where"] = where
        return (x, t), kwargs

    return make


def _seg_perfect(rng):
    labels = rng.integers(0, 3, size=(2, 4, 5))
    return (np.eye(3)[labels], labels), {}


def _per_class(x, t, k):
    """(N, C) probabilities-side sums: TP, P, G, after activation and one-hot, classes last."""
    axis = k.get("axis", -1)
    activation = k.get("activation")
    x = np.moveaxis(x, axis, -1)
    c = x.shape[-1]
    if activation == "softmax":
        e = np.exp(x - x.max(-1, keepdims=True))
        p = e / e.sum(-1, keepdims=True)
    elif activation == "sigmoid":
        p = 1 / (1 + np.exp(-x))
    else:
        p = x
    g = np.eye(c)[t] if np.issubdtype(t.dtype, np.integer) else np.moveaxis(t, axis, -1)
    spatial = tuple(range(1, p.ndim - 1))
    return (p * g).sum(spatial), p.sum(spatial), g.sum(spatial)


def _finish(per, k, r):
    if k.get("ignore_background"):
        per = per[:, 1:]
    if k.get("weight") is not None:
        w = k["weight"]
        per = per * (w[1:] if k.get("ignore_background") else w)
    where = k.get("where")
    if where is not None:
        per = np.where(where, per, 0.0)
        if r == "mean":
            return per.sum() / np.broadcast_to(where, per.shape).sum()
    return per.mean() if r == "mean" else per.sum() if r == "sum" else per


def numpy_dice(a, k, r):
    """MONAI's DiceLoss (batch=False, smooth_nr = smooth_dr) in NumPy."""
    tp, p, g = _per_class(*a, k)
    s = k.get("smooth", 1e-5)
    return _finish(1.0 - (2 * tp + s) / (p + g + s), k, r)


def numpy_tversky(a, k, r):
    """MONAI's TverskyLoss (batch=False, smooth_nr = smooth_dr) in NumPy."""
    tp, p, g = _per_class(*a, k)
    s = k.get("smooth", 1e-5)
    alpha, beta = k.get("alpha", 0.5), k.get("beta", 0.5)
    return _finish(1.0 - (tp + s) / (tp + alpha * (p - tp) + beta * (g - tp) + s), k, r)


def _optax_overlap(dice):
    def reference(a, k, r):
        import jax
        import jax.numpy as jnp
        import optax

        x, t = a
        axis = k.get("axis", -1)
        x = jnp.moveaxis(x, axis, -1)
        c = x.shape[-1]
        if jnp.issubdtype(t.dtype, jnp.integer):
            t = jax.nn.one_hot(t, c, dtype=x.dtype)
        else:
            t = jnp.moveaxis(t, axis, -1)
        smooth = k.get("smooth", 1e-5)
        loss = jax.jit(  # jit: eager JAX is slow
            functools.partial(
                optax.losses.dice_loss,
                smooth=smooth / 2 if dice else smooth,  # Optax's Dice is (TP + s) / (P/2 + G/2 + s)
                alpha=0.5 if dice else k.get("alpha", 0.5),
                beta=0.5 if dice else k.get("beta", 0.5),
                apply_softmax=True,
                reduction="none",
                ignore_background=k.get("ignore_background", False),
            )
        )
        per = loss(x, t, class_weights=k.get("weight"))
        where = k.get("where")
        if where is not None:
            per = jnp.where(where, per, 0.0)
            if r == "mean":
                return per.sum() / jnp.broadcast_to(where, per.shape).sum()
        return per.mean() if r == "mean" else per.sum() if r == "sum" else per

    return reference


CASES = [
    Case(
        id="dice",
        fn=lk.dice,
        make_args=_seg_args(soft=True),
        numpy_reference=numpy_dice,
        grad_argnums=(0, 1),
        perfect=_seg_perfect,
        zero_grad_at_perfect=False,
    ),
    Case(
        id="dice-one-hot",
        fn=lk.dice,
        make_args=_seg_args(shape=(3, 6, 4)),
        numpy_reference=numpy_dice,
    ),
    Case(
        id="dice-softmax-labels",
        fn=lk.dice,
        make_args=_seg_args(activation="softmax", integer=True),
        optax_reference=_optax_overlap(dice=True),
    ),
    Case(
        id="dice-softmax-axis1-weight-ignore_background-where",
        fn=lk.dice,
        make_args=_seg_args(
            shape=(3, 4, 2, 3),
            axis=1,
            activation="softmax",
            weight=True,
            masked=True,
            ignore_background=True,
            smooth=0.5,
        ),
        optax_reference=_optax_overlap(dice=True),
    ),
    Case(
        id="dice-sigmoid-soft-targets",
        fn=lk.dice,
        make_args=_seg_args(shape=(2, 5, 3), activation="sigmoid", soft=True, smooth=1.0),
        numpy_reference=numpy_dice,
        grad_argnums=(0, 1),
    ),
    Case(
        id="dice-sigmoid-one-channel-nchw",
        fn=lk.dice,
        make_args=_seg_args(shape=(3, 1, 4, 4), axis=1, activation="sigmoid"),
        numpy_reference=numpy_dice,
    ),
    Case(
        id="dice-no-spatial-axes-ignore_background",
        fn=lk.dice,
        make_args=_seg_args(shape=(6, 4), integer=True, ignore_background=True),
        numpy_reference=numpy_dice,
    ),
    Case(
        id="tversky",
        fn=lk.tversky,
        make_args=_seg_args(soft=True, alpha=0.3, beta=0.7),
        numpy_reference=numpy_tversky,
        grad_argnums=(0, 1),
        perfect=_seg_perfect,
        zero_grad_at_perfect=False,
    ),
    Case(
        id="tversky-softmax-labels",
        fn=lk.tversky,
        make_args=_seg_args(activation="softmax", integer=True, alpha=0.2, beta=0.9),
        optax_reference=_optax_overlap(dice=False),
    ),
    Case(
        id="tversky-softmax-axis1-weight-ignore_background-where",
        fn=lk.tversky,
        make_args=_seg_args(
            shape=(2, 4, 3, 2),
            axis=1,
            activation="softmax",
            weight=True,
            masked=True,
            ignore_background=True,
            alpha=0.7,
            beta=0.4,
            smooth=1.0,
        ),
        optax_reference=_optax_overlap(dice=False),
    ),
    Case(
        id="tversky-sigmoid-soft-targets",
        fn=lk.tversky,
        make_args=_seg_args(shape=(2, 5, 3), activation="sigmoid", soft=True, alpha=0.6, beta=0.6),
        numpy_reference=numpy_tversky,
        grad_argnums=(0, 1),
    ),
]
