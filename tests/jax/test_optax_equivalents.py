"""Every Optax equivalent the catalog names, called as the catalog writes it (with the arguments
it lists, Optax's defaults for the rest), against the losskit loss at losskit's defaults.

A catalog entry without arguments claims equality at both libraries' defaults; one with
arguments (``optax.losses.sigmoid_focal_loss(alpha=0.25)``) records where Optax's defaults
differ.  Either way the claim is checked here in float64, so a default that drifts on either
side fails.  Only the reduction (losskit's ``"none"`` against Optax's per-example values) and
the layout of the arguments are adapted.
"""

from __future__ import annotations

import ast

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import losskit as lk


def _claimed(name: str) -> tuple[object, dict]:
    """The Optax function and keyword arguments the catalog names for ``name``."""
    text = lk.lookup(name).optax.split(" (")[0]  # a note after a space: see NOTED
    if "(_with_integer_labels)" in text:  # two functions: probability and integer targets
        return optax.losses.softmax_cross_entropy_with_integer_labels, {}
    call = ast.parse(text, mode="eval").body
    if isinstance(call, ast.Call):
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        assert not call.args, text
        func = call.func
    else:
        kwargs, func = {}, call
    assert ast.unparse(func).startswith("optax.losses."), text
    return getattr(optax.losses, ast.unparse(func).removeprefix("optax.losses.")), kwargs


def _probs(rng, shape):
    x = rng.uniform(0.05, 1.0, shape)
    return x / x.sum(-1, keepdims=True)


def _j(*arrays):
    return tuple(jnp.asarray(a) for a in arrays)


# name -> rng -> (losskit's per-example values, Optax's), each at its defaults
def _elementwise(rng, make_target=None):
    x = rng.standard_normal((5, 4))
    t = rng.standard_normal((5, 4)) if make_target is None else make_target(rng, (5, 4))
    return _j(x, t)


def _pair(name, targets=None, reduce_losskit=None):
    def run(rng):
        x, t = _elementwise(rng, targets)
        fn, kwargs = _claimed(name)
        ours = getattr(lk, name)(x, t, reduction="none")
        if reduce_losskit is not None:
            ours = reduce_losskit(ours)
        return ours, fn(x, t, **kwargs)

    return run


def _binary(rng, shape):
    return rng.integers(0, 2, shape).astype(float)


def _signs(rng, shape):
    return 2.0 * rng.integers(0, 2, shape) - 1.0


def _scores_and_labels(name):
    def run(rng):
        x, t = _j(rng.standard_normal((6, 5)), rng.integers(0, 5, 6))
        fn, kwargs = _claimed(name)
        return getattr(lk, name)(x, t, reduction="none"), fn(x, t, **kwargs)

    return run


def _poly1(rng):
    x, q = _j(rng.standard_normal((6, 5)), _probs(rng, (6, 5)))
    fn, kwargs = _claimed("poly1_cross_entropy")
    return lk.poly1_cross_entropy(x, q, reduction="none"), fn(x, q, **kwargs)


def _kl(name, unnormalised, per_element):
    def run(rng):
        logp = jnp.log(jnp.asarray(_probs(rng, (6, 5))))
        t = rng.uniform(0.1, 2.0, (6, 5)) if unnormalised else _probs(rng, (6, 5))
        (t,) = _j(t)
        fn, kwargs = _claimed(name)
        ours = getattr(lk, name)(logp, t, reduction="none")
        # kl_div is PyTorch's per-element loss; Optax sums it along the last axis
        return (jnp.sum(ours, axis=-1) if per_element else ours), fn(logp, t, **kwargs)

    return run


def _cosine(rng):
    x, y = _j(rng.standard_normal((6, 5)), rng.standard_normal((6, 5)))
    fn, kwargs = _claimed("cosine_distance")
    return lk.cosine_distance(x, y, reduction="none"), fn(x, y, **kwargs)


def _ntxent(rng):
    e, labels = _j(rng.standard_normal((8, 4)), np.array([0, 0, 1, 1, 2, 2, 3, 3]))
    fn, kwargs = _claimed("ntxent")
    # Optax returns the mean over the anchors that have a positive: losskit's "mean"
    return lk.ntxent(e, labels), fn(e, labels, **kwargs)


def _triplet(rng, eps=None):
    a, p, n = _j(*(rng.standard_normal((6, 4)) for _ in range(3)))
    fn, kwargs = _claimed("triplet_margin")
    if eps is None:
        return lk.triplet_margin(a, p, n, reduction="none"), fn(a, p, n, **kwargs)
    return lk.triplet_margin(a, p, n, eps=eps, reduction="none"), fn(a, p, n, eps=eps, **kwargs)


