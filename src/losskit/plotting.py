"""Pictures of losses: training curves with the diagnosis marked, and a loss with its gradient.

matplotlib is imported only when a plot is made (``pip install 'losskit[plot]'``), and figures
are drawn with its Agg canvas directly, so no GUI backend is touched and pyplot's global state
is left alone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_history", "plot_loss", "history_png", "report_png"]

_MARK = {  # kind -> (colour, label)
    "nan": ("#d62728", "NaN / inf"),
    "bad_init": ("#9467bd", "bad initialisation"),
    "divergence": ("#d62728", "divergence"),
    "spike": ("#ff7f0e", "spike"),
    "plateau": ("#7f7f7f", "plateau"),
    "overfitting": ("#e377c2", "validation minimum (overfitting onset)"),
    "converged": ("#17becf", "converged"),
}


def _figure(width: float = 8.0, height: float = 4.5) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'losskit[plot]'") from None
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, format="png")
    return p


def _label(role: str, column: str) -> str:
    return role if column in ("", "train", "val", role) else f"{role} ({column})"


def _x(series: Any, axis: str) -> np.ndarray:
    if axis == "step" and series.step is not None:
        return series.step
    if axis == "epoch" and series.epoch is not None:
        return series.epoch
    return series.position


def plot_history(
    history: Any,
    findings: Any = None,
    *,
    path: str | os.PathLike[str],
    baseline: float | None = None,
    title: str | None = None,
    unit: str = "",
) -> Path:
    """Write a PNG of the train (and validation) loss with the findings of :func:`diagnose` marked.

    Marks: the baseline as a dashed horizontal line, NaN and divergence onsets as red vertical
    lines, spikes as orange dots, the validation minimum (overfitting onset) as a green line,
    plateaus and convergence as grey/cyan lines.  A log scale is used when the loss spans more
    than two decades.

    Args:
      history: anything :func:`losskit.diagnostics.as_history` accepts.
      findings: the findings to mark (default: none; pass ``diagnose(history)``).
      path: where to write the PNG (parent folders are created).
      baseline: the baseline loss to draw (optional).
      title: the plot title.
      unit: the loss's unit for the y label (e.g. ``"nats"``).

    Returns the path written.
    """
    return _save(_history_figure(history, findings, baseline=baseline, title=title, unit=unit), path)


def history_png(
    history: Any,
    findings: Any = None,
    *,
    baseline: float | None = None,
    title: str | None = None,
    unit: str = "",
) -> bytes:
    """The picture :func:`plot_history` writes, as PNG bytes (to inline in HTML or show in a
    notebook) instead of a file.  The arguments are those of :func:`plot_history`."""
    import io

    fig = _history_figure(history, findings, baseline=baseline, title=title, unit=unit)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def report_png(report: Any) -> bytes:
    """The loss curves of a :class:`losskit.diagnostics.Report` with its findings marked, as
    PNG bytes (what ``losskit diagnose --html`` puts inline)."""
    if report.history is None:
        raise ValueError(f"the report of {report.source} holds no history to plot")
    title = report.source if report.format == "python" else f"{report.source} ({report.format})"
    return history_png(
        report.history, report.findings, baseline=report.baseline, title=title, unit=report.unit
    )


def _history_figure(
    history: Any,
    findings: Any = None,
    *,
    baseline: float | None = None,
    title: str | None = None,
    unit: str = "",
) -> Any:
    from .diagnostics.history import as_history

    hist = as_history(history)
    findings = list(findings or [])
    train, val = hist.train, hist.val
    # one x axis for both curves: steps when both have them, else epochs, else positions
    if train.step is not None and (val is None or val.step is not None):
        axis = "step"
    elif train.epoch is not None and (val is None or val.epoch is not None):
        axis = "epoch"
    else:
        axis = "position"
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    xt = _x(train, axis)
    yt = np.where(np.isfinite(train.value), train.value, np.nan)
    noisy = yt.size > 200
    ax.plot(xt, yt, color="#1f77b4", lw=0.8, alpha=0.35 if noisy else 0.9, label=_label("train", train.name))
    if noisy:  # a running mean shows the trend through minibatch noise
        k = max(5, yt.size // 50)
        kernel = np.ones(k) / k
        filled = np.where(np.isfinite(yt), yt, 0.0)
        counts = np.convolve(np.isfinite(yt).astype(float), kernel, mode="valid")
        smooth = np.convolve(filled, kernel, mode="valid") / np.where(counts > 0, counts, np.nan)
        ax.plot(
            xt[k // 2 : k // 2 + smooth.size], smooth, color="#1f77b4", lw=1.8, label=f"train, mean of {k}"
        )
    if val is not None:
        xv = _x(val, axis) if axis != "position" else np.linspace(xt[0], xt[-1], len(val) + 1)[1:]
        yv = np.where(np.isfinite(val.value), val.value, np.nan)
        ax.plot(xv, yv, color="#2ca02c", lw=1.8, marker="o", ms=3, label=_label("validation", val.name))
    if baseline is not None:
        ax.axhline(baseline, color="#555555", ls="--", lw=1.0, label=f"baseline {baseline:.4g}")

    finite = np.concatenate([yt[np.isfinite(yt)]] + ([yv[np.isfinite(yv)]] if val is not None else []))
    if finite.size and finite.min() > 0 and finite.max() / finite.min() > 100:
        ax.set_yscale("log")

    labelled: set[str] = set()
    for f in findings:
        if f.kind not in _MARK:
            continue
        colour, label = _MARK[f.kind]
        pos = f.step if axis == "step" else f.epoch if axis == "epoch" else None
        if pos is None:
            continue
        lab = None if f.kind in labelled else label
        labelled.add(f.kind)
        if f.kind == "spike" and f.value is not None:
            ax.plot([pos], [f.value], "o", color=colour, ms=7, mfc="none", mew=2, label=lab)
        else:
            ax.axvline(
                pos, color=colour, ls=":" if f.kind in ("plateau", "converged") else "-", lw=1.5, label=lab
            )
    ax.set_xlabel(axis if axis != "position" else "logged point")
    ax.set_ylabel(f"loss ({unit})" if unit else "loss")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def _curves(name: str, function: Any, kind: str, span: tuple[float, float], targets: tuple[Any, ...]):
    """Yield (label, x, loss, gradient) for each target, computed by losskit itself."""
    from .core.gradients import value_and_grad

    vg = value_and_grad(function)
    x = np.linspace(span[0], span[1], 301)
    for t in targets:
        if kind == "pointwise":
            y = np.full_like(x, float(t))
            value, g = vg(x, y, reduction="none")
            yield f"target {t:g}", x, np.asarray(value), np.asarray(g)
        elif kind == "softmax":  # logit of class 0 varies, the two others stay at 0
            logits = np.stack([x, np.zeros_like(x), np.zeros_like(x)], axis=-1)
            value, g = vg(logits, np.full(x.shape, int(t)), reduction="none")
            yield f"target class {t} (x = logit of class 0 of 3)", x, np.asarray(value), np.asarray(g)[:, 0]
        elif kind == "log_prob":  # log p of class 0 varies, the rest shared by two classes
            rest = np.log((1.0 - np.exp(x)) / 2.0)
            logp = np.stack([x, rest, rest], axis=-1)
            value, g = vg(logp, np.full(x.shape, int(t)), reduction="none")
            yield f"target class {t} (x = log p of class 0 of 3)", x, np.asarray(value), np.asarray(g)[:, 0]
        elif kind == "kl":  # p of class 0 of 2 varies; input is log p
            logp = np.log(np.stack([x, 1.0 - x], axis=-1))
            q = np.broadcast_to(np.array([t, 1.0 - t]), logp.shape).copy()
            value, g = vg(logp, q, reduction="none")
            yield f"q = ({t:g}, {1 - t:g})", x, np.asarray(value).sum(axis=-1), np.asarray(g)[:, 0]
        else:
            raise ValueError(f"unknown curve kind {kind!r}")


def _default_curve(input_space: str) -> tuple[str, tuple[float, float], tuple[Any, ...]] | None:
    return {
        "values": ("pointwise", (-3.0, 3.0), (0.0, 1.0)),
        "probabilities": ("pointwise", (0.01, 0.99), (0.0, 1.0)),
        "logits": ("pointwise", (-6.0, 6.0), (0.0, 1.0)),
        "scores": ("pointwise", (-3.0, 3.0), (0.0, 1.0)),
    }.get(input_space)


def plot_loss(loss: Any, *, path: str | os.PathLike[str]) -> Path:
    """Write a PNG of a loss and its analytic gradient against the prediction, for a few targets.

    Both panels are computed by losskit (the loss with ``reduction="none"`` and
    :func:`losskit.value_and_grad`).  Works for the losses described in
    :data:`losskit.diagnostics.explain.DESCRIPTIONS` and for any elementwise loss of values,
    probabilities, logits or scores; raises ``ValueError`` for other losses.
    """
    from .core.catalog import lookup
    from .diagnostics.explain import explain

    info = explain(loss)
    curve = info.curve or _default_curve(info.input_space)
    if curve is None:
        raise ValueError(f"no loss/gradient picture for {info.name} (a loss of {info.input_space})")
    kind, span, targets = curve
    function = lookup(info.name).function
    try:
        rows = list(_curves(info.name, function, kind, span, targets))
    except Exception as exc:  # an elementwise call that this loss does not support
        raise ValueError(f"no loss/gradient picture for {info.name}: {exc}") from None
    if any(np.shape(v) != x.shape or np.shape(g) != x.shape for _, x, v, g in rows):
        raise ValueError(f"no loss/gradient picture for {info.name}: it is not an elementwise loss")
    fig = _figure(10.0, 4.0)
    ax_l, ax_g = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for label, x, value, g in rows:
        (line,) = ax_l.plot(x, value, lw=1.8, label=label)
        ax_g.plot(x, g, lw=1.8, color=line.get_color(), label=label)
    xlabel = {"softmax": "logit of class 0", "log_prob": "log p of class 0", "kl": "p of class 0"}.get(
        kind, {"probabilities": "prediction p", "logits": "logit x"}.get(info.input_space, "prediction x")
    )
    ax_l.set_title(f"{info.name}: {info.formula}", fontsize=9)
    ax_g.set_title(
        "analytic gradient d loss / d "
        + ("log p" if kind in ("log_prob", "kl") else "input")
        + " (class 0)" * (kind != "pointwise"),
        fontsize=9,
    )
    for ax in (ax_l, ax_g):
        ax.set_xlabel(xlabel)
        ax.grid(True, alpha=0.3)
        ax.axhline(0.0, color="#999999", lw=0.8)
    ax_l.set_ylabel("loss")
    ax_g.set_ylabel("gradient")
    ax_l.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
