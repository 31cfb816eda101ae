"""The contracts of cross-entropy and linear cross-entropy, each checked once.

Cross-entropy is computed by several implementations: the portable array-API code, the NumPy
row kernel, the torch autograd Function, the JAX custom-derivative function and the
vocabulary-parallel variants.  They all take the same options, so the options are written and
validated here, once:

- :class:`CrossEntropyOptions` / :class:`LinearCrossEntropyOptions`: what the caller chose (with
  the defaults), checked on construction;
- :class:`CrossEntropySpec` / :class:`LinearCrossEntropySpec`: the options resolved against the
  arrays of one call (class axis, number of classes, target kind, shapes, chunk rows), built
  by ``of(...)`` after every shape and value check has passed.

A spec is what an implementation receives; adding an option is one field here plus the code of
each implementation that computes it.  The arrays of a call (:class:`CrossEntropyArrays`,
:class:`LinearCrossEntropyArrays`) travel beside the spec: they are checked by ``of`` but not
stored in it, so a spec is small, immutable and hashable (a static argument under ``jax.jit``).

Every implementation has the same shape: ``(spec, arrays, wrt) -> (value, grads)``, where
``wrt`` holds the positional argument numbers whose analytic gradients are asked for (see
:func:`losskit.core.gradients.loss_function`); a fast path may instead decline with ``None``.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from .backend import Array, Namespace
from .validation import (
    REDUCTIONS,
    check_class_indices,
    check_class_targets,
    check_float_array,
    check_int,
    check_integer_array,
    check_nonempty,
    check_normalizer,
    check_number,
    check_reduction,
)

__all__ = [
    "CrossEntropyOptions",
    "CrossEntropyArrays",
    "CrossEntropySpec",
    "LinearCrossEntropyOptions",
    "LinearCrossEntropyArrays",
    "LinearCrossEntropySpec",
    "auto_chunk_size",
    "options_from",
    "with_options",
]

F = TypeVar("F", bound=Callable[..., Any])

# "auto" chunks of linear cross-entropy hold about this many bytes of logits (the only
# O(chunk x V) buffer) ...
_CHUNK_BYTES = 64 << 20
# ... but at least this many rows, so each matrix product stays efficient
_MIN_AUTO_CHUNK = 256


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)  # normalising a frozen dataclass's field in __post_init__


def _check_shared_options(options: Any) -> None:
    """The options every cross-entropy shares: ignore_index, label_smoothing, z_loss, reduction."""
    check_int(options.ignore_index, "ignore_index")
    eps = check_number(options.label_smoothing, "label_smoothing", low=0.0, high=1.0)
    _set(options, "label_smoothing", eps)
    _set(options, "z_loss", check_number(options.z_loss, "z_loss", low=0.0))
    check_reduction(options.reduction, REDUCTIONS)


def options_from(options_type: type, given: dict[str, Any], caller: str) -> Any:
    """``options_type(**given)``, with an unknown keyword reported against ``caller`` and the
    options it accepts."""
    known = list(options_type.__dataclass_fields__)  # dataclasses.fields: not traceable by torch.compile
    unknown = [k for k in given if k not in known]
    if unknown:
        raise TypeError(
            f"{caller} got unknown option(s) {', '.join(map(repr, unknown))}; its options are "
            f"{', '.join(known)}"
        )
    return options_type(**given)


def with_options(options_type: type) -> Callable[[F], F]:
    """Show ``options_type``'s fields, with their defaults, as the keyword-only parameters of a
    function that takes them as ``**options`` (for ``help()``, ``inspect.signature`` and the
    modules that validate option names against it)."""

    def decorate(function: F) -> F:
        signature = inspect.signature(function)
        kept = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
        names = {p.name for p in kept}
        added = [
            inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=f.type)
            for f in dataclasses.fields(options_type)
            if f.name not in names
        ]
        function.__signature__ = signature.replace(parameters=kept + added)  # type: ignore[attr-defined]
        return function

    return decorate


@dataclass(frozen=True)
class CrossEntropyOptions:
    """Cross-entropy's scalar options as the caller chose them (see
    :func:`losskit.cross_entropy` for their meaning), validated on construction.  The fields
    follow the order of :func:`losskit.cross_entropy`'s signature (a test keeps them so)."""

    ignore_index: int = -100
    label_smoothing: float = 0.0
    axis: int = -1
    temperature: float = 1.0
    reduction: str = "mean"
    z_loss: float = 0.0

    def __post_init__(self) -> None:
        _check_shared_options(self)
        check_int(self.axis, "axis")
        _set(self, "temperature", check_number(self.temperature, "temperature", low=0.0, low_inclusive=False))


class CrossEntropyArrays(NamedTuple):
    """The arrays of one cross-entropy call: logits, class indices or probabilities, and the
    optional class weights, sample mask and normalizer (a number or a 0-d array)."""

    input: Array
    target: Array
    weight: Array | None = None
    where: Array | None = None
    normalizer: float | Array | None = None


@dataclass(frozen=True)
class CrossEntropySpec:
    """One call of cross-entropy, validated: its options and what its arrays say.

    ``axis`` is the class axis counted from the front; ``sample_shape`` is the input's shape
    without it (the shape of ``reduction="none"``); ``class_indices`` tells integer targets from
    class probabilities; ``weighted`` whether per-class weights were given.
    """

    axis: int
    num_classes: int
    sample_shape: tuple[int, ...]
    class_indices: bool
    weighted: bool
    ignore_index: int
    label_smoothing: float
    temperature: float
    z_loss: float
    reduction: str

    @classmethod
    def of(
        cls,
        xp: Namespace,
        options: CrossEntropyOptions,
        arrays: CrossEntropyArrays,
    ) -> CrossEntropySpec:
        """Check the arrays of one call against ``options`` and return the spec."""
        input, target, weight, where, normalizer = arrays
        targets = check_class_targets(xp, input, target, options.axis, options.ignore_index, weight, where)
        check_normalizer(normalizer)
        return cls(
            axis=targets.axis,
            num_classes=targets.num_classes,
            sample_shape=targets.sample_shape,
            class_indices=targets.indices,
            weighted=weight is not None,
            ignore_index=options.ignore_index,
            label_smoothing=options.label_smoothing,
            temperature=options.temperature,
            z_loss=options.z_loss,
            reduction=options.reduction,
        )