def _ranking(rng):
    x, y = _j(rng.standard_normal((4, 6)), rng.integers(0, 3, (4, 6)).astype(float))
    fn, kwargs = _claimed("ranking_softmax")
    # Optax reduces with reduce_fn=jnp.mean by default: losskit's "mean"
    return lk.ranking_softmax(x, y), fn(x, y, **kwargs)


def _overlap(name):
    def run(rng):
        p, labels = _probs(rng, (3, 4, 5, 3)), rng.integers(0, 3, (3, 4, 5))
        t = np.eye(3)[labels]
        p, t = _j(p, t)
        fn, kwargs = _claimed(name)
        ours = getattr(lk, name)(p, t, reduction="none")
        # Optax's default reduction="mean" averages the (N, C) losses over the classes
        return jnp.mean(ours, axis=-1), fn(p, t, **kwargs)

    return run


def _ctc(rng):
    t_len, n, c, s = 12, 3, 5, 4
    logits = rng.standard_normal((t_len, n, c))
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    labels = rng.integers(1, c, (n, s))
    target_lengths = np.array([4, 2, 3])
    input_lengths = np.array([12, 10, 7])
    ours = lk.ctc(*_j(log_probs, labels), *_j(input_lengths, target_lengths), reduction="none")
    fn, kwargs = _claimed("ctc")
    # Optax: (N, T, C) logits with 0/1 paddings instead of lengths
    logit_pad = (np.arange(t_len)[None, :] >= input_lengths[:, None]).astype(float)
    label_pad = (np.arange(s)[None, :] >= target_lengths[:, None]).astype(float)
    theirs = fn(*_j(np.moveaxis(log_probs, 1, 0), logit_pad, labels, label_pad), **kwargs)
    return ours, theirs


CHECKS = {
    "huber": _pair("huber"),
    "log_cosh": _pair("log_cosh"),
    "mse": _pair("mse"),
    "binary_cross_entropy_with_logits": _pair("binary_cross_entropy_with_logits", _binary),
    "cross_entropy": _scores_and_labels("cross_entropy"),
    "hinge": _pair("hinge", _signs),
    "perceptron": _pair("perceptron", _signs),
    "multiclass_hinge": _scores_and_labels("multiclass_hinge"),
    "multiclass_perceptron": _scores_and_labels("multiclass_perceptron"),
    "sparsemax_loss": _scores_and_labels("sparsemax_loss"),
    "poly1_cross_entropy": _poly1,
    "sigmoid_focal": _pair("sigmoid_focal", _binary),
    "generalized_kl": _kl("generalized_kl", unnormalised=True, per_element=False),
    "kl_div": _kl("kl_div", unnormalised=False, per_element=True),
    "cosine_distance": _cosine,
    "ntxent": _ntxent,
    "triplet_margin": _triplet,
    "ranking_softmax": _ranking,
    "dice": _overlap("dice"),
    "tversky": _overlap("tversky"),
    "ctc": _ctc,
}


# entries whose catalog text notes a difference no argument removes: the loss agrees only
# within the tolerance given at the defaults, and exactly with the difference switched off
NOTED = {
    "triplet_margin": ("(eps inside the root)", 1e-5, lambda rng: _triplet(rng, eps=0.0)),
}


def test_every_optax_claim_is_checked():
    claimed = {info.name for info in lk.catalog() if info.optax}
    assert claimed == set(CHECKS)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_optax_equivalent_at_the_catalogued_arguments(name, rng):
    ours, theirs = CHECKS[name](rng)
    assert ours.shape == theirs.shape
    text = lk.lookup(name).optax
    if name in NOTED:
        note, rtol, exact = NOTED[name]
        assert text.endswith(" " + note)
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=rtol)
        assert not np.allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-9, atol=0)
        ours, theirs = exact(np.random.default_rng(0))
    else:
        assert " (" not in text
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-9, atol=1e-12)


def test_an_unlisted_default_difference_would_be_caught(rng):
    # Optax's own default alpha (None) is a different loss from losskit's alpha=0.25, and its
    # default epsilon=2 from losskit's poly-1 epsilon=1: the arguments in the catalog matter
    x, t = _j(rng.standard_normal((5, 4)), rng.integers(0, 2, (5, 4)).astype(float))
    ours = lk.sigmoid_focal(x, t, reduction="none")
    assert not np.allclose(ours, optax.losses.sigmoid_focal_loss(x, t))
    assert lk.lookup("sigmoid_focal").optax.endswith("(alpha=0.25)")
    x, q = _j(rng.standard_normal((6, 5)), _probs(rng, (6, 5)))
    ours = lk.poly1_cross_entropy(x, q, reduction="none")
    assert not np.allclose(ours, optax.losses.poly_loss_cross_entropy(x, q))


def test_x64_is_on_for_these_comparisons():
    assert jax.config.jax_enable_x64
