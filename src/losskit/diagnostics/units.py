"""Units of a log-loss: nats, bits, perplexity, bits per token / character / byte.

Every cross-entropy in losskit (and in PyTorch, JAX, Keras) is computed with the natural
logarithm, so it is in **nats** per prediction.  Dividing by :math:`\\ln 2` gives **bits**;
:math:`e^{\\text{nats}} = 2^{\\text{bits}}` is the **perplexity**, the size of a uniform choice
that would be as surprising (a loss of :math:`\\ln 27 = 3.2958` nats is 4.7549 bits, perplexity
27).  A per-token loss becomes bits per character (or byte) by spreading the bits of all tokens
over the characters (bytes) they cover.

All functions accept Python numbers or NumPy arrays and return the same kind.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "LN2",
    "UNITS",
    "to_bits",
    "to_nats",
    "perplexity",
    "from_perplexity",
    "bits_per_token",
    "bits_per_character",
    "bits_per_byte",
    "convert",
]

LN2 = math.log(2.0)
UNITS = ("nats", "bits", "perplexity")


def _as_number(value: Any, name: str) -> Any:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a real number or an array of them; got bool")
    if isinstance(value, (int, float)):
        return float(value)
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a real number or an array of them; got {type(value).__name__}"
        ) from None
    return arr


def to_bits(nats: Any) -> Any:
    r"""Convert a loss in nats to bits: :math:`\text{bits} = \text{nats} / \ln 2`.

    >>> round(to_bits(math.log(27)), 4)
    4.7549
    """
    return _as_number(nats, "nats") / LN2


def to_nats(bits: Any) -> Any:
    r"""Convert a loss in bits to nats: :math:`\text{nats} = \text{bits}\cdot\ln 2`."""
    return _as_number(bits, "bits") * LN2


def perplexity(loss: Any, unit: str = "nats") -> Any:
    r"""Perplexity of a mean log-loss: :math:`e^{\text{nats}} = 2^{\text{bits}}`.

    Args:
      loss: mean negative log-likelihood per prediction (e.g. a cross-entropy).
      unit: ``"nats"`` (default; what every framework computes) or ``"bits"``.

    A model that guesses uniformly over :math:`K` classes has perplexity :math:`K`.
    """
    x = _as_number(loss, "loss")
    if unit not in ("nats", "bits"):
        raise ValueError(f"unit must be 'nats' or 'bits'; got {unit!r}")
    nats = x if unit == "nats" else x * LN2
    if isinstance(nats, np.ndarray):
        with np.errstate(over="ignore"):
            return np.exp(nats)
    return math.exp(nats) if nats < 709.0 else math.inf  # math.exp raises on overflow


def from_perplexity(ppl: Any, unit: str = "nats") -> Any:
    """The mean log-loss (in ``unit``, default nats) whose perplexity is ``ppl`` (must be >= 1
    for a real model; any positive value is accepted)."""
    x = _as_number(ppl, "perplexity")
    if np.any(np.asarray(x) <= 0):
        raise ValueError(f"perplexity must be > 0; got {ppl!r}")
    nats = np.log(x) if isinstance(x, np.ndarray) else math.log(x)
    if unit == "nats":
        return nats
    if unit == "bits":
        return nats / LN2
    raise ValueError(f"unit must be 'nats' or 'bits'; got {unit!r}")


def bits_per_token(loss: Any, unit: str = "nats") -> Any:
    """Bits per token of a mean per-token loss given in ``unit`` (default nats)."""
    if unit == "nats":
        return to_bits(loss)
    if unit == "bits":
        return _as_number(loss, "loss")
    raise ValueError(f"unit must be 'nats' or 'bits'; got {unit!r}")


def _per_unit(loss: Any, tokens: float, count: float, count_name: str, unit: str) -> Any:
    for name, n in (("tokens", tokens), (count_name, count)):
        if isinstance(n, bool) or not isinstance(n, (int, float)) or not n > 0:
            raise ValueError(f"{name} must be a positive number; got {n!r}")
    return bits_per_token(loss, unit) * (float(tokens) / float(count))


def bits_per_character(loss: Any, *, tokens: float, characters: float, unit: str = "nats") -> Any:
    r"""Bits per character of a mean per-token loss.

    :math:`\text{bpc} = \text{bits per token}\times\text{tokens}/\text{characters}`: the total
    information spent on a text, spread over its characters, which compares models whose
    tokenizers differ.  For a character-level model ``tokens == characters``.

    Args:
      loss: mean loss per token (nats by default).
      tokens: number of tokens the loss was averaged over.
      characters: number of characters those tokens spell.
      unit: unit of ``loss``, ``"nats"`` (default) or ``"bits"``.
    """
    return _per_unit(loss, tokens, characters, "characters", unit)


def bits_per_byte(loss: Any, *, tokens: float, bytes: float, unit: str = "nats") -> Any:
    """Bits per UTF-8 byte of a mean per-token loss (as :func:`bits_per_character`, counting
    bytes)."""
    return _per_unit(loss, tokens, bytes, "bytes", unit)


def convert(value: float, from_unit: str = "nats") -> dict[str, float]:
    """One log-loss value in all three units: ``{"nats": ..., "bits": ..., "perplexity": ...}``.

    Args:
      value: the number to convert.
      from_unit: what ``value`` is, ``"nats"`` (default), ``"bits"`` or ``"perplexity"``.
    """
    if from_unit not in UNITS:
        raise ValueError(f"from_unit must be one of {', '.join(UNITS)}; got {from_unit!r}")
    v = _as_number(value, "value")
    if isinstance(v, np.ndarray):
        if v.ndim:
            raise TypeError("convert takes one number; use to_bits/to_nats/perplexity for arrays")
        v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"value must be finite; got {value!r}")
    if from_unit == "nats":
        nats = v
    elif from_unit == "bits":
        nats = v * LN2
    else:
        nats = from_perplexity(v)
    return {"nats": nats, "bits": nats / LN2, "perplexity": perplexity(nats)}
