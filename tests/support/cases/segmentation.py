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
            lead = () if options.get("batch") else (shape[0],)
            where = rng.uniform(size=lead + (kept,)) < 0.7
            where.reshape(-1)[0] = False
            where.reshape(-1)[-1] = True
            kwargs["where"] = where
        return (x, t), kwargs

    return make


def _seg_perfect(rng):
    labels = rng.integers(0, 3, size=(2, 4, 5))
    return (np.eye(3)[labels], labels), {}


def _per_class(x, t, k):
    """(N, C) (or (C,) with batch) probabilities-side sums: TP, P, G, after activation and
    one-hot, classes last."""
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
    spatial = tuple(range(0 if k.get("batch") else 1, p.ndim - 1))
    return (p * g).sum(spatial), p.sum(spatial), g.sum(spatial)


def _finish(per, k, r):
    if k.get("ignore_background"):
        per = per[..., 1:]
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


def numpy_jaccard(a, k, r):
    """The soft Jaccard loss (MONAI's DiceLoss(jaccard=True) with smooth_nr = smooth_dr =
    2 smooth) in NumPy."""
    tp, p, g = _per_class(*a, k)
    s = k.get("smooth", 1e-5)
    return _finish(1.0 - (tp + s) / (p + g - tp + s), k, r)


def numpy_generalized_dice(a, k, r):
    """MONAI's GeneralizedDiceLoss (its weights, the empty-class rule) in NumPy."""
    tp, p, g = _per_class(*a, k)
    if k.get("ignore_background"):
        tp, p, g = tp[..., 1:], p[..., 1:], g[..., 1:]
    kind = k.get("weight_type", "square")
    with np.errstate(divide="ignore"):
        w = 1.0 / (g * g) if kind == "square" else 1.0 / g if kind == "simple" else np.ones_like(g)
    empty = np.isinf(w)
    w = np.where(empty, 0.0, w)
    w = np.where(empty, w.max(-1, keepdims=True), w)
    s = k.get("smooth", 1e-5)
    per = 1.0 - (2 * (w * tp).sum(-1) + s) / ((w * (p + g)).sum(-1) + s)
    where = k.get("where")
    if where is not None:
        per = np.where(where, per, 0.0)
        if r == "mean":
            return per.sum() / np.broadcast_to(where, per.shape).sum()
    return per.mean() if r == "mean" else per.sum() if r == "sum" else per


