"""Evaluate predictions larger than memory: losses over ``.npy`` and Parquet files on Dask.

``losskit.evaluate(predictions, targets, loss=...)`` and the ``losskit evaluate`` command read a
column (Parquet) or array (``.npy``) of predictions and one of targets as Dask arrays, chunk by
chunk, and compute one or several catalogued losses over all rows in a single pass: every loss
is the ordinary array-API loss applied to the lazy Dask arrays, and all of them (with the NaN
checks) are computed together, so each chunk is read once and memory stays bounded by the
chunk size times the number of chunks in flight, whatever the size of the files.

Dask is imported on first use, never at ``import losskit``.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import logging
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._catalog import LossInfo, lookup
from ._validation import check_number

__all__ = ["evaluate", "EvaluationError"]

# "auto" chunks of .npy files: about this many bytes per chunk once cast to float64
_AUTO_CHUNK_BYTES = 8 << 20
_LOCAL_SCHEDULERS = ("threads", "processes", "synchronous", "sync")
_PREDICTION_COLUMNS = ("prediction", "predictions", "pred", "input")
_TARGET_COLUMNS = ("target", "targets", "label", "labels")


class EvaluationError(ValueError):
    """Bad input to :func:`evaluate` (missing file, unknown column, mismatched lengths, NaN
    rows, ...); the message says what was expected and what came, in one line."""


def _require_dask():
    try:
        import dask  # noqa: F401
        import dask.array  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the dask extra is part of dev
        raise EvaluationError(
            f"evaluating files needs Dask ({exc}); install it with: pip install 'losskit[dask]'"
        ) from None


# -- readers: small picklable objects that load one block when a task asks ---------------------


class _NpyFile:
    """A ``.npy`` file as an array-like for ``dask.array.from_array``: blocks are read through
    a memory map when a task asks for them, so only the requested rows enter memory (and the
    object pickles as a path and a header, not as data)."""

    def __init__(self, path: Path, label: str):
        try:
            mapped = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise EvaluationError(f"{label} file {path} is not a readable .npy array: {exc}") from None
        if not isinstance(mapped, np.memmap):  # pragma: no cover - np.load of a .npz
            raise EvaluationError(f"{label} file {path} is not a .npy array")
        self.path = str(path)
        self.shape = tuple(mapped.shape)
        self.dtype = mapped.dtype
        self.ndim = len(self.shape)
        self.offset = int(mapped.offset)
        self.order = "F" if (mapped.flags.f_contiguous and not mapped.flags.c_contiguous) else "C"
        del mapped

    def __getitem__(self, key):
        mapped = np.memmap(
            self.path, dtype=self.dtype, mode="r", offset=self.offset, shape=self.shape, order=self.order
        )
        return np.array(mapped[key])  # a copy: the map is closed when this returns


class _ParquetColumn:
    """One column of a Parquet file (or of a directory of them) as an array-like for
    ``dask.array.from_array``: one block per row group, read when a task asks for it.

    Numeric columns give 1-d arrays; list columns of numbers (every row the same length) give
    ``(rows, width)`` arrays, e.g. one row of logits per sample.
    """

    def __init__(self, files: list[Path], column: str, label: str, origin: Path):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.files = [str(f) for f in files]
        self.column = column
        self.label = label
        self.origin = str(origin)
        groups = []  # (file index, row group index, first row, rows)
        first_row = 0
        column_type = None
        for i, f in enumerate(files):
            meta = pq.ParquetFile(f)
            column_type = column_type or meta.schema_arrow.field(column).type
            for g in range(meta.num_row_groups):
                n = meta.metadata.row_group(g).num_rows
                if n:
                    groups.append((i, g, first_row, n))
                    first_row += n
        self.groups = groups
        self.row_chunks = tuple(n for *_, n in groups)
        rows = first_row
        value_type, width = column_type, None
        if pa.types.is_fixed_size_list(column_type):
            value_type, width = column_type.value_type, column_type.list_size
        elif pa.types.is_list(column_type) or pa.types.is_large_list(column_type):
            value_type = column_type.value_type
            width = self._first_list_length()
        if not (
            pa.types.is_integer(value_type)
            or pa.types.is_floating(value_type)
            or pa.types.is_boolean(value_type)
        ):
            raise EvaluationError(
                f"{label} column {column!r} of {origin} holds {column_type}; expected numbers "
                "or lists of numbers"
            )
        self.dtype = np.dtype(value_type.to_pandas_dtype())
        self.shape = (rows,) if width is None else (rows, width)
        self.ndim = len(self.shape)

    def _first_list_length(self) -> int:
        import pyarrow.parquet as pq

        for f in self.files:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=1, columns=[self.column]):
                if batch.num_rows:
                    value = batch.column(0)[0]
                    if not value.is_valid:
                        raise EvaluationError(
                            f"{self.label} column {self.column!r} of {self.origin} has an empty "
                            "(null) first row"
                        )
                    return len(value)
        return 0

    def _read_group(self, index: int) -> np.ndarray:
        import pyarrow as pa

        try:
            return self._decode(index)
        finally:
            # Arrow's allocator keeps freed buffers for reuse: hand them back, so that a worker's
            # memory follows the chunks in flight, not every row group it has ever read
            pa.default_memory_pool().release_unused()

    def _decode(self, index: int) -> np.ndarray:
        """Row group ``index`` as a NumPy array that owns its memory (no Arrow buffer kept)."""
        import pyarrow.parquet as pq

        file_index, group, first_row, n = self.groups[index]
        # one thread and no read-ahead buffer: Dask already runs one task per worker thread
        parquet = pq.ParquetFile(self.files[file_index], pre_buffer=False)
        column = parquet.read_row_group(group, columns=[self.column], use_threads=False)
        values = column.column(0).combine_chunks()
        where = f"{self.label} column {self.column!r} of {self.origin}"
        if values.null_count:
            row = first_row + _first_null(values)
            raise EvaluationError(
                f"{where} has {values.null_count} empty (null) rows, the first at row {row}"
            )
        if self.ndim == 1:
            return np.array(values.to_numpy(zero_copy_only=False), dtype=self.dtype)
        width = self.shape[1]
        if hasattr(values, "offsets"):  # variable-length lists: every row must hold `width` values
            lengths = np.diff(values.offsets.to_numpy())
            wrong = np.flatnonzero(lengths != width)
            if wrong.size:
                row = first_row + int(wrong[0])
                raise EvaluationError(
                    f"{where} has rows of different lengths: row {row} holds {int(lengths[wrong[0]])} "
                    f"values, the first row {width}"
                )
        flat = values.flatten()
        if flat.null_count:
            row = first_row + _first_null(flat) // width
            raise EvaluationError(f"{where} has an empty (null) value in row {row}")
        return np.array(flat.to_numpy(zero_copy_only=False), dtype=self.dtype).reshape(n, width)

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        start, stop, _ = key[0].indices(self.shape[0])
        parts = []
        for index, (_, _, first, n) in enumerate(self.groups):
            if first < stop and first + n > start:
                block = self._read_group(index)
                parts.append(block[max(start - first, 0) : min(stop - first, n)])
        if parts:
            out = np.concatenate(parts) if len(parts) > 1 else parts[0]
        else:
            out = np.empty((0,) + self.shape[1:], dtype=self.dtype)
        return out[(slice(None),) + key[1:]]


def _first_null(values) -> int:
    """Index of the first null of an Arrow array, from its validity bitmap (pyarrow.compute
    would cost each worker tens of MiB of kernels for this one question)."""
    bitmap = np.frombuffer(values.buffers()[0], dtype=np.uint8)
    valid = np.unpackbits(bitmap, bitorder="little")[values.offset : values.offset + len(values)]
    return int(np.argmin(valid))


# -- inputs --------------------------------------------------------------------------------------


def _parquet_files(path: Path, label: str) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".parquet", ".pq") and p.is_file())
        if not files:
            raise EvaluationError(f"{label} directory {path} holds no .parquet files")
        return files
    return [path]


def _kind(path: Path, label: str) -> str:
    if not path.exists():
        raise EvaluationError(f"{label} file {path} does not exist")
    if path.is_dir() or path.suffix in (".parquet", ".pq"):
        return "parquet"
    if path.suffix == ".npy":
        return "npy"
    raise EvaluationError(
        f"{label} file {path} has an unsupported type {path.suffix or '(no suffix)'!r}; expected "
        ".npy, .parquet or a directory of .parquet files"
    )


def _parquet_columns(files: list[Path], label: str, origin: Path) -> list[str]:
    import pyarrow.parquet as pq

    names = None
    for f in files:
        try:
            schema = pq.ParquetFile(f).schema_arrow
        except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
            raise EvaluationError(f"{label} file {f} is not a readable Parquet file: {exc}") from None
        if names is None:
            names = list(schema.names)
        elif list(schema.names) != names:
            raise EvaluationError(
                f"{label} files in {origin} have different columns: {names} in {files[0].name}, "
                f"{list(schema.names)} in {f.name}"
            )
    return [n for n in names if not n.startswith("__index_level_")]


def _choose_column(columns, requested, defaults, label, origin, option, exclude=None) -> str:
    if requested is not None:
        if requested not in columns:
            raise EvaluationError(
                f"{label} file {origin} has no column {requested!r}; its columns are {columns}"
            )
        return requested
    for name in defaults:
        if name in columns:
            return name
    candidates = [c for c in columns if c != exclude]
    if len(candidates) == 1:
        return candidates[0]
    raise EvaluationError(
        f"cannot tell which column of {origin} holds the {label}: its columns are {columns}; "
        f"name it with {option}"
    )


def _open(path, label, column, defaults, option, exclude=None):
    """(reader, column name or None, kind) for one input file."""
    path = Path(path)
    kind = _kind(path, label)
    if kind == "npy":
        if column is not None:
            raise EvaluationError(f"{label} file {path} is a .npy array, which has no column {column!r}")
        return _NpyFile(path, label), None, kind
    files = _parquet_files(path, label)
    columns = _parquet_columns(files, label, path)
    chosen = _choose_column(columns, column, defaults, label, path, option, exclude)
    return _ParquetColumn(files, chosen, label, path), chosen, kind


def _auto_rows(reader) -> int:
    row_bytes = 8 * max(1, math.prod(reader.shape[1:]))
    return max(1, _AUTO_CHUNK_BYTES // row_bytes)


def _as_dask(reader, label: str, row_chunks):
    import dask.array as da
    from dask.base import tokenize

    if reader.ndim == 0:
        raise EvaluationError(f"{label} must have at least one axis (rows); got a 0-d array")
    chunks = (row_chunks,) + tuple((d,) for d in reader.shape[1:])
    if isinstance(reader, _NpyFile):
        stat = os.stat(reader.path)
        token = tokenize(reader.path, stat.st_size, stat.st_mtime_ns, chunks)
    else:
        stats = [os.stat(f) for f in reader.files]
        token = tokenize(reader.files, reader.column, [(s.st_size, s.st_mtime_ns) for s in stats], chunks)
    return da.from_array(
        reader,
        chunks=chunks,
        name=f"read-{label}-{token}",
        lock=False,
        fancy=False,
        meta=np.empty((0,) * reader.ndim, dtype=reader.dtype),
    )


def _from_array(x, label: str, chunk_rows: int | None):
    import dask.array as da

    if isinstance(x, da.Array):
        return x
    x = np.asarray(x)
    if x.ndim == 0:
        raise EvaluationError(f"{label} must have at least one axis (rows); got a 0-d array")
    rows = chunk_rows or max(1, _AUTO_CHUNK_BYTES // (8 * max(1, math.prod(x.shape[1:]))))
    return da.from_array(x, chunks=(rows,) + x.shape[1:])


def _inputs(predictions, targets, prediction_column, target_column, chunk_rows):
    """The two inputs as Dask arrays with aligned row chunks, and a description of each."""

    def is_path(x):
        return isinstance(x, (str, os.PathLike))

    if targets is None:
        if not is_path(predictions) or _kind(Path(predictions), "predictions") != "parquet":
            raise EvaluationError(
                "targets are missing: give a targets file, or a Parquet predictions file with a "
                "targets column"
            )
    readers = {}
    if is_path(predictions):
        readers["predictions"] = _open(
            predictions, "predictions", prediction_column, _PREDICTION_COLUMNS, "--prediction-column"
        )
    if targets is None:
        _, pred_column, _ = readers["predictions"]
        readers["targets"] = _open(
            predictions, "targets", target_column, _TARGET_COLUMNS, "--target-column", exclude=pred_column
        )
        if readers["targets"][1] == pred_column:
            raise EvaluationError(f"predictions and targets are the same column {pred_column!r}")
    elif is_path(targets):
        readers["targets"] = _open(targets, "targets", target_column, _TARGET_COLUMNS, "--target-column")
    # rows of each input, known from the headers and metadata before anything is read
    rows = {}
    for label, x in (("predictions", predictions), ("targets", targets)):
        if label in readers:
            reader = readers[label][0]
            if reader.ndim == 0:
                raise EvaluationError(f"{label} must have at least one axis (rows); got a 0-d array")
            rows[label] = reader.shape[0]
        else:
            shape = getattr(x, "shape", None) or np.shape(x)
            if len(shape) == 0:
                raise EvaluationError(f"{label} must have at least one axis (rows); got a 0-d array")
            rows[label] = shape[0]
    if rows["predictions"] != rows["targets"]:
        raise EvaluationError(
            f"predictions have {rows['predictions']} rows but targets have {rows['targets']}; "
            "they must match row for row"
        )
    # Parquet chunks are its row groups; a .npy file on the other side is read in the same rows
    row_groups = next((r[0].row_chunks for r in readers.values() if isinstance(r[0], _ParquetColumn)), None)
    arrays = {}
    for label, x in (("predictions", predictions), ("targets", targets)):
        if label not in readers:
            arrays[label] = _from_array(x, label, chunk_rows)
            continue
        reader = readers[label][0]
        if isinstance(reader, _ParquetColumn):
            chunks = reader.row_chunks
        elif row_groups is not None and chunk_rows is None:
            chunks = row_groups
        else:
            size = chunk_rows or _auto_rows(reader)
            chunks = tuple(min(size, reader.shape[0] - s) for s in range(0, reader.shape[0], size))
        arrays[label] = _as_dask(reader, label, chunks or (0,))
    described = {}
    for label, x in (("predictions", predictions), ("targets", predictions if targets is None else targets)):
        if label in readers:
            column = readers[label][1]
            described[label] = f"{x} [{column}]" if column else f"{x}"
        else:
            described[label] = f"{type(x).__name__} of shape {tuple(arrays[label].shape)}"
    return arrays["predictions"], arrays["targets"], described


# -- losses --------------------------------------------------------------------------------------


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word: a string option such as reduction=sum


def _parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"huber:delta=0.5,reduction=sum"`` -> ``("huber", {"delta": 0.5, "reduction": "sum"})``."""
    name, _, rest = spec.partition(":")
    options = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip().isidentifier():
            raise EvaluationError(f"loss option {item!r} in {spec!r} must look like name=value")
        options[key.strip()] = _literal(value.strip())
    return name.strip(), options


