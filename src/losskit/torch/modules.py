"""``nn.Module`` losses: one class for every loss in :func:`losskit.catalog`.

The classes are written out in :mod:`losskit.torch.loss_modules`, generated from the catalog by
``tools/generate_torch_modules.py`` (a test keeps it in step): real classes with real
signatures, so they pickle, ``torch.save`` with a model, and are seen by type checkers and IDEs.
Each is named as in PyTorch when PyTorch has the loss (``cross_entropy`` ->
``CrossEntropyLoss``, ``mse`` -> ``MSELoss``, ``binary_cross_entropy_with_logits`` ->
``BCEWithLogitsLoss``, ...) and ``<CamelCaseName>Loss`` otherwise (``sigmoid_focal`` ->
``SigmoidFocalLoss``).

The classes named as ``torch.nn``'s losses are drop-in replacements for them: the same
constructor arguments in the same positions with the same defaults (``CrossEntropyLoss(weight)``;
the deprecated ``size_average``/``reduce`` with PyTorch's warning), and PyTorch's layout, classes
on dimension 1 of ``(N, C, d1, ...)`` (0 of an unbatched ``(C,)``)::

    criterion = losskit.torch.CrossEntropyLoss(label_smoothing=0.1, ignore_index=-100)
    loss = criterion(logits, target)          # logits (N, C) or (N, C, d1, ...), as torch.nn
    loss.backward()

losskit's further options follow as keyword-only arguments (``axis=-1`` puts the classes on the
last axis, as the functions of :mod:`losskit` and :func:`losskit.torch.cross_entropy` have them).
Every other module takes its function's options as keyword arguments.  ``forward`` takes the
loss's arrays and may override options by keyword.  ``CrossEntropyLoss`` and
``LinearCrossEntropyLoss`` run the fused autograd Functions of :mod:`losskit.torch.functional`;
every other module differentiates losskit's implementation with PyTorch's autograd.

A loss catalogued at run time (a user's own :func:`~losskit.core.catalog.catalogued` loss)
gets a class built on first request by :func:`modules_by_loss`.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import torch
from torch import nn

from ..core.catalog import catalog
from ..core.specs import LinearCrossEntropyOptions, options_from, with_options
from . import functional
from .loss_modules import *  # noqa: F403  (the generated classes)
from .loss_modules import LOSS_MODULES
from .loss_modules import __all__ as _GENERATED
from .module_base import LossModule, camel, legacy_reduction, module_name, torch_loss_classes

__all__ = [
    "LossModule",
    "LinearCrossEntropyLoss",
    "legacy_reduction",
    "module_name",
    "build_modules",
    "modules_by_loss",
    *_GENERATED,
]


@with_options(LinearCrossEntropyOptions)
class LinearCrossEntropyLoss(nn.Module):
    """Chunked linear + cross-entropy (:func:`losskit.torch.linear_cross_entropy`) as a module
    that owns the output layer, like ``nn.Linear`` followed by ``nn.CrossEntropyLoss`` without
    the N x V logits.

    Args:
      in_features: D, the hidden size.
      num_classes: V, the vocabulary size.
      bias: whether the layer has a bias (default False, as in most language-model heads).
      weight: optional existing ``(V, D)`` parameter to use (e.g. tied to the embedding).
      device, dtype: for the new parameters.
      **options: the keyword options of :func:`losskit.linear_cross_entropy` (``ignore_index``,
        ``label_smoothing``, ``z_loss``, ``softcap``, ``reduction``, ``chunk_size``), checked
        here; ``forward`` may override them by keyword.

    ``forward(input, target)`` returns the loss; ``logits(input)`` the plain logits.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        bias: bool = False,
        *,
        weight: torch.Tensor | None = None,
        device: Any = None,
        dtype: Any = None,
        **options: Any,
    ) -> None:
        super().__init__()
        if weight is None:
            linear = nn.Linear(in_features, num_classes, bias=bias, device=device, dtype=dtype)
            self.weight = linear.weight
            self.bias = linear.bias
        else:
            if tuple(weight.shape) != (num_classes, in_features):
                raise ValueError(
                    f"weight must have shape ({num_classes}, {in_features}); got {tuple(weight.shape)}"
                )
            self.weight = weight if isinstance(weight, nn.Parameter) else nn.Parameter(weight)
            zeros = torch.zeros(num_classes, device=device, dtype=weight.dtype)
            self.bias = nn.Parameter(zeros) if bias else None
        self.in_features, self.num_classes = in_features, num_classes
        chosen = options_from(LinearCrossEntropyOptions, options, type(self).__name__)
        self.options = dataclasses.asdict(chosen)

    def forward(self, input: torch.Tensor, target: torch.Tensor, **overrides: Any) -> torch.Tensor:
        opts = {**self.options, **overrides}
        return functional.linear_cross_entropy(input, self.weight, target, linear_bias=self.bias, **opts)

    def logits(self, input: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_classes={self.num_classes}, bias={self.bias is not None}"


# catalog name -> class built at run time for a loss the generated file does not have
_BUILT: dict[str, type[LossModule]] = {}


def build_modules(namespace: dict[str, Any] | None = None) -> dict[str, type]:
    """Class name -> module class for every catalog entry: the generated classes, and for a
    loss catalogued after the file was generated a class built now (once, then reused, and
    findable by pickle in this process); stored in ``namespace`` too when given."""
    taken = set(_GENERATED) | {"LinearCrossEntropyLoss"} | {c.__name__ for c in _BUILT.values()}
    torch_classes = torch_loss_classes()
    for info in catalog():
        if info.name in LOSS_MODULES or info.name == "linear_cross_entropy" or info.name in _BUILT:
            continue
        name = module_name(info, torch_classes)
        if name in taken:
            name = camel(info.name) + ("" if info.name.endswith("loss") else "Loss")
        doc = (
            f"``losskit.{info.name}`` as an ``nn.Module`` ({info.formula}).\n\n"
            f"Constructor: any keyword option of ``losskit.{info.name}``; forward: its array "
            f"arguments.\nEquivalent: {info.torch or 'none in PyTorch'}.\n\n"
            + (inspect.getdoc(info.function) or "")
        )
        attrs = {
            "loss": staticmethod(info.function),
            "loss_name": info.name,
            "__doc__": doc,
            "__module__": __name__,
            "__qualname__": name,
        }
        cls = type(name, (LossModule,), attrs)
        _BUILT[info.name] = cls
        globals()[name] = cls  # pickle finds a class by its module and name
        taken.add(name)
    made = {cls.__name__: cls for cls in modules_by_loss().values()}
    if namespace is not None:
        namespace.update(made)
    return made


def modules_by_loss() -> dict[str, type]:
    """Catalog name -> module class, for every loss catalogued so far (new ones included)."""
    if any(info.name not in LOSS_MODULES and info.name not in _BUILT for info in catalog()
           if info.name != "linear_cross_entropy"):
        build_modules()
    names = {info.name for info in catalog()}
    out: dict[str, type] = {k: v for k, v in LOSS_MODULES.items() if k in names}
    out.update(_BUILT)
    if "linear_cross_entropy" in names:
        out["linear_cross_entropy"] = LinearCrossEntropyLoss
    return out
