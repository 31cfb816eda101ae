"""PyTorch at the edge: autograd Functions that use losskit's analytic gradients, and
``nn.Module`` losses.  Importing this package imports torch (the ``torch`` extra:
``pip install 'losskit[torch]'``).

- :func:`cross_entropy` / :class:`CrossEntropyLoss`: fused cross-entropy whose gradient is
  computed in the forward (one N x V buffer, or none with ``inplace=True``);
- :func:`linear_cross_entropy` / :class:`LinearCrossEntropyLoss`: chunked output layer +
  cross-entropy that never holds the N x V logits;
- :func:`linear_log_probs`: per-token log-probs (and entropies) of a linear head, chunked, with
  one upstream gradient per token;
- one ``nn.Module`` per loss in :func:`losskit.catalog`, named as in PyTorch where PyTorch has
  the loss (``MSELoss``, ``HuberLoss``, ``KLDivLoss``, ...), else ``<Name>Loss``; see
  :mod:`losskit.torch.modules`.

Layouts.  The modules named as ``torch.nn``'s losses are drop-in replacements for them: the
same constructor arguments in the same positions with the same defaults, and PyTorch's layout,
classes on dimension 1 of ``(N, C, d1, ...)`` (dimension 0 of an unbatched ``(C,)``).  The
functions keep losskit's convention, classes on the last axis (``axis=-1``), as
:func:`losskit.cross_entropy` has it; give ``axis=1`` for PyTorch's ``(N, C, d1, ...)``::

    lkt.CrossEntropyLoss()(logits_ncl, target_nl)          # as torch.nn.CrossEntropyLoss
    lkt.cross_entropy(logits_ncl, target_nl, axis=1)       # the same number
    lkt.cross_entropy(logits_nlc, target_nl)               # classes last: losskit's default
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ModuleNotFoundError as error:  # pragma: no cover - exercised in a subprocess by the tests
    if error.name != "torch":
        raise
    raise ModuleNotFoundError(
        "losskit.torch needs PyTorch, which is not installed: pip install 'losskit[torch]' "
        "(or install torch itself, any version the extra allows)",
        name="torch",
    ) from error

from .functional import CrossEntropyFunction, LinearCrossEntropyFunction, cross_entropy, linear_cross_entropy
from .log_probs import LinearLogProbsFunction, linear_log_probs
from .loss_modules import *  # noqa: F403  (one class per catalogued loss)
from .loss_modules import __all__ as _GENERATED
from .modules import LinearCrossEntropyLoss, LossModule, build_modules, module_name, modules_by_loss

__all__ = [
    "cross_entropy",
    "linear_cross_entropy",
    "CrossEntropyFunction",
    "LinearCrossEntropyFunction",
    "linear_log_probs",
    "LinearLogProbsFunction",
    "LinearCrossEntropyLoss",
    "LossModule",
    "build_modules",
    "module_name",
    "modules_by_loss",
    *_GENERATED,
]
