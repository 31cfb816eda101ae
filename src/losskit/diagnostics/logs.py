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
  holding them, in sub-directories too, as Keras writes ``train/`` and ``validation/``), decoded
  with the ``tensorboard`` package's protocol buffers (``pip install 'losskit[logs]'``).  A
  damaged record (its checksum does not match) is skipped and the rest of the file read; a
  :class:`LogWarning` says which file lost how many records.

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
import math
import os
import struct
import warnings
from array import array
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .columns import listing, pick_loss_columns
from .history import History, Series

__all__ = ["FORMATS", "LogError", "LogWarning", "detect_format", "read_log"]

FORMATS = ("csv", "lightning_csv", "keras_csv", "hf_trainer_state", "tensorboard")


class LogError(ValueError):
    """A log that cannot be read: missing, of an unknown format, empty, or without a loss."""


class LogWarning(UserWarning):
    """A log read in part: damaged records of an event file were skipped (the message says which
    file and how many records)."""


def _load_json(path: Path):
    """The JSON value in ``path`` (a UTF-8 byte-order mark is allowed), or ``LogError``."""
    try:
        return json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise LogError(f"{path} is not UTF-8 text: {exc}") from None
    except RecursionError:
        raise LogError(f"{path} holds JSON nested too deeply to be a training log") from None
    except ValueError as exc:  # json.JSONDecodeError, and Python's limit on an integer's digits
        raise LogError(f"{path} cannot be parsed as JSON: {exc}") from None


def _log_history(state, path: Path) -> list:
    """``state["log_history"]`` of a trainer_state.json, or ``LogError`` saying what came."""
    if not isinstance(state, dict):
        what = {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
            type(state), "a number"
        )
        raise LogError(
            f"{path} holds {what}, not a Hugging Face trainer_state.json (an object with a "
            "'log_history' list)"
        )
    history = state.get("log_history")
    if not isinstance(history, list):
        raise LogError(f"{path} is JSON but not a Hugging Face trainer_state.json (no 'log_history' list)")
    return history


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
    try:
        return [c.strip() for c in next(csv.reader([first], delimiter=delim))]
    except csv.Error as exc:
        raise LogError(f"{path}: line 1 is not CSV: {exc}") from None


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
    head = head.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark, as some editors write
    if head.lstrip().startswith((b"{", b"[")) or p.suffix.lower() == ".json":
        _log_history(_load_json(p), p)
        return "hf_trainer_state"
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
        raise LogError(f"{p}: no loss column in the header ({listing(header)})")
    if "epoch" in lower and "step" in lower:
        # streamed, up to the first empty cell (Lightning has one on its first or second row)
        if any(any(cell == "" for cell in r) for r in _csv_rows(p)):
            return "lightning_csv"
        return "csv"
    if lower[0] == "epoch" and "step" not in lower:
        return "keras_csv"
    return "csv"


def _csv_rows(path: Path) -> Iterator[list[str]]:
    """The rows after the header line, one at a time (a log may have millions): cells stripped,
    blank rows left out."""
    delim = ","
    with open(path, newline="", encoding="utf-8-sig") as fh:
        try:
            first = fh.readline()
            if "\t" in first:
                delim = "\t"
            elif ";" in first and "," not in first:
                delim = ";"
            reader = csv.reader(fh, delimiter=delim)
            for r in reader:
                cells = list(map(str.strip, r))
                if any(cells):
                    yield cells
        except UnicodeDecodeError as exc:
            raise LogError(f"{path} is not UTF-8 text: {exc}") from None
        except csv.Error as exc:  # a field over the csv module's limit, a stray quote, ...
            raise LogError(f"{path}: line {reader.line_num + 1} is not CSV: {exc}") from None


def _read_csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    return _sniff_csv_header(path) or [], list(_csv_rows(path))


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


# A column of a table: a list with ``None`` for "not logged on this row", or (for long CSV logs,
# read without a Python object per cell) the values as float64 and whether each row has one.
_Column = list[float | None] | tuple[np.ndarray, np.ndarray]


def _column_arrays(col: _Column) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(col, tuple):
        return col
    present = np.fromiter((v is not None for v in col), dtype=bool, count=len(col))
    values = np.fromiter((math.nan if v is None else v for v in col), dtype=np.float64, count=len(col))
    return values, present


def _series_from_table(table: dict[str, _Column], column: str) -> Series:
    values, present = _column_arrays(table[column])
    keep = np.flatnonzero(present)

    def sub(name: str) -> np.ndarray | None:
        if name not in table:
            return None
        col, has = _column_arrays(table[name])
        if not has[keep].all():
            return None
        return col[keep]

    value = values[keep]
    step, epoch = sub("step"), sub("epoch")
    if step is None and epoch is None:
        step = keep.astype(np.float64)
    return Series(value, step, epoch, name=column)