def auto_chunk_size(n_rows: int, num_classes: int, itemsize: int = 4) -> int:
    """The chunk of tokens ``chunk_size="auto"`` picks for linear cross-entropy: a power of two
    with about 64 MiB of logits, at least 256 rows, at most ``n_rows``."""
    rows = max(1, _CHUNK_BYTES // max(1, num_classes * itemsize))
    rows = max(_MIN_AUTO_CHUNK, 1 << (rows.bit_length() - 1))
    return max(1, min(n_rows, rows))


@dataclass(frozen=True)
class LinearCrossEntropyOptions:
    """Linear cross-entropy's scalar options as the caller chose them (see
    :func:`losskit.linear_cross_entropy`), validated on construction.  The fields follow the
    order of :func:`losskit.linear_cross_entropy`'s signature (a test keeps them so)."""

    ignore_index: int = -100
    label_smoothing: float = 0.0
    z_loss: float = 0.0
    softcap: float | None = None
    reduction: str = "mean"
    chunk_size: int | str = "auto"

    def __post_init__(self) -> None:
        _check_shared_options(self)
        if self.softcap is not None:
            _set(self, "softcap", check_number(self.softcap, "softcap", low=0.0, low_inclusive=False))
        size = self.chunk_size
        if size != "auto" and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValueError(f"chunk_size must be a positive int or 'auto'; got {size!r}")


class LinearCrossEntropyArrays(NamedTuple):
    """The arrays of one linear cross-entropy call: hidden states ``(..., D)``, the output
    layer's weight ``(V, D)``, class indices and the optional bias ``(V,)``."""

    input: Array
    weight: Array
    target: Array
    bias: Array | None = None


@dataclass(frozen=True)
class LinearCrossEntropySpec:
    """One call of linear cross-entropy, validated: its options and its shapes.

    The logits are ``input @ weight.T + bias`` with ``input`` of shape ``lead_shape + (hidden,)``
    (``num_tokens`` rows once flattened) and ``weight`` of shape ``(num_classes, hidden)``;
    ``chunk`` is the number of rows per chunk (``chunk_size`` resolved).
    """

    num_classes: int
    hidden: int
    lead_shape: tuple[int, ...]
    num_tokens: int
    chunk: int
    ignore_index: int
    label_smoothing: float
    z_loss: float
    softcap: float | None
    reduction: str

    @classmethod
    def of(
        cls,
        xp: Namespace,
        options: LinearCrossEntropyOptions,
        arrays: LinearCrossEntropyArrays,
        *,
        weight_name: str = "weight",
        bias_name: str = "bias",
        vocabulary_shard: bool = False,
    ) -> LinearCrossEntropySpec:
        """Check the arrays of one call against ``options`` and return the spec.

        ``vocabulary_shard``: ``weight`` holds only this process's rows of the output layer, so
        the class indices are checked later, against the whole vocabulary.
        """
        input, weight, target, bias = arrays
        check_float_array(xp, input, "input")
        check_float_array(xp, weight, weight_name)
        if input.ndim < 1:
            raise ValueError("input must have a feature axis (last); got a 0-d array")
        check_nonempty(input, "input")
        hidden = input.shape[-1]
        rows = "V_local" if vocabulary_shard else "num_classes"
        if weight.ndim != 2:
            shape = tuple(weight.shape)
            raise ValueError(f"{weight_name} must be 2-d ({rows}, in_features); got shape {shape}")
        if weight.shape[1] != hidden:
            raise ValueError(
                f"{weight_name} must have shape ({rows}, {hidden}) to match input's last axis of size "
                f"{hidden}; got {tuple(weight.shape)}"
            )
        num_classes = weight.shape[0]
        if num_classes < 1:
            raise ValueError(f"{weight_name} must have at least one row (class)")
        check_integer_array(xp, target, "target")
        lead_shape = tuple(input.shape[:-1])
        if tuple(target.shape) != lead_shape:
            raise ValueError(
                f"target must have input's shape without the last (feature) axis: expected "
                f"{lead_shape}, got {tuple(target.shape)}"
            )
        if bias is not None:
            check_float_array(xp, bias, bias_name)
            if tuple(bias.shape) != (num_classes,):
                raise ValueError(
                    f"{bias_name} must have shape ({num_classes},), one value per class; got "
                    f"{tuple(bias.shape)}"
                )
        if not vocabulary_shard:
            check_class_indices(xp, target, num_classes, options.ignore_index, "target")
        num_tokens = math.prod(lead_shape)
        size = options.chunk_size
        chunk = auto_chunk_size(num_tokens, num_classes) if size == "auto" else min(size, num_tokens)
        return cls(
            num_classes=num_classes,
            hidden=hidden,
            lead_shape=lead_shape,
            num_tokens=num_tokens,
            chunk=max(1, chunk),
            ignore_index=options.ignore_index,
            label_smoothing=options.label_smoothing,
            z_loss=options.z_loss,
            softcap=options.softcap,
            reduction=options.reduction,
        )
