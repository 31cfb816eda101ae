"""A regression whose SGD path is known: every minibatch has X^T X / b = I, so the loss
falls by a constant factor per step for a small learning rate and grows by one for a large one."""

from __future__ import annotations

import torch

DIM = 4
BATCH = 16


def regression(n_batches: int = 4, noise: float = 0.05, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    blocks = []
    for _ in range(n_batches):
        q, _ = torch.linalg.qr(torch.randn(BATCH, DIM, generator=g))
        blocks.append(q * BATCH**0.5)
    x = torch.cat(blocks)
    w = 2.0 * torch.randn(DIM, 1, generator=g)
    return x, x @ w + noise * torch.randn(len(x), 1, generator=g)


def lr_factor(diverge_from: int | None, high: float = 11.0):
    """A LambdaLR factor: 1, then ``high`` from epoch/step ``diverge_from`` on (the loss then
    grows by (1 - 2 * 0.1 * high)^2 = 1.44 per step with a base rate of 0.1)."""

    def factor(i: int) -> float:
        return high if diverge_from is not None and i >= diverge_from else 1.0

    return factor
