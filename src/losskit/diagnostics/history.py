"""Diagnose a training history: is this loss curve healthy, and if not, what went wrong when?

:func:`diagnose` reads a training loss (per step or per epoch) and an optional validation loss,
and returns :class:`Finding` objects, each with a ``kind``, where it starts (``step`` and/or
``epoch``, as logged), a ``severity`` (``"error"``, ``"warning"``, ``"info"``) and a sentence a
person can act on, and ``value``, the loss at that point.

How each kind is decided (the thresholds are the module constants named in capitals; every
test runs on a robust smoothing of the curve, so minibatch noise does not raise alarms):

- ``nan``: the first non-finite train or validation loss.  Everything after it is ignored.
  A train loss logged as exactly 0.0 right after a level above ``ZERO_FROM`` (not approached
  gradually; any jump in a Hugging Face log), at least twice and 0.0 ever after, counts as
  non-finite from its first zero: the Hugging Face Trainer's ``logging_nan_inf_filter`` (on by
  default) leaves NaN/inf steps out of the logged average, so once the weights are NaN every
  logging window logs 0.0.
- ``bad_init`` / ``init_ok``: the starting train loss (the median of the first
  ``INIT_POINTS`` points of a long per-step log, else the first) against the baseline (the loss of the best
  constant guess, e.g. ln K for K classes; see :func:`losskit.baseline_loss`).  Above
  ``1 + INIT_TOLERANCE`` times the baseline is ``bad_init`` (an over-confident initialisation:
  scale down the output layer's weights, zero its bias), an error above
  ``BAD_INIT_ERROR_RATIO`` times; below ``BAD_INIT_LOW_RATIO`` times is suspicious too.  Within
  ``INIT_TOLERANCE`` (relative) it is ``init_ok``.
- ``divergence``: after its minimum, the smoothed train loss rises by more than
  ``DIVERGE_REL`` of that minimum (and more than ``DIVERGE_Z`` noise deviations) and stays up.
  An error when it ends above where it started.  Also (an error, checked first) an early
  blow-up: in the first ``BLOWUP_BEFORE`` of the run the loss (a 5-point running median)
  soars above ``BLOWUP_RATIO`` times its starting level, then never comes back below
  ``UNDERFIT_FRACTION`` of the baseline (of the start when no baseline is known): a learning
  rate too high for the first steps killed the network, which now predicts a constant (ln K).
  It starts after the last point at or below the starting loss; the advice is to lower the
  learning rate, warm up and clip gradients, and no spike, plateau or underfitting is
  reported after it.
- ``spike``: a point more than ``SPIKE_Z`` robust deviations (and ``SPIKE_REL`` relatively)
  above the running median, jumping up as much from the point before, that comes back down
  within a few points.  Positive losses are compared on a log scale, where minibatch noise is
  about symmetric.  Also a burst several points wide: from its start the median of the next
  ``BURST_POINTS`` points is more than ``BURST_Z`` noise deviations of such a median,
  ``BURST_RATIO`` times, and ``BURST_OVER_MAX`` times the highest of the ``BURST_REF`` points
  before it above their median, and within ``BURST_HORIZON`` points it comes back below half
  its excess (else it is a level shift or a divergence).  The finding sits at its start and
  gives its width, its peak and where it is back within ``BURST_BACK`` of its excess.
- ``plateau``: over a window of ``PLATEAU_FRACTION`` of the run (at least
  ``PLATEAU_MIN_POINTS`` points) the smoothed loss improves by less than ``PLATEAU_REL`` of its
  level (or less than the noise; a fall by ``PLATEAU_SURE_FALL`` of the level always counts as
  progress).  At the start of the run it means no learning; at the end at
  a level above ``UNDERFIT_FRACTION`` of the baseline (of the starting loss when no baseline is
  known) it means stuck; in the middle it is reported as a stall.  A flat end at a lower
  level is ``converged`` (info) instead, once the loss has truly levelled: over the flat end
  (or over the last ``3 * CONVERGED_TAIL`` of the run, the converged point then moving there),
  split in three blocks, the last block's median improves on the first's by less than
  ``CONVERGED_RECENT_REL`` and a geometric fit through the three medians
  (``a + b exp(-t / tau)``) predicts less than ``CONVERGED_FIT_REL`` more (a fall that is not
  slowing down predicts as much again).  When instead the loss still falls by more than noise
  over that stretch, or the run has no flat end and its last ``3 * CONVERGED_TAIL`` falls so,
  it is ``improving`` (info): not converged yet, train longer.
- ``overfitting``: the (smoothed) validation loss reaches its minimum, then rises by more than
  ``OVERFIT_REL`` of it (and more than its noise) while the train loss keeps falling (by
  ``OVERFIT_TRAIN_DROP`` at least); the finding sits at the epoch of
  the validation minimum (the checkpoint to keep).  A rise that has come more than halfway back
  down (after a burst) is not overfitting.  Without a validation curve, a ``test`` one
  (``Loss/test``, ``test_loss``, ``test/loss``) is the held-out curve, and the message says so.
  The advice to keep the best checkpoint is the framework's, by ``History.format``:
  Lightning's ``ModelCheckpoint(monitor="val_loss")``, the Hugging Face Trainer's
  ``load_best_model_at_end=True`` with ``metric_for_best_model="eval_loss"``, Keras'
  ``ModelCheckpoint(save_best_only=True)``.
- ``underfitting``: at the end, train (and validation) loss are still above
  ``UNDERFIT_FRACTION`` of the baseline.
- ``healthy``: no warning or error (info findings such as ``init_ok`` may accompany it).

Epochs of Keras logs (``format`` ``"keras_csv"``, or ``"keras"`` for a ``keras.callbacks.History``)
are reported counted from 1, as Keras shows them (its ``CSVLogger`` writes 0 for the first).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .baseline import task_baseline
from .columns import is_test_name
from .rolling import centred_median, trailing_median

__all__ = [
    "Finding",
    "Series",
    "History",
    "as_history",
    "diagnose",
    "KINDS",
    "SEVERITIES",
]

KINDS = (
    "nan",
    "bad_init",
    "init_ok",
    "divergence",
    "spike",
    "plateau",
    "overfitting",
    "underfitting",
    "converged",
    "improving",
    "healthy",
)
SEVERITIES = ("error", "warning", "info")

# -- thresholds ----------------------------------------------------------------------------
INIT_TOLERANCE = 0.2  # |start / baseline - 1| <= 0.2 is "close to the baseline"
INIT_POINTS = 5  # the start is the median of the first min(5, n // 50) points (at least 1)
BAD_INIT_ERROR_RATIO = 3.0  # start > 3x baseline: an error, not a warning
BAD_INIT_LOW_RATIO = 0.5  # start < 0.5x baseline: suspicious (leak, wrong K, late first log)
DIVERGE_REL = 0.25  # rise after the minimum, relative to the minimum
DIVERGE_Z = 6.0  # ... and in noise deviations of the smoothed curve
DIVERGE_PERSIST = 0.9  # fraction of the points after onset that must stay up
EXPLODE_RATIO = 10.0  # a raw value above 10x the start: "exploding"
SPIKE_Z = 6.0  # robust z-score of a point above the running median
SPIKE_REL = 0.25  # ... and at least 25% above it
SPIKE_WINDOW = 9  # running-median window (points)
MAX_SPIKES = 5  # spikes reported one by one; more are summarised
NOISE_WINDOW = 101  # points over which the local noise level is measured
PLATEAU_FRACTION = 0.15  # the window: 15% of the run
PLATEAU_MIN_POINTS = 5
PLATEAU_REL = 0.01  # less than 1% improvement over the window
PLATEAU_Z = 3.0
PLATEAU_SURE_FALL = 0.5  # a fall by half the level is progress, whatever the noise estimate says
STALL_RESUME_REL = 0.25  # a mid-run stall counts only if the loss then falls 25% further
OVERFIT_MIN_POINTS = 4  # validation points needed
OVERFIT_REL = 0.05  # validation rise above its minimum, relative
OVERFIT_Z = 3.0
OVERFIT_TRAIN_DROP = 0.05  # ... while the train loss falls by at least 5% more
UNDERFIT_FRACTION = 0.8  # final loss above 80% of the baseline
BURST_POINTS = 5  # a burst: the median of the 5 points from its start ...
BURST_REF = 25  # ... against the median of the 25 points before it
BURST_Z = 6.0  # ... is more than 6 noise deviations (of a 5-point median) above it
BURST_RATIO = 3.0  # ... and at least 3x that level
BURST_OVER_MAX = 1.5  # ... and 1.5x the highest of those 25 points (minibatch noise is heavy-tailed)
BURST_HORIZON = 150  # ... and within 150 points the loss is back below half its excess
BURST_BACK = 0.1  # "back near its level": within a tenth of the burst's excess
BLOWUP_RATIO = 5.0  # an early blow-up: the loss (5-point median) above 5x its starting level ...
BLOWUP_BEFORE = 0.5  # ... in the first half of the run, never recovering below UNDERFIT_FRACTION
CONVERGED_TAIL = 0.1  # converged: of three blocks of 10% of the run at its end, ...
CONVERGED_RECENT_REL = 0.05  # ... the last improves on the first by less than 5%
CONVERGED_FIT_REL = 0.05  # ... and a geometric fit of the three predicts less than 5% more
ZERO_FROM = 1e-2  # a loss logged as exactly 0.0 after a level above this, and 0.0 from then on
ONE_BASED_EPOCHS = ("keras_csv", "keras")  # formats whose epochs people see counted from 1


@dataclass(frozen=True)
class Finding:
    """One thing :func:`diagnose` noticed.

    Attributes:
      kind: one of :data:`KINDS`.
      severity: ``"error"``, ``"warning"`` or ``"info"``.
      step: the step where it starts (as logged), or ``None`` when the log has no steps.
      epoch: the epoch where it starts (as logged), or ``None``.
      message: what happened and what to do about it.
      value: the loss at that point, when there is one (for plots).
    """

    kind: str
    severity: str
    step: int | float | None
    epoch: int | float | None
    message: str
    value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``kind``, ``severity``, ``step``, ``epoch``, ``message`` and ``value``
        (the loss at the finding, ``None`` when there is none)."""
        return {
            "kind": self.kind,
            "severity": self.severity,
            "step": self.step,
            "epoch": self.epoch,
            "message": self.message,
            "value": self.value,
        }

    def __str__(self) -> str:
        """One line, as ``losskit diagnose`` prints it: ``[severity] kind: message``."""
        return f"[{self.severity}] {self.kind}: {self.message}"

    def __repr__(self) -> str:
        message = self.message if len(self.message) <= 60 else self.message[:59] + "\u2026"
        return (
            f"Finding(kind={self.kind!r}, severity={self.severity!r}, step={self.step!r}, "
            f"epoch={self.epoch!r}, value={self.value!r}, message={message!r})"
        )

    def _location(self) -> str:
        value = "" if self.value is None else f", loss {self.value:.4g}"
        return _where(self.step, self.epoch) + value

    def _repr_markdown_(self) -> str:
        return f"**{self.severity}** `{self.kind}` at {self._location()}: {self.message}"

    def _repr_html_(self) -> str:
        import html

        colour = {"error": "#c62828", "warning": "#e65100", "info": "#1565c0"}.get(self.severity, "#555")
        return (
            f'<div class="losskit-finding"><span style="color:{colour};font-weight:bold">'
            f"{html.escape(self.severity)}</span> <code>{html.escape(self.kind)}</code> at "
            f"{html.escape(self._location())}: {html.escape(self.message)}</div>"
        )


