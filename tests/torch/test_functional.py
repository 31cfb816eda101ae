"""losskit.torch's functions: the fused cross-entropy and linear cross-entropy autograd Functions
against PyTorch (float64, per-token upstream gradients for reduction="none"), in-place mode,
second and double backward, no_grad."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import losskit as lk
import losskit.torch as lt
from losskit.torch import functional


@pytest.fixture(autouse=True)
def _no_numba(monkeypatch):
    monkeypatch.setenv("LOSSKIT_DISABLE_NUMBA", "1")


def _upstream(reduction, shape, dtype=torch.float64):
    gen = torch.Generator().manual_seed(1)
    return torch.rand(shape, generator=gen, dtype=dtype) + 0.5 if reduction == "none" else torch.tensor(2.5)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("device_path", ["numpy", "portable"])
def test_cross_entropy_matches_torch(reduction, device_path, monkeypatch):
    if device_path == "portable":  # the path other devices and dtypes take
        monkeypatch.setattr(lt.functional, "_numpy_ok", lambda *a: False)
    torch.manual_seed(0)
    x = torch.randn(6, 5, 4, dtype=torch.float64, requires_grad=True)  # classes on axis 1
    t = torch.randint(0, 5, (6, 4))
    t[0, 0] = -100
    w = torch.rand(5, dtype=torch.float64) + 0.1
    up = _upstream(reduction, (6, 4))
    ours = lt.cross_entropy(x, t, w, axis=1, reduction=reduction, label_smoothing=0.1)
    (ours * up).sum().backward()
    g = x.grad.clone()
    x.grad = None
    ref = F.cross_entropy(x, t, w, reduction=reduction, label_smoothing=0.1)
    (ref * up).sum().backward()
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(g, x.grad, rtol=1e-12, atol=1e-14)


def test_cross_entropy_every_option_matches_losskit():
    torch.manual_seed(0)
    x = torch.randn(9, 7, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 7, (9,))
    where = torch.rand(9) > 0.3
    kw = dict(label_smoothing=0.2, temperature=0.8, z_loss=1e-2, where=where, normalizer=5.0)
    ours = lt.cross_entropy(x, t, **kw)
    ours.backward()
    v, g = lk.value_and_grad(lk.cross_entropy)(
        x.detach().numpy(), t.numpy(), **{**kw, "where": where.numpy()}
    )
    assert ours.item() == pytest.approx(float(v), rel=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), g, rtol=1e-12, atol=1e-15)


def test_cross_entropy_float32_and_low_precision():
    torch.manual_seed(0)
    x64 = torch.randn(16, 50, dtype=torch.float64)
    t = torch.randint(0, 50, (16,))
    ref = F.cross_entropy(x64, t)
    x32 = x64.float().requires_grad_()
    loss = lt.cross_entropy(x32, t)
    loss.backward()
    assert loss.dtype == torch.float32 and x32.grad.dtype == torch.float32
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    xb = x64.to(torch.bfloat16).requires_grad_()
    lb = lt.cross_entropy(xb, t)
    lb.backward()
    assert lb.dtype == torch.bfloat16 and xb.grad.dtype == torch.bfloat16
    assert lb.item() == pytest.approx(ref.item(), rel=2e-2)


def test_inplace_overwrites_logits_with_the_gradient():
    torch.manual_seed(0)
    h = torch.randn(8, 12, requires_grad=True)
    w = torch.randn(30, 12, requires_grad=True)
    t = torch.randint(0, 30, (8,))
    logits = h @ w.T  # mm saves h and w, not its output: in place is safe here
    loss = lt.cross_entropy(logits, t, inplace=True)
    loss.backward()
    gh, gw = h.grad.clone(), w.grad.clone()
    h.grad = w.grad = None
    F.cross_entropy(h @ w.T, t).backward()
    torch.testing.assert_close(gh, h.grad, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(gw, w.grad, rtol=1e-5, atol=1e-7)
    # a saved use of the logits now fails loudly instead of reading a gradient
    x = torch.randn(4, 6, requires_grad=True)
    y = torch.sigmoid(x)  # sigmoid saves its output
    loss = lt.cross_entropy(y, torch.tensor([0, 1, 2, 3]), inplace=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        (loss + y.sum()).backward()


def test_second_backward_recomputes_the_gradient():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0, 1, 2])
    loss = lt.cross_entropy(x, t, label_smoothing=0.1)
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    loss.backward()  # the saved buffer was handed over: recomputed from the logits
    (expected,) = torch.autograd.grad(F.cross_entropy(x, t, label_smoothing=0.1), x)
    torch.testing.assert_close(first, expected)
    torch.testing.assert_close(x.grad, 2 * expected)


def test_second_backward_after_inplace_is_refused_not_wrong():
    x = torch.randn(3, 4)
    h = x.clone().requires_grad_(True)
    loss = lt.cross_entropy(h * 1.0, torch.tensor([0, 1, 2]), inplace=True)
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="already used by an earlier backward"):
        loss.backward()


def test_double_backward_matches_torch():
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0, 1, 2, 4])
    v = torch.randn(4, 5, dtype=torch.float64)
    hvp = []
    for fn in (lt.cross_entropy, F.cross_entropy):
        (g,) = torch.autograd.grad(fn(x, t, reduction="sum"), x, create_graph=True)
        hvp.append(torch.autograd.grad((g * v).sum(), x)[0])
    torch.testing.assert_close(hvp[0], hvp[1])


def test_no_grad_forward_keeps_no_buffer():
    x = torch.randn(3, 4)
    with torch.no_grad():
        loss = lt.cross_entropy(x, torch.tensor([0, 1, 2]))
    assert loss.item() == pytest.approx(F.cross_entropy(x, torch.tensor([0, 1, 2])).item(), rel=1e-6)
    assert loss.grad_fn is None


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("device_path", ["numpy", "portable"])
def test_linear_cross_entropy_matches_naive(reduction, device_path, monkeypatch):
    if device_path == "portable":
        monkeypatch.setattr(lt.functional, "_numpy_ok", lambda *a: False)
    torch.manual_seed(0)
    x = torch.randn(3, 7, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(13, 6, dtype=torch.float64, requires_grad=True)
    b = torch.randn(13, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 13, (3, 7))
    t[1, 2] = -100
    up = _upstream(reduction, (3, 7))
    opts = {"reduction": reduction, "chunk_size": 4, "label_smoothing": 0.1}
    ours = lt.linear_cross_entropy(x, w, t, linear_bias=b, **opts)
    (ours * up).sum().backward()
    got = [a.grad.clone() for a in (x, w, b)]
    for a in (x, w, b):
        a.grad = None
    ref = F.cross_entropy(F.linear(x, w, b).transpose(1, 2), t, reduction=reduction, label_smoothing=0.1)
    (ref * up).sum().backward()
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-13)
    for g, a in zip(got, (x, w, b)):
        torch.testing.assert_close(g, a.grad, rtol=1e-11, atol=1e-13)


def test_linear_cross_entropy_against_torch_peer_and_all_ignored():
    torch.manual_seed(0)
    x = torch.randn(20, 8, requires_grad=True)
    w = torch.randn(40, 8, requires_grad=True)
    t = torch.randint(0, 40, (20,))
    ours = lt.linear_cross_entropy(x, w, t, z_loss=0.0)
    peer = F.linear_cross_entropy(x, w, t)
    assert ours.item() == pytest.approx(peer.item(), rel=1e-5)
    loss = lt.linear_cross_entropy(x, w, torch.full((20,), -100))
    loss.backward()
    assert loss.item() == 0 and torch.all(x.grad == 0) and torch.all(w.grad == 0)


# -- the fast paths behind losskit's losses on torch tensors ---------------------------------


@pytest.fixture
def applied(monkeypatch):
    """Names of the Functions applied during a test."""
    seen = []
    for cls in (functional.CrossEntropyFunction, functional.LinearCrossEntropyFunction):
        real = cls.apply

        def spy(*args, _real=real, _name=cls.__name__):
            seen.append(_name)
            return _real(*args)

        monkeypatch.setattr(cls, "apply", spy)
    return seen


def test_linear_cross_entropy_with_autograd_runs_the_function(applied, rng):
    x = torch.tensor(rng.standard_normal((2, 5, 4)), requires_grad=True)
    w = torch.tensor(rng.standard_normal((7, 4)), requires_grad=True)
    t = torch.tensor(rng.integers(0, 7, (2, 5)))
    loss = lk.linear_cross_entropy(x, w, t, label_smoothing=0.1, chunk_size=3)
    loss.backward()
    assert applied == ["LinearCrossEntropyFunction"]
    xr, wr = x.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    ref = F.cross_entropy(F.linear(xr, wr).transpose(1, 2), t, label_smoothing=0.1)
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-12)
    np.testing.assert_allclose(x.grad, xr.grad, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(w.grad, wr.grad, rtol=1e-10, atol=1e-14)


def test_cross_entropy_with_autograd_runs_the_function(applied, rng):
    x = torch.tensor(rng.standard_normal((6, 5)), requires_grad=True)
    t = torch.tensor(rng.integers(0, 5, 6))
    lk.cross_entropy(x, t).backward()
    assert applied == ["CrossEntropyFunction"]


def test_without_autograd_the_portable_code_runs(applied, rng):
    x = torch.tensor(rng.standard_normal((6, 5)), requires_grad=True)
    w = torch.tensor(rng.standard_normal((3, 5)))
    t = torch.tensor(rng.integers(0, 3, 6))
    with torch.no_grad():
        lk.cross_entropy(x, t % 5)
        lk.linear_cross_entropy(x, w, t)
    lk.cross_entropy(x.detach(), t % 5)
    lk.value_and_grad(lk.cross_entropy)(x.detach(), t % 5)  # losskit's own gradient: portable
    lk.value_and_grad(lk.linear_cross_entropy, (0, 1))(x.detach(), w, t)
    # a class weight that needs a gradient: the Function would treat it as a constant
    lk.cross_entropy(x, t % 5, torch.ones(5, dtype=torch.float64, requires_grad=True))
    assert applied == []
