"""Cases for the pair and mined-triplet metric losses, each against pytorch-metric-learning
(float64): its per-pair / per-anchor / per-triplet terms (``DoNothingReducer``) laid out as
losskit's ``"none"`` output for ``mean``, ``sum`` and ``none``, and its default reducer for
``avg_nonzero``."""

from __future__ import annotations

import numpy as np

import losskit as lk

from . import Case

LABELS = [0, 1, 0, 2, 1, 2, 0, 1]
LABELS_WITH_SINGLETON = [0, 1, 0, 2, 1, 3, 0, 1, 1]  # label 3 has no positive


def _batch_args(labels, d=3, **options):
    labels = np.asarray(labels)

    def make(rng):
        return (rng.normal(size=(labels.size, d)), labels.copy()), dict(options)

    return make


def _perfect(rng):
    """Each label one direction, the directions orthogonal: positive distances 0, negative
    ones sqrt(2) after normalisation (and far apart without it)."""
    labels = np.array([0, 1, 2, 0, 1, 2])
    basis = 10.0 * np.eye(3)
    return (basis[labels] * rng.uniform(0.5, 2.0, size=(6, 1)), labels), {}


def _perfect_far(rng):
    """Unnormalised: each label one point, the points 40 apart, for margins up to 20."""
    labels = np.array([0, 1, 2, 0, 1, 2])
    return (30.0 * np.eye(3)[labels], labels), {"neg_margin": 20.0, "normalize": False}


def _pml_distance(k):
    from pytorch_metric_learning import distances

    power = 2 if k.get("distance", "euclidean") == "squared_euclidean" else 1
    return distances.LpDistance(normalize_embeddings=k.get("normalize", True), power=power)


def _no_reduction():
    from pytorch_metric_learning import reducers

    return reducers.DoNothingReducer()


def _scatter(losses, index, shape, dtype):
    import torch

    out = torch.zeros(shape, dtype=dtype)
    return out.index_put(tuple(index), losses.reshape(-1), accumulate=True)


def _finish(per, counted, r):
    if r == "mean":
        return per.sum() / max(int(counted), 1)
    return per.sum() if r == "sum" else per


def pml_contrastive(a, k, r):
    from pytorch_metric_learning import losses

    e, labels = a
    options = dict(
        pos_margin=k.get("pos_margin", 0.0), neg_margin=k.get("neg_margin", 1.0), distance=_pml_distance(k)
    )
    if r == "avg_nonzero":
        return losses.ContrastiveLoss(**options)(e, labels)
    out = losses.ContrastiveLoss(reducer=_no_reduction(), **options)(e, labels)
    n = e.shape[0]
    per = _scatter(out["pos_loss"]["losses"], out["pos_loss"]["indices"], (n, n), e.dtype)
    per = per + _scatter(out["neg_loss"]["losses"], out["neg_loss"]["indices"], (n, n), e.dtype)
    return _finish(per, n * (n - 1), r)


def pml_multi_similarity(a, k, r):
    from pytorch_metric_learning import losses

    e, labels = a
    out = losses.MultiSimilarityLoss(reducer=_no_reduction(), **k)(e, labels)
    per = out["loss"]["losses"].reshape(-1)
    return _finish(per, e.shape[0], r)


def pml_lifted_structure(a, k, r):
    from pytorch_metric_learning import losses

    e, labels = a
    options = dict(neg_margin=k.get("margin", 1.0), distance=_pml_distance(k))
    if r == "avg_nonzero":
        return losses.LiftedStructureLoss(**options)(e, labels)
    out = losses.LiftedStructureLoss(reducer=_no_reduction(), **options)(e, labels)
    n = e.shape[0]
    per = _scatter(out["loss"]["losses"], out["loss"]["indices"], (n, n), e.dtype)
    same = labels[:, None] == labels[None, :]
    return _finish(per, int(same.sum()) - n, r)


def pml_n_pair(a, k, r):
    from pytorch_metric_learning import distances, losses

    e, labels = a
    distance = distances.DotProductSimilarity(normalize_embeddings=k.get("normalize", True))
    out = losses.NPairsLoss(reducer=_no_reduction(), distance=distance)(e, labels)
    index = out["loss"]["indices"]
    per = _scatter(out["loss"]["losses"], (index,), (e.shape[0],), e.dtype)
    return _finish(per, len(index), r)


def _pml_miner(k):
    from pytorch_metric_learning import miners

    distance = _pml_distance(k)
    if k.get("miner", "batch_hard") == "batch_hard":
        return miners.BatchHardMiner(distance=distance)
    return miners.TripletMarginMiner(
        margin=k.get("margin", 0.2), type_of_triplets="semihard", distance=distance
    )


def pml_mined_triplet_margin(a, k, r):
    from pytorch_metric_learning import losses

    e, labels = a
    triplets = _pml_miner(k)(e, labels)
    options = dict(margin=k.get("margin", 0.2), distance=_pml_distance(k))
    if r == "avg_nonzero":
        return losses.TripletMarginLoss(**options)(e, labels, triplets)
    out = losses.TripletMarginLoss(reducer=_no_reduction(), **options)(e, labels, triplets)
    n = e.shape[0]
    if k.get("miner", "batch_hard") == "batch_hard":
        per = _scatter(out["loss"]["losses"], (triplets[0],), (n,), e.dtype)
    else:
        per = _scatter(out["loss"]["losses"], triplets, (n, n, n), e.dtype)
    return _finish(per, len(triplets[0]), r)