def _losses(loss) -> list[tuple[str, LossInfo, dict[str, Any]]]:
    if isinstance(loss, str):
        specs = [_parse_spec(loss)]
    elif isinstance(loss, Mapping):
        specs = [(name, dict(options or {})) for name, options in loss.items()]
    elif isinstance(loss, Sequence) and loss:
        if not all(isinstance(s, str) for s in loss):
            raise TypeError(
                f"loss must be a name, a list of names or a dict of name -> options; got {loss!r}"
            )
        specs = [_parse_spec(s) for s in loss]
    else:
        raise TypeError(f"loss must be a name, a list of names or a dict of name -> options; got {loss!r}")
    out, labels = [], set()
    for name, options in specs:
        try:
            info = lookup(name)
        except KeyError as exc:
            raise EvaluationError(exc.args[0]) from None
        positional = getattr(info.function, "_positional", None) or tuple(
            p.name
            for p in inspect.signature(info.function).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        )
        if len(positional) < 2 or positional[1] != "target":
            raise EvaluationError(
                f"loss {name!r} is not called as loss(predictions, targets) (its arguments are "
                f"{', '.join(positional)}), so it cannot be evaluated over files"
            )
        if options.get("reduction") == "none":
            raise EvaluationError(
                f"loss {name!r}: evaluate reports one number per loss; reduction='none' is not one"
            )
        label = (
            name if not options else f"{name}(" + ", ".join(f"{k}={v!r}" for k, v in options.items()) + ")"
        )
        if label in labels:
            raise EvaluationError(f"loss {label} is asked for twice")
        labels.add(label)
        out.append((label, info, options))
    return out


