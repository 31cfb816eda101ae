"""``nn.Module`` wrappers for every loss in :func:`losskit.catalog`, generated from it.

Each catalogued loss gets a module class named as in PyTorch when PyTorch has the loss
(``cross_entropy`` -> ``CrossEntropyLoss``, ``mse`` -> ``MSELoss``, ``huber`` ->
``HuberLoss``, ``binary_cross_entropy_with_logits`` -> ``BCEWithLogitsLoss``, ...) and
``<CamelCaseName>Loss`` otherwise (``sigmoid_focal`` -> ``SigmoidFocalLoss``).  Losses added to the catalog
later get their module automatically the first time this module is imported after them.

Usage is PyTorch's: options go to the constructor, arrays to ``forward``::

    criterion = losskit.torch.CrossEntropyLoss(label_smoothing=0.1, ignore_index=-100)
    loss = criterion(logits, target)          # logits (N, C) or (..., C): classes on axis -1
    loss.backward()

The constructor accepts any keyword option of the loss (tensor options such as
``weight`` become buffers, so ``.to(device)`` moves them); ``forward`` takes the loss's array
arguments positionally and may override options by keyword.  ``CrossEntropyLoss`` and
``LinearCrossEntropyLoss`` run the fused autograd Functions of :mod:`losskit.torch.functional`;
every other module differentiates losskit's implementation with PyTorch's autograd (so every
reduction and every upstream gradient is handled exactly).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..core.catalog import LossInfo, catalog
from ..core.specs import LinearCrossEntropyOptions, options_from, with_options
from . import functional

__all__ = [
    "LossModule",
    "module_name",
    "build_modules",
    "modules_by_loss",
    "LinearCrossEntropyLoss",
    "CrossEntropyLoss",
]

# PyTorch modules whose names do not follow from their functional's name
_TORCH_SPECIAL = {
    "binary_cross_entropy": "BCELoss",
    "binary_cross_entropy_with_logits": "BCEWithLogitsLoss",
}
# name parts of catalogued losses spelled in capitals (``js_div`` -> ``JSDivLoss``); the names
# PyTorch has come from PyTorch itself
_ACRONYMS = {"kl", "js", "nce", "ntxent", "l1", "l2", "mape", "msle"}


def _torch_loss_classes() -> dict[str, str]:
    """Normalised name -> PyTorch loss module name (``"crossentropy" -> "CrossEntropyLoss"``)."""
    out = {}
    for name in dir(nn):
        if name.endswith("Loss") and isinstance(getattr(nn, name), type):
            out[name[: -len("Loss")].lower()] = name
    return out


def _camel(name: str) -> str:
    return "".join(p.upper() if p in _ACRONYMS else p[:1].upper() + p[1:] for p in name.split("_") if p)


def module_name(info: LossInfo, torch_classes: dict[str, str] | None = None) -> str:
    """The module class name for a catalog entry: PyTorch's when PyTorch has the loss."""
    torch_classes = _torch_loss_classes() if torch_classes is None else torch_classes
    if info.torch:
        match = re.search(r"(?:F|functional)\.(\w+)", info.torch)
        if match:
            fname = match.group(1)
            if fname in _TORCH_SPECIAL:
                return _TORCH_SPECIAL[fname]
            key = fname.replace("_", "").lower()
            key = key[: -len("loss")] if key.endswith("loss") else key
            if key in torch_classes:
                return torch_classes[key]
    base = _camel(info.name)
    return base if base.endswith("Loss") else base + "Loss"