# A hinge term at 0 stays 0 under small changes of the embeddings, yet a NaN embedding makes
# it NaN; the table's NaN check reads the "none" output by perturbing, so "none" is checked
# here only where every term is active (large margins), and for the rest in
# tests/losses/test_metric_pairs.py.
HINGE = ("mean", "sum", "avg_nonzero")
ALL_ACTIVE = ("mean", "sum", "none", "avg_nonzero")

CASES = [
    Case(
        id="contrastive_pairs",
        fn=lk.contrastive_pairs,
        make_args=_batch_args(LABELS),
        reference=pml_contrastive,
        reductions=HINGE,
        perfect=_perfect,
    ),
    Case(
        id="contrastive_pairs-all-active",
        fn=lk.contrastive_pairs,
        make_args=_batch_args(LABELS, neg_margin=20.0, normalize=False),
        reference=pml_contrastive,
        reductions=ALL_ACTIVE,
        perfect=_perfect_far,
    ),
    Case(
        id="contrastive_pairs-margins-unnormalized",
        fn=lk.contrastive_pairs,
        make_args=_batch_args(LABELS_WITH_SINGLETON, d=4, pos_margin=0.5, neg_margin=3.0, normalize=False),
        reference=pml_contrastive,
        reductions=HINGE,
    ),
    Case(
        id="contrastive_pairs-squared",
        fn=lk.contrastive_pairs,
        make_args=_batch_args(LABELS, pos_margin=0.2, neg_margin=1.5, distance="squared_euclidean"),
        reference=pml_contrastive,
        reductions=HINGE,
        perfect=_perfect,
    ),
    Case(
        id="multi_similarity",
        fn=lk.multi_similarity,
        make_args=_batch_args(LABELS),
        reference=pml_multi_similarity,
        # beta=50 leaves far negatives' terms below 1e-13 of the total: the NaN check's
        # perturbations cannot see them, so "none" is checked with beta=10 below
        reductions=("mean", "sum"),
    ),
    Case(
        id="multi_similarity-options",
        fn=lk.multi_similarity,
        make_args=_batch_args(LABELS_WITH_SINGLETON, d=4, alpha=3.0, beta=10.0, base=0.2),
        reference=pml_multi_similarity,
    ),
    Case(
        id="lifted_structure",
        fn=lk.lifted_structure,
        make_args=_batch_args(LABELS),
        reference=pml_lifted_structure,
        reductions=HINGE,
    ),
    Case(
        id="lifted_structure-all-active",
        fn=lk.lifted_structure,
        make_args=_batch_args(LABELS, margin=5.0),
        reference=pml_lifted_structure,
        reductions=ALL_ACTIVE,
    ),
    Case(
        id="lifted_structure-unnormalized-margin",
        fn=lk.lifted_structure,
        make_args=_batch_args(LABELS_WITH_SINGLETON, d=4, margin=2.0, normalize=False),
        reference=pml_lifted_structure,
        reductions=HINGE,
    ),
    Case(
        id="lifted_structure-squared",
        fn=lk.lifted_structure,
        make_args=_batch_args(LABELS, margin=0.5, distance="squared_euclidean"),
        reference=pml_lifted_structure,
        reductions=HINGE,
    ),
    Case(
        id="n_pair",
        fn=lk.n_pair,
        make_args=_batch_args(LABELS),
        reference=pml_n_pair,
    ),
    Case(
        id="n_pair-unnormalized",
        fn=lk.n_pair,
        make_args=_batch_args(LABELS_WITH_SINGLETON, d=4, normalize=False),
        reference=pml_n_pair,
    ),
    Case(
        id="mined_triplet_margin-batch_hard",
        fn=lk.mined_triplet_margin,
        make_args=_batch_args(LABELS_WITH_SINGLETON, d=4, margin=0.3),
        reference=pml_mined_triplet_margin,
        reductions=HINGE,
        perfect=_perfect,
    ),
    Case(
        id="mined_triplet_margin-batch_hard-unnormalized",
        fn=lk.mined_triplet_margin,
        make_args=_batch_args(LABELS, margin=1.0, normalize=False),
        reference=pml_mined_triplet_margin,
        reductions=HINGE,
    ),
    Case(
        id="mined_triplet_margin-semi_hard",
        fn=lk.mined_triplet_margin,
        make_args=_batch_args(LABELS_WITH_SINGLETON, d=4, margin=0.5, miner="semi_hard"),
        reference=pml_mined_triplet_margin,
        reductions=HINGE,
        perfect=_perfect,
    ),
    Case(
        id="mined_triplet_margin-semi_hard-squared",
        fn=lk.mined_triplet_margin,
        make_args=_batch_args(LABELS, margin=0.8, miner="semi_hard", distance="squared_euclidean"),
        reference=pml_mined_triplet_margin,
        reductions=HINGE,
    ),
]