def _nan_rows(da, x):
    """(number of rows holding a NaN, index of the first such row), lazily."""
    bad = da.isnan(x)
    if x.ndim > 1:
        bad = bad.any(axis=tuple(range(1, x.ndim)))
    return bad.sum(), da.argmax(bad)


def _check_first_rows(pred, targ, losses) -> int:
    """Run every loss on concrete first rows, inside a task of the one pass.

    On lazy Dask arrays the losses skip their value checks (class indices in range,
    probabilities in [0, 1], ...); here the first chunk is a NumPy array, so those checks run,
    and a column mixed up with another is reported instead of producing a meaningless number.
    Rows holding NaN are left to the NaN check, which reports them by row.
    """
    rows = min(len(pred), len(targ))  # chunks of arrays given in memory may differ
    pred, targ = pred[:rows], targ[:rows]
    if any(x.dtype.kind == "f" and bool(np.isnan(x).any()) for x in (pred, targ)):
        return 0
    for label, name, options in losses:
        try:
            lookup(name).function(pred, targ, **options)
        except (TypeError, ValueError) as exc:
            raise EvaluationError(f"loss {label}: {exc} (in the first {len(pred)} rows)") from None
    return 0


# -- running -------------------------------------------------------------------------------------


def _compute(
    collections: dict[str, Any], scheduler, workers, memory_limit, progress, connect_timeout
) -> dict[str, Any]:
    """Compute every collection in one graph (each input chunk is read once)."""
    import dask

    keys, values = list(collections), list(collections.values())
    if isinstance(scheduler, str) and scheduler in _LOCAL_SCHEDULERS:
        from dask.diagnostics import ProgressBar

        bar = ProgressBar(out=sys.stderr) if progress else contextlib.nullcontext()
        with bar:
            results = dask.compute(*values, scheduler="synchronous" if scheduler == "sync" else scheduler)
        return dict(zip(keys, results))
    try:
        from distributed import Client, KilledWorker, LocalCluster
        from distributed import progress as show_progress
    except ImportError as exc:  # pragma: no cover - part of the dask extra
        raise EvaluationError(
            f"a Dask cluster needs dask.distributed ({exc}); install 'losskit[dask]' or pass "
            "scheduler='threads'"
        ) from None
    with contextlib.ExitStack() as stack:
        if isinstance(scheduler, Client):
            client = scheduler
        elif scheduler is None:
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=workers,
                    memory_limit=memory_limit if memory_limit is not None else "auto",
                    processes=True,
                    dashboard_address=None,
                    # task errors reach the user once, through the client; not as worker logs too
                    silence_logs=logging.CRITICAL,
                )
            )
            client = stack.enter_context(Client(cluster))
        elif isinstance(scheduler, str):
            try:
                client = stack.enter_context(Client(scheduler, timeout=connect_timeout))
            except (OSError, TimeoutError) as exc:
                raise EvaluationError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        else:
            raise TypeError(
                "scheduler must be None (a local cluster), a scheduler address, a distributed.Client, "
                f"or one of {', '.join(_LOCAL_SCHEDULERS)}; got {scheduler!r}"
            )
        futures = client.compute(values)
        if progress:
            with contextlib.redirect_stdout(sys.stderr):  # stdout is for the results
                show_progress(futures, notebook=False)
        try:
            results = client.gather(futures)
        except KilledWorker as exc:
            raise EvaluationError(
                f"a Dask worker died while computing ({exc}); give the workers more memory or "
                "use smaller chunks"
            ) from None
    return dict(zip(keys, results))


