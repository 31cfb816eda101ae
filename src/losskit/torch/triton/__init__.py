"""Triton kernels for CUDA tensors: fused cross-entropy and linear cross-entropy.

Installed with the optional extra ``losskit[triton]``.  The autograd Functions of
:mod:`losskit.torch.functional` run these kernels on CUDA tensors of float32, bfloat16 or
float16 when Triton is importable (so :func:`losskit.cross_entropy`,
:func:`losskit.torch.cross_entropy`, :class:`losskit.torch.CrossEntropyLoss` and the linear
cross-entropy entry points reach them); everything else keeps the CPU kernels or the portable
array-API code.

- :mod:`.cross_entropy`: the loss and the gradient of the logits in one kernel, the gradient
  written into the logits' own buffer with ``inplace=True`` (Liger-Kernel's scheme), with every
  option of :func:`losskit.cross_entropy`;
- :mod:`.linear_cross_entropy`: the output layer and the loss in one kernel, a block of tokens
  times a block of the vocabulary at a time with an online log-sum-exp, so the N x V logits never
  exist in global memory; the backward recomputes the blocks (Cut Cross-Entropy's scheme).  The
  same kernels give :func:`losskit.linear_log_probs` (per-token log-probabilities and entropies
  of a linear head) through :mod:`losskit.torch.log_probs`.

Triton is imported only in this package and only when a kernel is first needed.
``LOSSKIT_DISABLE_TRITON=1`` turns the kernels off.  :func:`force_on_cpu` runs them on CPU
tensors, which works only under Triton's interpreter (``TRITON_INTERPRET=1`` set before
``triton`` is first imported): that is how the kernels and their dispatch are tested on machines
without a GPU.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["available", "wanted", "force_on_cpu", "cross_entropy_rows", "linear_sweep", "log_probs_sweep"]

_FORCED = [False]
# the dtypes the kernels read (the arithmetic is float32)
_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def available() -> bool:
    """True when Triton is installed and not turned off with ``LOSSKIT_DISABLE_TRITON=1``."""
    if os.environ.get("LOSSKIT_DISABLE_TRITON", "").strip() not in ("", "0"):
        return False
    return _installed()


@functools.lru_cache(maxsize=1)
def _installed() -> bool:
    return importlib.util.find_spec("triton") is not None


@contextlib.contextmanager
def force_on_cpu() -> Iterator[None]:
    """Within this block the kernels also take CPU tensors (for tests under Triton's
    interpreter, ``TRITON_INTERPRET=1``; without it Triton cannot launch on CPU tensors)."""
    before = _FORCED[0]
    _FORCED[0] = True
    try:
        yield
    finally:
        _FORCED[0] = before


def wanted(input: torch.Tensor, *others: torch.Tensor | None) -> bool:
    """Whether the Triton kernels take these tensors: ``input`` a float32, bfloat16 or float16
    CUDA tensor (a CPU one inside :func:`force_on_cpu`), the others on its device, Triton
    available, and not while ``torch.compile`` traces (the kernels are opaque to it)."""
    if input.dtype not in _DTYPES or input.is_sparse:
        return False
    device = input.device.type
    if not (device == "cuda" or (device == "cpu" and _FORCED[0])):
        return False
    if any(t is not None and t.device != input.device for t in others):
        return False
    if torch.compiler.is_compiling():
        return False
    return available()


def cross_entropy_rows(spec: Any, arrays: Any, *, grad: bool, inplace: bool) -> tuple[torch.Tensor, Any]:
    """The fused kernel of :mod:`.cross_entropy` (see :func:`.cross_entropy.cross_entropy_rows`)."""
    from . import cross_entropy

    return cross_entropy.cross_entropy_rows(spec, arrays, grad=grad, inplace=inplace)


def linear_sweep(x2, w, b, safe_t, valid, row_scale, spec, need, dtype):
    """The linear cross-entropy kernels of :mod:`.linear_cross_entropy`, with the signature of
    the chunk sweeps of :mod:`losskit.torch.functional`."""
    from . import linear_cross_entropy as kernels

    return kernels.linear_cross_entropy_sweep(x2, w, b, safe_t, valid, row_scale, spec, need, dtype)


def log_probs_sweep(x2, w, b, safe_t, spec, **kwargs):
    """One sweep of ``linear_log_probs`` on the linear kernels (the contract of
    :func:`losskit.losses.log_probs.log_prob_sweep`)."""
    from . import linear_cross_entropy as kernels

    return kernels.linear_log_probs_sweep(x2, w, b, safe_t, spec, **kwargs)
