"""The pair and mined-triplet metric losses and the miners, beyond the case table: the miners'
indices and the per-term ("none") outputs against pytorch-metric-learning (float64, rtol
1e-7: the same formulas, no iteration), worked numbers, edge cases and bad input."""

from __future__ import annotations

import numpy as np
import pytest

import losskit as lk
from tests.support.backends import BY_NAME
from tests.support.cases.metric_pairs import (
    LABELS_WITH_SINGLETON,
    pml_contrastive,
    pml_lifted_structure,
    pml_mined_triplet_margin,
)

torch = pytest.importorskip("torch")
miners = pytest.importorskip("pytorch_metric_learning.miners")
distances = pytest.importorskip("pytorch_metric_learning.distances")

SEEDS = range(5)


def _batch(seed, labels=LABELS_WITH_SINGLETON, d=4):
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    return rng.normal(size=(labels.size, d)), labels


def _pml_distance(distance, normalize):
    power = 2 if distance == "squared_euclidean" else 1
    return distances.LpDistance(normalize_embeddings=normalize, power=power)


def _same_indices(ours, theirs):
    assert len(ours) == len(theirs) == 3
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(np.asarray(a), b.numpy())


# -- miners --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("distance", ["euclidean", "squared_euclidean"])
@pytest.mark.parametrize("normalize", [True, False])
def test_batch_hard_triplets_are_pml_batch_hard_miner(seed, distance, normalize):
    e, y = _batch(seed)
    ours = lk.batch_hard_triplets(e, y, distance=distance, normalize=normalize)
    theirs = miners.BatchHardMiner(distance=_pml_distance(distance, normalize))(
        torch.tensor(e), torch.tensor(y)
    )
    _same_indices(ours, theirs)
    assert 5 not in np.asarray(ours[0])  # the only sample of label 3 has no positive


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("margin", [0.1, 0.5, 2.0])
@pytest.mark.parametrize("normalize", [True, False])
def test_semi_hard_triplets_are_pml_semihard_triplet_margin_miner(seed, margin, normalize):
    e, y = _batch(seed)
    ours = lk.semi_hard_triplets(e, y, margin=margin, normalize=normalize)
    miner = miners.TripletMarginMiner(
        margin=margin, type_of_triplets="semihard", distance=_pml_distance("euclidean", normalize)
    )
    _same_indices(ours, miner(torch.tensor(e), torch.tensor(y)))


def test_semi_hard_triplets_follow_their_definition():
    e, y = _batch(3)
    a, p, n = lk.semi_hard_triplets(e, y, margin=0.4, normalize=False)
    assert len(a) > 0
    d = np.linalg.norm(e[:, None] - e[None], axis=-1)
    assert np.all(y[a] == y[p]) and np.all(a != p) and np.all(y[a] != y[n])
    assert np.all(d[a, p] < d[a, n]) and np.all(d[a, n] <= d[a, p] + 0.4)


@pytest.mark.parametrize("backend", ["torch", "jax", "array_api_strict"])
def test_miners_return_index_arrays_of_the_callers_library(backend):
    e, y = _batch(0)
    (te, ty), _ = BY_NAME[backend].args((e, y), {})
    want_hard = lk.batch_hard_triplets(e, y)
    want_semi = lk.semi_hard_triplets(e, y, margin=0.5)
    for got, want in (
        (lk.batch_hard_triplets(te, ty), want_hard),
        (lk.semi_hard_triplets(te, ty, margin=0.5), want_semi),
    ):
        for g, w in zip(got, want):
            assert type(g) is type(te) or BY_NAME[backend].name == "jax"
            np.testing.assert_array_equal(np.asarray(g), w)


def test_mined_indices_feed_triplet_margin():
    e, y = _batch(1)
    a, p, n = lk.batch_hard_triplets(e, y, normalize=False)
    value = lk.triplet_margin(e[a], e[p], e[n], margin=0.3, eps=0.0, reduction="sum")
    want = lk.mined_triplet_margin(e, y, margin=0.3, normalize=False, reduction="sum")
    np.testing.assert_allclose(value, want, rtol=1e-12)


# -- per-term outputs against pytorch-metric-learning ----------------------------------------------


PER_TERM = [
    (lk.contrastive_pairs, pml_contrastive, {}),
    (lk.contrastive_pairs, pml_contrastive, {"pos_margin": 0.5, "neg_margin": 3.0, "normalize": False}),
    (lk.contrastive_pairs, pml_contrastive, {"neg_margin": 1.5, "distance": "squared_euclidean"}),
    (lk.lifted_structure, pml_lifted_structure, {}),
    (lk.lifted_structure, pml_lifted_structure, {"margin": 2.0, "normalize": False}),
    (lk.mined_triplet_margin, pml_mined_triplet_margin, {"margin": 0.3}),
    (lk.mined_triplet_margin, pml_mined_triplet_margin, {"margin": 0.5, "miner": "semi_hard"}),
    (
        lk.mined_triplet_margin,
        pml_mined_triplet_margin,
        {"margin": 1.0, "miner": "semi_hard", "normalize": False},
    ),
]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(("fn", "reference", "options"), PER_TERM, ids=lambda x: getattr(x, "__name__", None))
def test_per_term_values_and_gradients_match_pml(fn, reference, options, seed):
    e, y = _batch(seed)
    te, ty = torch.tensor(e, requires_grad=True), torch.tensor(y)
    for reduction in ("none", "mean", "avg_nonzero"):
        want = reference((te, ty), dict(options), reduction)
        value, grad = lk.value_and_grad(fn, argnums=0)(e, y, reduction=reduction, **options)
        np.testing.assert_allclose(value, want.detach().numpy(), rtol=1e-7, atol=1e-12)
        (want_grad,) = torch.autograd.grad(want.sum(), te)
        np.testing.assert_allclose(grad, want_grad.numpy(), rtol=1e-7, atol=1e-12)


