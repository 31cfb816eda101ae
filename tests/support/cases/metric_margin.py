"""Cases for the angular-margin softmax and proxy losses, against pytorch-metric-learning in
float64: its loss with the class matrix (``W``, laid out ``(D, C)``, or ``proxies``) replaced by
the case's own tensor, so that autograd reaches it too.  PML has no ``where=`` and reduces with
its own reducer; the references take its per-element losses (``DoNothingReducer``) and apply the
mask and the reduction, or (Proxy-Anchor) call it on the kept samples."""

from __future__ import annotations

import math

import numpy as np

import losskit as lk

from . import Case


def _margin_args(n=7, d=6, c=5, masked=False, obtuse=False, **options):
    def make(rng):
        x = rng.normal(size=(n, d))
        w = rng.normal(size=(c, d))
        y = rng.integers(0, c, size=n)
        if obtuse:  # half the samples near the opposite of their class: ArcFace's second branch
            unit = w[y] / np.linalg.norm(w[y], axis=1, keepdims=True)
            far = -2.0 * unit + 0.2 * rng.normal(size=(n, d))
            x = np.where((np.arange(n) % 2 == 0)[:, None], far, x)
        kwargs = dict(options)
        if masked:
            where = rng.uniform(size=n) < 0.6
            where[0], where[1] = False, True
            kwargs["where"] = where
        return (x, y, w), kwargs

    return make


def _pml_losses(cls, key, a, k, **init):
    """PML's per-element losses (its loss dict) with the class matrix set to ours."""
    import torch
    from pytorch_metric_learning.reducers import DoNothingReducer

    x, y, w = a
    loss = cls(num_classes=w.shape[0], embedding_size=w.shape[1], reducer=DoNothingReducer(), **init)
    return torch.func.functional_call(loss, {key: w.T if key == "W" else w}, (x, y))


def _masked_reduce(per, where, r):
    import torch

    if where is not None:
        per = torch.where(where, per, torch.zeros_like(per))
        if r == "mean":
            count = where.sum()
            return per.sum() / count if count > 0 else per.sum() * 0.0
    return per.mean() if r == "mean" else per.sum() if r == "sum" else per


def torch_arcface(a, k, r):
    from pytorch_metric_learning.losses import ArcFaceLoss

    margin = math.degrees(k.get("margin", 0.5))  # PML's margin is in degrees
    out = _pml_losses(ArcFaceLoss, "W", a, k, margin=margin, scale=k.get("scale", 64.0))
    return _masked_reduce(out["loss"]["losses"], k.get("where"), r)


def torch_cosface(a, k, r):
    from pytorch_metric_learning.losses import CosFaceLoss

    out = _pml_losses(CosFaceLoss, "W", a, k, margin=k.get("margin", 0.35), scale=k.get("scale", 64.0))
    return _masked_reduce(out["loss"]["losses"], k.get("where"), r)


def torch_sphereface(a, k, r):
    from pytorch_metric_learning.losses import SphereFaceLoss

    out = _pml_losses(SphereFaceLoss, "W", a, k, margin=k.get("margin", 4), scale=k.get("scale", 1.0))
    return _masked_reduce(out["loss"]["losses"], k.get("where"), r)


def torch_proxy_nca(a, k, r):
    from pytorch_metric_learning.losses import ProxyNCALoss

    out = _pml_losses(ProxyNCALoss, "proxies", a, k, softmax_scale=k.get("softmax_scale", 1.0))
    per = out["loss"]["losses"]
    assert per.shape == a[1].shape, "a probability underflowed in PML's reference"
    return _masked_reduce(per, k.get("where"), r)


def torch_proxy_anchor(a, k, r):
    from pytorch_metric_learning.losses import ProxyAnchorLoss

    x, y, w = a
    where = k.get("where")
    if where is not None:  # a masked sample takes no part: PML on the kept ones
        x, y = x[where], y[where]
    init = {"margin": k.get("margin", 0.1), "alpha": k.get("alpha", 32.0)}
    if r == "mean":
        import torch

        loss = ProxyAnchorLoss(num_classes=w.shape[0], embedding_size=w.shape[1], **init)
        return torch.func.functional_call(loss, {"proxies": w}, (x, y))
    out = _pml_losses(ProxyAnchorLoss, "proxies", (x, y, w), k, **init)
    per = out["pos_loss"]["losses"] + out["neg_loss"]["losses"]
    return per if r == "none" else per.sum()


def _case(id, fn, reference, **args):
    return Case(id=id, fn=fn, make_args=_margin_args(**args), reference=reference, grad_argnums=(0, 2))


CASES = [
    _case("arcface", lk.arcface, torch_arcface),
    _case("arcface-margin-scale-where", lk.arcface, torch_arcface, masked=True, margin=0.3, scale=10.0),
    _case("arcface-obtuse-angles", lk.arcface, torch_arcface, n=8, obtuse=True, margin=0.4, scale=8.0),
    _case("cosface", lk.cosface, torch_cosface),
    _case("cosface-margin-scale-where", lk.cosface, torch_cosface, masked=True, margin=0.2, scale=16.0),
    _case("sphereface", lk.sphereface, torch_sphereface),
    _case("sphereface-m3-scale-where", lk.sphereface, torch_sphereface, masked=True, margin=3, scale=2.0),
    _case("sphereface-m1", lk.sphereface, torch_sphereface, margin=1),
    _case("proxy_nca", lk.proxy_nca, torch_proxy_nca),
    _case("proxy_nca-scale-where", lk.proxy_nca, torch_proxy_nca, masked=True, softmax_scale=9.0),
    _case("proxy_anchor", lk.proxy_anchor, torch_proxy_anchor, n=10, c=4),
    _case(
        "proxy_anchor-margin-alpha-where",
        lk.proxy_anchor,
        torch_proxy_anchor,
        n=10,
        c=6,
        masked=True,
        margin=0.2,
        alpha=16.0,
    ),
]