def _history_from_table(
    table: dict[str, _Column], fmt: str, source: Path, train: str | None, val: str | None
) -> History:
    try:
        train_col, val_col = pick_loss_columns(list(table), train, val)
    except ValueError as exc:
        raise LogError(f"{source}: {exc}") from None
    try:
        t = _series_from_table(table, train_col)
        if len(t) == 0:
            raise LogError(f"{source}: the train loss column {train_col!r} has no values")
        v = _series_from_table(table, val_col) if val_col else None
        cols = {"train": train_col, **({"val": val_col} if val_col else {})}
        return History(t, v if v is not None and len(v) else None, fmt, cols)
    except LogError:
        raise
    except ValueError as exc:
        raise LogError(f"{source}: {exc}") from None


def _read_csv(path: Path, fmt: str, train: str | None, val: str | None) -> History:
    # streamed row by row into compact arrays (8 bytes a value, 1 a "logged here" flag): a log of
    # ten million rows is never held as Python objects; a column stops being kept at its first
    # cell that is not a number
    header = _sniff_csv_header(path) or []
    width = len(header)
    values: list[array | None] = [array("d") for _ in header]
    present: list[bytearray | None] = [bytearray() for _ in header]
    nan = math.nan
    rows = 0
    for r in _csv_rows(path):
        rows += 1
        short = len(r) < width
        for j in range(width):
            col = values[j]
            if col is None:
                continue
            text = "" if short and j >= len(r) else r[j]
            try:
                col.append(float(text))  # the common case: a plain number
                present[j].append(1)  # type: ignore[union-attr]
                continue
            except ValueError:
                pass
            try:
                v = _cell(text)
            except ValueError:
                values[j] = present[j] = None  # not a numeric column
                continue
            col.append(nan if v is None else v)
            present[j].append(0 if v is None else 1)  # type: ignore[union-attr]
    if not rows:
        raise LogError(f"{path} has a header but no rows: the log is empty")
    table: dict[str, _Column] = {}
    canon = {h: ("step" if h.lower() == "step" else "epoch" if h.lower() == "epoch" else h) for h in header}
    for j, h in enumerate(header):
        col, has = values[j], present[j]
        if col is not None and has is not None:
            table[canon[h]] = (np.frombuffer(col, dtype=np.float64), np.frombuffer(has, dtype=bool))
        values[j] = present[j] = None
    return _history_from_table(table, fmt, path, train, val)


def _float(v: int | float) -> float:
    """A JSON number as a float; an integer too large for one is infinite."""
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


def _read_hf(path: Path, train: str | None, val: str | None) -> History:
    if path.is_dir():
        path = path / "trainer_state.json"
    entries = [e for e in _log_history(_load_json(path), path) if isinstance(e, dict)]
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
                None if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) else _float(v)
            )
        table[k] = col
    return _history_from_table(table, "hf_trainer_state", path, train, val)


# -- TensorBoard event files: TFRecord framing, checked record by record ----------------------
# A record is a little-endian uint64 length, the masked CRC-32C of those 8 bytes, the payload
# (a serialized Event) and the masked CRC-32C of the payload.


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC32C = _crc32c_table()


def _masked_crc32c(data: bytes) -> int:
    crc, table = 0xFFFFFFFF, _CRC32C
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _record_at(data: bytes, pos: int) -> tuple[bytes | None, int] | None:
    """The record at ``pos``: ``(payload, end)``; ``(None, end)`` when its header is intact but
    its payload is damaged; ``None`` when no intact header starts at ``pos``."""
    if pos + 12 > len(data):
        return None
    (length,) = struct.unpack_from("<Q", data, pos)
    if struct.unpack_from("<I", data, pos + 8)[0] != _masked_crc32c(data[pos : pos + 8]):
        return None
    stop = pos + 12 + length
    if stop + 4 > len(data):
        return None
    payload = data[pos + 12 : stop]
    if struct.unpack_from("<I", data, stop)[0] != _masked_crc32c(payload):
        return None, stop + 4
    return payload, stop + 4


def _records(data: bytes) -> tuple[list[bytes], int, bool, bool]:
    """The intact records of a TFRecord file: ``(payloads, damaged, exact, incomplete_tail)``.

    A record whose header is intact but payload damaged is skipped by its length; past a damaged
    header, the next intact record is searched for byte by byte (its header and payload
    checksums must both match), and the skipped bytes count as one record (``exact`` is then
    False: they may have held more).  An incomplete record at the end (a file cut short, or one
    still being written) is reported apart.
    """
    payloads: list[bytes] = []
    damaged, exact, pos, lost_from = 0, True, 0, None
    while pos < len(data):
        record = _record_at(data, pos)
        if record is None:  # not the start of an intact record
            if lost_from is None:
                lost_from = pos
            pos += 1
            continue
        if lost_from is not None:
            damaged, exact, lost_from = damaged + 1, False, None
        payload, pos = record
        if payload is None:
            damaged += 1
        else:
            payloads.append(payload)
    incomplete = False
    if lost_from is not None:  # bytes after the last intact record
        cut = _record_header_only(data, lost_from)
        if cut:
            incomplete = True
        else:
            damaged, exact = damaged + 1, False
    return payloads, damaged, exact, incomplete


