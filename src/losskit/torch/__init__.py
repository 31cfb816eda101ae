"""PyTorch at the edge: autograd Functions that use losskit's analytic gradients, and
``nn.Module`` wrappers.  Importing this module imports torch.

- :func:`cross_entropy` / :class:`CrossEntropyLoss`: fused cross-entropy whose gradient is
  computed in the forward (one N x V buffer, or none with ``inplace=True``);
- :func:`linear_cross_entropy` / :class:`LinearCrossEntropyLoss`: chunked output layer +
  cross-entropy that never holds the N x V logits;
- :func:`linear_log_probs`: per-token log-probs (and entropies) of a linear head, chunked, with
  one upstream gradient per token;
- one ``nn.Module`` per loss in :func:`losskit.catalog`, named as in PyTorch where PyTorch has
  the loss (``MSELoss``, ``HuberLoss``, ``KLDivLoss``, ...), else ``<Name>Loss``; see
  :mod:`losskit.torch.modules`.
"""

from __future__ import annotations

from typing import Any

from .functional import CrossEntropyFunction, LinearCrossEntropyFunction, cross_entropy, linear_cross_entropy
from .log_probs import LinearLogProbsFunction, linear_log_probs
from .modules import (
    CrossEntropyLoss,
    LinearCrossEntropyLoss,
    LossModule,
    build_modules,
    module_name,
    modules_by_loss,
)

_MODULES = build_modules(globals())

__all__ = [
    "cross_entropy",
    "linear_cross_entropy",
    "CrossEntropyFunction",
    "LinearCrossEntropyFunction",
    "linear_log_probs",
    "LinearLogProbsFunction",
    "CrossEntropyLoss",
    "LinearCrossEntropyLoss",
    "LossModule",
    "module_name",
    "modules_by_loss",
    *sorted(n for n in _MODULES if n not in ("CrossEntropyLoss", "LinearCrossEntropyLoss")),
]


def __getattr__(name: str) -> Any:
    # a loss catalogued after this package was imported still gets its module on first use
    if name.endswith("Loss"):
        made = build_modules(globals())
        if name in made:
            return made[name]
    raise AttributeError(f"module 'losskit.torch' has no attribute {name!r}")