class LossModule(nn.Module):
    """Base of the generated wrappers: keeps the options, calls the loss in ``forward``."""

    loss: Callable[..., Any]  # set on each generated subclass
    loss_name: str = ""

    def __init__(self, **options: Any) -> None:
        super().__init__()
        params = inspect.signature(self.loss).parameters
        positional = [p.name for p in params.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
        unknown = [k for k in options if k not in params]
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unknown option(s) {', '.join(map(repr, unknown))}; "
                f"{self.loss_name} accepts {', '.join(params)}"
            )
        self._positional = positional
        self._option_names = []
        self._plain: dict[str, Any] = {}
        for k, v in options.items():
            if isinstance(v, torch.Tensor):
                self.register_buffer(k, v)
            else:
                self._plain[k] = v
            self._option_names.append(k)

    def options(self) -> dict[str, Any]:
        """The options given to the constructor (tensors as the module's current buffers)."""
        return {k: (getattr(self, k) if k not in self._plain else self._plain[k]) for k in self._option_names}

    def _call(self, fn: Callable[..., Any], args: tuple, overrides: dict[str, Any]) -> Any:
        opts = self.options()
        opts.update(overrides)
        # an option that is also a positional parameter must not be given twice
        for name in self._positional[: len(args)]:
            if name in opts and name not in overrides:
                raise TypeError(
                    f"{type(self).__name__}: {name!r} was set in the constructor and passed to forward"
                )
        return fn(*args, **opts)

    def forward(self, *args: Any, **overrides: Any) -> torch.Tensor:
        return self._call(self.loss, args, overrides)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._plain.items())


class CrossEntropyLoss(LossModule):
    """Fused cross-entropy (:func:`losskit.torch.cross_entropy`) as a module.

    Options as :func:`losskit.cross_entropy` plus ``inplace``; the class axis is ``axis``
    (default -1).  ``CrossEntropyLoss(label_smoothing=0.1)(logits, target)``.
    """

    loss = staticmethod(functional.cross_entropy)
    loss_name = "cross_entropy"


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
        return functional.linear_cross_entropy(input, self.weight, target, self.bias, **opts)

    def logits(self, input: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_classes={self.num_classes}, bias={self.bias is not None}"


_FIXED = {"cross_entropy": CrossEntropyLoss, "linear_cross_entropy": LinearCrossEntropyLoss}


# catalog name -> generated class, so every build returns the same class objects
_BUILT: dict[str, type] = {}


def build_modules(namespace: dict[str, Any] | None = None) -> dict[str, type]:
    """A module class for every catalog entry (created once, reused afterwards); returns
    class name -> class and, when ``namespace`` is given, stores them there too."""
    torch_classes = _torch_loss_classes()
    entries = catalog()
    # an entry whose own name is PyTorch's functional name claims PyTorch's class name first
    entries.sort(key=lambda i: 0 if i.torch and re.search(rf"\b{re.escape(i.name)}\b", i.torch) else 1)
    taken = {cls.__name__ for cls in _BUILT.values()}
    for info in entries:
        if info.name in _BUILT:
            continue
        fixed = _FIXED.get(info.name)
        if fixed is not None:
            _BUILT[info.name] = fixed
            taken.add(fixed.__name__)
            continue
        name = module_name(info, torch_classes)
        if name in taken:
            name = _camel(info.name) + ("" if info.name.endswith("loss") else "Loss")
        doc = (
            f"``losskit.{info.name}`` as an ``nn.Module`` ({info.formula}).\n\n"
            f"Constructor: any keyword option of ``losskit.{info.name}``; forward: its array "
            f"arguments.\nEquivalent: {info.torch or 'none in PyTorch'}.\n\n"
            + (inspect.getdoc(info.function) or "")
        )
        attrs = {"loss": staticmethod(info.function), "loss_name": info.name, "__doc__": doc}
        attrs["__module__"] = __name__
        _BUILT[info.name] = type(name, (LossModule,), attrs)
        taken.add(name)
    made = {cls.__name__: cls for cls in _BUILT.values()}
    if namespace is not None:
        namespace.update(made)
    return made


def modules_by_loss() -> dict[str, type]:
    """Catalog name -> module class, for every loss catalogued so far (new ones included)."""
    build_modules()
    return dict(_BUILT)
