"""What a loss is: formula, derivative, input space, properties, equivalents elsewhere.

Names, families, input spaces, one-line formulas and PyTorch/Optax/Keras names come from
:func:`losskit.catalog`, so every catalogued loss can be explained; the losses described in
:data:`DESCRIPTIONS` (one table, one row per loss) get the derivative, properties and notes too.
"""

from __future__ import annotations

import html
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from .baseline import resolve_loss_name

__all__ = ["Explanation", "explain", "DESCRIPTIONS", "PROPERTIES"]

PROPERTIES = ("non_negative", "zero_at_perfection", "convex", "robust_to_outliers")

# name -> derivative, properties, notes, baseline, and the curve `explain --plot` draws:
# (kind, (x_min, x_max), targets); kinds: "pointwise", "softmax" (x = logit of class 0 of 3,
# target a class index), "log_prob" (x = log p of class 0), "kl" (x = p of class 0 of 2,
# targets = q of class 0).
DESCRIPTIONS: dict[str, dict[str, Any]] = {
    "mse": {
        "derivative": "d/dx = 2 (x - y) / n   (n counted elements for 'mean')",
        "properties": {
            "non_negative": "yes",
            "zero_at_perfection": "yes",
            "convex": "yes (in the prediction)",
            "robust_to_outliers": "no: an error twice as large costs four times as much",
        },
        "notes": "The Gaussian negative log-likelihood up to constants; its minimiser is the conditional "
        "mean. Worked example: mse([2.5, 3.1, 4.8], [2, 3, 5]) = 0.1; (0.7 - 1)^2 = 0.09.",
        "baseline": "the variance of the targets (predicting their mean)",
        "curve": ("pointwise", (-3.0, 3.0), (0.0, 1.0)),
    },
    "mae": {
        "derivative": "d/dx = sign(x - y) / n   (0 where x == y)",
        "properties": {
            "non_negative": "yes",
            "zero_at_perfection": "yes",
            "convex": "yes (not differentiable at 0)",
            "robust_to_outliers": "yes: every error pulls with the same force",
        },
        "notes": "The Laplace negative log-likelihood; its minimiser is the conditional median. The gradient "
        "does not shrink near the optimum, so lower the learning rate late in training.",
        "baseline": "the mean absolute deviation from the targets' median",
        "curve": ("pointwise", (-3.0, 3.0), (0.0, 1.0)),
    },
    "huber": {
        "derivative": "d/dx = d if |d| < delta else delta * sign(d),   d = x - y",
        "properties": {
            "non_negative": "yes",
            "zero_at_perfection": "yes",
            "convex": "yes",
            "robust_to_outliers": "yes: linear beyond delta",
        },
        "notes": "Quadratic near the target (smooth gradients), linear far away (bounded gradients).",
        "baseline": "the loss of the best constant (between the mean and the median)",
        "curve": ("pointwise", (-3.0, 3.0), (0.0, 1.0)),
    },
    "smooth_l1": {
        "derivative": "d/dx = d / beta if |d| < beta else sign(d),   d = x - y",
        "properties": {
            "non_negative": "yes",
            "zero_at_perfection": "yes",
            "convex": "yes",
            "robust_to_outliers": "yes: linear beyond beta",
        },
        "notes": "Huber divided by beta: the linear part has slope 1 whatever beta is (beta = 0 is L1).",
        "baseline": "the loss of the best constant",
        "curve": ("pointwise", (-3.0, 3.0), (0.0, 1.0)),
    },
    "binary_cross_entropy": {
        "derivative": "d/dp = (p - y) / (p (1 - p))",
        "properties": {
            "non_negative": "yes",
            "zero_at_perfection": "yes, for hard targets (soft targets: the minimum is their binary entropy)",
            "convex": "yes (in p)",
            "robust_to_outliers": "no: a confident wrong answer costs without bound",
        },
        "notes": "Takes probabilities; prefer binary_cross_entropy_with_logits on logits, which is exact "
        "where a "
        "sigmoid would round to 0 or 1.",
        "baseline": "ln 2 = 0.6931 for balanced labels; the binary entropy of the positive rate otherwise",
        "curve": ("pointwise", (0.01, 0.99), (0.0, 1.0, 0.3)),
    },
    "binary_cross_entropy_with_logits": {
        "derivative": "d/dx = sigmoid(x) - y   (with pos_weight c: (1 - y) - (1 + (c - 1) y) sigmoid(-x))",
        "properties": {
            "non_negative": "yes",
            "zero_at_perfection": "in the limit |x| -> inf, for hard targets",
            "convex": "yes (in the logit)",
            "robust_to_outliers": "no, but the gradient is bounded by 1 (linear growth)",
        },
        "notes": "Sigmoid and BCE fused: stable for every logit, gradient exact even at x = -50.",
        "baseline": "ln 2 = 0.6931 for balanced labels; the binary entropy of the positive rate otherwise",
        "curve": ("pointwise", (-6.0, 6.0), (0.0, 1.0, 0.5)),
    },
    "cross_entropy": {
        "derivative": "d/dlogits = softmax(logits) - one_hot(target)   (divided by T, smoothed, weighted)",
        "properties": {
            "non_negative": "yes",
            "zero_at_perfection": "in the limit of an infinite margin (hard "
            "targets); soft targets: the minimum is their entropy",
            "convex": "yes (in the logits)",
            "robust_to_outliers": "no: a mislabelled example is pushed on without bound",
        },
        "notes": "Logits in: log_softmax is applied inside, so do not apply softmax first. Worked examples: "
        "uniform logits over 27 classes give ln 27 = 3.2958; logits [2.0, 1.0, 0.1] with target 0 "
        "give 0.4170.",
        "baseline": "ln K for a uniform guess over K classes; the entropy of the class frequencies otherwise",
        "curve": ("softmax", (-6.0, 6.0), (0, 1)),
    },
    "nll": {
        "derivative": "d/dlog_p = -w_t at the target class, 0 elsewhere",
        "properties": {
            "non_negative": "yes (for log-probabilities <= 0)",
            "zero_at_perfection": "yes (log p_t = 0)",
            "convex": "yes (linear in log p)",
            "robust_to_outliers": "no",
        },
        "notes": "Log-probabilities in; nll(log_softmax(x), t) == cross_entropy(x, t).",
        "baseline": "ln K for a uniform guess over K classes",
        "curve": ("log_prob", (-5.0, -0.01), (0, 1)),
    },
    "kl_div": {
        "derivative": "d/dlog_p = -q   (the gradient with respect to the logits below a log_softmax is p - "
        "q)",
        "properties": {
            "non_negative": "yes",
            "zero_at_perfection": "yes (p == q)",
            "convex": "yes",
            "robust_to_outliers": "no",
        },
        "notes": "input is log p (the model), target is q (the reference) - PyTorch's order. Use reduction "
        "'batchmean' (losskit's default) for the true KL per example; PyTorch's default 'mean' also "
        "divides by the number of classes.",
        "baseline": "the mean KL from each target to the average target",
        "curve": ("kl", (0.01, 0.99), (0.2, 0.5, 0.9)),
    },
}


