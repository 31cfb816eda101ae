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

import inspect
import math
from typing import Any

import torch
from torch import nn

from ..core.catalog import catalog
from ..core.specs import LinearCrossEntropyOptions
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


class LinearCrossEntropyLoss(nn.Module):
    """Chunked linear + cross-entropy (:func:`losskit.torch.linear_cross_entropy`) as a module
    that owns the output layer: a drop-in for ``torch.nn.LinearCrossEntropyLoss`` (PyTorch
    2.13), ``nn.Linear`` followed by ``nn.CrossEntropyLoss`` without the N x V logits.

    Args:
      in_features: D, the hidden size.
      num_classes: C, the number of classes (the vocabulary size).
      out_features: ``(d1, ..., dK)`` for K-dimensional logits ``(N, C, d1, ..., dK)``; the
        layer then has ``C * prod(out_features)`` outputs (default ``()``).
      bias: whether the layer has a bias (default False, as in most language-model heads).
      device, dtype: for the layer's parameters.
      reduction: ``"mean"`` (default; the weighted mean), ``"sum"`` or ``"none"``.
      weight: optional class weights of shape ``(C,)``, kept as a buffer (as in PyTorch).
      ignore_index: target value that does not count; ``None`` (default) means -100 for class
        indices.
      label_smoothing: :math:`\\varepsilon` in [0, 1].
      options: PyTorch's ``torch.nn.LinearCrossEntropyOptions`` or ``None``; losskit always
        chunks, and its ``batch_chunk_size`` sets ``chunk_size``.
      z_loss, softcap, chunk_size: losskit's options (keyword only; see
        :func:`losskit.linear_cross_entropy`).

    The layer is ``self.linear``, an ``nn.Linear(in_features, C * prod(out_features))``, so the
    ``state_dict`` keys are PyTorch's (``linear.weight``, ``linear.bias``, ``weight``).  Tie it
    to an embedding as in PyTorch: ``module.linear.weight = embedding.weight``.

    ``forward(input, target)`` returns the loss; ``logits(input)`` the plain logits
    ``(..., C, *out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        out_features: tuple[int, ...] = (),
        bias: bool = False,
        device: Any = None,
        dtype: Any = None,
        reduction: str = "mean",
        weight: torch.Tensor | None = None,
        ignore_index: int | None = None,
        label_smoothing: float = 0.0,
        options: Any = None,
        z_loss: float = 0.0,
        softcap: float | None = None,
        chunk_size: int | str = "auto",
    ) -> None:
        super().__init__()
        if weight is not None and tuple(weight.shape) != (num_classes,):
            hint = (
                " A (num_classes, in_features) weight is the output layer's: tie it with "
                "module.linear.weight = embedding.weight"
                if weight.ndim == 2
                else ""
            )
            raise ValueError(
                f"weight holds class weights of shape ({num_classes},), as in "
                f"torch.nn.LinearCrossEntropyLoss; got shape {tuple(weight.shape)}.{hint}"
            )
        # checked now (the names and ranges of the options), as the functions check them
        LinearCrossEntropyOptions(
            -100 if ignore_index is None else ignore_index, label_smoothing, z_loss, softcap, reduction,
            chunk_size,
        )  # fmt: skip
        self.num_classes = num_classes
        self.out_features = tuple(out_features)
        self.reduction = reduction
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        self.options = options
        self.z_loss, self.softcap, self.chunk_size = z_loss, softcap, chunk_size
        self.register_buffer("weight", weight)
        outputs = math.prod(self.out_features, start=num_classes)
        self.linear = nn.Linear(in_features, outputs, bias=bias, device=device, dtype=dtype)

    @property
    def in_features(self) -> int:
        return self.linear.in_features

    def _losskit_options(self) -> dict[str, Any]:
        return {"z_loss": self.z_loss, "softcap": self.softcap, "chunk_size": self.chunk_size}

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.out_features:
            # K-dimensional logits: PyTorch itself computes them and takes cross_entropy on them
            if input.ndim < 2:
                raise ValueError(
                    f"input must be batched (N, {self.in_features}) when out_features is given; got "
                    f"shape {tuple(input.shape)}"
                )
            logits = self.logits(input)
            if self.softcap is not None:
                logits = self.softcap * torch.tanh(logits / self.softcap)
            index = {} if target.is_floating_point() else {"ignore_index": self.ignore_index}
            if index.get("ignore_index", 0) is None:
                index["ignore_index"] = -100
            return functional.cross_entropy(
                logits,
                target,
                self.weight,
                axis=input.ndim - 1,
                **index,
                label_smoothing=self.label_smoothing,
                z_loss=self.z_loss,
                reduction=self.reduction,
            )
        return functional.linear_cross_entropy(
            input,
            self.linear.weight,
            target,
            linear_bias=self.linear.bias,
            weight=self.weight,
            reduction=self.reduction,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
            options=self.options,
            **self._losskit_options(),
        )

    def logits(self, input: torch.Tensor) -> torch.Tensor:
        """The plain logits ``input.shape[:-1] + (C, *out_features)``."""
        logits = nn.functional.linear(input, self.linear.weight, self.linear.bias)
        return logits.reshape(*input.shape[:-1], self.num_classes, *self.out_features)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, num_classes={self.num_classes}, "
            f"out_features={self.out_features}, bias={self.linear.bias is not None}, "
            f"reduction={self.reduction}, ignore_index={self.ignore_index}, "
            f"label_smoothing={self.label_smoothing}, options={self.options}, z_loss={self.z_loss}, "
            f"softcap={self.softcap}, chunk_size={self.chunk_size!r}"
        )


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
