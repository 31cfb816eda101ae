"""Read training logs into a :class:`~losskit.diagnostics.History`, detecting the format.

Formats (the ``format`` names):

- ``"csv"``: a plain CSV with a loss column and optionally ``step`` and/or ``epoch``
  columns (one row per logged point; without a step/epoch column the row index is the step).
- ``"lightning_csv"``: PyTorch Lightning's ``CSVLogger`` ``metrics.csv`` (``epoch``, ``step``
  and metric columns; train and validation values on separate rows, the other cells empty).
- ``"keras_csv"``: Keras' ``CSVLogger`` (``epoch,loss,val_loss,...``; one row per epoch).
- ``"hf_trainer_state"``: Hugging Face Trainer's ``trainer_state.json`` (``log_history`` entries
  with ``loss`` and ``eval_loss``; the final summary entry is skipped).
- ``"tensorboard"``: TensorBoard event files (a file ``events.out.tfevents.*`` or a directory
  holding them, in sub-directories too, as Keras writes ``train/`` and ``validation/``), read
  with the ``tensorboard`` package's event reader (``pip install 'losskit[logs]'``).

Columns (or tags) are matched by name: the train loss is a column whose name has the word
``loss`` and no validation word (``train_loss``, ``loss``, ``train/loss``, ...), the validation
loss one with ``val``/``valid``/``validation``/``eval``/``dev`` (``val_loss``, ``eval_loss``,
``validation/loss``, ...).  Pass ``train=``/``val=`` to name them.  Non-numeric cells such as
``nan`` and ``inf`` are kept (they are what the ``nan`` finding looks for); empty cells mean
"not logged on this row".
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

from .columns import pick_loss_columns
from .history import History, Series

__all__ = ["FORMATS", "LogError", "detect_format", "read_log"]

FORMATS = ("csv", "lightning_csv", "keras_csv", "hf_trainer_state", "tensorboard")


class LogError(ValueError):
    """A log that cannot be read: missing, of an unknown format, empty, or without a loss."""


def _is_event_file(p: Path) -> bool:
    return p.is_file() and "tfevents" in p.name


def _event_files(path: Path) -> list[Path]:
    if _is_event_file(path):
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*tfevents*") if p.is_file())
    return []


def _sniff_csv_header(path: Path) -> list[str] | None:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            first = fh.readline()
    except (UnicodeDecodeError, OSError):
        return None
    if "," not in first and "\t" not in first and ";" not in first:
        return [first.strip()] if first.strip() else None
    delim = "\t" if "\t" in first else (";" if ";" in first and "," not in first else ",")
    return [c.strip() for c in next(csv.reader([first], delimiter=delim))]


def detect_format(path: str | os.PathLike[str]) -> str:
    """The format of the log at ``path`` (one of :data:`FORMATS`); ``LogError`` if unknown.

    A directory is searched for ``trainer_state.json``, ``metrics.csv`` or event files.
    """
    p = Path(path)
    if not p.exists():
        raise LogError(f"no such file or directory: {p}")
    if p.is_dir():
        if (p / "trainer_state.json").is_file():
            return "hf_trainer_state"
        if (p / "metrics.csv").is_file():
            return detect_format(p / "metrics.csv")
        if _event_files(p):
            return "tensorboard"
        raise LogError(
            f"{p} is a directory without a trainer_state.json, metrics.csv or TensorBoard event files"
        )
    if _is_event_file(p):
        return "tensorboard"
    if p.stat().st_size == 0:
        raise LogError(f"{p} is empty")
    with open(p, "rb") as fh:
        head = fh.read(2048)
    if head.lstrip().startswith(b"{"):
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise LogError(f"{p} looks like JSON but cannot be parsed: {exc}") from None
        if isinstance(data, dict) and isinstance(data.get("log_history"), list):
            return "hf_trainer_state"
        raise LogError(f"{p} is JSON but not a Hugging Face trainer_state.json (no 'log_history' list)")
    if b"\x00" in head:
        raise LogError(
            f"{p} is a binary file of unknown format (TensorBoard event files are named "
            "events.out.tfevents.*)"
        )
    header = _sniff_csv_header(p)
    if not header or len(header) < 1:
        raise LogError(f"{p}: unknown log format (expected CSV, trainer_state.json or TensorBoard events)")
    lower = [h.lower() for h in header]
    if not any("loss" in h for h in lower):
        raise LogError(f"{p}: no loss column in the header ({', '.join(header)})")
    if "epoch" in lower and "step" in lower:
        rows = _read_csv_rows(p)[1]
        if any(any(cell == "" for cell in r) for r in rows):
            return "lightning_csv"
        return "csv"
    if lower[0] == "epoch" and "step" not in lower:
        return "keras_csv"
    return "csv"


def _read_csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    header = _sniff_csv_header(path) or []
    delim = ","
    with open(path, newline="", encoding="utf-8-sig") as fh:
        first = fh.readline()
        if "\t" in first:
            delim = "\t"
        elif ";" in first and "," not in first:
            delim = ";"
        rows = [[c.strip() for c in r] for r in csv.reader(fh, delimiter=delim) if any(c.strip() for c in r)]
    return header, rows


def _cell(text: str) -> float | None:
    """A number, NaN/inf kept; ``None`` for an empty cell (not logged on this row)."""
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        low = text.lower()
        if low in ("nan", "-nan", "inf", "+inf", "-inf", "infinity", "-infinity"):
            return float(low.replace("infinity", "inf"))
        raise


def _series_from_table(table: dict[str, list[float | None]], column: str) -> Series:
    values = table[column]
    keep = [i for i, v in enumerate(values) if v is not None]
    steps = table.get("step")
    epochs = table.get("epoch")

    def sub(col: list[float | None] | None) -> np.ndarray | None:
        if col is None:
            return None
        picked = [col[i] for i in keep]
        if any(v is None for v in picked):
            return None
        return np.asarray(picked, dtype=np.float64)

    value = np.asarray([values[i] for i in keep], dtype=np.float64)
    step, epoch = sub(steps), sub(epochs)
    if step is None and epoch is None:
        step = np.asarray(keep, dtype=np.float64)
    return Series(value, step, epoch, name=column)


def _history_from_table(
    table: dict[str, list[float | None]], fmt: str, source: Path, train: str | None, val: str | None
) -> History:
    try:
        train_col, val_col = pick_loss_columns(list(table), train, val)
    except ValueError as exc:
        raise LogError(f"{source}: {exc}") from None
    t = _series_from_table(table, train_col)
    if len(t) == 0:
        raise LogError(f"{source}: the train loss column {train_col!r} has no values")
    v = _series_from_table(table, val_col) if val_col else None
    cols = {"train": train_col, **({"val": val_col} if val_col else {})}
    return History(t, v if v is not None and len(v) else None, fmt, cols)


def _read_csv(path: Path, fmt: str, train: str | None, val: str | None) -> History:
    header, rows = _read_csv_rows(path)
    if not rows:
        raise LogError(f"{path} has a header but no rows: the log is empty")
    table: dict[str, list[float | None]] = {}
    canon = {h: ("step" if h.lower() == "step" else "epoch" if h.lower() == "epoch" else h) for h in header}
    for j, h in enumerate(header):
        col: list[float | None] = []
        numeric = True
        for r in rows:
            text = r[j] if j < len(r) else ""
            try:
                col.append(_cell(text))
            except ValueError:
                numeric = False
                break
        if numeric:
            table[canon[h]] = col
    return _history_from_table(table, fmt, path, train, val)


def _read_hf(path: Path, train: str | None, val: str | None) -> History:
    if path.is_dir():
        path = path / "trainer_state.json"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LogError(f"{path} cannot be parsed as JSON: {exc}") from None
    entries = [e for e in state.get("log_history", []) if isinstance(e, dict)]
    # the last entry summarises the run (train_loss = mean over the run): not a point on the curve
    entries = [e for e in entries if "train_runtime" not in e]
    if not entries:
        raise LogError(f"{path}: log_history is empty")
    keys: list[str] = []
    for e in entries:
        for k, v in e.items():
            if k not in keys and (isinstance(v, (int, float)) and not isinstance(v, bool) or v is None):
                keys.append(k)
    table: dict[str, list[float | None]] = {}
    for k in keys:
        col = []
        for e in entries:
            v = e.get(k)
            col.append(
                None if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) else float(v)
            )
        table[k] = col
    return _history_from_table(table, "hf_trainer_state", path, train, val)


def _tb_scalars(directory: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    try:
        from tensorboard.backend.event_processing import event_accumulator
        from tensorboard.util import tensor_util
    except ImportError:
        raise LogError(
            "reading TensorBoard event files needs the 'tensorboard' package: pip install 'losskit[logs]'"
        ) from None
    acc = event_accumulator.EventAccumulator(
        str(directory), size_guidance={event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 0}
    )
    acc.Reload()
    tags = acc.Tags()
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for tag in tags.get("scalars", []):
        events = acc.Scalars(tag)
        out[tag] = (np.array([e.step for e in events], float), np.array([e.value for e in events], float))
    for tag in tags.get("tensors", []):  # TF2 / newer writers store scalars as 0-d tensors
        if tag in out:
            continue
        steps, values = [], []
        for e in acc.Tensors(tag):
            arr = tensor_util.make_ndarray(e.tensor_proto)
            if arr.size != 1 or not np.issubdtype(arr.dtype, np.number):
                break
            steps.append(e.step)
            values.append(float(arr.reshape(())))
        else:
            if values:
                out[tag] = (np.array(steps, float), np.array(values, float))
    return out


def _read_tensorboard(path: Path, train: str | None, val: str | None) -> History:
    files = _event_files(path)
    if not files:
        raise LogError(f"no TensorBoard event files at {path}")
    root = path if path.is_dir() else path.parent
    scalars: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for directory in sorted({f.parent for f in files}):
        run = directory.relative_to(root).as_posix()
        for tag, data in _tb_scalars(directory).items():
            name = tag if run in ("", ".") else f"{run}/{tag}"
            scalars[name] = data
    if not scalars:
        raise LogError(f"{path}: the TensorBoard event files hold no scalars: the log is empty")
    try:
        train_tag, val_tag = pick_loss_columns(list(scalars), train, val)
    except ValueError as exc:
        raise LogError(f"{path}: {exc}") from None
    epoch_tag = next((t for t in scalars if t.split("/")[-1].lower() == "epoch"), None)

    def series(tag: str) -> Series:
        step, value = scalars[tag]
        epoch = None
        if epoch_tag is not None and scalars[epoch_tag][0].size:
            es, ev = scalars[epoch_tag]
            order = np.argsort(es)
            epoch = np.interp(step, es[order], ev[order])
        return Series(value, step, epoch, name=tag)

    t = series(train_tag)
    v = series(val_tag) if val_tag else None
    cols = {"train": train_tag, **({"val": val_tag} if val_tag else {})}
    return History(t, v, "tensorboard", cols)


def read_log(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    train: str | None = None,
    val: str | None = None,
) -> History:
    """Read a training log into a :class:`History` (its ``format`` attribute says which).

    Args:
      path: a log file, or a directory holding ``trainer_state.json``, ``metrics.csv`` or
        TensorBoard event files.
      format: one of :data:`FORMATS` to skip detection (default: detect).
      train: name of the train-loss column/tag (default: matched by name).
      val: name of the validation-loss column/tag (default: matched by name; none is fine).

    Raises :class:`LogError` (a ``ValueError``) for a missing file, an unknown format, an empty
    log, or a log without a loss column, with a one-line message.
    """
    p = Path(path)
    if not p.exists():
        raise LogError(f"no such file or directory: {p}")
    fmt = detect_format(p) if format is None else format
    if fmt not in FORMATS:
        raise LogError(f"unknown format {fmt!r}; known formats: {', '.join(FORMATS)}")
    if fmt == "tensorboard":
        return _read_tensorboard(p, train, val)
    if fmt == "hf_trainer_state":
        return _read_hf(p, train, val)
    if p.is_dir():
        p = p / "metrics.csv"
    return _read_csv(p, fmt, train, val)
