"""Cases for the margin losses: binary hinge, squared hinge and perceptron (Optax, Keras's
formula), Crammer-Singer and perceptron multiclass losses (Optax), and PyTorch's
hinge-embedding, soft-margin, multi-margin, multilabel-margin and multilabel-soft-margin."""

from __future__ import annotations

import numpy as np

import losskit as lk

from . import Case


def _F():
    import torch.nn.functional as F

    return F


def _reduce(value, reduction):
    if reduction == "mean":
        return value.mean()
    if reduction == "sum":
        return value.sum()
    return value


def _signs(rng, shape):
    return rng.choice([-1.0, 1.0], size=shape)


# -- binary ---------------------------------------------------------------------------------


def _binary_args(labels="signed"):
    def make(rng):
        x = rng.normal(size=(5, 4)) * 2
        y = _signs(rng, (5, 4))
        if labels == "binary":
            y = (y + 1) / 2
        elif labels == "int":
            y = ((y + 1) // 2).astype(np.int64)
        return (x, y), {}

    return make


def _binary_perfect(rng):
    y = _signs(rng, (3, 4))
    return (y * rng.uniform(1.5, 3.0, size=(3, 4)), y), {}


def _as_signed(y):
    import jax.numpy as jnp

    y = jnp.asarray(y, dtype=jnp.float64)
    return jnp.where(y == 0, -1.0, y)


def _optax_binary(name):
    def ref(a, k, r):
        import optax

        x, y = a
        return _reduce(getattr(optax.losses, name)(x, _as_signed(y)), r)

    return ref


def _squared_hinge_formula(a, k, r):
    x, y = a
    y = np.where(y == 0, -1.0, y)  # Keras converts {0, 1} labels to {-1, 1}
    return _reduce(np.square(np.maximum(1.0 - y * x, 0.0)), r)


def _binary_case(name, fn, labels="signed", **refs):
    return Case(
        id=name,
        fn=fn,
        make_args=_binary_args(labels),
        perfect=_binary_perfect,
        fd_rtol=1e-5,
        **refs,
    )


# -- multiclass -----------------------------------------------------------------------------


def _scores_args(shape=(6, 5), axis=-1, **options):
    def make(rng):
        x = rng.normal(size=shape) * 2
        c = shape[axis]
        sample_shape = tuple(d for i, d in enumerate(shape) if i != axis % len(shape))
        t = np.array(rng.integers(0, c, size=sample_shape))
        kwargs = dict(options)
        if axis != -1:
            kwargs["axis"] = axis
        return (x, t), kwargs

    return make


def _scores_perfect(rng):
    x = rng.normal(size=(4, 5))
    t = rng.integers(0, 5, size=4)
    x[np.arange(4), t] = x.max(axis=1) + 1.5
    return (x, t), {}


def _optax_multiclass(name):
    def ref(a, k, r):
        import jax.numpy as jnp
        import optax

        x, t = a
        x = jnp.moveaxis(x, k.get("axis", -1), -1)
        flat = getattr(optax.losses, name)(x.reshape(-1, x.shape[-1]), t.reshape(-1))
        return _reduce(flat.reshape(t.shape), r)

    return ref


def _torch_multi_margin(a, k, r):
    k = dict(k)
    return _F().multi_margin_loss(*a, reduction=r, **k)


def _multi_margin_args(shape=(6, 5), weight=False, **options):
    base = _scores_args(shape)

    def make(rng):
        (x, t), kwargs = base(rng)
        kwargs.update(options)
        if weight:
            kwargs["weight"] = rng.uniform(0.3, 2.0, size=(shape[-1],))
        return (x, t), kwargs

    return make


def _multilabel_targets(rng, n, c):
    t = np.full((n, c), -1, dtype=np.int64)
    for i in range(n):
        k = rng.integers(0, c)  # 0 .. c-1 listed classes, then -1, then leftovers
        t[i, :k] = rng.permutation(c)[:k]
        if k + 1 < c:
            t[i, k + 1 :] = rng.integers(-1, c, size=c - k - 1)  # ignored after the first -1
    t[0, :3] = [1, 1, -1]  # a class listed twice counts twice, as in PyTorch
    return t


def _multilabel_margin_args(rng):
    return (rng.normal(size=(6, 5)) * 1.5, _multilabel_targets(rng, 6, 5)), {}


def _multilabel_margin_perfect(rng):
    t = _multilabel_targets(rng, 4, 5)
    x = rng.normal(size=(4, 5))
    for i in range(4):
        listed = []
        for v in t[i]:
            if v == -1:
                break
            listed.append(v)
        x[i, listed] = x[i].max() + 1.5
    return (x, t), {}


def _multilabel_soft_args(weight=None, soft=False):
    def make(rng):
        x = rng.normal(size=(6, 5)) * 2
        y = rng.uniform(size=(6, 5)) if soft else (rng.uniform(size=(6, 5)) > 0.5).astype(np.float64)
        kwargs = {}
        if weight == "class":
            kwargs["weight"] = rng.uniform(0.3, 2.0, size=(5,))
        elif weight == "element":
            kwargs["weight"] = rng.uniform(0.3, 2.0, size=(6, 5))
        return (x, y), kwargs

    return make


def _hinge_embedding_args(**options):
    def make(rng):
        return (np.abs(rng.normal(size=(5, 4))) * 1.5, _signs(rng, (5, 4))), dict(options)

    return make


def _hinge_embedding_perfect(rng):
    y = _signs(rng, (3, 4))
    x = np.where(y == 1, 0.0, rng.uniform(1.2, 3.0, size=(3, 4)))
    return (x, y), {}


CASES = [
    _binary_case("hinge", lk.hinge, optax_reference=_optax_binary("hinge_loss")),
    _binary_case("hinge-01", lk.hinge, labels="binary", optax_reference=_optax_binary("hinge_loss")),
    _binary_case("hinge-int", lk.hinge, labels="int", optax_reference=_optax_binary("hinge_loss")),
    _binary_case("squared_hinge", lk.squared_hinge, numpy_reference=_squared_hinge_formula),
    _binary_case(
        "squared_hinge-01", lk.squared_hinge, labels="binary", numpy_reference=_squared_hinge_formula
    ),
    _binary_case("perceptron", lk.perceptron, optax_reference=_optax_binary("perceptron_loss")),
    _binary_case(
        "perceptron-01", lk.perceptron, labels="binary", optax_reference=_optax_binary("perceptron_loss")
    ),
    Case(
        id="multiclass_hinge",
        fn=lk.multiclass_hinge,
        make_args=_scores_args(),
        optax_reference=_optax_multiclass("multiclass_hinge_loss"),
        perfect=_scores_perfect,
    ),
    Case(
        id="multiclass_hinge-axis1",
        fn=lk.multiclass_hinge,
        make_args=_scores_args(shape=(3, 4, 2), axis=1),
        optax_reference=_optax_multiclass("multiclass_hinge_loss"),
    ),
    Case(
        id="multiclass_perceptron",
        fn=lk.multiclass_perceptron,
        make_args=_scores_args(),
        optax_reference=_optax_multiclass("multiclass_perceptron_loss"),
        perfect=_scores_perfect,
    ),
    Case(
        id="multiclass_perceptron-axis0",
        fn=lk.multiclass_perceptron,
        make_args=_scores_args(shape=(5, 3), axis=0),
        optax_reference=_optax_multiclass("multiclass_perceptron_loss"),
    ),
    Case(
        id="hinge_embedding",
        fn=lk.hinge_embedding,
        make_args=_hinge_embedding_args(),
        reference=lambda a, k, r: _F().hinge_embedding_loss(*a, reduction=r, **k),
        perfect=_hinge_embedding_perfect,
        zero_grad_at_perfect=False,  # d/dx = 1 for similar pairs, even at distance 0
    ),
    Case(
        id="hinge_embedding-margin",
        fn=lk.hinge_embedding,
        make_args=_hinge_embedding_args(margin=2.5),
        reference=lambda a, k, r: _F().hinge_embedding_loss(*a, reduction=r, **k),
    ),
    Case(
        id="soft_margin",
        fn=lk.soft_margin,
        make_args=_binary_args(),
        reference=lambda a, k, r: _F().soft_margin_loss(*a, reduction=r, **k),
    ),
    Case(
        id="multi_margin", fn=lk.multi_margin, make_args=_multi_margin_args(), reference=_torch_multi_margin
    ),
    Case(
        id="multi_margin-p2-margin",
        fn=lk.multi_margin,
        make_args=_multi_margin_args(p=2, margin=0.6),
        reference=_torch_multi_margin,
    ),
    Case(
        id="multi_margin-weight",
        fn=lk.multi_margin,
        make_args=_multi_margin_args(weight=True),
        reference=_torch_multi_margin,
    ),
    Case(
        id="multi_margin-p2-weight",
        fn=lk.multi_margin,
        make_args=_multi_margin_args(weight=True, p=2),
        reference=_torch_multi_margin,
    ),
    Case(
        id="multi_margin-1d",
        fn=lk.multi_margin,
        make_args=_multi_margin_args(shape=(6,)),
        reference=_torch_multi_margin,
    ),
    Case(
        id="multilabel_margin",
        fn=lk.multilabel_margin,
        make_args=_multilabel_margin_args,
        reference=lambda a, k, r: _F().multilabel_margin_loss(*a, reduction=r, **k),
        perfect=_multilabel_margin_perfect,
    ),
    Case(
        id="multilabel_soft_margin",
        fn=lk.multilabel_soft_margin,
        make_args=_multilabel_soft_args(),
        reference=lambda a, k, r: _F().multilabel_soft_margin_loss(*a, reduction=r, **k),
    ),
    Case(
        id="multilabel_soft_margin-class_weight-soft",
        fn=lk.multilabel_soft_margin,
        make_args=_multilabel_soft_args(weight="class", soft=True),
        reference=lambda a, k, r: _F().multilabel_soft_margin_loss(*a, reduction=r, **k),
        grad_argnums=(0, 1),
    ),
    Case(
        id="multilabel_soft_margin-element_weight",
        fn=lk.multilabel_soft_margin,
        make_args=_multilabel_soft_args(weight="element"),
        reference=lambda a, k, r: _F().multilabel_soft_margin_loss(*a, reduction=r, **k),
    ),
]
