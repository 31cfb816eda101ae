"""The diagnosis of one training run, for people (text, Markdown, HTML) and programs (JSON).

:func:`report` reads a log (or takes a history already in memory), diagnoses it and returns a
:class:`Report`: where the run came from, its format and columns, how many points it has, the
baseline it was judged against, and the :class:`~losskit.diagnostics.Finding` objects.
``str(report)`` is what ``losskit diagnose`` prints; in a notebook the report shows itself as
Markdown or HTML.  :func:`reports` does the same for every run found in one or more paths, and
:func:`render_html` writes several reports as one self-contained HTML page (the CLI's
``--html``), with the loss curves inline when their PNGs are given (see
:func:`losskit.plotting.report_png`).
"""

from __future__ import annotations

import base64
import html
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .history import SEVERITIES, Finding, History, as_history, diagnose
from .runs import Run, find_runs, read_run

__all__ = ["Report", "report", "reports", "render_html", "SEVERITY_COLOURS"]

SEVERITY_COLOURS = {"error": "#c62828", "warning": "#e65100", "info": "#1565c0"}
_RANK = {s: i for i, s in enumerate(SEVERITIES)}  # error 0, warning 1, info 2


@dataclass(frozen=True, repr=False)
class Report:
    """The findings of one training run, with what they were judged on.

    Attributes:
      source: where the run came from: a path, ``"<stdin>"``, or ``"python"`` for a history
        passed in memory.
      format: the log format (one of :data:`~losskit.diagnostics.FORMATS`) or ``"python"``.
      columns: the columns/tags read: ``{"train": ..., "val": ...}``.
      findings: what :func:`~losskit.diagnostics.diagnose` found, most severe first.
      baseline: the loss of a constant guess the run was judged against, or ``None``.
      unit: ``"nats"`` for a log-loss baseline, else ``""``.
      train_points: number of logged train-loss points.
      val_points: number of logged validation-loss points.
      warnings: notes about reading the log (damaged records skipped, ...).
      history: the history itself (for plots); not part of comparisons or the JSON.
    """

    source: str
    format: str
    columns: dict[str, str]
    findings: tuple[Finding, ...]
    baseline: float | None = None
    unit: str = ""
    train_points: int = 0
    val_points: int = 0
    warnings: tuple[str, ...] = ()
    history: History | None = field(default=None, compare=False)

    # -- summaries -------------------------------------------------------------------------
    @property
    def worst(self) -> str | None:
        """The most severe severity among the findings (``"error"``, ``"warning"``, ``"info"``)."""
        if not self.findings:
            return None
        return min((f.severity for f in self.findings), key=lambda s: _RANK.get(s, len(_RANK)))

    def counts(self) -> dict[str, int]:
        """Number of findings of each severity, e.g. ``{"error": 1, "warning": 2, "info": 0}``."""
        return {s: sum(f.severity == s for f in self.findings) for s in SEVERITIES}

    def fails(self, threshold: str) -> bool:
        """Whether a finding is at or above ``threshold`` (``"error"`` or ``"warning"``)."""
        if threshold not in _RANK:
            raise ValueError(f"threshold must be one of {', '.join(SEVERITIES)}; got {threshold!r}")
        return any(_RANK.get(f.severity, len(_RANK)) <= _RANK[threshold] for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``path``, ``format``, ``columns``, ``baseline``, ``unit``,
        ``train_points``, ``val_points``, ``findings`` (each :meth:`Finding.to_dict`) and
        ``warnings``."""
        return {
            "path": self.source,
            "format": self.format,
            "columns": dict(self.columns),
            "baseline": self.baseline,
            "unit": self.unit or None,
            "train_points": self.train_points,
            "val_points": self.val_points,
            "findings": [f.to_dict() for f in self.findings],
            "warnings": list(self.warnings),
        }

    # -- text ------------------------------------------------------------------------------
    def _columns_text(self) -> str:
        return ", ".join(f"{k}: {v}" for k, v in self.columns.items())

    def heading(self) -> str:
        """The first line of :meth:`__str__`: source, format, columns and point counts."""
        cols = self._columns_text()
        return (
            f"{self.source}: {self.format} log ({cols + '; ' if cols else ''}{self.train_points} train "
            f"points, {self.val_points} validation points)"
        )

    def __str__(self) -> str:
        """What ``losskit diagnose`` prints for the run: a heading line, the baseline, then one
        line per finding."""
        lines = [self.heading()]
        if self.baseline is not None:
            lines.append(f"baseline (constant guess): {self.baseline:.4f}")
        lines += [str(f) for f in self.findings]
        return "\n".join(lines)

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in self.counts().items() if n)
        return (
            f"Report(source={self.source!r}, format={self.format!r}, findings={len(self.findings)}: {counts})"
        )

    # -- notebooks -------------------------------------------------------------------------
    def _meta(self) -> str:
        parts = [f"{self.format} log"]
        if self.columns:
            parts.append(self._columns_text())
        parts.append(f"{self.train_points} train points, {self.val_points} validation points")
        if self.baseline is not None:
            unit = f" {self.unit}" if self.unit else ""
            parts.append(f"baseline (constant guess) {self.baseline:.4f}{unit}")
        return "; ".join(parts)

    def _repr_markdown_(self) -> str:
        lines = [f"**{self.source}**: {self._meta()}", ""]
        lines += [f"- {f._repr_markdown_()}" for f in self.findings]
        lines += [f"- *note*: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_html(self, png: bytes | None = None, *, heading: str = "h2") -> str:
        """The report as an HTML fragment (a ``<section>``): a heading, the numbers, a table of
        the findings coloured by severity, and the PNG of the curves inline when given."""
        rows = []
        for f in self.findings:
            colour = SEVERITY_COLOURS.get(f.severity, "#555555")
            where = f._location()
            rows.append(
                f'<tr class="finding {html.escape(f.severity)}">'
                f'<td class="severity" style="color:{colour}">{html.escape(f.severity)}</td>'
                f"<td><code>{html.escape(f.kind)}</code></td><td>{html.escape(where)}</td>"
                f"<td>{html.escape(f.message)}</td></tr>"
            )
        notes = "".join(f'<p class="note">note: {html.escape(w)}</p>' for w in self.warnings)
        image = ""
        if png is not None:
            data = base64.b64encode(png).decode("ascii")
            alt = f"loss curves of {self.source}"
            image = f'<img class="curves" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
        return (
            f'<section class="losskit-report"><{heading}>{html.escape(self.source)}</{heading}>'
            f'<p class="meta">{html.escape(self._meta())}</p>{notes}'
            '<table class="findings"><thead><tr><th>severity</th><th>kind</th><th>where</th>'
            f"<th>what to do</th></tr></thead><tbody>{''.join(rows)}</tbody></table>{image}</section>"
        )

    def _repr_html_(self) -> str:
        return self.to_html(heading="h4")


_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 62em;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
.meta { color: #555; } .note { color: #8a6d00; }
table.findings { border-collapse: collapse; width: 100%; margin: 0.5em 0 1em; }
table.findings th, table.findings td { border-bottom: 1px solid #e5e5e5; padding: 0.35em 0.5em;
       text-align: left; vertical-align: top; }
td.severity { font-weight: bold; white-space: nowrap; }
tr.error { background: #fdecea; } tr.warning { background: #fff4e5; } tr.info { background: #f3f7fd; }
img.curves { display: block; max-width: 100%; height: auto; border: 1px solid #eee; }
.summary { font-weight: bold; }
"""


def summary_line(reports: Sequence[Report]) -> str:
    """One line over several reports, e.g. ``3 runs: 1 with errors, 1 with warnings, 1 fine``."""
    worst = [r.worst for r in reports]
    parts = []
    for s, label in (("error", "with errors"), ("warning", "with warnings")):
        n = sum(w == s for w in worst)
        if n:
            parts.append(f"{n} {label}")
    fine = sum(w not in ("error", "warning") for w in worst)
    if fine:
        parts.append(f"{fine} fine")
    n = len(reports)
    return f"{n} run{'s' if n != 1 else ''}: {', '.join(parts) or 'none'}"


def render_html(
    reports: Sequence[Report],
    images: Sequence[bytes | None] | None = None,
    *,
    title: str = "losskit diagnose",
    notes: Sequence[str] = (),
) -> str:
    """One self-contained HTML page of ``reports`` (no external resources: the style is
    inline and the PNGs in ``images``, one per report or ``None``, are data URIs)."""
    reports = list(reports)
    images = list(images) if images is not None else [None] * len(reports)
    if len(images) != len(reports):
        raise ValueError(f"{len(images)} images for {len(reports)} reports")
    body = "".join(r.to_html(png) for r, png in zip(reports, images))
    extra = "".join(f'<p class="note">{html.escape(n)}</p>' for n in notes)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f'<h1>{html.escape(title)}</h1><p class="summary">{html.escape(summary_line(reports))}</p>'
        f"{extra}{body}</body></html>\n"
    )