def _record_header_only(data: bytes, pos: int) -> bool:
    """Whether the bytes from ``pos`` to the end are the start of one record, cut short: too
    few to hold a header, or an intact header announcing more bytes than the file has left."""
    if len(data) - pos < 12:
        return True
    (length,) = struct.unpack_from("<Q", data, pos)
    header_ok = struct.unpack_from("<I", data, pos + 8)[0] == _masked_crc32c(data[pos : pos + 8])
    return header_ok and pos + 12 + length + 4 > len(data)


def _file_version(text: str) -> float | None:
    try:
        return float(text.split("brain.Event:")[-1])
    except ValueError:
        return None


def _tb_scalars(files: list[Path]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Scalar series by tag from the event files of one run, read in order, as TensorBoard's
    ``EventAccumulator`` reads them: ``simple_value`` summaries and one-number tensors (as TF2
    and newer writers store scalars), and points purged when a run restarts at an earlier step
    (a ``SessionLog.START`` event; in files before version 2, a step going back).  Damaged
    records are skipped, and a :class:`LogWarning` says so."""
    try:
        from google.protobuf.message import DecodeError
        from tensorboard.compat.proto import event_pb2
        from tensorboard.util import tensor_util
    except ImportError:
        raise LogError(
            "reading TensorBoard event files needs the 'tensorboard' package: pip install 'losskit[logs]'"
        ) from None
    scalars: dict[str, list[tuple[int, float]]] = {}
    tensors: dict[str, list[tuple[int, object]]] = {}
    version, latest = None, -1

    def purge(step: int, tags=None) -> None:
        for store in (scalars, tensors):
            for tag in list(store) if tags is None else [t for t in tags if t in store]:
                store[tag] = [point for point in store[tag] if point[0] < step]

    for path in files:
        payloads, damaged, exact, incomplete = _records(path.read_bytes())
        undecodable = 0
        for payload in payloads:
            try:
                event = event_pb2.Event.FromString(payload)
            except DecodeError:
                undecodable += 1
                continue
            if event.HasField("file_version"):
                version = _file_version(event.file_version)
            if version is not None and version >= 2:
                if event.HasField("session_log") and event.session_log.status == event_pb2.SessionLog.START:
                    purge(event.step)
            elif event.step < latest and event.HasField("summary"):
                purge(event.step, [v.tag for v in event.summary.value])
            else:
                latest = event.step
            if not event.HasField("summary"):
                continue
            for value in event.summary.value:
                kind = value.WhichOneof("value")
                if kind == "simple_value":
                    scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
                elif kind == "tensor":
                    tensors.setdefault(value.tag or value.node_name, []).append((event.step, value.tensor))
        _warn_damage(path, damaged + undecodable, exact, incomplete)
    out = {tag: _arrays(points) for tag, points in scalars.items() if points}
    for tag, points in tensors.items():  # one-number tensors, unless the tag has simple values
        if tag in out or not points:
            continue
        values = []
        for step, proto in points:
            try:
                arr = tensor_util.make_ndarray(proto)
            except Exception:  # a tensor this reader cannot decode is not a scalar curve
                break
            if arr.size != 1 or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
                break
            values.append((step, float(arr.reshape(()))))
        else:
            out[tag] = _arrays(values)
    return out


def _arrays(points: list[tuple[int, float]]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([p[0] for p in points], float), np.array([p[1] for p in points], float)


def _warn_damage(path: Path, damaged: int, exact: bool, incomplete: bool) -> None:
    if not damaged and not incomplete:
        return
    parts = []
    if damaged:
        records = "record" if damaged == 1 else "records"
        parts.append(f"skipped {'' if exact else 'at least '}{damaged} corrupted {records}")
    if incomplete:
        parts.append("an incomplete last record (a file cut short, or still being written)")
    warnings.warn(
        f"{path}: {' and '.join(parts)}; the values they held are missing from the history",
        LogWarning,
        stacklevel=5,
    )


def _read_tensorboard(path: Path, train: str | None, val: str | None) -> History:
    files = _event_files(path)
    if not files:
        raise LogError(f"no TensorBoard event files at {path}")
    root = path if path.is_dir() else path.parent
    scalars: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for directory in sorted({f.parent for f in files}):
        run = directory.relative_to(root).as_posix()
        for tag, data in _tb_scalars([f for f in files if f.parent == directory]).items():
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
