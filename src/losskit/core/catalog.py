"""The public listing of every loss: its family, the space its prediction lives in, and the
names of its equivalents in PyTorch, Optax and Keras.  The README's table is checked against
this listing by the test suite."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

FAMILIES = (
    "regression",
    "classification",
    "divergence",
    "contrastive",
    "ranking",
    "segmentation",
    "sequence",
    "penalty",
    "metric",
    "boxes",
    "images",
    "transport",
    "preference",
    "policy",
)
INPUT_SPACES = (
    "values",
    "probabilities",
    "logits",
    "log-probabilities",
    "scores",
    "embeddings",
    "parameters",
    "boxes",
    "points",
)


@dataclass(frozen=True)
class LossInfo:
    """One row of :func:`catalog`."""

    name: str
    function: Callable[..., Any]
    family: str
    input_space: str
    formula: str
    torch: str | None = None
    optax: str | None = None
    keras: str | None = None


_CATALOG: dict[str, LossInfo] = {}


def catalogued(
    *,
    family: str,
    input_space: str,
    formula: str,
    torch: str | None = None,
    optax: str | None = None,
    keras: str | None = None,
    name: str | None = None,
) -> Callable[[F], F]:
    """Record a public loss in the catalog (decorator; returns the function unchanged)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}")
    if input_space not in INPUT_SPACES:
        raise ValueError(f"unknown input space {input_space!r}")

    def record(fn: F) -> F:
        key = name or fn.__name__
        _CATALOG[key] = LossInfo(key, fn, family, input_space, formula, torch, optax, keras)
        return fn

    return record


def catalog() -> list[LossInfo]:
    """Every loss in losskit, ordered by family then name.

    Each entry gives the loss's ``name`` (as exported by :mod:`losskit`), the ``function``,
    its ``family``, the ``input_space`` of its prediction argument (``values``,
    ``probabilities``, ``logits``, ``log-probabilities``, ``scores``, ``embeddings``,
    ``parameters``), a one-line ``formula``, and the equivalent names in PyTorch, Optax and
    Keras (``None`` where that library has none).

    An equivalent written with arguments, e.g. ``optax.losses.sigmoid_focal_loss(alpha=0.25)``,
    equals losskit's loss at losskit's defaults only when given those arguments: its own
    defaults differ there.  A name without arguments equals it at both libraries' defaults
    (the reduction and the layout of the arguments aside, which each loss's docstring states).
    A note in parentheses after a space, ``optax.losses.triplet_margin_loss (eps inside the
    root)``, names a difference that no argument removes.
    """
    order = {f: i for i, f in enumerate(FAMILIES)}
    return sorted(_CATALOG.values(), key=lambda info: (order[info.family], info.name))


def lookup(name: str) -> LossInfo:
    """The catalog entry for ``name`` (e.g. ``"cross_entropy"``), or a ``KeyError`` listing
    the known names."""
    try:
        return _CATALOG[name]
    except KeyError:
        raise KeyError(f"unknown loss {name!r}; known losses: {', '.join(sorted(_CATALOG))}") from None


def markdown_table() -> str:
    """The catalog as the Markdown table the README shows (kept in sync by a test)."""

    def cell(text: str | None) -> str:
        return "—" if not text else f"`{text}`".replace("|", "\\|")

    lines = [
        "| loss | family | prediction | formula | PyTorch | Optax | Keras |",
        "|---|---|---|---|---|---|---|",
    ]
    for info in catalog():
        lines.append(
            f"| `{info.name}` | {info.family} | {info.input_space} | {cell(info.formula)} | "
            f"{cell(info.torch)} | {cell(info.optax)} | {cell(info.keras)} |"
        )
    return "\n".join(lines)
