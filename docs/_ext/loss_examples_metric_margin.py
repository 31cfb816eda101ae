"""Worked examples of the angular-margin softmax and proxy losses (merged into
:mod:`loss_examples`)."""

from __future__ import annotations

EXAMPLES: dict[str, str] = {
    "arcface": """\
rng = np.random.default_rng(0)
embeddings = rng.normal(size=(4, 3))  # (N, D)
weight = rng.normal(size=(2, 3))  # (C, D): one row per class
labels = np.array([0, 1, 1, 0])
print(round(float(lk.arcface(embeddings, labels, weight, margin=0.5, scale=16.0)), 4))
""",
    "cosface": """\
rng = np.random.default_rng(0)
embeddings = rng.normal(size=(4, 3))
weight = rng.normal(size=(2, 3))
labels = np.array([0, 1, 1, 0])
print(round(float(lk.cosface(embeddings, labels, weight, margin=0.35, scale=16.0)), 4))
""",
    "sphereface": """\
rng = np.random.default_rng(0)
embeddings = rng.normal(size=(4, 3))  # their norms scale the logits
weight = rng.normal(size=(2, 3))
labels = np.array([0, 1, 1, 0])
print(round(float(lk.sphereface(embeddings, labels, weight, margin=4)), 4))
""",
    "proxy_nca": """\
rng = np.random.default_rng(0)
embeddings = rng.normal(size=(4, 3))
proxies = rng.normal(size=(2, 3))  # one learnable proxy per class
labels = np.array([0, 1, 1, 0])
print(round(float(lk.proxy_nca(embeddings, labels, proxies, softmax_scale=9.0)), 4))
""",
    "proxy_anchor": """\
rng = np.random.default_rng(0)
embeddings = rng.normal(size=(4, 3))
proxies = rng.normal(size=(2, 3))
labels = np.array([0, 1, 1, 0])
print(lk.proxy_anchor(embeddings, labels, proxies, reduction="none").round(4))  # per proxy
print(round(float(lk.proxy_anchor(embeddings, labels, proxies)), 4))
""",
}
