"""Diagnostics: is this loss right for my task, what does this number mean, is training healthy?

- :func:`baseline_loss`: the loss of the best constant guess (ln K for K classes, the target
  variance for MSE, ...), the yardstick for a starting loss.
- :func:`to_bits`, :func:`to_nats`, :func:`perplexity`, :func:`bits_per_token`,
  :func:`bits_per_character`: units of a log-loss.
- :func:`diagnose`: findings on a training history (NaN, bad initialisation, divergence,
  spikes, plateaus, overfitting, underfitting), each with where it starts and what to do.
- :func:`read_log`: training logs (CSV, Lightning, Keras, Hugging Face, TensorBoard) as a
  :class:`History`.
- :func:`recommend`: the output layer and loss for a task, and the mistakes to avoid.
- :func:`explain`: a loss's formula, derivative, properties and equivalents.
- :func:`report`, :func:`reports`: the diagnosis of a run (or of every run found by
  :func:`find_runs` in files and folders) as a :class:`Report`, printable, shown in notebooks,
  rendered as one HTML page by :func:`render_html`.

Everything here works on concrete numbers (NumPy); nothing imports matplotlib, tensorboard or
tqdm until it is used.
"""

from __future__ import annotations

from .baseline import Baseline, baseline_loss, baseline_report
from .explain import Explanation, explain
from .history import Finding, History, Series, as_history, diagnose
from .logs import FORMATS, LogError, LogWarning, detect_format, read_log
from .recommend import TASKS, Recommendation, recommend
from .report import Report, render_html, report, reports
from .runs import Run, find_runs
from .units import (
    bits_per_byte,
    bits_per_character,
    bits_per_token,
    convert,
    from_perplexity,
    perplexity,
    to_bits,
    to_nats,
)

__all__ = [
    "Baseline",
    "baseline_loss",
    "baseline_report",
    "Explanation",
    "explain",
    "Finding",
    "History",
    "Series",
    "as_history",
    "diagnose",
    "FORMATS",
    "LogError",
    "LogWarning",
    "detect_format",
    "read_log",
    "TASKS",
    "Recommendation",
    "recommend",
    "Report",
    "report",
    "reports",
    "render_html",
    "Run",
    "find_runs",
    "bits_per_byte",
    "bits_per_character",
    "bits_per_token",
    "convert",
    "from_perplexity",
    "perplexity",
    "to_bits",
    "to_nats",
]
