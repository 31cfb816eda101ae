"""The base of losskit's ``nn.Module`` losses and the rules they share: class names, PyTorch's
legacy ``size_average``/``reduce`` arguments, PyTorch's class dimension.

The classes themselves are in :mod:`losskit.torch.loss_modules`, generated from the catalog by
``tools/generate_torch_modules.py``.
"""

from __future__ import annotations

import inspect
import re
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from ..core.catalog import LossInfo

__all__ = ["LossModule", "legacy_reduction", "module_name", "torch_loss_classes"]

# PyTorch modules whose names do not follow from their functional's name
_TORCH_SPECIAL = {
    "binary_cross_entropy": "BCELoss",
    "binary_cross_entropy_with_logits": "BCEWithLogitsLoss",
}
# name parts of catalogued losses spelled in capitals (``js_div`` -> ``JSDivLoss``); the names
# PyTorch has come from PyTorch itself
_ACRONYMS = {"kl", "js", "nce", "ntxent", "l1", "l2", "mape", "msle"}


def torch_loss_classes() -> dict[str, str]:
    """Normalised name -> PyTorch loss module name (``"crossentropy" -> "CrossEntropyLoss"``)."""
    out = {}
    for name in dir(nn):
        if name.endswith("Loss") and isinstance(getattr(nn, name), type):
            out[name[: -len("Loss")].lower()] = name
    return out


def camel(name: str) -> str:
    """``"js_div"`` -> ``"JSDiv"``: the catalog name in CamelCase, acronyms in capitals."""
    return "".join(p.upper() if p in _ACRONYMS else p[:1].upper() + p[1:] for p in name.split("_") if p)


def module_name(info: LossInfo, torch_classes: dict[str, str] | None = None) -> str:
    """The module class name for a catalog entry: PyTorch's when PyTorch has the loss
    (``mse`` -> ``MSELoss``), else ``<CamelCaseName>Loss`` (``sigmoid_focal`` ->
    ``SigmoidFocalLoss``)."""
    torch_classes = torch_loss_classes() if torch_classes is None else torch_classes
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
    base = camel(info.name)
    return base if base.endswith("Loss") else base + "Loss"


def legacy_reduction(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """PyTorch's rule for its deprecated ``size_average`` and ``reduce`` arguments, which its
    loss modules still accept: when either is given it decides the reduction (both default to
    True; ``reduce=False`` -> ``"none"``, else ``size_average=False`` -> ``"sum"``, else
    ``"mean"``), ``reduction`` is ignored, and a ``UserWarning`` names the ``reduction`` to
    use instead; when neither is given, ``reduction`` stands."""
    if size_average is None and reduce is None:
        return reduction
    summed = size_average is not None and not size_average
    chosen = "none" if reduce is not None and not reduce else ("sum" if summed else "mean")
    warnings.warn(
        f"size_average and reduce args will be deprecated, please use reduction='{chosen}' instead.",
        UserWarning,
        stacklevel=3,
    )
    return chosen


_MEAN_WARNING = (
    "reduction: 'mean' divides the total loss by both the batch size and the support size, as "
    "torch.nn.KLDivLoss's default does; 'batchmean' divides by the batch size only, which is the "
    "KL divergence (and losskit.kl_div's default)"
)


class LossModule(nn.Module):
    """Base of losskit's loss modules: keeps the options, calls the loss in ``forward``.

    Options are attributes, as in PyTorch's loss modules (``criterion.reduction``,
    ``criterion.ignore_index``); tensor options (``weight``, ``pos_weight``) are buffers, so
    ``.to(device)`` moves them and ``state_dict`` holds them.  ``forward`` takes the loss's
    arrays and may override any option by keyword (``criterion(x, y, reduction="sum")``).
    """

    loss: ClassVar[Callable[..., Any]]  # the loss function (set on each subclass)
    loss_name: ClassVar[str] = ""  # its name in :func:`losskit.catalog`
    # PyTorch's layout: classes on dimension 1 of ``(N, C, d1, ...)`` (0 of an unbatched
    # ``(C,)``) unless ``axis`` is given
    class_dim: ClassVar[bool] = False
    # tensor options registered as buffers even when None (as ``nn.CrossEntropyLoss`` does)
    tensor_options: ClassVar[tuple[str, ...]] = ()
    # warn, as PyTorch's ``kl_div`` does, that ``reduction="mean"`` divides by every element
    warn_mean: ClassVar[bool] = False
    # the catalogued function, for a call that ``loss`` (a fused autograd Function) would not
    # differentiate fully: an array after the first that needs a gradient (soft targets)
    portable_loss: ClassVar[Callable[..., Any] | None] = None

    def __init__(self, **options: Any) -> None:
        super().__init__()
        params = inspect.signature(type(self).loss).parameters
        unknown = [k for k in options if k not in params]
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unknown option(s) {', '.join(map(repr, unknown))}; "
                f"{self.loss_name} accepts {', '.join(params)}"
            )
        self._positional = [p.name for p in params.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
        self._option_names = list(options)
        for k, v in options.items():
            if isinstance(v, torch.Tensor) or (v is None and k in self.tensor_options):
                self.register_buffer(k, v)
            else:
                setattr(self, k, v)

    def options(self) -> dict[str, Any]:
        """The loss's options as the module holds them now (tensors as its current buffers)."""
        return {k: getattr(self, k) for k in self._option_names}

    def _call(self, arrays: tuple[Any, ...], overrides: dict[str, Any]) -> torch.Tensor:
        opts = self.options()
        opts.update(overrides)
        # an option that is also a positional parameter must not be given twice
        for name in self._positional[: len(arrays)]:
            if name in opts and name not in overrides:
                raise TypeError(
                    f"{type(self).__name__}: {name!r} was set in the constructor and passed to forward"
                )
        if self.class_dim and opts.get("axis") is None:
            # PyTorch's class dimension: 1 of (N, C, d1, ...), 0 of an unbatched (C,)
            opts["axis"] = 1 if arrays[0].ndim >= 2 else 0
        if self.warn_mean and opts.get("reduction") == "mean" and not torch.compiler.is_compiling():
            # in eager mode only: Dynamo cannot trace the call, and the graph stays whole
            warnings.warn(_MEAN_WARNING, UserWarning, stacklevel=3)
        fn = type(self).loss
        portable = type(self).portable_loss
        if portable is not None and not opts.get("inplace") and torch.is_grad_enabled():
            if any(isinstance(a, torch.Tensor) and a.requires_grad for a in arrays[1:]):
                opts.pop("inplace", None)
                fn = portable
        return fn(*arrays, **opts)

    def forward(self, *arrays: Any, **overrides: Any) -> torch.Tensor:
        return self._call(arrays, overrides)

    def extra_repr(self) -> str:
        shown = []
        for k in self._option_names:
            v = getattr(self, k)
            if not isinstance(v, torch.Tensor) and v is not None:
                shown.append(f"{k}={v!r}")
        return ", ".join(shown)
