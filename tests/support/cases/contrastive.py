"""Cases for the contrastive losses: PyTorch for its own losses, Optax for ``cosine_distance``
and ``ntxent``, plain PyTorch re-implementations of the papers' formulas (which also give
autograd gradients) for InfoNCE, SupCon and Circle loss."""

from __future__ import annotations

import numpy as np

import losskit as lk

from . import Case


def _F():
    import torch.nn.functional as F

    return F


def _reduce(per, r):
    return per.mean() if r == "mean" else per.sum() if r == "sum" else per


# -- triplets and pairs --------------------------------------------------------------------------


def _triplet_args(shape=(5, 4), **options):
    def make(rng):
        return tuple(rng.normal(size=shape) for _ in range(3)), dict(options)

    return make


def _triplet_perfect(rng):
    a = rng.normal(size=(4, 3))
    return (a, a.copy(), a + 10.0), {}


def _torch_triplet(a, k, r):
    return _F().triplet_margin_loss(*a, reduction=r, **k)


def _torch_triplet_with_distance(a, k, r):
    return _F().triplet_margin_with_distance_loss(*a, reduction=r, **k)


def _triplet(id, **options):
    return Case(
        id=id,
        fn=lk.triplet_margin,
        make_args=_triplet_args(**options),
        reference=_torch_triplet,
        grad_argnums=(0, 1, 2),
        perfect=_triplet_perfect,
    )


def _cosine_embedding_args(shape=(6, 4), margin=None):
    def make(rng):
        x1, x2 = rng.normal(size=shape), rng.normal(size=shape)
        y = np.where(rng.uniform(size=shape[:-1]) < 0.5, 1.0, -1.0)
        return (x1, x2, y), ({} if margin is None else {"margin": margin})

    return make


def _cosine_embedding_perfect(rng):
    x1 = rng.normal(size=(6, 3))
    x1 = 5.0 * x1 / np.linalg.norm(x1, axis=1, keepdims=True)  # norms far above the 1e-12
    y = np.array([1.0, -1.0] * 3)
    x2 = np.where(y[:, None] > 0, 2.0 * x1, -x1)
    return (x1, x2, y), {}


def _cosine_distance_args(shape=(5, 4), masked=False, **options):
    def make(rng):
        kwargs = dict(options)
        if masked:
            where = rng.uniform(size=shape) < 0.7
            where[0] = False  # a vector with nothing left does not count
            kwargs["where"] = where
        return (rng.normal(size=shape), rng.normal(size=shape)), kwargs

    return make


def _cosine_distance_perfect(rng):
    x = rng.normal(size=(4, 3))
    return (x, 3.0 * x), {}


def _optax_cosine_distance(a, k, r):
    import jax.numpy as jnp
    import optax

    per = optax.losses.cosine_distance(*a, **k)
    where = k.get("where")
    if where is not None:  # losskit leaves fully masked vectors out; Optax scores them 1
        counted = jnp.any(jnp.broadcast_to(where, a[0].shape), axis=k.get("axis", -1))
        per = jnp.where(counted, per, 0.0)
        if r == "mean":
            return per.sum() / counted.sum()
    return _reduce(per, r)


# -- InfoNCE -------------------------------------------------------------------------------------


def _info_nce_args(n=5, d=4, m=None, paired=False, **options):
    def make(rng):
        args = [rng.normal(size=(n, d)), rng.normal(size=(n, d))]
        kwargs = dict(options)
        if m is not None:
            args.append(rng.normal(size=(n, m, d) if paired else (m, d)))
            if paired:
                kwargs["negative_mode"] = "paired"
        return tuple(args), kwargs

    return make


def torch_info_nce(a, k, r):
    """InfoNCE as the paper writes it, with PyTorch (the info-nce-pytorch formulation)."""
    import torch

    F = _F()
    q, pk = a[0], a[1]
    nk = a[2] if len(a) > 2 else k.get("negative_keys")
    temperature = k.get("temperature", 0.1)
    if k.get("normalize", True):
        q, pk = F.normalize(q, dim=-1), F.normalize(pk, dim=-1)
        nk = None if nk is None else F.normalize(nk, dim=-1)
    if nk is None:
        logits = q @ pk.T
        labels = torch.arange(q.shape[0])
    else:
        pos = (q * pk).sum(dim=1, keepdim=True)
        if k.get("negative_mode", "unpaired") == "paired":
            neg = (q.unsqueeze(1) @ nk.transpose(-2, -1)).squeeze(1)
        else:
            neg = q @ nk.T
        logits = torch.cat([pos, neg], dim=1)
        labels = torch.zeros(q.shape[0], dtype=torch.long)
    return F.cross_entropy(logits / temperature, labels, reduction=r)