# -- making reports --------------------------------------------------------------------------


def _baseline(task: str | None, num_classes: int | None, baseline: float | None) -> tuple[float | None, str]:
    from .baseline import task_baseline

    if baseline is not None:
        log_tasks = ("binary", "multilabel", "multiclass", "sequence", "segmentation", "distribution")
        return float(baseline), "nats" if task in log_tasks else ""
    b = task_baseline(task, num_classes)
    if b is None:
        return None, ""
    return b.value, "nats" if b.log_loss else ""


def _read(run: Run, format: str | None, train: str | None, val: str | None) -> tuple[History, list[str]]:
    from .logs import LogWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LogWarning)
        history = read_run(run, format=format, train=train, val=val)
    notes = []
    for w in caught:
        if issubclass(w.category, LogWarning):
            notes.append(" ".join(str(w.message).split()))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return history, notes


def _make(
    history: History,
    source: str,
    notes: Sequence[str],
    num_classes: int | None,
    task: str | None,
    baseline: float | None,
) -> Report:
    findings = diagnose(history, num_classes=num_classes, task=task, baseline=baseline)
    value, unit = _baseline(task, num_classes, baseline)
    if value is not None and not math.isfinite(value):
        value = None
    return Report(
        source=source,
        format=history.format,
        columns=dict(history.columns),
        findings=tuple(findings),
        baseline=value,
        unit=unit,
        train_points=len(history.train),
        val_points=0 if history.val is None else len(history.val),
        warnings=tuple(notes),
        history=history,
    )