@dataclass
class Series:
    """One logged loss curve: values with their steps and/or epochs (``None`` when not logged)."""

    value: np.ndarray
    step: np.ndarray | None = None
    epoch: np.ndarray | None = None
    name: str = ""

    def __post_init__(self) -> None:
        self.value = np.asarray(self.value, dtype=np.float64).reshape(-1)
        n = self.value.size
        for attr in ("step", "epoch"):
            a = getattr(self, attr)
            if a is not None:
                a = np.asarray(a, dtype=np.float64).reshape(-1)
                if a.size != n:
                    raise ValueError(f"{self.name or 'series'}: {attr} has {a.size} entries for {n} values")
                if np.isnan(a).any():
                    a = None
                setattr(self, attr, a)
        order = np.argsort(self.position, kind="stable")
        if np.any(order != np.arange(n)):
            self.value = self.value[order]
            self.step = None if self.step is None else self.step[order]
            self.epoch = None if self.epoch is None else self.epoch[order]

    def __len__(self) -> int:
        return int(self.value.size)

    @property
    def position(self) -> np.ndarray:
        """Step if logged, else epoch, else the index."""
        for a in (self.step, self.epoch):
            if a is not None:
                return a
        return np.arange(self.value.size, dtype=np.float64)

    def at(self, i: int) -> tuple[int | float | None, int | float | None]:
        """(step, epoch) of point ``i``, as plain Python numbers."""
        return _num(None if self.step is None else self.step[i]), _num(
            None if self.epoch is None else self.epoch[i]
        )


def _num(x: Any) -> int | float | None:
    if x is None:
        return None
    x = float(x)
    return int(x) if x.is_integer() else x


@dataclass
class History:
    """A training history: the train loss and, optionally, the validation loss.

    ``format`` says where it came from (``"python"``, ``"keras"`` for a Keras ``History``, or
    a log format read by :func:`losskit.diagnostics.read_log`, also given to a table laid out
    as that framework writes it); ``columns`` names the columns/tags used.
    """

    train: Series
    val: Series | None = None
    format: str = "python"
    columns: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.train) == 0:
            raise ValueError("the training history is empty: no train loss values")
        if self.val is not None and len(self.val) == 0:
            self.val = None


def as_history(history: Any) -> History:
    """Coerce what people have at hand into a :class:`History`.

    Accepts a :class:`History`; a sequence or 1-D array of train losses; a Keras ``History``
    (its ``.history`` dict, with its epochs; ``format`` ``"keras"``); a pandas ``DataFrame``
    (e.g. ``pandas.read_csv("metrics.csv")``); or a mapping of columns, e.g.
    ``{"loss": [...], "val_loss": [...]}`` or ``{"train": [...], "val": [...]}``, with
    optional ``"step"``/``"epoch"`` columns.  When the train column is longer than the
    validation column by a whole factor, validation is taken as logged at the end of each
    epoch.

    In a table whose train and validation losses sit on different rows (Lightning's
    ``metrics.csv``, a Hugging Face ``log_history``), NaN cells (the empty cells of the CSV)
    mean "not logged on this row": each curve keeps its own rows, with their step and epoch.
    A row where both are NaN after a curve's last finite value is a logged NaN.  Such a table
    with ``step`` and ``epoch`` columns is read as Lightning's (``format``
    ``"lightning_csv"``), as :func:`losskit.diagnostics.read_log` reads the file.
    """
    if isinstance(history, History):
        return history
    if _is_dataframe(history):
        return _history_from_dataframe(history)
    if hasattr(history, "history") and isinstance(history.history, Mapping):  # keras.callbacks.History
        columns = dict(history.history)
        epochs = getattr(history, "epoch", None)
        sizes = {np.size(v) for v in columns.values()}
        if "epoch" not in columns and len(sizes) == 1:
            n = sizes.pop()
            epochs = list(epochs) if isinstance(epochs, Sequence) and len(epochs) == n else list(range(n))
            columns["epoch"] = epochs
        hist = _history_from_mapping(columns)
        hist.format = "keras"
        return hist
    if isinstance(history, Mapping):
        return _history_from_mapping(history)
    if isinstance(history, (str, bytes)):
        raise TypeError(
            "history must be loss values, a mapping of columns or a History; to read a log "
            "file use losskit.diagnostics.read_log(path)"
        )
    try:
        values = np.asarray(history, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"history must be a sequence of losses, a mapping of columns or a History; "
            f"got {type(history).__name__}"
        ) from None
    if values.ndim != 1:
        raise ValueError(f"a history of losses must be 1-D; got shape {values.shape}")
    return History(Series(values, step=np.arange(values.size), name="train"))


