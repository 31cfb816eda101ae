"""The CPU chunk loops' matrix products on torch tensors (``losskit.torch.cpu_matmul``): NumPy's
BLAS or PyTorch's on the tensors' own memory for eager CPU tensors, torch's own otherwise; the
same products either way, and the log-probs loop's gradients unchanged by the choice."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import losskit.torch as lt  # noqa: E402
from losskit.torch.cpu_matmul import numpy_memory_ok, tensor_products  # noqa: E402


def test_numpy_memory_only_for_eager_concrete_cpu_float_tensors():
    x = torch.ones(3, 4)
    assert numpy_memory_ok(x, x.double(), None)
    assert not numpy_memory_ok(x.half())
    assert not numpy_memory_ok(torch.ones(3, 4, device="meta"))
    assert not numpy_memory_ok(torch.ones(3, 4).to_sparse())
    assert not numpy_memory_ok(torch.ones(3, 4, dtype=torch.complex64).conj())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_products_equal_torch_matmul(dtype, device):
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(9, 40, generator=gen, dtype=dtype).T  # a transposed view, as the loops pass
    b = torch.randn(9, 5, generator=gen, dtype=dtype)
    start = torch.randn(40, 5, generator=gen, dtype=dtype)
    a, b, start = a.to(device), b.to(device), start.to(device)
    matmul, matmul_add = tensor_products(a, b)
    for _ in range(3):
        out = torch.empty(40, 5, dtype=dtype, device=device)
        matmul(a, b, out)
        acc = start.clone()
        matmul_add(a, b, acc)
        if device == "cpu":
            tol = 1e-5 if dtype == torch.float32 else 1e-12
            torch.testing.assert_close(out, a @ b, rtol=tol, atol=tol)
            torch.testing.assert_close(acc, start + a @ b, rtol=tol, atol=tol)
        else:
            assert out.shape == acc.shape == (40, 5)


def test_deterministic_algorithms_keep_to_torch_products():
    x = torch.ones(3, 4)
    torch.use_deterministic_algorithms(True)
    try:
        matmul, _ = tensor_products(x)
    finally:
        torch.use_deterministic_algorithms(False)
    out = torch.empty(3, 3)
    calls = []
    real = torch.matmul
    try:
        torch.matmul = lambda *a, **k: calls.append(1) or real(*a, **k)
        matmul(x, x.T, out)
    finally:
        torch.matmul = real
    assert calls == [1] and torch.equal(out, torch.full((3, 3), 4.0))


def test_log_probs_gradients_do_not_depend_on_which_blas_multiplies(monkeypatch):
    gen = torch.Generator().manual_seed(1)
    n, d, v = 48, 16, 70
    x = torch.randn(n, d, generator=gen, dtype=torch.float64) * 0.5
    w = torch.randn(v, d, generator=gen, dtype=torch.float64) * 0.3
    t = torch.randint(0, v, (n,), generator=gen)
    g = torch.randn(n, generator=gen, dtype=torch.float64)

    def grads():
        xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
        lp = lt.linear_log_probs(xr, wr, t, chunk_size=8, vocab_chunk_size=32)
        (lp * g).sum().backward()
        return xr.grad, wr.grad

    chosen = grads()
    torch_only = (lambda a, b, out: torch.matmul(a, b, out=out)), (lambda a, b, out: out.addmm_(a, b))
    monkeypatch.setattr("losskit.torch.log_probs.tensor_products", lambda *t: torch_only)
    reference = grads()
    for got, want in zip(chosen, reference):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-13)
