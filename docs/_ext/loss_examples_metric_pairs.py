"""Worked examples for the pair and mined-triplet metric losses (``losskit.losses.metric_pairs``)."""

from __future__ import annotations

EXAMPLES: dict[str, str] = {
    "contrastive_pairs": """\
embeddings = np.array([[1.0, 0.1], [0.9, 0.3], [0.2, 1.0], [-0.1, 0.8]])
labels = np.array([0, 0, 1, 1])
print(round(float(lk.contrastive_pairs(embeddings, labels)), 4))
# pytorch-metric-learning's ContrastiveLoss default: non-zero pair terms only
print(round(float(lk.contrastive_pairs(embeddings, labels, reduction="avg_nonzero")), 4))
""",
    "multi_similarity": """\
embeddings = np.array([[1.0, 0.1], [0.9, 0.3], [0.2, 1.0], [-0.1, 0.8]])
labels = np.array([0, 0, 1, 1])
print(round(float(lk.multi_similarity(embeddings, labels, alpha=2.0, beta=50.0, base=0.5)), 4))
""",
    "lifted_structure": """\
embeddings = np.array([[1.0, 0.1], [0.9, 0.3], [0.2, 1.0], [-0.1, 0.8]])
labels = np.array([0, 0, 1, 1])
print(round(float(lk.lifted_structure(embeddings, labels, margin=1.0)), 4))
""",
    "n_pair": """\
embeddings = np.array([[1.0, 0.1], [0.9, 0.3], [0.2, 1.0], [-0.1, 0.8]])
labels = np.array([0, 0, 1, 1])
print(round(float(lk.n_pair(embeddings, labels)), 4))
""",
    "mined_triplet_margin": """\
rng = np.random.default_rng(0)
embeddings = rng.normal(size=(8, 4))
labels = np.array([0, 0, 1, 1, 2, 2, 3, 3])
anchor, positive, negative = lk.batch_hard_triplets(embeddings, labels)
print(anchor, positive, negative)
print(round(float(lk.mined_triplet_margin(embeddings, labels, margin=0.2, miner="batch_hard")), 4))
print(round(float(lk.mined_triplet_margin(embeddings, labels, margin=0.2, miner="semi_hard")), 4))
""",
}