def _is_dataframe(obj: Any) -> bool:
    """A pandas (or pandas-like) DataFrame, recognised without importing pandas."""
    if type(obj).__module__.split(".")[0] in ("pandas", "modin", "polars"):
        return hasattr(obj, "columns") and not isinstance(obj, Mapping)
    duck = hasattr(obj, "columns") and callable(getattr(obj, "to_dict", None))
    return duck and not isinstance(obj, Mapping)


def _history_from_dataframe(frame: Any) -> History:
    columns: dict[str, Any] = {}
    for name in list(frame.columns):
        column = frame[name]
        to_numpy = getattr(column, "to_numpy", None)
        if not callable(to_numpy):
            columns[str(name)] = np.asarray(column)
            continue
        try:  # nullable columns (pandas' Float64, Int64) hold pd.NA for an empty cell
            columns[str(name)] = to_numpy(dtype="float64", na_value=np.nan)
        except (TypeError, ValueError):
            columns[str(name)] = to_numpy()
    hist = _history_from_mapping(columns)
    lowered = [c.lower() for c in columns]
    # a Keras CSVLogger file read by pandas: the epoch first, no step (as read_log detects it)
    if hist.format == "python" and lowered and lowered[0] == "epoch" and "step" not in lowered:
        hist.format = "keras_csv"
    return hist


def _float_column(v: Any) -> np.ndarray | None:
    if isinstance(v, (str, bytes)) or not isinstance(v, (Sequence, np.ndarray)):
        return None
    try:
        return np.asarray(v, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None


def _history_from_mapping(columns: Mapping[str, Any]) -> History:
    from .columns import pick_loss_columns

    names = [str(k) for k in columns]
    if "train" in names:  # {"train": [...], "val": [...]}
        train_name = "train"
        val_name = next((n for n in ("val", "validation", "valid", "eval") if n in names), None)
    else:
        train_name, val_name = pick_loss_columns(names)
    lowered = {n.lower(): n for n in names}
    data = {}
    for k, v in columns.items():
        a = _float_column(v)
        if a is None and str(k) in (train_name, val_name):
            a = np.asarray(v, dtype=np.float64).reshape(-1)  # raises the error that says why
        if a is not None:
            data[str(k)] = a
    train = data[train_name]
    step = data.get(lowered.get("step", ""), None) if "step" in lowered else None
    epoch = data.get(lowered.get("epoch", ""), None) if "epoch" in lowered else None
    cols = {"train": train_name, **({"val": val_name} if val_name else {})}

    sparse = _sparse_rows(train, None if val_name is None else data[val_name])
    if sparse is not None:  # train and validation on different rows: NaN is "not logged"
        rows_t, rows_v = sparse

        def pick(values: np.ndarray, rows: np.ndarray, name: str) -> Series:
            s = None if step is None or step.size != values.size else step[rows]
            e = None if epoch is None or epoch.size != values.size else epoch[rows]
            if (s is None or np.isnan(s).any()) and (e is None or np.isnan(e).any()):
                s, e = rows.astype(np.float64), None  # no positions: the row is the step
            return Series(values[rows], s, e, name=name)

        fmt = "python"
        if step is not None and epoch is not None:
            fmt = "hf_trainer_state" if _normalised(val_name) == "eval_loss" else "lightning_csv"
        return History(pick(train, rows_t, train_name), pick(data[val_name], rows_v, val_name), fmt, cols)

    def aligned(a: np.ndarray | None, n: int) -> np.ndarray | None:
        return a if a is not None and a.size == n else None

    t = Series(train, aligned(step, train.size), aligned(epoch, train.size), name=train_name)
    if t.step is None and t.epoch is None:  # no positions given: the index is the step
        t = Series(train, np.arange(train.size), None, name=train_name)
    v = None
    if val_name is not None:
        val = data[val_name]
        vs, ve = aligned(step, val.size), aligned(epoch, val.size)
        if vs is None and ve is None and step is None and epoch is None:
            if val.size == train.size:
                vs = np.arange(val.size)
            elif val.size and not (train.size % val.size == 0 and train.size > val.size):
                # logged at even intervals, the last one at the end of training
                vs = np.round((np.arange(1, val.size + 1) * train.size) / val.size - 1.0)
        if vs is None and ve is None and val.size and train.size % val.size == 0 and train.size > val.size:
            per_epoch = train.size // val.size
            vs = t.position[per_epoch - 1 :: per_epoch] if t.step is not None or t.epoch is None else None
            ve = np.arange(val.size, dtype=np.float64) if vs is None else None
            if t.step is None and t.epoch is None:
                t = Series(train, np.arange(train.size), None, name=train_name)
                vs = np.arange(per_epoch - 1, train.size, per_epoch, dtype=np.float64)
                ve = None
        v = Series(val, vs, ve, name=val_name)
    return History(t, v, "python", cols)


def _normalised(name: str | None) -> str:
    from .columns import normalise

    return "" if name is None else normalise(name)


def _sparse_rows(train: np.ndarray, val: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
    """The rows of each curve when train and validation were logged on different rows of one
    table (no row holds both, some hold one): ``(train_rows, val_rows)``, else ``None``.

    A row where both are NaN belongs to a curve only after that curve's last value (a run
    that went NaN logs NaN on its rows from then on); before, it was logged for neither.
    """
    if val is None or val.size != train.size or train.size == 0:
        return None
    ft, fv = ~np.isnan(train), ~np.isnan(val)  # +-inf is a logged value
    if (ft & fv).any() or not (ft ^ fv).any():
        return None
    idx = np.arange(train.size)
    neither = ~ft & ~fv

    def rows(finite: np.ndarray) -> np.ndarray:
        last = int(np.flatnonzero(finite)[-1]) if finite.any() else -1
        return np.flatnonzero(finite | (neither & (idx > last)))

    return rows(ft), rows(fv)


# -- robust statistics ---------------------------------------------------------------------


def _rolling_median(y: np.ndarray, window: int) -> np.ndarray:
    # centred, odd window, shrinking to the points there are near the ends; O(n log window)
    return centred_median(y, window)


def _mad_sigma(r: np.ndarray) -> float:
    r = r[np.isfinite(r)]
    if r.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(r - np.median(r))))