@dataclass(frozen=True)
class Explanation:
    """What :func:`explain` returns (every field a string, ``None`` when unknown)."""

    name: str
    family: str
    input_space: str
    formula: str
    derivative: str | None
    properties: dict[str, str | None]
    equivalents: dict[str, str | None]
    summary: str
    notes: str | None = None
    baseline: str | None = None
    signature: str = ""
    curve: tuple[Any, ...] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("curve")
        return d

    def __str__(self) -> str:
        """The explanation as ``losskit explain`` prints it."""
        lines = [
            f"{self.name}  ({self.family}; prediction in {self.input_space} space)",
            f"  formula:    {self.formula}",
            f"  derivative: {self.derivative or 'see the docstring'}",
            f"  signature:  {self.signature}",
            "  properties:",
        ]
        for key, value in self.properties.items():
            lines.append(f"    {key.replace('_', ' ')}: {value if value is not None else 'not described'}")
        if self.baseline:
            lines.append(f"  baseline:   {self.baseline}")
        lines.append(f"  equivalents: {self._equivalents() or 'none'}")
        text = self.notes or self.summary
        if text:
            lines.append(textwrap.fill(text, width=100, initial_indent="  ", subsequent_indent="  "))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Explanation(name={self.name!r}, family={self.family!r}, formula={self.formula!r})"

    def _equivalents(self) -> str:
        return ", ".join(f"{lib}: {name}" for lib, name in self.equivalents.items() if name)

    def _rows(self) -> list[tuple[str, str]]:
        rows = [
            ("formula", self.formula),
            ("derivative", self.derivative or "see the docstring"),
            ("input", f"{self.input_space} ({self.family})"),
        ]
        rows += [(k.replace("_", " "), v) for k, v in self.properties.items() if v is not None]
        if self.baseline:
            rows.append(("baseline", self.baseline))
        rows.append(("equivalents", self._equivalents() or "none"))
        return rows

    def _repr_markdown_(self) -> str:
        lines = [f"**{self.name}**: {self.summary}" if self.summary else f"**{self.name}**", ""]
        lines += [
            f"- *{k}*: `{v}`" if k in ("formula", "derivative") else f"- *{k}*: {v}" for k, v in self._rows()
        ]
        if self.notes:
            lines += ["", self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        def cell(k: str, v: str) -> str:
            return f"<code>{html.escape(v)}</code>" if k in ("formula", "derivative") else html.escape(v)

        rows = "".join(
            f'<tr><th style="text-align:left">{html.escape(k)}</th><td>{cell(k, v)}</td></tr>'
            for k, v in self._rows()
        )
        notes = f"<p>{html.escape(self.notes)}</p>" if self.notes else ""
        summary = f" {html.escape(self.summary)}" if self.summary else ""
        return (
            f'<div class="losskit-explanation"><p><strong>{html.escape(self.name)}</strong>:{summary}</p>'
            f"<table>{rows}</table>{notes}</div>"
        )


def _summary(fn: Callable[..., Any]) -> str:
    doc = inspect.getdoc(fn) or ""
    para = doc.split("\n\n")[0].replace("\n", " ").strip()
    return para


def explain(loss: str | Callable[..., Any]) -> Explanation:
    """Explain a loss: formula, derivative, input space, properties and equivalents.

    Args:
      loss: a catalogued loss name (``"cross_entropy"``), a common alias (``"bce"``, ``"l2"``)
        or the loss function itself.

    Returns:
      An :class:`Explanation`.  ``properties`` has the keys ``non_negative``,
      ``zero_at_perfection``, ``convex`` (in the prediction) and ``robust_to_outliers``;
      ``equivalents`` has ``torch``, ``optax`` and ``keras``.  For a loss without a row in
      :data:`DESCRIPTIONS`, the derivative and properties are ``None`` and the docstring's first
      paragraph is the summary.
    """
    from ..core.catalog import lookup

    name = resolve_loss_name(loss)
    info = lookup(name)
    row = DESCRIPTIONS.get(name, {})
    props = {p: row.get("properties", {}).get(p) for p in PROPERTIES}
    try:
        sig = f"{name}{inspect.signature(info.function)}"
    except (TypeError, ValueError):
        sig = name
    return Explanation(
        name=name,
        family=info.family,
        input_space=info.input_space,
        formula=info.formula,
        derivative=row.get("derivative"),
        properties=props,
        equivalents={"torch": info.torch, "optax": info.optax, "keras": info.keras},
        summary=_summary(info.function),
        notes=row.get("notes"),
        baseline=row.get("baseline"),
        signature=sig,
        curve=row.get("curve"),
    )