def report(
    history_or_path: Any,
    *,
    num_classes: int | None = None,
    task: str | None = None,
    baseline: float | None = None,
    format: str | None = None,
    train: str | None = None,
    val: str | None = None,
    source: str | None = None,
) -> Report:
    """Diagnose one training run and return a :class:`Report`.

    Args:
      history_or_path: a log file or a folder holding one run (see
        :func:`~losskit.diagnostics.find_runs`), a :class:`~losskit.diagnostics.Run`, or
        anything :func:`~losskit.diagnostics.as_history` accepts (losses, a mapping of columns,
        a Keras ``History``, a :class:`~losskit.diagnostics.History`).
      num_classes: number of classes, for the baseline ln K.
      task: the task (see :func:`~losskit.diagnostics.recommend`).
      baseline: the baseline loss itself (overrides ``num_classes``/``task``).
      format: the log format (default: detected).
      train: the train-loss column/tag (default: matched by name).
      val: the validation-loss column/tag (default: matched by name).
      source: how the report names the run (default: the path, or ``"python"``).

    Raises :class:`~losskit.diagnostics.LogError` for a log that cannot be read, and
    ``ValueError`` for a folder holding several runs (use :func:`reports`).
    """
    if isinstance(history_or_path, (str, os.PathLike, Run)):
        if isinstance(history_or_path, Run):
            run = history_or_path
        else:
            found = find_runs(history_or_path)
            if len(found) > 1:
                names = ", ".join(r.label for r in found[:5]) + (", ..." if len(found) > 5 else "")
                raise ValueError(
                    f"{os.fspath(history_or_path)} holds {len(found)} runs ({names}); "
                    "use losskit.diagnostics.reports() for all of them"
                )
            run = found[0]
        history, notes = _read(run, format, train, val)
        return _make(history, source or run.label, notes, num_classes, task, baseline)
    history = as_history(history_or_path)
    return _make(history, source or "python", (), num_classes, task, baseline)


def reports(
    *paths: str | os.PathLike[str],
    num_classes: int | None = None,
    task: str | None = None,
    baseline: float | None = None,
    format: str | None = None,
    train: str | None = None,
    val: str | None = None,
) -> list[Report]:
    """One :class:`Report` for every run in ``paths`` (files and folders; a folder may hold
    several runs, see :func:`~losskit.diagnostics.find_runs`), in order.  The keyword arguments
    are those of :func:`report`."""
    runs = [run for p in paths for run in find_runs(Path(p) if not isinstance(p, str) else p)]
    return [
        report(
            run, num_classes=num_classes, task=task, baseline=baseline, format=format, train=train, val=val
        )
        for run in runs
    ]