def _evaluate(
    predictions,
    targets,
    *,
    loss,
    prediction_column=None,
    target_column=None,
    scheduler=None,
    workers=None,
    memory_limit=None,
    connect_timeout=10.0,
    chunk_rows="auto",
    limit=None,
    dtype="float64",
    progress=True,
) -> tuple[dict[str, float], int, dict[str, str]]:
    _require_dask()
    losses = _losses(loss)
    if chunk_rows == "auto":
        chunk_rows = None
    elif isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive int or 'auto'; got {chunk_rows!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive int or None; got {limit!r}")
    if dtype not in ("float64", None):
        raise ValueError(f"dtype must be 'float64' or None (keep the files' dtype); got {dtype!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive int; got {workers!r}")
    connect_timeout = check_number(connect_timeout, "connect_timeout", low=0.0, low_inclusive=False)
    if (workers is not None or memory_limit is not None) and scheduler is not None:
        raise ValueError(
            "workers and memory_limit configure the local cluster; they cannot be used with scheduler"
        )
    import dask
    import dask.array as da

    pred, targ, described = _inputs(predictions, targets, prediction_column, target_column, chunk_rows)
    if limit is not None:
        pred, targ = pred[:limit], targ[:limit]
    rows = int(pred.shape[0])
    if rows == 0:
        raise EvaluationError(f"predictions {described['predictions']} have no rows")
    if dtype == "float64":  # sums over millions of rows deserve float64
        pred = pred.astype(np.float64) if pred.dtype.kind == "f" else pred
        targ = targ.astype(np.float64) if targ.dtype.kind == "f" else targ
    graph = {}
    for label, info, options in losses:
        try:
            graph[label] = info.function(pred, targ, **options)
        except (TypeError, ValueError) as exc:
            raise EvaluationError(f"loss {label}: {exc}") from None
        if graph[label].ndim != 0:
            raise EvaluationError(
                f"loss {label} returns an array of shape {graph[label].shape}, not one number"
            )
    checks = {}
    for label, x in (("predictions", pred), ("targets", targ)):
        if x.dtype.kind == "f":
            checks[label] = _nan_rows(da, x)
    # the first chunks, by their own keys: read once by the pass, so checking them is free
    specs = [(label, info.name, options) for label, info, options in losses]
    first = [x.to_delayed(optimize_graph=False).ravel()[0] for x in (pred, targ)]
    first_rows = dask.delayed(_check_first_rows)(*first, specs)
    results = _compute(
        {**graph, **{f"nan {k}": v for k, v in checks.items()}, "first rows": first_rows},
        scheduler,
        workers,
        memory_limit,
        progress,
        connect_timeout,
    )
    for label in checks:
        count, first = results[f"nan {label}"]
        if count:
            raise EvaluationError(
                f"{label} {described[label]} hold NaN in {int(count)} of {rows} rows (the first is "
                f"row {int(first)}); drop or fill them before evaluating"
            )
    return {label: float(results[label]) for label, _, _ in losses}, rows, described


def evaluate(
    predictions: str | os.PathLike | Any,
    targets: str | os.PathLike | Any | None = None,
    *,
    loss: str | Sequence[str] | Mapping[str, Mapping[str, Any]],
    prediction_column: str | None = None,
    target_column: str | None = None,
    scheduler: Any = None,
    workers: int | None = None,
    memory_limit: str | int | None = None,
    connect_timeout: float = 10.0,
    chunk_rows: int | str = "auto",
    limit: int | None = None,
    dtype: str | None = "float64",
    progress: bool = True,
) -> dict[str, float]:
    r"""Compute one or several losses of predictions against targets, out of core, on Dask.

    Reads the two inputs chunk by chunk as Dask arrays, applies each loss (the ordinary
    losskit function, e.g. :func:`losskit.mse`, which stays lazy on Dask arrays) to the whole
    arrays, and computes all of them, with a check for NaN rows, in one graph: every chunk is
    read once, and memory is bounded by the chunk size, not by the size of the files.  Each
    loss is exactly the in-memory value (its own reduction, e.g. the mean over all rows, or
    over the counted rows with ``ignore_index``), up to floating-point summation order.
    The losses' value checks (class indices in range, probabilities in [0, 1], ...), which lazy
    arrays skip, run on the first chunk within the same pass, and rows holding NaN (or, in
    Parquet, empty values) are reported by row number.

    Args:
      predictions: a ``.npy`` file, a Parquet file or a directory of Parquet files (read in
        name order), or an array (NumPy or Dask).  Parquet columns hold numbers, or lists of
        numbers of one length (e.g. logits).
      targets: the same kinds of input, row for row with ``predictions``; ``None`` (default)
        takes the targets from another column of the Parquet predictions.
      loss: a catalogued loss name (``"mse"``), a list of names, or a dict of name -> options
        (``{"huber": {"delta": 0.5}, "mae": {}}``); a name may carry options as
        ``"huber:delta=0.5"``.  Required.  Each loss must be called as ``loss(input, target)``.
      prediction_column: Parquet column of the predictions (default: ``prediction``,
        ``predictions``, ``pred`` or ``input``, else the only column).
      target_column: Parquet column of the targets (default: ``target``, ``targets``, ``label``
        or ``labels``, else the only other column).
      scheduler: ``None`` (default) starts a local ``dask.distributed`` cluster for the call; a
        scheduler address (``"tcp://host:8786"``) or a ``distributed.Client`` uses an existing
        cluster; ``"threads"``, ``"processes"`` or ``"synchronous"`` use Dask's local
        schedulers without a cluster.
      workers: worker processes of the local cluster (default: Dask's choice for this machine).
      memory_limit: memory limit per worker of the local cluster, e.g. ``"2GiB"`` (default
        ``"auto"``: the machine's memory shared among the workers).
      connect_timeout: seconds to wait for the scheduler at ``scheduler``'s address (default 10).
      chunk_rows: rows per chunk of ``.npy`` inputs, or ``"auto"`` (default: about 8 MiB per
        chunk, or the row groups of a Parquet input on the other side).  Parquet inputs are
        read one row group at a time.
      limit: evaluate only the first ``limit`` rows (default: all).
      dtype: ``"float64"`` (default) computes in float64 whatever the files hold; ``None``
        keeps their floating dtype.
      progress: show a progress bar on stderr (default True).

    Returns:
      ``{label: value}``, one Python float per loss, labelled by name (with the options, if
      any: ``"huber(delta=0.5)"``).

    Raises:
      EvaluationError (a ValueError): a missing or unreadable file, an unknown column or loss,
      inputs whose row counts differ, NaN or empty (null) rows, arguments a loss refuses.

    Example::

        losskit.evaluate("val.parquet", loss=["mse", "huber:delta=0.5"], prediction_column="y_hat")
        losskit.evaluate("logits.npy", "labels.npy", loss="cross_entropy", scheduler="tcp://10.0.0.5:8786")
    """
    return _evaluate(
        predictions,
        targets,
        loss=loss,
        prediction_column=prediction_column,
        target_column=target_column,
        scheduler=scheduler,
        workers=workers,
        memory_limit=memory_limit,
        connect_timeout=connect_timeout,
        chunk_rows=chunk_rows,
        limit=limit,
        dtype=dtype,
        progress=progress,
    )[0]
