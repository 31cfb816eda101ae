"""The framework-free part of the training callbacks: collect the losses, diagnose, report once.

:class:`LossTracker` collects ``(step, epoch, value)`` points of the train and validation loss
as a trainer logs them, runs :func:`losskit.diagnostics.diagnose` on them when asked (at the end
of an epoch or a validation, every ``every_n`` train points, and at once on a NaN), and hands
back only the findings it has not reported before.

When a finding is "the same" as one reported before:

- a finding describes a state of the run (``divergence``, ``plateau``, ``overfitting``,
  ``bad_init``, ``nan``, ...), and its start moves as data arrives (the minimum before a
  divergence, the beginning of a plateau), so it is keyed on its kind alone: a kind is reported
  when it first appears and stays *open*, unreported, while every later diagnosis still finds it;
  a diagnosis that no longer finds it *resolves* it, and if it comes back later it is reported
  again;
- a ``spike`` is a point event that does not move, so each spike is keyed on its kind and its
  step and epoch: every distinct spike is reported once.

``underfitting``, ``converged``, ``improving`` and ``healthy`` judge the end of a run, so they are
left out of the checks during training and reported only by the final check
(:meth:`LossTracker.finish`).  Info findings (``healthy``, ``init_ok``, ``converged``,
``improving``) are reported only with
``report_info=True``, each at most once.

What a check costs: one diagnosis of the whole history so far (milliseconds for a few thousand
points).  The checks during training wait for ``min_points`` train points, and once a diagnosis
takes longer than ``SLOW_CHECK_S`` the scheduled ones are skipped while they would take more
than ``MAX_OVERHEAD`` of the wall time; a non-finite loss and the final check always run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..diagnostics import Finding, History, Series, diagnose
from ..diagnostics.history import KINDS

__all__ = ["LossTracker", "LossDiagnosticsWarning", "END_KINDS", "format_finding"]

# kinds that judge a finished run: reported by the final check only
END_KINDS = frozenset({"underfitting", "converged", "improving", "healthy"})
# kinds that are point events: each occurrence is its own finding
POINT_KINDS = frozenset({"spike"})

# a scheduled check is skipped while the diagnoses would take more than this share of the
# wall time (only once one diagnosis takes longer than SLOW_CHECK_S)
MAX_OVERHEAD = 0.05
SLOW_CHECK_S = 0.05


class LossDiagnosticsWarning(UserWarning):
    """A warning or error finding reported during training (the Lightning callback warns with it)."""


def format_finding(finding: Finding) -> str:
    """One line for a console: ``losskit: divergence (error): <message>``."""
    return f"losskit: {finding.kind} ({finding.severity}): {finding.message}"


def _key(finding: Finding) -> tuple[Any, ...]:
    if finding.kind in POINT_KINDS:
        return (finding.kind, finding.step, finding.epoch)
    return (finding.kind,)


def _kinds(stop_on: str | Iterable[str]) -> frozenset[str]:
    kinds = frozenset([stop_on] if isinstance(stop_on, str) else stop_on)
    unknown = sorted(kinds - set(KINDS))
    if unknown:
        raise ValueError(
            f"stop_on: unknown finding kind(s) {', '.join(map(repr, unknown))}; known: {', '.join(KINDS)}"
        )
    return kinds


def _every(every_n: int | None) -> int | None:
    if every_n is None:
        return None
    if isinstance(every_n, bool) or not isinstance(every_n, int) or every_n < 1:
        raise ValueError(f"every_n must be a positive integer or None; got {every_n!r}")
    return every_n


class _Points:
    def __init__(self) -> None:
        self.value: list[float] = []
        self.step: list[float] = []
        self.epoch: list[float] = []

    def add(self, value: float, step: float | None, epoch: float | None) -> None:
        self.value.append(value)
        self.step.append(math.nan if step is None else float(step))
        self.epoch.append(math.nan if epoch is None else float(epoch))

    def series(self, name: str) -> Series | None:
        if not self.value:
            return None
        # Series drops a position column that has a missing entry
        return Series(self.value, step=self.step, epoch=self.epoch, name=name)

    def __len__(self) -> int:
        return len(self.value)


class LossTracker:
    """Collect a run's train and validation losses and report each new finding once.

    Args:
      num_classes, task, baseline: passed to :func:`losskit.diagnostics.diagnose` (the baseline
        the starting and final losses are judged against).
      stop_on: finding kinds that should stop training (e.g. ``("nan", "divergence")``); after a
        check finds one, :attr:`should_stop` is true.
      every_n: also check after every ``every_n`` train points (``None``: only when the trainer
        asks, at the end of an epoch or a validation).  A non-finite loss is checked at once.
      min_points: the checks during training wait for this many train points (a few noisy
        points say little about a curve); a non-finite loss and the final check do not wait.
      report_info: report the info findings ``init_ok``, ``converged``, ``improving`` and
        ``healthy`` too.

    Attributes:
      findings: every finding reported so far, in the order reported.
      diagnosis: the full result of the latest diagnosis (every finding still present).
      should_stop: a finding of a kind in ``stop_on`` is present.
      stop_reason: the finding that asked to stop, or ``None``.
    """

    def __init__(
        self,
        *,
        num_classes: int | None = None,
        task: str | None = None,
        baseline: float | None = None,
        stop_on: str | Iterable[str] = (),
        every_n: int | None = None,
        report_info: bool = False,
        min_points: int = 1,
    ) -> None:
        self.num_classes = num_classes
        self.task = task
        self.baseline = baseline
        self.stop_on = _kinds(stop_on)
        self.every_n = _every(every_n)
        self.report_info = bool(report_info)
        if isinstance(min_points, bool) or not isinstance(min_points, int) or min_points < 1:
            raise ValueError(f"min_points must be a positive integer; got {min_points!r}")
        self.min_points = min_points
        self._train = _Points()
        self._val = _Points()
        self.findings: list[Finding] = []
        self.diagnosis: list[Finding] = []
        self.should_stop = False
        self.stop_reason: Finding | None = None
        self._open: set[tuple[Any, ...]] = set()
        self._since_check = 0  # train points added since the last check
        self._dirty = False  # points added since the last check
        self._urgent = False  # a non-finite loss arrived
        self._last_cost = 0.0
        self._last_end = 0.0

    # -- collecting ---------------------------------------------------------------------------

    @property
    def num_train(self) -> int:
        return len(self._train)

    @property
    def num_val(self) -> int:
        return len(self._val)

    def add_train(self, value: Any, *, step: float | None = None, epoch: float | None = None) -> None:
        """Record one train loss (any number-like: float, NumPy or framework scalar)."""
        v = float(value)
        self._train.add(v, step, epoch)
        self._since_check += 1
        self._dirty = True
        self._urgent |= not math.isfinite(v)

    def add_val(self, value: Any, *, step: float | None = None, epoch: float | None = None) -> None:
        """Record one validation loss."""
        v = float(value)
        self._val.add(v, step, epoch)
        self._dirty = True
        self._urgent |= not math.isfinite(v)

    def history(self) -> History | None:
        """The points so far as a :class:`~losskit.diagnostics.History` (``None`` before the
        first train loss)."""
        train = self._train.series("train")
        if train is None:
            return None
        return History(
            train, self._val.series("val"), format="python", columns={"train": "train", "val": "val"}
        )

    # -- checking -----------------------------------------------------------------------------

    def due(self) -> bool:
        """Whether :meth:`step_check` would check now: a non-finite loss, or ``every_n`` train
        points since the last check."""
        if self._urgent:
            return True
        return (
            self.every_n is not None
            and self._since_check >= self.every_n
            and self.num_train >= self.min_points
            and self._affordable()
        )

    def step_check(self) -> list[Finding]:
        """The check to call after each logged train loss: runs only when :meth:`due`."""
        return self.check() if self.due() else []

    def epoch_check(self) -> list[Finding]:
        """The check to call at the end of an epoch or a validation: runs when points arrived
        since the last check (and the diagnoses are not taking too much of the run's time)."""
        if self._urgent or (self._dirty and self.num_train >= self.min_points and self._affordable()):
            return self.check()
        return []

    def _affordable(self) -> bool:
        if self._last_cost < SLOW_CHECK_S:
            return True
        return time.perf_counter() - self._last_end >= self._last_cost / MAX_OVERHEAD

    def check(self, *, final: bool = False) -> list[Finding]:
        """Diagnose the points so far and return the findings not reported before (also
        appended to :attr:`findings`).  ``final=True`` also judges the end of the run
        (``underfitting``, ``converged``, ``improving``, ``healthy``)."""
        history = self.history()
        self._since_check = 0
        self._dirty = False
        self._urgent = False
        if history is None:
            return []
        start = time.perf_counter()
        result = diagnose(history, num_classes=self.num_classes, task=self.task, baseline=self.baseline)
        self._last_end = time.perf_counter()
        self._last_cost = self._last_end - start
        self.diagnosis = result
        present = [f for f in result if final or f.kind not in END_KINDS]
        if not self.report_info:
            present = [f for f in present if f.severity != "info"]
        new = []
        now: set[tuple[Any, ...]] = set()
        for f in present:
            key = _key(f)
            if key in now:
                continue
            now.add(key)
            if key not in self._open:
                new.append(f)
        # what is no longer found is resolved (and reported again if it comes back); a point
        # event stays reported
        self._open = now | {k for k in self._open if k[0] in POINT_KINDS}
        self.findings.extend(new)
        for f in result:
            if f.kind in self.stop_on and (final or f.kind not in END_KINDS):
                if not self.should_stop:
                    self.should_stop = True
                    self.stop_reason = f
                break
        return new

    def finish(self) -> list[Finding]:
        """The final check, at the end of training: also reports ``underfitting``,
        ``converged``, ``improving`` and ``healthy`` (the info ones with ``report_info=True``)."""
        return self.check(final=True)

    def stop_message(self) -> str:
        f = self.stop_reason
        if f is None:
            return ""
        return f"losskit: stopping training: {f.kind} found (stop_on={tuple(sorted(self.stop_on))})"


Reporter = Callable[[Finding], None]


def _keys(keys: str | Iterable[str], name: str) -> tuple[str, ...]:
    out = (keys,) if isinstance(keys, str) else tuple(keys)
    if not out or not all(isinstance(k, str) and k for k in out):
        raise ValueError(f"{name} must be a metric name or a sequence of names; got {keys!r}")
    return out


class TrackerCallback:
    """What the framework callbacks share: the constructor's arguments, the tracker, the
    reporting of new findings and the stop decision.  A subclass provides :meth:`_emit`."""

    def _setup_tracker(
        self,
        *,
        num_classes: int | None,
        task: str | None,
        baseline: float | None,
        stop_on: str | Iterable[str],
        train_key: str | Iterable[str],
        val_key: str | Iterable[str],
        every_n: int | None,
        report_info: bool,
        min_points: int,
        on_finding: Reporter | None,
        verbose: bool,
    ) -> None:
        self.tracker = LossTracker(
            num_classes=num_classes,
            task=task,
            baseline=baseline,
            stop_on=stop_on,
            every_n=every_n,
            report_info=report_info,
            min_points=min_points,
        )
        self.train_keys = _keys(train_key, "train_key")
        self.val_keys = _keys(val_key, "val_key")
        self.on_finding = on_finding
        self.verbose = bool(verbose)

    @property
    def findings(self) -> list[Finding]:
        """Every finding reported so far, in the order reported."""
        return self.tracker.findings

    @property
    def diagnosis(self) -> list[Finding]:
        """The full result of the latest diagnosis."""
        return self.tracker.diagnosis

    @property
    def stop_reason(self) -> Finding | None:
        """The finding that stopped training, or ``None``."""
        return self.tracker.stop_reason

    def _report(self, new: list[Finding]) -> bool:
        """Report the new findings; whether training should stop now."""
        for f in new:
            if self.verbose:
                self._emit(f)
            if self.on_finding is not None:
                self.on_finding(f)
        return self.tracker.should_stop

    def _emit(self, finding: Finding) -> None:  # pragma: no cover - each framework has its own
        raise NotImplementedError


def pick(metrics: Any, keys: tuple[str, ...]) -> tuple[str, Any] | None:
    """The first of ``keys`` in the mapping ``metrics`` with a value, as (key, value)."""
    if not metrics:
        return None
    for k in keys:
        v = metrics.get(k)
        if v is not None:
            return k, v
    return None


def scalar(value: Any) -> float | None:
    """A logged value as a float, or ``None`` when it is not one number."""
    try:
        if hasattr(value, "item") and getattr(value, "size", 1) in (1, None):
            value = value.item()
        elif hasattr(value, "numel") and value.numel() == 1:
            value = value.item()
        return float(value)
    except (TypeError, ValueError, RuntimeError):
        return None
