"""losskit.linear_cross_entropy: the value and the input/weight/bias gradients of
cross_entropy(x W^T + b, t) without the logits, on NumPy (fast path) and any array-API
library, against PyTorch in float64."""

from __future__ import annotations

import array_api_strict as xps
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import losskit as lk
from losskit.core.specs import auto_chunk_size


@pytest.fixture(autouse=True)
def _no_numba(monkeypatch):
    monkeypatch.setenv("LOSSKIT_DISABLE_NUMBA", "1")


def _data(rng, n=23, d=6, v=17, lead=None):
    x = rng.standard_normal((n, d) if lead is None else (*lead, d))
    w = rng.standard_normal((v, d)) * 0.7
    b = rng.standard_normal(v)
    t = rng.integers(0, v, x.shape[:-1])
    t.reshape(-1)[[1, 4]] = -100
    return x, w, b, t


def _torch_reference(x, w, t, b=None, *, label_smoothing=0.0, z_loss=0.0, softcap=None, reduction="mean",
                     upstream=None):  # fmt: skip
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    tt = torch.tensor(t)
    z = F.linear(xt, wt, bt)
    if softcap is not None:
        z = softcap * torch.tanh(z / softcap)
    z2 = z.reshape(-1, z.shape[-1])
    loss = F.cross_entropy(z2, tt.reshape(-1), reduction="none", label_smoothing=label_smoothing)
    valid = (tt.reshape(-1) != -100).to(z.dtype)
    loss = loss + z_loss * torch.logsumexp(z2, -1) ** 2 * valid
    if reduction == "mean":
        value = loss.sum() / valid.sum() if valid.sum() > 0 else loss.sum() * 0
    elif reduction == "sum":
        value = loss.sum()
    else:
        value = loss.reshape(tt.shape)
    total = value.sum() if upstream is None else (value * torch.tensor(upstream)).sum()
    total.backward()
    grads = [xt.grad.numpy(), wt.grad.numpy()] + ([] if bt is None else [bt.grad.numpy()])
    return value.detach().numpy(), grads


OPTIONS = [
    {},
    {"label_smoothing": 0.1},
    {"z_loss": 1e-2},
    {"softcap": 2.0},
    {"label_smoothing": 0.2, "z_loss": 1e-3, "softcap": 1.5},
]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(o) or "plain")
@pytest.mark.parametrize("chunk_size", [1, 5, "auto", 1000])
def test_matches_torch_float64(rng, reduction, opts, chunk_size):
    x, w, b, t = _data(rng)
    ref_v, ref_g = _torch_reference(x, w, t, b, reduction=reduction, **opts)
    vg = lk.value_and_grad(lk.linear_cross_entropy, argnums=(0, 1, 3))
    v, grads = vg(x, w, t, b, reduction=reduction, chunk_size=chunk_size, **opts)
    np.testing.assert_allclose(v, ref_v, rtol=1e-11, atol=1e-13)
    for g, r in zip(grads, ref_g):
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-13)