def _gd_args(masked=False, empty_class=False, **options):
    make_seg = _seg_args(**options)

    def make(rng):
        (x, t), kwargs = make_seg(rng)
        if empty_class:  # class 2 absent from sample 0 (or all): MONAI's weight replacement
            ax = kwargs.get("axis", -1) % x.ndim
            rows = slice(None) if empty_class == "all" else 0
            if np.issubdtype(t.dtype, np.integer):
                t = t.copy()
                t[rows] = np.where(t[rows] == 2, 0, t[rows])
            else:
                t = np.moveaxis(t, ax, -1).copy()
                t[rows, ..., 2] = 0.0
                t = np.moveaxis(t, -1, ax)
        if masked:
            where = rng.uniform(size=(x.shape[0],)) < 0.7
            where[0] = False
            where[1] = True
            kwargs["where"] = where
        return (x, t), kwargs

    return make


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
    Case(
        id="dice-batch",
        fn=lk.dice,
        make_args=_seg_args(soft=True, batch=True),
        numpy_reference=numpy_dice,
        grad_argnums=(0, 1),
    ),
    Case(
        id="dice-batch-softmax-axis1-weight-ignore_background-where",
        fn=lk.dice,
        make_args=_seg_args(
            shape=(3, 4, 2, 3),
            axis=1,
            activation="softmax",
            weight=True,
            masked=True,
            ignore_background=True,
            batch=True,
        ),
        numpy_reference=numpy_dice,
    ),
    Case(
        id="tversky-batch-sigmoid",
        fn=lk.tversky,
        make_args=_seg_args(
            shape=(3, 5, 2), activation="sigmoid", soft=True, batch=True, alpha=0.3, beta=0.8
        ),
        numpy_reference=numpy_tversky,
        grad_argnums=(0, 1),
    ),
    Case(
        id="jaccard",
        fn=lk.jaccard,
        make_args=_seg_args(soft=True),
        numpy_reference=numpy_jaccard,
        grad_argnums=(0, 1),
        perfect=_seg_perfect,
        zero_grad_at_perfect=False,
    ),
    Case(
        id="jaccard-softmax-axis1-weight-ignore_background-where",
        fn=lk.jaccard,
        make_args=_seg_args(
            shape=(3, 4, 2, 3),
            axis=1,
            activation="softmax",
            weight=True,
            masked=True,
            ignore_background=True,
            smooth=0.5,
        ),
        numpy_reference=numpy_jaccard,
    ),
    Case(
        id="jaccard-batch-sigmoid-labels",
        fn=lk.jaccard,
        make_args=_seg_args(shape=(3, 4, 1), axis=1, activation="sigmoid", batch=True, smooth=1.0),
        numpy_reference=numpy_jaccard,
    ),
    Case(
        id="generalized_dice",
        fn=lk.generalized_dice,
        make_args=_gd_args(soft=True),
        numpy_reference=numpy_generalized_dice,
        grad_argnums=(0, 1),
        perfect=_seg_perfect,
        zero_grad_at_perfect=False,
    ),
    Case(
        id="generalized_dice-simple-empty-class-where",
        fn=lk.generalized_dice,
        make_args=_gd_args(shape=(3, 5, 4), weight_type="simple", empty_class=True, masked=True),
        numpy_reference=numpy_generalized_dice,
    ),
    Case(
        id="generalized_dice-softmax-labels-empty-class-ignore_background",
        fn=lk.generalized_dice,
        make_args=_gd_args(
            shape=(3, 4, 2, 3),
            axis=1,
            activation="softmax",
            integer=True,
            empty_class=True,
            ignore_background=True,
        ),
        numpy_reference=numpy_generalized_dice,
    ),
    Case(
        id="generalized_dice-batch-uniform-sigmoid",
        fn=lk.generalized_dice,
        make_args=_gd_args(
            shape=(2, 5, 3), activation="sigmoid", soft=True, batch=True, weight_type="uniform"
        ),
        numpy_reference=numpy_generalized_dice,
        grad_argnums=(0, 1),
    ),
    Case(
        id="generalized_dice-batch-square-empty-class",
        fn=lk.generalized_dice,
        make_args=_gd_args(shape=(3, 4, 2, 3), axis=1, empty_class="all", batch=True),
        numpy_reference=numpy_generalized_dice,
    ),
]


# -- Lovász -------------------------------------------------------------------------------------


def _lovasz_flat(errors, fg, hinge):
    """The paper's algorithm for one set of pixels (NumPy): sort the errors, Jaccard increments
    of the sorted ground truth, dot product."""
    order = np.argsort(-errors, kind="stable")
    e, g = errors[order], fg[order]
    total = g.sum()
    jac = 1.0 - (total - np.cumsum(g)) / (total + np.cumsum(1.0 - g))
    jac[1:] = jac[1:] - jac[:-1]
    return float(np.dot(np.maximum(e, 0.0) if hinge else e, jac))


def _reduce(per, k, r):
    where = k.get("where")
    if where is not None:
        per = np.where(where, per, 0.0)
        if r == "mean":
            return per.sum() / np.broadcast_to(where, per.shape).sum()
    return per.mean() if r == "mean" else per.sum() if r == "sum" else per


def numpy_lovasz_hinge(a, k, r):
    logits, labels = a
    images = [(logits, labels)] if not k.get("per_image", True) else list(zip(logits, labels))
    per = np.array(
        [_lovasz_flat(1.0 - z.ravel() * (2.0 * y.ravel() - 1.0), y.ravel() * 1.0, True) for z, y in images]
    )
    return _reduce(per if k.get("per_image", True) else per[0], k, r)


def numpy_lovasz_softmax(a, k, r):
    probas, labels = a
    probas = np.moveaxis(probas, k.get("axis", -1), -1)
    per_image = k.get("per_image", False)
    images = list(zip(probas, labels)) if per_image else [(probas, labels)]
    classes = k.get("classes", "present")
    per = []
    for p, y in images:
        p, y = p.reshape(-1, p.shape[-1]), y.ravel()
        chosen = range(p.shape[-1]) if isinstance(classes, str) else classes
        losses = []
        for c in chosen:
            fg = (y == c).astype(float)
            if classes == "present" and fg.sum() == 0:
                continue
            losses.append(_lovasz_flat(np.abs(fg - p[:, c]), fg, False))
        per.append(np.mean(losses) if losses else 0.0)
    per = np.array(per)
    return _reduce(per if per_image else per[0], k, r)


