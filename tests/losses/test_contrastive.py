"""Contrastive losses beyond the shared table: the papers' formulas in NumPy, masks that remove
samples, SupCon's anchors without a positive, Circle loss's detached weights, custom triplet
distances, extreme values and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import losskit as lk
from tests.support.cases.contrastive import torch_circle, torch_info_nce

# -- InfoNCE against the paper's formula in NumPy ----------------------------------------------


def _unit(x):
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def numpy_info_nce(q, k, negatives=None, temperature=0.1, normalize=True, mode="unpaired"):
    """-log( e^{s(q,k+)/T} / (e^{s(q,k+)/T} + sum_negatives e^{s(q,k-)/T}) ), per query."""
    if normalize:
        q, k = _unit(q), _unit(k)
        negatives = None if negatives is None else _unit(negatives)
    losses = []
    for i in range(q.shape[0]):
        positive = q[i] @ k[i] / temperature
        if negatives is None:
            others = [q[i] @ k[j] / temperature for j in range(q.shape[0]) if j != i]
        elif mode == "unpaired":
            others = list(negatives @ q[i] / temperature)
        else:
            others = list(negatives[i] @ q[i] / temperature)
        losses.append(-positive + np.log(np.exp(positive) + np.sum(np.exp(others))))
    return np.array(losses)


@pytest.mark.parametrize(
    "negatives,mode,normalize,temperature",
    [(None, "unpaired", True, 0.1), ((3,), "unpaired", True, 0.2), ((4, 3), "paired", False, 1.0)],
)
def test_info_nce_is_the_papers_formula(negatives, mode, normalize, temperature, rng):
    q, k = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    neg = None if negatives is None else rng.normal(size=negatives + (3,))
    expected = numpy_info_nce(q, k, neg, temperature, normalize, mode)
    ours = lk.info_nce(q, k, neg, temperature, normalize, mode, reduction="none")
    np.testing.assert_allclose(ours, expected, rtol=1e-10)


def test_info_nce_where_drops_padded_rows_and_their_keys(rng):
    q, k = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    keep = np.array([True, False, True, True, False, True])
    value, (gq, gk) = lk.value_and_grad(lk.info_nce, (0, 1))(q, k, where=keep)
    sub, (sq, sk) = lk.value_and_grad(lk.info_nce, (0, 1))(q[keep], k[keep])
    np.testing.assert_allclose(value, sub, rtol=1e-12)
    np.testing.assert_allclose(gq[keep], sq, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(gk[keep], sk, rtol=1e-10, atol=1e-14)
    assert np.all(gq[~keep] == 0) and np.all(gk[~keep] == 0)


def test_info_nce_small_temperature_float32_is_finite(rng):
    q = rng.normal(size=(8, 16)).astype(np.float32) * 100
    k = rng.normal(size=(8, 16)).astype(np.float32) * 100
    value, grads = lk.value_and_grad(lk.info_nce, (0, 1))(q, k, None, 0.001, False)
    assert value.dtype == np.float32 and np.isfinite(value)
    assert all(np.all(np.isfinite(g)) for g in grads)
    expected = torch_info_nce(
        (torch.from_numpy(q).double(), torch.from_numpy(k).double()),
        {"temperature": 0.001, "normalize": False},
        "mean",
    )
    assert float(value) == pytest.approx(float(expected), rel=1e-4)


# -- batch losses: where removes samples ---------------------------------------------------------


@pytest.mark.parametrize(
    "fn,kwargs",
    [
        (lk.ntxent, {"temperature": 0.3}),
        (lk.supcon, {"temperature": 0.2}),
        (lk.circle, {"gamma": 16.0}),
        (lk.circle, {"gamma": 16.0, "detach_weights": False}),
    ],
    ids=["ntxent", "supcon", "circle", "circle-full"],
)
def test_where_is_the_same_as_leaving_the_samples_out(fn, kwargs, rng):
    x = rng.normal(size=(9, 4))
    labels = np.array([0, 1, 0, 2, 1, 2, 0, 7, 1])
    keep = np.array([True, True, True, True, False, True, True, False, True])
    value, g = lk.value_and_grad(fn)(x, labels, where=keep, **kwargs)
    sub, g_sub = lk.value_and_grad(fn)(x[keep], labels[keep], **kwargs)
    np.testing.assert_allclose(value, sub, rtol=1e-12)
    np.testing.assert_allclose(g[keep], g_sub, rtol=1e-9, atol=1e-14)
    assert np.all(g[~keep] == 0)


def test_ntxent_without_positive_pairs_is_zero_not_nan(rng):
    x = rng.normal(size=(4, 3))
    labels = np.arange(4)
    value, g = lk.value_and_grad(lk.ntxent)(x, labels)
    assert value == 0 and np.all(g == 0)  # Optax returns NaN here


def test_ntxent_float32_tiny_temperature_is_finite(rng):
    x = rng.normal(size=(6, 5)).astype(np.float32)
    labels = np.array([0, 0, 1, 1, 2, 2])
    value, g = lk.value_and_grad(lk.ntxent)(x, labels, 0.005)
    assert value.dtype == np.float32 and np.isfinite(value) and np.all(np.isfinite(g))
    exact = lk.ntxent(x.astype(np.float64), labels, 0.005)
    assert float(value) == pytest.approx(float(exact), rel=1e-3)


# -- SupCon: anchors without a positive ------------------------------------------------------------

SINGLETON = np.array([0, 1, 0, 2, 1])  # sample 3 is the only one of label 2


def test_supcon_raises_naming_the_anchor_without_positive(rng):
    x = rng.normal(size=(5, 3))
    with pytest.raises(
        ValueError, match=r"labels: sample 3 \(label 2\) has no positive.*no_positive='exclude'"
    ):
        lk.supcon(x, SINGLETON)
    with pytest.raises(ValueError, match="sample 3"):
        lk.supcon(torch.from_numpy(x), torch.from_numpy(SINGLETON))


def test_supcon_exclude_leaves_the_anchor_out_but_keeps_it_as_a_negative(rng):
    x = rng.normal(size=(5, 3))
    per = lk.supcon(x, SINGLETON, no_positive="exclude", reduction="none")
    assert per[3] == 0 and np.all(per[[0, 1, 2, 4]] > 0)
    assert lk.supcon(x, SINGLETON, no_positive="exclude") == pytest.approx(per.sum() / 4, rel=1e-12)
    # sample 3 is in the others' denominators: removing it changes their losses
    without = lk.supcon(np.delete(x, 3, 0), np.delete(SINGLETON, 3), reduction="none")
    assert not np.allclose(np.delete(per, 3), without)


def test_supcon_masked_out_singleton_is_no_problem(rng):
    x = rng.normal(size=(5, 3))
    keep = np.array([True, True, True, False, True])
    assert lk.supcon(x, SINGLETON, where=keep) == pytest.approx(
        float(lk.supcon(x[keep], SINGLETON[keep])), rel=1e-12
    )


def test_supcon_unreadable_labels_give_nan_not_a_silent_zero(rng):
    import dask.array as da
    import jax
    import jax.numpy as jnp

    x = rng.normal(size=(5, 3))
    value = jax.jit(lambda e, y: lk.supcon(e, y))(jnp.asarray(x), jnp.asarray(SINGLETON))
    assert np.isnan(float(value))
    lazy = lk.supcon(da.from_array(x, chunks=2), da.from_array(SINGLETON, chunks=2))
    assert np.isnan(float(lazy.compute()))
    # the other anchors' per-sample losses are unaffected
    per = jax.jit(lambda e, y: lk.supcon(e, y, reduction="none"))(jnp.asarray(x), jnp.asarray(SINGLETON))
    excluded = lk.supcon(x, SINGLETON, no_positive="exclude", reduction="none")
    np.testing.assert_allclose(np.delete(np.asarray(per), 3), np.delete(excluded, 3), rtol=1e-12)


# -- Circle loss: the paper's gradient with the weights detached ------------------------------------

LABELS = np.array([0, 1, 0, 2, 1, 2, 0, 1])


@pytest.mark.parametrize("gamma,m", [(256.0, 0.25), (32.0, 0.4)])
def test_circle_detached_gradient_matches_the_reference_code(gamma, m, rng):
    x = rng.normal(size=(8, 5))
    t = torch.tensor(x, requires_grad=True)
    expected = torch_circle((t, torch.from_numpy(LABELS)), {"m": m, "gamma": gamma}, "mean")
    expected.backward()
    value, g = lk.value_and_grad(lk.circle)(x, LABELS, m, gamma)
    assert float(value) == pytest.approx(float(expected), rel=1e-10)
    np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-8, atol=1e-12)
    # detaching changes the gradient, not the value
    full_value, full = lk.value_and_grad(lk.circle)(x, LABELS, m, gamma, detach_weights=False)
    assert float(full_value) == pytest.approx(float(value), rel=1e-14)
    assert not np.allclose(full, g)


def test_circle_autograd_through_losskit_gives_the_detached_gradient(rng):
    import jax
    import jax.numpy as jnp

    x = rng.normal(size=(8, 4))
    _, analytic = lk.value_and_grad(lk.circle)(x, LABELS, 0.3, 24.0)
    t = torch.tensor(x, requires_grad=True)
    lk.circle(t, torch.from_numpy(LABELS), 0.3, 24.0).backward()
    np.testing.assert_allclose(t.grad.numpy(), analytic, rtol=1e-10, atol=1e-14)
    j = jax.jit(jax.grad(lambda e: lk.circle(e, jnp.asarray(LABELS), 0.3, 24.0)))(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(j), analytic, rtol=1e-10, atol=1e-14)


def test_circle_default_gamma_in_float32_is_finite(rng):
    x = rng.normal(size=(8, 6)).astype(np.float32)
    value, g = lk.value_and_grad(lk.circle)(x, LABELS)
    assert value.dtype == np.float32 and np.isfinite(value) and np.all(np.isfinite(g))
    assert float(value) == pytest.approx(float(lk.circle(x.astype(np.float64), LABELS)), rel=1e-3)


def test_circle_anchors_without_positive_or_negative_are_left_out(rng):
    x = rng.normal(size=(5, 3))
    labels = np.array([0, 0, 1, 1, 9])  # sample 4 has no positive
    per = lk.circle(x, labels, gamma=8.0, reduction="none")
    assert per[4] == 0
    assert lk.circle(x, labels, gamma=8.0) == pytest.approx(per[:4].mean(), rel=1e-12)
    assert lk.circle(x, np.zeros(5, dtype=np.int64)) == 0  # nobody has a negative


# -- triplets ------------------------------------------------------------------------------------


def _cosine_distance_np(x1, x2):
    return 1 - np.sum(x1 * x2, -1) / (np.linalg.norm(x1, axis=-1) * np.linalg.norm(x2, axis=-1))


def _cosine_distance_torch(x1, x2):
    return 1 - F.cosine_similarity(x1, x2, dim=-1)


def test_triplet_with_a_custom_distance_matches_pytorch(rng):
    a, p, n = (rng.normal(size=(6, 4)) for _ in range(3))
    for swap in (False, True):
        expected = F.triplet_margin_with_distance_loss(
            *map(torch.from_numpy, (a, p, n)), distance_function=_cosine_distance_torch, margin=0.5, swap=swap
        )
        ours = lk.triplet_margin_with_distance(
            a, p, n, distance_function=_cosine_distance_np, margin=0.5, swap=swap
        )
        assert float(ours) == pytest.approx(float(expected), rel=1e-10)


def test_triplet_custom_distance_has_framework_autograd_but_no_analytic_gradient(rng):
    import jax
    import jax.numpy as jnp

    a, p, n = (rng.normal(size=(6, 4)) for _ in range(3))
    with pytest.raises(ValueError, match="no analytic gradient for a custom distance_function"):
        lk.value_and_grad(lk.triplet_margin_with_distance)(a, p, n, distance_function=_cosine_distance_np)
    # torch autograd flows through the caller's distance
    ta, tp, tn = (torch.tensor(v, requires_grad=True) for v in (a, p, n))
    lk.triplet_margin_with_distance(
        ta, tp, tn, distance_function=_cosine_distance_torch, margin=0.5
    ).backward()
    ra, rp, rn = (torch.tensor(v, requires_grad=True) for v in (a, p, n))
    F.triplet_margin_with_distance_loss(
        ra, rp, rn, distance_function=_cosine_distance_torch, margin=0.5
    ).backward()
    for ours, ref in ((ta, ra), (tp, rp), (tn, rn)):
        np.testing.assert_allclose(ours.grad.numpy(), ref.grad.numpy(), rtol=1e-10, atol=1e-14)

    # and jax.grad through a jax.numpy distance
    def jdist(x1, x2):
        return 1 - jnp.sum(x1 * x2, -1) / (jnp.linalg.norm(x1, axis=-1) * jnp.linalg.norm(x2, axis=-1))

    g = jax.grad(
        lambda x: lk.triplet_margin_with_distance(
            x, jnp.asarray(p), jnp.asarray(n), distance_function=jdist, margin=0.5
        )
    )(jnp.asarray(a))
    np.testing.assert_allclose(np.asarray(g), ra.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_triplet_default_distance_is_triplet_margin(rng):
    a, p, n = (rng.normal(size=(5, 3)) for _ in range(3))
    v1, g1 = lk.value_and_grad(lk.triplet_margin_with_distance, (0, 1, 2))(a, p, n, swap=True)
    v2, g2 = lk.value_and_grad(lk.triplet_margin, (0, 1, 2))(a, p, n, swap=True)
    assert v1 == v2
    for x, y in zip(g1, g2):
        np.testing.assert_array_equal(x, y)


def test_triplet_identical_anchor_and_positive_has_finite_gradients():
    a = np.ones((2, 3), dtype=np.float32)
    value, grads = lk.value_and_grad(lk.triplet_margin, (0, 1, 2))(a, a.copy(), a.copy())
    assert np.isfinite(value) and all(np.all(np.isfinite(g)) for g in grads)
    t = [torch.tensor(a, requires_grad=True) for _ in range(3)]
    F.triplet_margin_loss(*t).backward()
    for ours, ref in zip(grads, t):
        np.testing.assert_allclose(ours, ref.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_cosine_embedding_zero_vectors_are_finite():
    x = np.zeros((2, 3))
    y = np.array([1.0, -1.0])
    value, grads = lk.value_and_grad(lk.cosine_embedding, (0, 1))(x, x.copy(), y, reduction="none")
    np.testing.assert_array_equal(value, [1.0, 0.0])  # PyTorch: cos = 0 / sqrt(1e-24) = 0
    assert all(np.all(np.isfinite(g)) for g in grads)
    expected = F.cosine_embedding_loss(
        torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor(y), reduction="none"
    )
    np.testing.assert_array_equal(value, expected.numpy())


def test_low_precision_is_computed_in_float32(rng):
    q, k = (torch.from_numpy(rng.normal(size=(6, 8))).to(torch.float16) for _ in range(2))
    loss = lk.info_nce(q, k)
    assert loss.dtype == torch.float16
    assert float(loss) == pytest.approx(float(lk.info_nce(q.double(), k.double())), rel=2e-3)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    for fn in (lk.ntxent, lk.supcon, lk.circle):
        out = fn(q, labels)
        assert out.dtype == torch.float16 and torch.isfinite(out)


# -- bad input -----------------------------------------------------------------------------------

X = np.zeros((4, 3))
L = np.array([0, 0, 1, 1])


@pytest.mark.parametrize(
    "call,error,match",
    [
        (
            lambda: lk.triplet_margin(X, X, np.zeros((4, 2))),
            ValueError,
            "negative must have the same shape as anchor",
        ),
        (lambda: lk.triplet_margin(X, X, X, margin=0.0), ValueError, r"margin must be in \(0"),
        (lambda: lk.triplet_margin(X, X, X, p=0), ValueError, r"p must be in \(0"),
        (lambda: lk.triplet_margin(X, X, X, swap=1), TypeError, "swap must be a bool"),
        (lambda: lk.triplet_margin(*[np.zeros((2, 2, 2))] * 3), ValueError, "anchor must be a 1-d or 2-d"),
        (
            lambda: lk.triplet_margin_with_distance(X, X, X, distance_function="euclidean"),
            TypeError,
            "distance_function must be callable",
        ),
        (
            lambda: lk.triplet_margin_with_distance(X, X, X, distance_function=lambda a, b: a - b),
            ValueError,
            r"distance_function must return one distance per triplet, shape \(4,\); got \(4, 3\)",
        ),
        (lambda: lk.triplet_margin(X, torch.zeros(4, 3), X), TypeError, "same library"),
        (
            lambda: lk.cosine_embedding(X, X, np.array([1.0, 0.0, 1.0, -1.0])),
            ValueError,
            r"target must only hold",
        ),
        (lambda: lk.cosine_embedding(X, X, np.ones(3)), ValueError, r"target must have shape \(4,\)"),
        (lambda: lk.cosine_distance(X, np.zeros((4, 2))), ValueError, "target must have the same shape"),
        (lambda: lk.cosine_distance(X, X, epsilon=-1.0), ValueError, "epsilon must be in"),
        (lambda: lk.cosine_distance(X, X, where=np.ones((4, 3))), TypeError, "where must be a boolean"),
        (lambda: lk.info_nce(X, X, np.zeros((5, 2))), ValueError, r"negative_keys must have shape \(M, 3\)"),
        (
            lambda: lk.info_nce(X, X, np.zeros((5, 3)), negative_mode="paired"),
            ValueError,
            r"negative_keys must have shape \(4, M, 3\)",
        ),
        (lambda: lk.info_nce(X, X, negative_mode="mixed"), ValueError, "negative_mode must be"),
        (lambda: lk.info_nce(X, X, temperature=0.0), ValueError, "temperature must be in"),
        (
            lambda: lk.info_nce(X, X, where=np.ones(3, dtype=bool)),
            ValueError,
            r"where must have shape \(4,\)",
        ),
        (lambda: lk.info_nce(X[0], X[0]), ValueError, "query must be a 2-d array"),
        (lambda: lk.ntxent(X, L.astype(float)), TypeError, "labels must hold integer"),
        (lambda: lk.ntxent(X, L[:3]), ValueError, r"labels must have shape \(4,\)"),
        (lambda: lk.ntxent(np.zeros((0, 3)), L[:0]), ValueError, "embeddings is empty"),
        (lambda: lk.ntxent(X.astype(np.int64), L), TypeError, "embeddings must be a real floating"),
        (lambda: lk.supcon(X, L, no_positive="ignore"), ValueError, "no_positive must be"),
        (lambda: lk.supcon(X, L, normalize="yes"), TypeError, "normalize must be a bool"),
        (lambda: lk.circle(X, L, m=1.0), ValueError, r"m must be in \[0, 1\)"),
        (lambda: lk.circle(X, L, gamma=0), ValueError, "gamma must be in"),
        (lambda: lk.circle(X, L, where=np.ones(4)), TypeError, "where must be a boolean"),
    ],
)
def test_bad_input_names_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
