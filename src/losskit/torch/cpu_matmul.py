"""Matrix products of the CPU chunk loops on torch tensors, by NumPy's BLAS or PyTorch's.

On the same CPU the two can differ by 2x for the same product (measured: 255 against
166 GFLOP/s for a (512, 1024) x (1024, 32000) float32 product on 2 Zen 5 cores, NumPy's
OpenBLAS ahead; on an Intel Xeon level), so each chunk loop's products go through a
:class:`~losskit.kernels.linear_cross_entropy.FastestMatmul` that times both on the first real
products of each shape and keeps the faster.  NumPy works on the tensors' own memory (no copy).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..kernels.blas import numpy_matmul_add
from ..kernels.linear_cross_entropy import FastestMatmul, numpy_matmul
from .ops import is_concrete

__all__ = ["CPU_MATMUL", "CPU_MATMUL_ADD", "numpy_memory_ok", "tensor_products"]


def _torch_matmul(a, b, out):
    torch.matmul(torch.from_numpy(a), torch.from_numpy(b), out=torch.from_numpy(out))


def _torch_matmul_add(a, b, out):
    torch.from_numpy(out).addmm_(torch.from_numpy(a), torch.from_numpy(b))


# ``matmul(a, b, out)``: out = a @ b; ``matmul_add``: out += a @ b (NumPy's through one BLAS
# gemm with beta = 1 where reachable), each by whichever library is faster for the shape
CPU_MATMUL = FastestMatmul({"numpy": numpy_matmul, "torch": _torch_matmul})
CPU_MATMUL_ADD = FastestMatmul({"numpy": numpy_matmul_add, "torch": _torch_matmul_add})


def numpy_memory_ok(*tensors: torch.Tensor | None) -> bool:
    """Eager, concrete, dense CPU float32/float64 tensors that NumPy can view without a copy
    (:func:`~losskit.torch.ops.is_concrete`: no graph being traced, no ``torch.func`` wrapper,
    no meta or fake tensor)."""
    for t in tensors:
        if t is None:
            continue
        if type(t) is not torch.Tensor or not is_concrete(t) or t.device.type != "cpu":
            return False
        if t.layout != torch.strided or t.dtype not in (torch.float32, torch.float64):
            return False
        if t.is_conj() or t.is_neg():
            return False
    return True


Product = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], object]


def tensor_products(*tensors: torch.Tensor | None) -> tuple[Product, Product]:
    """``(matmul, matmul_add)`` on torch tensors for a chunk loop over ``tensors``: the faster of
    NumPy's and PyTorch's on the tensors' memory where :func:`numpy_memory_ok`, else torch's own
    (any device, traced graphs, and under ``torch.use_deterministic_algorithms(True)``, since
    while a large product is being timed both libraries compute it and round differently)."""
    # torch.use_deterministic_algorithms(True): the same bits on every call, so one library
    if torch.are_deterministic_algorithms_enabled() or not numpy_memory_ok(*tensors):
        return (lambda a, b, out: torch.matmul(a, b, out=out)), (lambda a, b, out: out.addmm_(a, b))

    def view(t: torch.Tensor):
        return t.detach().numpy()

    def matmul(a, b, out):
        CPU_MATMUL(view(a), view(b), view(out))

    def matmul_add(a, b, out):
        CPU_MATMUL_ADD(view(a), view(b), view(out))

    return matmul, matmul_add
