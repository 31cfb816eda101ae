"""PyTorch's spelling of the primitives the core asks for through :mod:`losskit.core.dispatch`."""

from __future__ import annotations

import torch

__all__ = ["stop_gradient"]


def stop_gradient(x: torch.Tensor) -> torch.Tensor:
    """``Tensor.detach``: the ``("stop_gradient", "torch")`` fast path."""
    return x.detach()