# -- batch losses ----------------------------------------------------------------------------------


def _batch_args(labels, d=3, **options):
    labels = np.asarray(labels)

    def make(rng):
        return (rng.normal(size=(labels.size, d)), labels.copy()), dict(options)

    return make


LABELS = [0, 1, 0, 2, 1, 2, 0, 1]
LABELS_WITH_SINGLETON = [0, 1, 0, 2, 1, 3, 0, 1]  # labels 2 and 3 have no positive


def _optax_ntxent(a, k, r):
    import jax
    import jax.numpy as jnp
    import optax

    embeddings, labels = a
    mean = jax.jit(optax.losses.ntxent)(embeddings, labels, **k)  # jit: eager JAX is slow
    if r == "mean":
        return mean
    same = labels[:, None] == labels[None, :]
    pairs = jnp.sum(same) - labels.shape[0]
    return mean * pairs  # "sum": the mean over positive pairs times their number


def torch_ntxent_pairs(a, k, r):
    """NT-Xent per positive pair, from its formula, with PyTorch."""
    import torch

    e, labels = a
    t = k.get("temperature", 0.07)
    eps = torch.finfo(e.dtype).eps
    u = e / torch.sqrt(torch.clamp((e * e).sum(1, keepdim=True), min=eps))
    s = u @ u.T / t
    n = labels.shape[0]
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(n, dtype=torch.bool)
    negatives = torch.logsumexp(s.masked_fill(same, -torch.inf), dim=1, keepdim=True)
    per = torch.where(positive, torch.nn.functional.softplus(negatives - s), torch.zeros_like(s))
    if r == "mean":
        return per.sum() / positive.sum()
    return per.sum() if r == "sum" else per


def torch_supcon(a, k, r):
    """Khosla et al.'s L_out with PyTorch; anchors without a positive are left out."""
    import torch

    F = _F()
    z, labels = a
    if k.get("normalize", True):
        z = F.normalize(z, dim=1)
    n = labels.shape[0]
    eye = torch.eye(n, dtype=torch.bool)
    s = (z @ z.T / k.get("temperature", 0.1)).masked_fill(eye, -torch.inf)
    log_p = s - torch.logsumexp(s, dim=1, keepdim=True)
    positive = (labels[:, None] == labels[None, :]) & ~eye
    count = positive.sum(1)
    has = count > 0
    per = -log_p.masked_fill(~positive, 0.0).sum(1) / count.clamp(min=1)
    per = torch.where(has, per, torch.zeros_like(per))
    if r == "mean":
        return per.sum() / has.sum()
    return per.sum() if r == "sum" else per


def torch_circle(a, k, r):
    """Circle loss per anchor (Sun et al. 2020) with PyTorch, alpha detached or not."""
    import torch

    F = _F()
    e, labels = a
    m, gamma = k.get("m", 0.25), k.get("gamma", 256.0)
    u = F.normalize(e, dim=1)
    s = u @ u.T
    n = labels.shape[0]
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(n, dtype=torch.bool)
    negative = ~same
    w = s.detach() if k.get("detach_weights", True) else s
    alpha_p = torch.clamp_min(1 + m - w, 0.0)
    alpha_n = torch.clamp_min(w + m, 0.0)
    logit_p = (-gamma * alpha_p * (s - (1 - m))).masked_fill(~positive, -torch.inf)
    logit_n = (gamma * alpha_n * (s - m)).masked_fill(~negative, -torch.inf)
    per = F.softplus(torch.logsumexp(logit_p, dim=1) + torch.logsumexp(logit_n, dim=1))
    return per.mean() if r == "mean" else per.sum() if r == "sum" else per