def _hinge_args(shape=(3, 4, 5), per_image=None, masked=False, labels_dtype="int", margin=False):
    def make(rng):
        y = rng.integers(0, 2, size=shape)
        z = rng.normal(size=shape) * 2
        if margin:  # hinge errors away from 0 (finite differences across the kink)
            z = np.where(np.abs(1.0 - z * (2 * y - 1)) < 0.05, z + 0.2, z)
        kwargs = {}
        if per_image is not None:
            kwargs["per_image"] = per_image
        if masked:
            where = rng.uniform(size=shape[:1]) < 0.6
            where[0], where[-1] = False, True
            kwargs["where"] = where
        labels = (
            y.astype(float) if labels_dtype == "float" else y.astype(bool) if labels_dtype == "bool" else y
        )
        return (z, labels), kwargs

    return make


def _hinge_perfect(rng):
    y = rng.integers(0, 2, size=(2, 4, 5))
    return ((2.0 * y - 1.0) * rng.uniform(1.0, 3.0, size=y.shape), y), {}


def _softmax_args(shape=(2, 4, 3, 4), axis=-1, masked=False, missing=False, **options):
    def make(rng):
        ax = axis % len(shape)
        c = shape[ax]
        x = rng.uniform(0.02, 1.0, size=shape)
        x = x / x.sum(axis=ax, keepdims=True)
        labels = rng.integers(0, c, size=tuple(d for i, d in enumerate(shape) if i != ax))
        if missing:  # class 1 absent from image 0 and class 2 from all: "present" skips them
            labels[0] = np.where(labels[0] == 1, 0, labels[0])
            labels = np.where(labels == 2, 0, labels)
        kwargs = dict(options)
        if axis != -1:
            kwargs["axis"] = axis
        if masked:
            where = rng.uniform(size=shape[:1]) < 0.6
            where[0], where[-1] = False, True
            kwargs["where"] = where
        return (x, labels), kwargs

    return make


def _softmax_perfect(rng):
    labels = rng.integers(0, 3, size=(2, 4, 5))
    return (np.eye(3)[labels], labels), {}


CASES += [
    Case(
        id="lovasz_hinge",
        fn=lk.lovasz_hinge,
        make_args=_hinge_args(margin=True),
        numpy_reference=numpy_lovasz_hinge,
        perfect=_hinge_perfect,
    ),
    Case(
        id="lovasz_hinge-batch-float-labels",
        fn=lk.lovasz_hinge,
        make_args=_hinge_args(shape=(2, 3, 3), per_image=False, labels_dtype="float", margin=True),
        numpy_reference=numpy_lovasz_hinge,
    ),
    Case(
        id="lovasz_hinge-bool-labels-where",
        fn=lk.lovasz_hinge,
        make_args=_hinge_args(shape=(4, 6), labels_dtype="bool", masked=True, margin=True),
        numpy_reference=numpy_lovasz_hinge,
    ),
    Case(
        id="lovasz_softmax",
        fn=lk.lovasz_softmax,
        make_args=_softmax_args(missing=True),
        numpy_reference=numpy_lovasz_softmax,
        perfect=_softmax_perfect,
    ),
    Case(
        id="lovasz_softmax-per_image-axis1-where",
        fn=lk.lovasz_softmax,
        make_args=_softmax_args(shape=(3, 4, 3, 2), axis=1, per_image=True, missing=True, masked=True),
        numpy_reference=numpy_lovasz_softmax,
    ),
    Case(
        id="lovasz_softmax-all-classes",
        fn=lk.lovasz_softmax,
        make_args=_softmax_args(shape=(2, 5, 3), classes="all", missing=True),
        numpy_reference=numpy_lovasz_softmax,
    ),
    Case(
        id="lovasz_softmax-class-list-per_image",
        fn=lk.lovasz_softmax,
        make_args=_softmax_args(shape=(3, 6, 4), classes=(1, 3), per_image=True),
        numpy_reference=numpy_lovasz_softmax,
    ),
]