def _trend_window(n: int) -> int:
    return int(min(101, max(5, n // 25))) | 1


def _first_nonfinite(s: Series | None) -> int | None:
    if s is None:
        return None
    bad = np.flatnonzero(~np.isfinite(s.value))
    return int(bad[0]) if bad.size else None


def _pos(x: Any) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".") if isinstance(x, float) else str(x)


def _where(step: Any, epoch: Any) -> str:
    step, epoch = (None if step is None else _pos(step)), (None if epoch is None else _pos(epoch))
    if step is not None and epoch is not None:
        return f"step {step} (epoch {epoch})"
    if step is not None:
        return f"step {step}"
    if epoch is not None:
        return f"epoch {epoch}"
    return "the start"


def _fmt(x: float) -> str:
    return f"{x:.4g}"


class _Context:
    """Shared numbers for the detectors: the finite prefixes, smoothing, noise, baseline."""

    def __init__(self, history: History, baseline: float | None, unit: str) -> None:
        self.history = history
        self.baseline = baseline
        self.unit = unit
        self.train = history.train
        self.val = history.val
        self.y = self.train.value
        n = self.y.size
        self.w = _trend_window(n)
        self.s = _rolling_median(self.y, self.w)
        self.resid = self.y - _rolling_median(self.y, SPIKE_WINDOW)
        self.sigma = _mad_sigma(self.resid)  # noise of one point, over the whole run
        # noise of one point near each point: minibatch noise usually shrinks with the loss
        # (from the median absolute second difference: for white noise its sd is sigma * sqrt 6,
        # while a smooth trend barely bends from one step to the next)
        d2 = np.abs(np.diff(self.y, 2)) if self.y.size >= 3 else np.zeros(1)
        d2 = np.concatenate([d2[:1], d2, d2[-1:]])[: self.y.size]
        self.local_sigma = np.maximum(1.4826 / math.sqrt(6.0) * _rolling_median(d2, NOISE_WINDOW), 1e-12)
        m = max(1, min(INIT_POINTS, self.y.size // 50))
        self.start = float(np.median(self.y[:m]))  # one minibatch is noisy; the curve barely moves in m steps
        self.sigma_s = self.sigma / math.sqrt(self.w) * 1.25  # noise of the running median

    def u(self, x: float) -> str:
        return _fmt(x) + (f" {self.unit}" if self.unit else "")


def _truncate(s: Series, n: int) -> Series:
    return Series(
        s.value[:n],
        None if s.step is None else s.step[:n],
        None if s.epoch is None else s.epoch[:n],
        name=s.name,
    )


def _filtered_nan_zeros(s: Series, fmt: str) -> int | None:
    """The first of the exact 0.0 losses logged in place of NaN/inf ones, or ``None``.

    The Hugging Face Trainer (``logging_nan_inf_filter``, on by default) leaves NaN/inf steps
    out of the logged average: once the weights are NaN, every step is, and each logging
    window logs 0.0.  Generally: a loss logged as exactly 0.0 right after a level above
    ``ZERO_FROM`` (not approached gradually), at least twice, and 0.0 ever after.
    """
    y = s.value
    bad = _first_nonfinite(s)
    stop = y.size if bad is None else bad
    zeros = np.flatnonzero(y[:stop] == 0.0)
    if zeros.size < 2:
        return None
    i = int(zeros[0])
    if i < 1 or not np.all(y[i:stop] == 0.0):
        return None
    before = y[max(0, i - 5) : i]
    if not np.all(before > 0) or float(np.median(before)) < ZERO_FROM:
        return None
    if fmt != "hf_trainer_state" and y[i - 1] < 0.5 * float(np.median(before)):
        return None  # falling towards 0 (a hinge loss can reach it): not a jump to 0
    return i


def _detect_nan(history: History) -> tuple[list[Finding], History]:
    findings = []
    it, iv = _first_nonfinite(history.train), _first_nonfinite(history.val)
    train, val = history.train, history.val
    iz = _filtered_nan_zeros(train, history.format)
    if iz is not None and (it is None or iz < it):
        it = iz
    else:
        iz = None
    hits = []
    if it is not None:
        hits.append(("training", train, it))
    if iv is not None:
        hits.append(("validation", val, iv))
    if hits:
        which, s, i = min(hits, key=lambda h: h[1].position[h[2]])
        step, epoch = s.at(i)
        v = s.value[i]
        advice = (
            "Lower the learning rate or clip gradients, feed logits to the *_with_logits / cross_entropy "
            "losses instead of probabilities (no log(0)), and look for division by zero or bad inputs."
        )
        if iz is not None and s is train and i == iz:
            prev = float(train.value[i - 1])
            who = (
                "the Trainer's logging_nan_inf_filter (on by default) leaves NaN/inf losses out of the "
                "logged average, so a window of only NaN/inf steps is logged as 0"
                if history.format == "hf_trainer_state"
                else "a loss cannot fall from that level to exactly 0 and stay there: the logger left "
                "out NaN/inf values (as the Hugging Face Trainer's logging_nan_inf_filter does)"
            )
            message = (
                f"The training loss is logged as exactly 0 from {_where(step, epoch)} on, right after "
                f"{_fmt(prev)}: it became NaN or inf there, and {who}. The run is broken from that point "
                "(the weights are NaN; the validation loss and grad_norm, when logged, say so too); "
                "nothing after it means anything. " + advice + " Check the batches near that step for "
                "NaN/inf inputs or labels."
            )
            findings.append(Finding("nan", "error", step, epoch, message, 0.0))
        else:
            what = "NaN" if np.isnan(v) else ("+inf" if v > 0 else "-inf")
            findings.append(
                Finding(
                    "nan",
                    "error",
                    step,
                    epoch,
                    f"The {which} loss became {what} at {_where(step, epoch)}; nothing after it means "
                    "anything. " + advice,
                )
            )
        # analyse each curve up to its first non-finite value; validation also stops where the
        # training loss broke (the model behind later validation points is broken too)
        if it is not None:
            if val is not None:
                xt, xv = _aligned_positions(train, val)
                val = _truncate(val, int(np.searchsorted(xv, xt[it], side="left")))
            train = _truncate(train, it)
        if val is not None:
            bad = _first_nonfinite(val)
            if bad is not None:
                val = _truncate(val, bad)
    if len(train) == 0:
        return findings, None  # type: ignore[return-value]
    return findings, History(
        train, val if val is not None and len(val) else None, history.format, history.columns
    )


def _detect_init(ctx: _Context) -> list[Finding]:
    if ctx.baseline is None or not ctx.baseline > 0:
        return []
    start = ctx.start
    b = ctx.baseline
    if ctx.y[0] > BAD_INIT_ERROR_RATIO * b:  # far beyond any noise: the first point alone tells
        start = float(ctx.y[0])
    ratio = start / b
    step, epoch = ctx.train.at(0)
    where = _where(step, epoch)
    if abs(ratio - 1.0) <= INIT_TOLERANCE:
        return [
            Finding(
                "init_ok",
                "info",
                step,
                epoch,
                f"The starting loss {ctx.u(start)} is close to the baseline {ctx.u(b)} (the loss of the "
                f"best constant guess; {ratio:.2f}x): the initialisation is sound.",
                start,
            )
        ]
    if ratio > 1.0 + INIT_TOLERANCE:
        severity = "error" if ratio > BAD_INIT_ERROR_RATIO else "warning"
        return [
            Finding(
                "bad_init",
                severity,
                step,
                epoch,
                f"The starting loss {ctx.u(start)} at {where} is {ratio:.1f}x the baseline {ctx.u(b)}: "
                "the network starts confidently wrong. Scale the output layer's initial weights down "
                "(e.g. by 0.01), set its bias to zero (or to the log class frequencies / target mean), "
                "and check the loss gets logits, not probabilities.",
                start,
            )
        ]
    if ratio < BAD_INIT_LOW_RATIO:
        return [
            Finding(
                "bad_init",
                "warning",
                step,
                epoch,
                f"The starting loss {ctx.u(start)} at {where} is only {ratio:.2f}x the baseline "
                f"{ctx.u(b)}, lower than any constant guess can score before training: check the "
                "number of classes, that labels do not leak into the inputs, and whether logging "
                "began after training started.",
                start,
            )
        ]
    return []


def _detect_blowup(ctx: _Context) -> tuple[list[Finding], int | None]:
    """An early blow-up: the loss soars, then collapses to the constant guess and stays there."""
    y = ctx.y
    n = y.size
    if n < 10:
        return [], None
    s5 = _rolling_median(y, 5)  # a few points wide: one bad batch is not a blow-up
    p = int(np.argmax(s5[: max(1, int(BLOWUP_BEFORE * n))]))
    start = ctx.start
    if not start > 0 or not s5[p] > BLOWUP_RATIO * start:
        return [], None
    reference = ctx.baseline if ctx.baseline is not None and ctx.baseline > 0 else start
    k = max(3, n // 10)
    end = float(np.median(y[-k:]))
    after = s5[p:]
    if end < UNDERFIT_FRACTION * reference or float(np.min(after)) < UNDERFIT_FRACTION * reference:
        return [], None  # it recovered and learned: a burst, not a blow-up
    below = np.flatnonzero(y[:p] <= start)
    onset = int(below[-1]) + 1 if below.size else 0
    peak = int(np.argmax(y[onset : p + 3])) + onset
    step, epoch = ctx.train.at(onset)
    pstep, pepoch = ctx.train.at(peak)
    peak_y = float(y[peak])
    if ctx.baseline is not None and ctx.baseline > 0:
        times = f"{peak_y / ctx.baseline:.0f}x the baseline {ctx.u(ctx.baseline)}"
        settled = (
            "the baseline: the network predicts a constant (dead units, saturated outputs)"
            if abs(end / ctx.baseline - 1.0) <= INIT_TOLERANCE
            else f"{end / ctx.baseline * 100:.0f}% of the baseline"
        )
    else:
        times = f"{peak_y / start:.0f}x where it started"
        settled = "where it started"
    msg = (
        f"The training loss blew up early: from {_where(step, epoch)} it soared to {ctx.u(peak_y)} at "
        f"{_where(pstep, pepoch)} ({times}), then collapsed to about {ctx.u(end)}, {settled}, and never "
        "learned again: training diverged at the start. The learning rate is too high for the first "
        "steps: lower it, add a warm-up, and clip gradients (e.g. a norm of 1); a larger learning "
        "rate would make it worse."
    )
    return [Finding("divergence", "error", step, epoch, msg, float(y[onset]))], onset


def _detect_divergence(ctx: _Context) -> tuple[list[Finding], int | None]:
    s, y = ctx.s, ctx.y
    n = s.size
    if n < 6:
        return [], None
    i_min = int(np.argmin(s))
    s_min = float(s[i_min])
    rise = float(s[-1]) - s_min
    thr = max(DIVERGE_REL * abs(s_min), DIVERGE_Z * ctx.sigma_s, 1e-12)
    tail = n - 1 - i_min
    if tail < max(3, ctx.w // 2 + 1) or rise <= thr:
        return [], None
    below = np.flatnonzero(s[i_min:] <= s_min + 0.5 * thr)  # the last time it was near its best
    onset = i_min + int(below[-1]) + 1 if below.size else i_min
    onset = min(onset, n - 1)
    after = s[onset:]
    if np.mean(after > s_min + 0.5 * thr) < DIVERGE_PERSIST:
        return [], None
    step, epoch = ctx.train.at(onset)
    exploding = float(np.max(y[onset:])) > EXPLODE_RATIO * max(abs(float(y[0])), 1e-12)
    worse = float(s[-1]) > float(s[0])
    severity = "error" if exploding or worse else "warning"
    verb = "exploded" if exploding else "rose"
    msg = (
        f"The training loss {verb} from its minimum {ctx.u(s_min)} to {ctx.u(float(s[-1]))} starting at "
        f"{_where(step, epoch)} and did not come back: training is diverging. Lower the learning rate "
        "(or add warm-up / a decay schedule), clip gradients, and check for a learning-rate schedule "
        "that increases."
    )
    return [Finding("divergence", severity, step, epoch, msg, float(y[onset]))], onset


def _detect_spikes(ctx: _Context, stop: int) -> list[Finding]:
    y = ctx.y[:stop]
    n = y.size
    if n < 8:
        return []
    med = _rolling_median(y, SPIKE_WINDOW)
    level = np.maximum(np.abs(med), 1e-12)
    # positive losses are compared on a log scale, where minibatch noise (which grows with the
    # loss and is skewed upwards) is closer to symmetric and of constant size
    z = np.log(y) if bool(np.all(y > 0)) else y
    resid = z - _rolling_median(z, SPIKE_WINDOW)
    d2 = np.abs(np.diff(z, 2)) if n >= 3 else np.zeros(1)
    d2 = np.concatenate([d2[:1], d2, d2[-1:]])[:n]
    sigma = 1.4826 / math.sqrt(6.0) * _rolling_median(d2, NOISE_WINDOW)
    # never below the spread of the residuals themselves (heavy-tailed noise fools the first)
    sigma = np.maximum(np.maximum(sigma, _mad_sigma(resid)), 1e-12)
    jump = np.diff(z, prepend=z[0])  # a spike jumps up from the point before it
    rel = y - med
    cand = (resid > SPIKE_Z * sigma) & (rel > SPIKE_REL * level) & (jump > SPIKE_Z * sigma)
    cand[0] = False  # a high first point is a matter of initialisation
    idx = np.flatnonzero(cand)
    events: list[int] = []
    h = SPIKE_WINDOW // 2
    for i in idx:
        if events and i - events[-1] <= 2:
            continue  # part of the same spike
        after = y[i + 1 : i + 1 + h]
        if not after.size or np.median(after) > y[i] - 0.5 * rel[i]:
            continue  # did not come back down (or the log ends): a level shift, not a spike
        events.append(int(i))
    # bursts on the loss itself: near zero, the log of a minibatch loss is far too noisy
    bursts = _bursts(y, y)
    events = [i for i in events if not any(b[0] - 2 <= i <= b[3] for b in bursts)]  # part of a burst
    burst_at = {b[0]: b for b in bursts}
    events = sorted(events + list(burst_at))
    findings = []
    for i in events[:MAX_SPIKES]:
        step, epoch = ctx.train.at(i)
        if i in burst_at:
            _, peak, width, back, ref = burst_at[i]
            pstep, pepoch = ctx.train.at(peak)
            bstep, bepoch = ctx.train.at(back)
            unit = "steps" if ctx.train.step is not None else "points"
            findings.append(
                Finding(
                    "spike",
                    "warning",
                    step,
                    epoch,
                    f"The training loss burst at {_where(step, epoch)}: it stayed high for about {width} "
                    f"{unit}, peaking at {ctx.u(float(y[peak]))} at {_where(pstep, pepoch)} "
                    f"({y[peak] / ref:.0f}x its level {ctx.u(ref)} before), and decayed back near that "
                    f"level by {_where(bstep, bepoch)}. A burst several steps wide with a long tail is "
                    "a learning rate too high for a moment (a schedule that jumps or restarts, a warm-up "
                    "too short) or a run of bad batches: lower the peak learning rate, clip gradients, "
                    "and check the schedule and the data near that step.",
                    float(y[i]),
                )
            )
            continue
        findings.append(
            Finding(
                "spike",
                "warning",
                step,
                epoch,
                f"The training loss jumped to {ctx.u(float(y[i]))} at {_where(step, epoch)}, "
                f"{y[i] / level[i]:.1f}x its running level {ctx.u(float(med[i]))}, then recovered. "
                "Occasional spikes come from bad batches or too high a learning rate; if they recur, "
                "clip gradients, lower the learning rate or check the data near that step.",
                float(y[i]),
            )
        )
    if len(events) > MAX_SPIKES:
        i = events[MAX_SPIKES]
        step, epoch = ctx.train.at(i)
        findings.append(
            Finding(
                "spike",
                "warning",
                step,
                epoch,
                f"{len(events) - MAX_SPIKES} more spikes from {_where(step, epoch)} on "
                f"({len(events)} in all): training is unstable; lower the learning rate or clip "
                "gradients.",
                float(y[i]),
            )
        )
    return findings


def _window_mad(windows: np.ndarray, centre: np.ndarray, rows: int = 1 << 15) -> np.ndarray:
    """``1.4826 * median(|windows[k] - centre[k]|)`` for each row of a strided window view,
    a block of rows at a time: the deviations are never copied for the whole log at once."""
    out = np.empty(centre.size)
    for lo in range(0, centre.size, rows):
        hi = min(centre.size, lo + rows)
        out[lo:hi] = 1.4826 * np.median(np.abs(windows[lo:hi] - centre[lo:hi, None]), axis=1)
    return out


def _bursts(y: np.ndarray, z: np.ndarray) -> list[tuple[int, int, int, int, float]]:
    """Bursts several points wide: ``(start, peak, width, back, level)`` for each.

    At ``start`` the median of the next ``BURST_POINTS`` points (of ``z``: the loss itself, or
    its log) is more than ``BURST_Z`` noise deviations of such a median, and
    ``BURST_RATIO`` times, above the median of the ``BURST_REF`` points before, and
    ``BURST_OVER_MAX`` times the highest of them (minibatch noise is heavy-tailed); within
    ``BURST_HORIZON`` points the loss comes back below half its excess (else it is a level
    shift, or a divergence).  ``back`` is where it is within ``BURST_BACK`` of its excess.
    """
    n = z.size
    R, m = BURST_REF, BURST_POINTS
    if n < R + 2 * m:
        return []
    before = np.lib.stride_tricks.sliding_window_view(z[: n - 1], R)  # before[k] = z[k : k + R]
    ref = trailing_median(z[: n - 1], R)  # ref[i - R]: the level before point i
    spread = _window_mad(before, ref)
    blocks = trailing_median(z, m)  # blocks[i] = median(z[i : i + m])
    highest = before.max(axis=1)  # highest[i - R]: the highest of the points before i
    ylog = z is not y and bool(np.all(y > 0))  # z is the log of the loss
    # the starts that pass the two noise tests below, found at once; the loop visits only those
    # (and checks them again in full): O(n) in NumPy instead of a Python step per point
    r_, b_ = ref[: n - m - R + 1], blocks[R : n - m + 1]
    sd_ = np.maximum(spread[: n - m - R + 1], 1e-12)
    noise_ = BURST_Z * 1.25 * sd_ / math.sqrt(m)
    high_ = z[R : n - m + 1] - r_ > np.maximum(3.0 * sd_, 0.5 * (b_ - r_))
    over = b_ > BURST_OVER_MAX * highest[: n - m - R + 1]
    starts = R + np.flatnonzero((b_ - r_ > noise_) & high_ & over)
    out: list[tuple[int, int, int, int, float]] = []
    i = R
    while i <= n - m:
        k = int(np.searchsorted(starts, i))
        if k == starts.size:
            break
        i = int(starts[k])
        r, sd, b = float(ref[i - R]), max(float(spread[i - R]), 1e-12), float(blocks[i])
        level = math.exp(r) if ylog else r
        high = math.exp(b) if ylog else b
        noise = BURST_Z * 1.25 * sd / math.sqrt(m)
        rises = z[i] - r > max(3.0 * sd, 0.5 * (b - r))
        if not (b - r > noise and high > BURST_RATIO * abs(level) and rises):
            i += 1
            continue
        seg = z[i : i + 2 * m]
        top = float(np.max(seg))
        peak = i + int(np.argmax(seg))
        width = int(np.flatnonzero(seg >= r + 0.5 * (top - r))[-1]) + 1
        bpeak = float(np.max(blocks[i : i + m]))
        later = blocks[i + m : min(n - m + 1, i + BURST_HORIZON)]
        half = np.flatnonzero(later <= r + 0.5 * (bpeak - r))
        if not half.size:
            i += 1  # not back down: a level shift or a divergence, which others report
            continue
        near = np.flatnonzero(later <= r + BURST_BACK * (bpeak - r))
        back = i + m + int(near[0] if near.size else half[0]) + m // 2
        out.append((i, peak, width, min(back, n - 1), float(level)))
        i = back + 1
    return out


def _progress(ctx: _Context, stop: int, W: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Progress measures for each start ``t`` (robust to noise: medians of short blocks).

    Returns the improvement over the next ``W`` points, the improvement from ``t`` to the best
    block anywhere after ``t + W``, the level at ``t`` and the improvement that counts there.
    """
    y = ctx.y[:stop]
    m = max(3, W // 3)
    blocks = trailing_median(y, m)  # blocks[t] = median(y[t:t+m]), O(n log m)
    last = y.size - W  # the block at t + W - m ends at t + W
    start = blocks[:last]
    ahead = blocks[W - m : W - m + last]
    best_after = np.minimum.accumulate(blocks[::-1])[::-1][W - m : W - m + last]
    noise = PLATEAU_Z * 1.25 * np.sqrt(2.0 / m) * ctx.local_sigma[:last]
    # the noise comes from second differences, which on a short steep curve measure its bend
    # as well: a fall by PLATEAU_SURE_FALL of the level counts as progress regardless
    thr = np.minimum(np.maximum(PLATEAU_REL * np.abs(start), noise), PLATEAU_SURE_FALL * np.abs(start))
    return start - ahead, start - best_after, start, thr


def _detect_plateau(ctx: _Context, stop: int, diverged: bool) -> list[Finding]:
    n_all = ctx.y.size
    W = max(PLATEAU_MIN_POINTS, math.ceil(PLATEAU_FRACTION * n_all))
    if stop < 2 * W:
        return []
    gain, gain_to_end, level, thr = _progress(ctx, stop, W)
    last = gain.size
    min_len = max(2, W // 2)
    findings = []
    y0 = ctx.start

    # the flat end: the earliest t after which nothing later improves on t (90% of the t's
    # from there on agree, so one noisy block does not break it)
    tail_ok = gain_to_end < thr
    agree = np.cumsum(tail_ok[::-1])[::-1] / np.arange(last, 0, -1)
    cand = np.flatnonzero(tail_ok & (agree >= 0.9))
    tail = int(cand[0]) if cand.size and last - int(cand[0]) >= min_len else None
    if tail is not None and not diverged:  # before a divergence, the divergence finding says it
        step, epoch = ctx.train.at(tail)
        lvl = float(level[tail])
        reference = ctx.baseline if ctx.baseline is not None and ctx.baseline > 0 else y0
        if tail <= max(1, W // 4):
            findings.append(
                Finding(
                    "plateau",
                    "warning",
                    step,
                    epoch,
                    f"The training loss has not improved since the start (about {ctx.u(lvl)}): nothing is "
                    "being "
                    "learned. Check that gradients reach the weights (an optimizer step, no detached "
                    "tensors, "
                    "no dead units), raise the learning rate, and check that inputs and labels match.",
                    lvl,
                )
            )
        elif reference > 0 and lvl >= UNDERFIT_FRACTION * reference:
            what = "the baseline" if reference == ctx.baseline else "the starting loss"
            findings.append(
                Finding(
                    "plateau",
                    "warning",
                    step,
                    epoch,
                    f"The training loss has been stuck at about {ctx.u(lvl)} since {_where(step, epoch)}, "
                    f"{lvl / reference * 100:.0f}% of {what} {ctx.u(reference)}. Try a larger learning "
                    "rate or a "
                    "schedule, a bigger model, or better features; check for saturated activations or "
                    "vanishing gradients.",
                    lvl,
                )
            )
        elif (checked := _still_falling(ctx, stop, tail))[0] is None:
            if checked[1] is not None:
                findings.append(checked[1])
        else:
            if checked[0] != tail:  # it fell further before levelling off: converged from later on
                step, epoch = ctx.train.at(checked[0])
                lvl = float(np.median(ctx.y[checked[0] : stop]))
            drop = f" ({(1 - lvl / y0) * 100:.0f}% below where it started)" if y0 > 0 else ""
            findings.append(
                Finding(
                    "converged",
                    "info",
                    step,
                    epoch,
                    f"The training loss levelled off at about {ctx.u(lvl)} from {_where(step, epoch)} "
                    f"on{drop}: training has converged. More steps at this learning rate will not help; "
                    "decay the learning rate to go further, or compare with the validation loss to "
                    "decide when to stop.",
                    lvl,
                )
            )
    elif tail is None and not diverged:  # no flat end: say so when it is clearly still falling
        k_w = max(3, int(CONVERGED_TAIL * stop))
        checked = _still_falling(ctx, stop, stop - 3 * k_w)
        if checked[1] is not None:
            findings.append(checked[1])

    # stalls in the middle: a window-long stretch without progress, followed by a clear drop
    end = last if tail is None else tail
    flat = gain[:end] < thr[:end]
    t = 0
    while t < end:
        if not flat[t]:
            t += 1
            continue
        u = t
        while u + 1 < end and flat[u + 1]:
            u += 1
        if u - t + 1 >= min_len and u + 1 < end:
            lvl = float(level[t])
            later = ctx.y[u + W : stop]
            resumed = float(np.median(later[-max(3, later.size // 5) :])) if later.size else lvl
            if resumed <= lvl - max(3.0 * float(thr[t]), STALL_RESUME_REL * abs(lvl)):
                step, epoch = ctx.train.at(t)
                end_step, end_epoch = ctx.train.at(min(u + W, n_all - 1))
                findings.append(
                    Finding(
                        "plateau",
                        "info",
                        step,
                        epoch,
                        f"The training loss stalled at about {ctx.u(lvl)} from {_where(step, epoch)} to "
                        f"{_where(end_step, end_epoch)}, then improved again. Long stalls often come from a "
                        "learning rate that is too low for that phase, or from poor initialisation.",
                        lvl,
                    )
                )
        t = u + 1
    return findings


def _blocks3(ctx: _Context, y: np.ndarray, start: int) -> tuple[float, float, float, float, float, int]:
    """Medians ``a, b, c`` of three equal blocks from ``start`` to the end, the noise of a
    difference of two of them (two deviations), the geometric fit's further fall
    (``a + b * exp(-t / tau)`` through the three; ``inf`` when not slowing down) and the block
    size."""
    n = y.size
    k = (n - start) // 3
    start = n - 3 * k
    a, b, c = (float(np.median(y[start + j * k : start + (j + 1) * k])) for j in range(3))
    noise = 2.0 * 1.25 * math.sqrt(2.0 / k) * float(np.median(ctx.local_sigma[start:n]))
    d1, d2 = a - b, b - c
    if d2 <= 0.0:
        further = 0.0
    elif d1 > d2:
        r = d2 / d1
        further = d2 * r / (1.0 - r)
    else:
        further = math.inf
    return a, b, c, noise, further, k


def _still_falling(ctx: _Context, stop: int, tail: int) -> tuple[int | None, Finding | None]:
    """Check a flat end found from ``tail`` on: ``(start, None)`` when it has truly levelled
    from ``start`` on (``tail``, or later if the loss fell meanwhile); ``(None, finding)`` with
    an ``improving`` finding when the loss is still falling; ``(None, None)`` when the noise
    leaves it open.

    Over the claimed flat end ``T`` (from ``tail``, at least the last ``3 * CONVERGED_TAIL``
    of the run) and over the last ``3 * CONVERGED_TAIL`` of the run ``W``, each in three
    blocks (medians ``a, b, c``): levelled from the start of the first of them over which the
    loss falls by less than ``CONVERGED_RECENT_REL`` and the geometric fit predicts less than
    ``CONVERGED_FIT_REL`` more (a fit only where the fall is more than noise; a fall that is
    not slowing down predicts as much again).  Else, still
    improving where the fall over ``T`` is more than noise.
    """
    y = ctx.y[:stop]
    n = y.size
    k_w = max(3, int(CONVERGED_TAIL * n))
    if n - tail < 9 or n < 3 * k_w:
        return tail, None
    a, b, c, noise, further, k = _blocks3(ctx, y, min(tail, n - 3 * k_w))
    for start in (min(tail, n - 3 * k_w), n - 3 * k_w):
        ta, _, tc, t_noise, t_further, _ = _blocks3(ctx, y, start)
        t_fall = (ta - tc) / max(abs(ta), 1e-12)
        # a fall that is not slowing down counts as much again over as long again
        fit = (ta - tc if math.isinf(t_further) else t_further) if ta - tc > t_noise else 0.0
        if t_fall < CONVERGED_RECENT_REL and fit / max(abs(tc), 1e-12) < CONVERGED_FIT_REL:
            return max(start, tail), None
    if a - c <= noise:
        return None, None
    fall = (a - c) / max(abs(a), 1e-12)
    scale = max(abs(c), 1e-12)
    step, epoch = ctx.train.at(n - 1)
    s0, e0 = ctx.train.at(n - 3 * k)
    unit = "steps" if ctx.train.step is not None else ("epochs" if ctx.train.epoch is not None else "points")
    span = ctx.train.position[n - 1] - ctx.train.position[n - 3 * k]
    if math.isinf(further):
        more = "and it is not slowing down"
    elif further / scale < 0.01:
        more = "though it is slowing down"
    else:
        more = f"and a fit of the tail predicts about {further / scale * 100:.0f}% more"
    return None, Finding(
        "improving",
        "info",
        step,
        epoch,
        f"The training loss is still falling at the end: {ctx.u(a)} -> {ctx.u(c)} ({fall * 100:.0f}% lower) "
        f"over the last {_pos(_num(span))} {unit} (from {_where(s0, e0)}), {more}: training has not "
        "converged yet. Train longer (or let the learning-rate schedule run its course) before judging "
        "the final loss.",
        c,
    )


def _aligned_positions(train: Series, val: Series) -> tuple[np.ndarray, np.ndarray]:
    if train.step is not None and val.step is not None:
        return train.step, val.step
    if train.epoch is not None and val.epoch is not None:
        return train.epoch, val.epoch
    nt, nv = len(train), len(val)
    return np.arange(nt) / max(nt - 1, 1), (np.arange(nv) + 1) / nv


def _detect_overfitting(ctx: _Context) -> list[Finding]:
    val = ctx.val
    if val is None or len(val) < OVERFIT_MIN_POINTS:
        return []
    v = val.value
    nv = v.size
    win = max(3, nv // 10) | 1 if nv >= 7 else 1
    sv = _rolling_median(v, win)
    j = int(np.argmin(sv))
    h = win // 2 + 1
    lo, hi = max(0, j - h), min(nv, j + h + 1)
    j = lo + int(np.argmin(v[lo:hi]))  # the actual best epoch near the smoothed minimum
    if nv - 1 - j < 2:
        return []
    v_min = float(v[j])
    k = max(2, min(win, nv - 1 - j))
    end = float(np.median(v[-k:]))
    sv_min = float(np.min(sv))
    sigma_v = _mad_sigma(v - _rolling_median(v, 3)) if nv >= 5 else 0.0
    # the smoothed end must clear the smoothed minimum by more than noise and OVERFIT_REL
    if end - sv_min <= max(OVERFIT_REL * abs(sv_min), OVERFIT_Z * sigma_v / math.sqrt(k)):
        return []
    if np.mean(sv[j + 1 :] > sv_min) < 0.8:
        return []
    if end - sv_min < 0.5 * (float(np.max(sv[j + 1 :])) - sv_min):
        return []  # it rose and has come most of the way back down: a transient (a burst), not overfitting
    xt, xv = _aligned_positions(ctx.train, val)
    train_at_min = float(np.interp(xv[j], xt, ctx.s))
    train_end = float(ctx.s[-1])
    if not train_end < train_at_min - OVERFIT_TRAIN_DROP * abs(train_at_min):
        return []
    step, epoch = val.at(j)
    if epoch is None and step is not None and ctx.train.epoch is not None and ctx.train.step is not None:
        epoch = _num(np.interp(step, ctx.train.step, ctx.train.epoch))
    rise_pct = (end / v_min - 1) * 100 if v_min > 0 else float("nan")
    what = "validation"
    if is_test_name(val.name):
        what = f"test loss ({val.name}, used as the held-out curve: the log has no validation curve)"
    held = "validation loss" if what == "validation" else what
    return [
        Finding(
            "overfitting",
            "warning",
            step,
            epoch,
            f"The {held} was lowest ({ctx.u(v_min)}) at {_where(step, epoch)} and has risen "
            f"since (to {ctx.u(end)}, +{rise_pct:.0f}%), while the training loss kept falling "
            f"({ctx.u(train_at_min)} -> {ctx.u(train_end)}): the model is overfitting. "
            + _checkpoint_advice(ctx, step, epoch)
            + " and add regularisation (weight decay, dropout, augmentation) or more data.",
            v_min,
        )
    ]


def _checkpoint_advice(ctx: _Context, step: Any, epoch: Any) -> str:
    """How to keep the best checkpoint, in the words of the framework that wrote the log."""
    fmt = ctx.history.format
    where = _where(step, epoch)
    monitor = ctx.val.name if ctx.val is not None and ctx.val.name else "val_loss"
    if fmt == "lightning_csv":
        return (
            f"Lightning's default ModelCheckpoint keeps only the last epoch, not {where}: pass "
            f'ModelCheckpoint(monitor="{monitor}", mode="min") to the Trainer (with '
            f'EarlyStopping(monitor="{monitor}") to stop there),'
        )
    if fmt == "hf_trainer_state":
        return (
            f"The Trainer does not keep the checkpoint from {where} unless told it is the best "
            "(save_total_limit deletes older ones): set load_best_model_at_end=True with "
            'metric_for_best_model="eval_loss" and greater_is_better=False (save_strategy the same '
            "as eval_strategy; EarlyStoppingCallback to stop there),"
        )
    if fmt in ONE_BASED_EPOCHS:
        return (
            f"Keep the model from {where} (as Keras counts epochs): "
            'keras.callbacks.ModelCheckpoint(path, monitor="val_loss", save_best_only=True), or '
            'EarlyStopping(monitor="val_loss", restore_best_weights=True),'
        )
    return f"Keep the checkpoint from {where} (early stopping),"


def _detect_underfitting(ctx: _Context) -> list[Finding]:
    b = ctx.baseline
    if b is None or not b > 0:
        return []
    n = ctx.y.size
    k = max(3, n // 20)
    t_end = float(np.median(ctx.y[-k:]))
    v_end = None if ctx.val is None else float(np.median(ctx.val.value[-3:]))
    if t_end < UNDERFIT_FRACTION * b or (v_end is not None and v_end < UNDERFIT_FRACTION * b):
        return []
    step, epoch = ctx.train.at(n - 1)
    both = f"train {ctx.u(t_end)}" + ("" if v_end is None else f" and validation {ctx.u(v_end)}")
    return [
        Finding(
            "underfitting",
            "warning",
            step,
            epoch,
            f"At the end of training the loss ({both}) is still {t_end / b * 100:.0f}% of the "
            f"baseline {ctx.u(b)}, which a constant guess scores: the model has learned little. Train "
            "longer or with a larger learning rate, use a bigger model, and check that the inputs "
            "carry information about the labels.",
            t_end,
        )
    ]


_SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}


def diagnose(
    history: Any,
    *,
    num_classes: int | None = None,
    task: str | None = None,
    baseline: float | None = None,
) -> list[Finding]:
    """Read a training history and say what is wrong with it, since when, and what to do.

    Args:
      history: a :class:`History` (e.g. from :func:`losskit.diagnostics.read_log`), a sequence
        of train losses, a Keras ``History``, or a mapping of columns such as
        ``{"loss": [...], "val_loss": [...]}`` (see :func:`as_history`).
      num_classes: number of classes :math:`K`, for the baseline :math:`\\ln K` against which the
        starting and final losses are judged.
      task: the task (``"multiclass"``, ``"binary"``, ``"multilabel"``, ``"sequence"``, ...;
        see :func:`losskit.recommend`); ``"binary"``/``"multilabel"`` give the baseline ln 2.
      baseline: the baseline loss itself (overrides ``num_classes``/``task``), e.g.
        ``losskit.baseline_loss("mse", targets=y_train)``.

    Returns:
      A list of :class:`Finding`, most severe first, then in order of the step where they
      start.  It always contains at least one finding: ``healthy`` when no warning or error
      was found.  The thresholds are documented in this module's docstring.
    """
    hist = as_history(history)
    unit = ""
    if baseline is None:
        b = task_baseline(task, num_classes)
        baseline = None if b is None else b.value
        unit = "nats" if b is not None and b.log_loss else ""
    else:
        if (
            isinstance(baseline, bool)
            or not isinstance(baseline, (int, float))
            or not math.isfinite(baseline)
        ):
            raise ValueError(f"baseline must be a finite number; got {baseline!r}")
        baseline = float(baseline)
        if task is not None:
            task_baseline(task, None)  # validates the task name
        if task in ("binary", "multilabel", "multiclass", "sequence", "segmentation", "distribution"):
            unit = "nats"

    hist = _one_based(hist)
    findings, hist_ok = _detect_nan(hist)
    if hist_ok is None:
        return _sorted(findings)
    ctx = _Context(hist_ok, baseline, unit)
    findings += _detect_init(ctx)
    div, onset = _detect_blowup(ctx)
    if onset is None:
        div, onset = _detect_divergence(ctx)
    findings += div
    stop = ctx.y.size if onset is None else max(0, onset - SPIKE_WINDOW // 2)
    findings += _detect_spikes(ctx, stop)
    findings += _detect_plateau(ctx, ctx.y.size if onset is None else onset, onset is not None)
    if onset is None:
        findings += _detect_overfitting(ctx)
        findings += _detect_underfitting(ctx)
    if not any(f.severity in ("error", "warning") for f in findings):
        findings.append(_healthy(ctx))
    return _sorted(findings)


def _one_based(hist: History) -> History:
    """Epochs as the framework shows them: Keras counts from 1 but logs from 0."""
    if hist.format not in ONE_BASED_EPOCHS:
        return hist

    def shift(s: Series | None) -> Series | None:
        if s is None or s.epoch is None:
            return s
        return Series(s.value, s.step, s.epoch + 1, name=s.name)

    return History(shift(hist.train), shift(hist.val), hist.format, dict(hist.columns))  # type: ignore[arg-type]


def _healthy(ctx: _Context) -> Finding:
    y0, y1 = ctx.start, float(ctx.s[-1])
    step, epoch = ctx.train.at(ctx.y.size - 1)
    parts = [f"No problems found: the training loss went from {ctx.u(ctx.start)} to about {ctx.u(y1)}"]
    if y0 > 0 and y1 < y0:
        parts[0] += f" ({(1 - y1 / y0) * 100:.0f}% lower)"
    if ctx.val is not None and len(ctx.val):
        j = int(np.argmin(ctx.val.value))
        vs, ve = ctx.val.at(j)
        what = f"test loss ({ctx.val.name})" if is_test_name(ctx.val.name) else "validation loss"
        parts.append(f"{what} reached {ctx.u(float(ctx.val.value[j]))} at {_where(vs, ve)}")
    if ctx.baseline is not None:
        parts.append(f"baseline {ctx.u(ctx.baseline)}")
    return Finding("healthy", "info", step, epoch, "; ".join(parts) + ".", y1)


def _sorted(findings: list[Finding]) -> list[Finding]:
    def key(f: Finding) -> tuple[int, float]:
        pos = f.step if f.step is not None else f.epoch
        return _SEVERITY_RANK[f.severity], float(pos) if pos is not None else -1.0

    return sorted(findings, key=key)