def test_argnums_0_1_returns_input_and_weight_gradients(rng):
    x, w, _, t = _data(rng, lead=(3, 5))  # (batch, time, D) input
    loss, (gx, gw) = lk.value_and_grad(lk.linear_cross_entropy, argnums=(0, 1))(x, w, t)
    ref_v, (rx, rw) = _torch_reference(x, w, t)
    assert gx.shape == x.shape and gw.shape == w.shape
    np.testing.assert_allclose(loss, ref_v, rtol=1e-12)
    np.testing.assert_allclose(gx, rx, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(gw, rw, rtol=1e-10, atol=1e-13)
    assert float(lk.linear_cross_entropy(x, w, t)) == pytest.approx(float(ref_v), rel=1e-12)
    # the bias by keyword, with its gradient as argnum 3
    _, gb = lk.value_and_grad(lk.linear_cross_entropy, argnums=3)(x, w, t, bias=np.zeros(w.shape[0]))
    assert gb.shape == (w.shape[0],)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_portable_path_matches_numpy_path(rng, reduction):
    x, w, b, t = _data(rng)
    vg = lk.value_and_grad(lk.linear_cross_entropy, argnums=(0, 1, 3))
    kw = dict(reduction=reduction, chunk_size=4, label_smoothing=0.1, z_loss=1e-3, softcap=3.0)
    v, grads = vg(x, w, t, b, **kw)
    for conv, back in (
        (xps.asarray, np.asarray),
        (torch.from_numpy, lambda a: a.numpy()),
    ):
        v2, grads2 = vg(conv(x), conv(w), conv(t), conv(b), **kw)
        np.testing.assert_allclose(back(v2), v, rtol=1e-12, atol=1e-14)
        for g, g2 in zip(grads, grads2):
            np.testing.assert_allclose(back(g2), g, rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_every_token_ignored(rng, reduction):
    x, w, b, _ = _data(rng)
    t = np.full(x.shape[0], -100)
    v, grads = lk.value_and_grad(lk.linear_cross_entropy, argnums=(0, 1, 3))(x, w, t, b, reduction=reduction)
    assert np.all(np.asarray(v) == 0)
    assert all(np.all(g == 0) for g in grads)


def test_float32_within_1e5_of_float64(rng):
    x, w, b, t = _data(rng, n=200, d=32, v=500)
    kw = dict(label_smoothing=0.1, z_loss=1e-4, chunk_size=64)
    vg = lk.value_and_grad(lk.linear_cross_entropy, argnums=(0, 1, 3))
    v64, g64 = vg(x, w, t, b, **kw)
    v32, g32 = vg(x.astype(np.float32), w.astype(np.float32), t, b.astype(np.float32), **kw)
    assert np.asarray(v32).dtype == np.float32
    np.testing.assert_allclose(v32, v64, rtol=1e-5)
    for a, r in zip(g32, g64):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-6 * np.abs(r).max())


def test_matches_torch_linear_cross_entropy(rng):
    x, w, b, t = _data(rng)
    peer = F.linear_cross_entropy(
        torch.tensor(x), torch.tensor(w), torch.tensor(t), linear_bias=torch.tensor(b), label_smoothing=0.1
    )
    ours = lk.linear_cross_entropy(x, w, t, bias=b, label_smoothing=0.1)
    assert float(ours) == pytest.approx(peer.item(), rel=1e-12)


def test_auto_chunk_size():
    assert auto_chunk_size(8192, 32000) == 512
    assert auto_chunk_size(8192, 128256) == 256
    assert auto_chunk_size(100, 1000) == 100
    assert auto_chunk_size(10**6, 10) == 10**6


def test_bad_arguments_name_themselves(rng):
    x, w, b, t = _data(rng)
    with pytest.raises(ValueError, match=r"weight must have shape \(num_classes, 6\)"):
        lk.linear_cross_entropy(x, w[:, :3], t)
    with pytest.raises(ValueError, match="weight must be 2-d"):
        lk.linear_cross_entropy(x, w[0], t)
    with pytest.raises(ValueError, match=r"bias must have shape \(17,\)"):
        lk.linear_cross_entropy(x, w, t, bias=b[:3])
    with pytest.raises(ValueError, match="target must have input's shape"):
        lk.linear_cross_entropy(x, w, t[:3])
    with pytest.raises(TypeError, match="target must hold integer class indices"):
        lk.linear_cross_entropy(x, w, t.astype(float))
    with pytest.raises(ValueError, match="chunk_size must be a positive int or 'auto'"):
        lk.linear_cross_entropy(x, w, t, chunk_size=0)
    with pytest.raises(ValueError, match="softcap must be in"):
        lk.linear_cross_entropy(x, w, t, softcap=0.0)
    with pytest.raises(ValueError, match="target holds class index 17"):
        lk.linear_cross_entropy(x, w, np.full_like(t, 17))
    with pytest.raises(ValueError, match="reduction must be one of"):
        lk.linear_cross_entropy(x, w, t, reduction="batchmean")
    with pytest.raises(TypeError, match="input must be a real floating-point array"):
        lk.linear_cross_entropy(x.astype(int), w, t)
