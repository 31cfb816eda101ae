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
    check_reduction,
)

__all__ = [
    "LinearLogProbsOptions",
    "LinearLogProbsArrays",
    "LinearLogProbsSpec",
    "auto_vocab_chunk_size",
    "check_chunk_size",
    "DIVERGENCES",
    "LinearDistillationOptions",
    "LinearDistillationArrays",
    "LinearDistillationSpec",
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


# -- distillation from hidden states -------------------------------------------------------------

DIVERGENCES = ("forward_kl", "reverse_kl", "jsd")


@dataclass(frozen=True)
class LinearDistillationOptions:
    """The scalar options of :func:`losskit.linear_distillation`, validated on construction (in
    the order of its signature)."""

    divergence: str = "forward_kl"
    beta: float = 0.5
    temperature: float = 1.0
    reduction: str = "mean"
    chunk_size: int | str = "auto"

    def __post_init__(self) -> None:
        if not isinstance(self.divergence, str) or self.divergence not in DIVERGENCES:
            raise ValueError(
                f"divergence must be one of {', '.join(map(repr, DIVERGENCES))}; got {self.divergence!r}"
            )
        object.__setattr__(self, "beta", check_number(self.beta, "beta", low=0.0, high=1.0))
        t = check_number(self.temperature, "temperature", low=0.0, low_inclusive=False)
        object.__setattr__(self, "temperature", t)
        check_reduction(self.reduction, ("mean", "sum", "none"))
        check_chunk_size(self.chunk_size, "chunk_size")


class LinearDistillationArrays(NamedTuple):
    """The arrays of one call: the student's hidden states ``(..., D_s)`` and head ``(V, D_s)``,
    the teacher's ``(..., D_t)`` and ``(V, D_t)``, the optional biases ``(V,)`` and the optional
    boolean token mask ``(...)``."""

    student_hidden: Array
    student_weight: Array
    teacher_hidden: Array
    teacher_weight: Array
    student_bias: Array | None = None
    teacher_bias: Array | None = None
    where: Array | None = None


@dataclass(frozen=True)
class LinearDistillationSpec:
    """One call, validated.  ``divergence`` is the one computed: ``"jsd"`` with ``beta`` 0 or 1
    is resolved to ``"forward_kl"`` / ``"reverse_kl"`` (the limits the generalised JSD is
    defined to take there)."""

    num_classes: int
    lead_shape: tuple[int, ...]
    num_tokens: int
    student_size: int
    teacher_size: int
    chunk: int
    divergence: str
    beta: float
    temperature: float
    reduction: str

    @classmethod
    def of(
        cls, xp: Namespace, options: LinearDistillationOptions, arrays: LinearDistillationArrays
    ) -> LinearDistillationSpec:
        sh, sw, th, tw, sb, tb, where = arrays
        sizes = []
        for h_name, h, w_name, w in (
            ("student_hidden", sh, "student_weight", sw),
            ("teacher_hidden", th, "teacher_weight", tw),
        ):
            check_float_array(xp, h, h_name)
            check_float_array(xp, w, w_name)
            if h.ndim < 1:
                raise ValueError(f"{h_name} must have a feature axis (last); got a 0-d array")
            check_nonempty(h, h_name)
            if w.ndim != 2 or w.shape[1] != h.shape[-1]:
                raise ValueError(
                    f"{w_name} must have shape (vocab_size, {h.shape[-1]}) to match {h_name}'s last axis; "
                    f"got {tuple(w.shape)}"
                )
            sizes.append(h.shape[-1])
        lead_shape = tuple(sh.shape[:-1])
        if tuple(th.shape[:-1]) != lead_shape:
            raise ValueError(
                f"teacher_hidden must have student_hidden's leading shape {lead_shape} (one row per token); "
                f"got {tuple(th.shape[:-1])}"
            )
        v = sw.shape[0]
        if tw.shape[0] != v:
            raise ValueError(
                f"teacher_weight must have as many rows (vocabulary entries) as student_weight ({v}); "
                f"got {tw.shape[0]}"
            )
        for name, b in (("student_bias", sb), ("teacher_bias", tb)):
            if b is not None:
                check_float_array(xp, b, name)
                if tuple(b.shape) != (v,):
                    raise ValueError(
                        f"{name} must have shape ({v},), one value per vocabulary entry; got {tuple(b.shape)}"
                    )
        if where is not None:
            if where.dtype != xp.bool:
                raise TypeError(f"where must be a boolean mask; got dtype {where.dtype}")
            if tuple(where.shape) != lead_shape:
                raise ValueError(
                    f"where must have the hidden states' leading shape {lead_shape} (one flag per token); "
                    f"got {tuple(where.shape)}"
                )
        divergence = options.divergence
        if divergence == "jsd" and options.beta in (0.0, 1.0):
            divergence = "forward_kl" if options.beta == 0.0 else "reverse_kl"
        num_tokens = math.prod(lead_shape)
        size = options.chunk_size
        # two blocks of logits (student and teacher) are live per chunk
        chunk = auto_chunk_size(num_tokens, 2 * v) if size == "auto" else min(size, num_tokens)
        return cls(
            num_classes=v,
            lead_shape=lead_shape,
            num_tokens=num_tokens,
            student_size=sizes[0],
            teacher_size=sizes[1],
            chunk=max(1, chunk),
            divergence=divergence,
            beta=options.beta,
            temperature=options.temperature,
            reduction=options.reduction,
        )