def test_contrastive_avg_nonzero_is_pml_default_and_mean_is_over_all_pairs():
    e, y = _batch(4)
    per = lk.contrastive_pairs(e, y, reduction="none")
    n = y.size
    assert per.shape == (n, n) and np.all(np.diag(per) == 0)
    np.testing.assert_allclose(lk.contrastive_pairs(e, y), per.sum() / (n * (n - 1)), rtol=1e-12)
    same = y[:, None] == y[None, :]
    pos, neg = per[same & ~np.eye(n, dtype=bool)], per[~same]
    want = pos[pos > 0].mean() + neg[neg > 0].mean()
    np.testing.assert_allclose(lk.contrastive_pairs(e, y, reduction="avg_nonzero"), want, rtol=1e-12)


# -- worked numbers and edge cases -----------------------------------------------------------------


def test_contrastive_pairs_worked_number():
    e = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 0.5]])
    y = np.array([0, 0, 1])
    # positive pair 0-1: distance 5; negatives 0-2: 0.5 and 1-2: sqrt(9 + 12.25)
    per = lk.contrastive_pairs(e, y, neg_margin=1.0, normalize=False, reduction="none")
    np.testing.assert_allclose(per, [[0, 5, 0.5], [5, 0, 0], [0.5, 0, 0]], atol=1e-15)
    np.testing.assert_allclose(lk.contrastive_pairs(e, y, normalize=False), 11.0 / 6.0, rtol=1e-15)


def test_mined_triplet_margin_worked_number():
    e = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
    y = np.array([0, 0, 1, 1])
    # anchor 0: farthest positive 1 (2), nearest negative 2 (1): 2 - 1 + 0.5
    per = lk.mined_triplet_margin(e, y, margin=0.5, normalize=False, reduction="none")
    assert per[0] == pytest.approx(1.5)


def test_multi_similarity_with_no_negative_is_its_positive_term():
    e, _ = _batch(2, d=3)
    y = np.zeros(e.shape[0], dtype=np.int64)
    u = e / np.linalg.norm(e, axis=1, keepdims=True)
    s = u @ u.T
    off = ~np.eye(y.size, dtype=bool)
    want = np.log1p(np.where(off, np.exp(-2.0 * (s - 0.5)), 0.0).sum(1)) / 2.0
    np.testing.assert_allclose(lk.multi_similarity(e, y, reduction="none"), want, rtol=1e-12)


def test_n_pair_without_any_pair_is_zero_with_a_zero_gradient():
    e, _ = _batch(0, d=3)
    y = np.arange(e.shape[0])
    value, grad = lk.value_and_grad(lk.n_pair, argnums=0)(e, y)
    assert value == 0.0 and np.all(grad == 0.0)


def test_lifted_structure_without_negatives_is_zero():
    e, _ = _batch(0, d=3)
    y = np.zeros(e.shape[0], dtype=np.int64)
    assert lk.lifted_structure(e, y) == 0.0


def test_float32_stays_float32():
    e, y = _batch(0)
    for fn in (
        lk.contrastive_pairs,
        lk.multi_similarity,
        lk.lifted_structure,
        lk.n_pair,
        lk.mined_triplet_margin,
    ):
        assert fn(e.astype(np.float32), y).dtype == np.float32


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "kwargs", "error", "name"),
    [
        (lk.contrastive_pairs, {"distance": "cosine"}, ValueError, "distance"),
        (lk.contrastive_pairs, {"normalize": 1}, TypeError, "normalize"),
        (lk.contrastive_pairs, {"reduction": "batchmean"}, ValueError, "reduction"),
        (lk.multi_similarity, {"alpha": 0.0}, ValueError, "alpha"),
        (lk.multi_similarity, {"beta": -1.0}, ValueError, "beta"),
        (lk.multi_similarity, {"reduction": "avg_nonzero"}, ValueError, "reduction"),
        (lk.n_pair, {"normalize": "yes"}, TypeError, "normalize"),
        (lk.mined_triplet_margin, {"miner": "hard"}, ValueError, "miner"),
        (lk.mined_triplet_margin, {"margin": 0.0}, ValueError, "margin"),
        (lk.semi_hard_triplets, {"margin": -0.1}, ValueError, "margin"),
        (lk.batch_hard_triplets, {"distance": "l1"}, ValueError, "distance"),
    ],
)
def test_bad_options_are_refused_by_name(fn, kwargs, error, name):
    e, y = _batch(0)
    with pytest.raises(error, match=name):
        fn(e, y, **kwargs)


@pytest.mark.parametrize(
    "fn",
    [
        lk.contrastive_pairs,
        lk.multi_similarity,
        lk.lifted_structure,
        lk.n_pair,
        lk.mined_triplet_margin,
        lk.batch_hard_triplets,
        lk.semi_hard_triplets,
    ],
)
def test_bad_arrays_are_refused_by_name(fn):
    e, y = _batch(0)
    with pytest.raises(ValueError, match="embeddings"):
        fn(e[0], y)
    with pytest.raises(ValueError, match="labels"):
        fn(e, y[:-1])
    with pytest.raises(TypeError, match="labels"):
        fn(e, y.astype(np.float64))
    with pytest.raises(TypeError, match="embeddings"):
        fn(y[:, None], y)