CASES = [
    _triplet("triplet_margin"),
    _triplet("triplet_margin-p1-margin", p=1, margin=0.5),
    _triplet("triplet_margin-p3-swap", p=3, swap=True),
    _triplet("triplet_margin-pinf-eps", p=float("inf"), eps=1e-3),
    Case(
        id="triplet_margin-1d",
        fn=lk.triplet_margin,
        make_args=_triplet_args(shape=(5,), margin=3.0),
        reference=_torch_triplet,
        grad_argnums=(0, 1, 2),
    ),
    Case(
        id="triplet_margin_with_distance",
        fn=lk.triplet_margin_with_distance,
        make_args=_triplet_args(margin=1.5),
        reference=_torch_triplet_with_distance,
        grad_argnums=(0, 1, 2),
        perfect=_triplet_perfect,
    ),
    Case(
        id="triplet_margin_with_distance-swap",
        fn=lk.triplet_margin_with_distance,
        make_args=_triplet_args(swap=True, margin=2.0),
        reference=_torch_triplet_with_distance,
        grad_argnums=(0, 1, 2),
    ),
    Case(
        id="cosine_embedding",
        fn=lk.cosine_embedding,
        make_args=_cosine_embedding_args(),
        reference=lambda a, k, r: _F().cosine_embedding_loss(*a, reduction=r, **k),
        grad_argnums=(0, 1),
        perfect=_cosine_embedding_perfect,
        zero_grad_at_perfect=False,  # exact up to the 1e-12 in the norms
    ),
    Case(
        id="cosine_embedding-margin-1d",
        fn=lk.cosine_embedding,
        make_args=_cosine_embedding_args(shape=(4,), margin=-0.3),
        reference=lambda a, k, r: _F().cosine_embedding_loss(*a, reduction=r, **k),
        grad_argnums=(0, 1),
    ),
    Case(
        id="cosine_embedding-margin",
        fn=lk.cosine_embedding,
        make_args=_cosine_embedding_args(shape=(8, 3), margin=-0.4),
        reference=lambda a, k, r: _F().cosine_embedding_loss(*a, reduction=r, **k),
        grad_argnums=(0, 1),
    ),
    Case(
        id="cosine_distance",
        fn=lk.cosine_distance,
        make_args=_cosine_distance_args(),
        optax_reference=_optax_cosine_distance,
        grad_argnums=(0, 1),
        perfect=_cosine_distance_perfect,
    ),
    Case(
        id="cosine_distance-epsilon-axis0-where",
        fn=lk.cosine_distance,
        make_args=_cosine_distance_args(shape=(4, 3, 2), masked=True, epsilon=0.5, axis=0),
        optax_reference=_optax_cosine_distance,
        grad_argnums=(0, 1),
    ),
    Case(
        id="info_nce-in_batch",
        fn=lk.info_nce,
        make_args=_info_nce_args(),
        reference=torch_info_nce,
        grad_argnums=(0, 1),
    ),
    Case(
        id="info_nce-unpaired-temperature",
        fn=lk.info_nce,
        make_args=_info_nce_args(m=3, temperature=0.5),
        reference=torch_info_nce,
        grad_argnums=(0, 1, 2),
    ),
    Case(
        id="info_nce-paired",
        fn=lk.info_nce,
        make_args=_info_nce_args(m=3, paired=True, temperature=0.3),
        reference=torch_info_nce,
        grad_argnums=(0, 1, 2),
    ),
    Case(
        id="info_nce-dot-product",
        fn=lk.info_nce,
        make_args=_info_nce_args(m=4, normalize=False, temperature=2.0),
        reference=torch_info_nce,
        grad_argnums=(0, 1, 2),
    ),
    Case(
        id="info_nce-in_batch-dot-product",
        fn=lk.info_nce,
        make_args=_info_nce_args(n=4, normalize=False, temperature=1.5),
        reference=torch_info_nce,
        grad_argnums=(0, 1),
    ),
    Case(
        id="ntxent",
        fn=lk.ntxent,
        make_args=_batch_args(LABELS),
        optax_reference=_optax_ntxent,
        reductions=("mean", "sum"),
    ),
    Case(
        id="ntxent-temperature",
        fn=lk.ntxent,
        make_args=_batch_args([3, 3, 3, 5, 5, 7, 7], d=4, temperature=0.5),
        optax_reference=_optax_ntxent,
        reductions=("mean", "sum"),
    ),
    Case(
        id="ntxent-pairs",
        fn=lk.ntxent,
        make_args=_batch_args(LABELS_WITH_SINGLETON, temperature=0.2),
        reference=torch_ntxent_pairs,
    ),
    Case(
        id="supcon",
        fn=lk.supcon,
        make_args=_batch_args(LABELS),
        reference=torch_supcon,
    ),
    Case(
        id="supcon-temperature-unnormalized",
        fn=lk.supcon,
        make_args=_batch_args(LABELS, d=4, temperature=0.7, normalize=False),
        reference=torch_supcon,
    ),
    Case(
        id="supcon-exclude",
        fn=lk.supcon,
        make_args=_batch_args(LABELS_WITH_SINGLETON, temperature=0.3, no_positive="exclude"),
        reference=torch_supcon,
    ),
    Case(
        id="circle-full-gradient",
        fn=lk.circle,
        make_args=_batch_args(LABELS, m=0.25, gamma=8.0, detach_weights=False),
        reference=torch_circle,
    ),
    Case(
        id="circle-full-gradient-m",
        fn=lk.circle,
        make_args=_batch_args([0, 0, 1, 1, 1, 2, 2], d=4, m=0.4, gamma=16.0, detach_weights=False),
        reference=torch_circle,
        fd_eps=1e-7,
    ),
]
