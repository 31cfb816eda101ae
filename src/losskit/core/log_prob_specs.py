"""The contract of the token log-probabilities of a linear head, checked once.

:func:`losskit.linear_log_probs` has several implementations: the portable array-API chunk
loop, the NumPy kernel (:mod:`losskit.kernels.linear_log_probs`), the torch autograd Function
and the JAX custom derivative.  They take the same options, written and validated here:

- :class:`LinearLogProbsOptions`: what the caller chose (with the defaults), checked on
  construction;
- :class:`LinearLogProbsSpec`: the options resolved against the arrays of one call (shapes,
  token and vocabulary chunk sizes), built by ``of(...)`` after every check has passed.  It is
  small, immutable and hashable (a static argument under ``jax.jit``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from .backend import Array, Namespace
from .specs import auto_chunk_size
from .validation import (
    check_class_indices,
    check_float_array,
    check_int,
    check_integer_array,
    check_nonempty,
    check_number,
)

__all__ = [
    "LinearLogProbsOptions",
    "LinearLogProbsArrays",
    "LinearLogProbsSpec",
    "auto_vocab_chunk_size",
    "check_chunk_size",
]

# "auto": the vocabulary is split into blocks (with an online log-sum-exp) only above this many
# classes; below it one block of the whole vocabulary lets the gradient reuse the forward's
# logits (three matrix products instead of four)
_MAX_UNSPLIT_VOCAB = 1 << 18
_AUTO_VOCAB_BLOCK = 1 << 16


def auto_vocab_chunk_size(num_classes: int) -> int:
    """The vocabulary block ``vocab_chunk_size="auto"`` picks: the whole vocabulary up to
    2**18 classes, else blocks of 2**16."""
    return num_classes if num_classes <= _MAX_UNSPLIT_VOCAB else _AUTO_VOCAB_BLOCK


def check_chunk_size(size: object, name: str) -> None:
    """A positive int or ``"auto"``."""
    if size != "auto" and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(f"{name} must be a positive int or 'auto'; got {size!r}")


@dataclass(frozen=True)
class LinearLogProbsOptions:
    """The scalar options of :func:`losskit.linear_log_probs`, validated on construction (in
    the order of its signature)."""

    temperature: float = 1.0
    ignore_index: int = -100
    return_entropy: bool = False
    chunk_size: int | str = "auto"
    vocab_chunk_size: int | str = "auto"

    def __post_init__(self) -> None:
        t = check_number(self.temperature, "temperature", low=0.0, low_inclusive=False)
        object.__setattr__(self, "temperature", t)
        check_int(self.ignore_index, "ignore_index")
        if not isinstance(self.return_entropy, bool):
            raise TypeError(f"return_entropy must be a bool; got {type(self.return_entropy).__name__}")
        check_chunk_size(self.chunk_size, "chunk_size")
        check_chunk_size(self.vocab_chunk_size, "vocab_chunk_size")


class LinearLogProbsArrays(NamedTuple):
    """The arrays of one call: hidden states ``(..., D)``, the head's weight ``(V, D)``, the
    token indices ``(...)`` and the optional bias ``(V,)``."""

    hidden: Array
    weight: Array
    tokens: Array
    bias: Array | None = None


@dataclass(frozen=True)
class LinearLogProbsSpec:
    """One call, validated: ``hidden`` is ``lead_shape + (hidden_size,)`` (``num_tokens`` rows
    once flattened), ``weight`` ``(num_classes, hidden_size)``; ``chunk`` tokens and
    ``vocab_chunk`` classes are live at a time."""

    num_classes: int
    hidden_size: int
    lead_shape: tuple[int, ...]
    num_tokens: int
    chunk: int
    vocab_chunk: int
    temperature: float
    ignore_index: int
    return_entropy: bool

    @classmethod
    def of(
        cls,
        xp: Namespace,
        options: LinearLogProbsOptions,
        arrays: LinearLogProbsArrays,
        *,
        names: tuple[str, str, str, str] = ("hidden", "weight", "tokens", "bias"),
    ) -> LinearLogProbsSpec:
        """Check the arrays of one call against ``options`` and return the spec; ``names``
        are the arguments' names in error messages."""
        hidden, weight, tokens, bias = arrays
        h_name, w_name, t_name, b_name = names
        check_float_array(xp, hidden, h_name)
        check_float_array(xp, weight, w_name)
        if hidden.ndim < 1:
            raise ValueError(f"{h_name} must have a feature axis (last); got a 0-d array")
        check_nonempty(hidden, h_name)
        size = hidden.shape[-1]
        if weight.ndim != 2:
            raise ValueError(
                f"{w_name} must be 2-d (vocab_size, hidden_size); got shape {tuple(weight.shape)}"
            )
        if weight.shape[1] != size:
            raise ValueError(
                f"{w_name} must have shape (vocab_size, {size}) to match {h_name}'s last axis of size "
                f"{size}; got {tuple(weight.shape)}"
            )
        num_classes = weight.shape[0]
        if num_classes < 1:
            raise ValueError(f"{w_name} must have at least one row (vocabulary entry)")
        check_integer_array(xp, tokens, t_name)
        lead_shape = tuple(hidden.shape[:-1])
        if tuple(tokens.shape) != lead_shape:
            raise ValueError(
                f"{t_name} must have {h_name}'s shape without the last (feature) axis: expected "
                f"{lead_shape}, got {tuple(tokens.shape)}"
            )
        if bias is not None:
            check_float_array(xp, bias, b_name)
            if tuple(bias.shape) != (num_classes,):
                raise ValueError(
                    f"{b_name} must have shape ({num_classes},), one value per vocabulary entry; got "
                    f"{tuple(bias.shape)}"
                )
        check_class_indices(xp, tokens, num_classes, options.ignore_index, t_name)
        num_tokens = math.prod(lead_shape)
        vsize = options.vocab_chunk_size
        vocab_chunk = auto_vocab_chunk_size(num_classes) if vsize == "auto" else min(vsize, num_classes)
        tsize = options.chunk_size
        chunk = auto_chunk_size(num_tokens, vocab_chunk) if tsize == "auto" else min(tsize, num_tokens)
        return cls(
            num_classes=num_classes,
            hidden_size=size,
            lead_shape=lead_shape,
            num_tokens=num_tokens,
            chunk=max(1, chunk),
            vocab_chunk=max(1, vocab_chunk),
            temperature=options.temperature,
            ignore_index=options.ignore_index,
            return_entropy=options.return_entropy,
        )
