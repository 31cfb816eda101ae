"""Predictions and targets from ``.npy`` and Parquet files (or arrays) as Dask arrays, read
one block at a time when a task asks for it."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from .errors import EvaluationError

__all__ = ["read_inputs"]

# "auto" chunks of .npy files: about this many bytes per chunk once cast to float64
_AUTO_CHUNK_BYTES = 8 << 20
_PREDICTION_COLUMNS = ("prediction", "predictions", "pred", "input")
_TARGET_COLUMNS = ("target", "targets", "label", "labels")


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
        nulls = []  # empty values of each row group, as the file's statistics record them
        first_row = 0
        column_type = None
        for i, f in enumerate(files):
            meta = pq.ParquetFile(f)
            column_type = column_type or meta.schema_arrow.field(column).type
            for g in range(meta.num_row_groups):
                group = meta.metadata.row_group(g)
                if group.num_rows:
                    groups.append((i, g, first_row, group.num_rows))
                    nulls.append(_recorded_nulls(group, column))
                    first_row += group.num_rows
        self.groups = groups
        # rows of the column that are empty, per row group, from metadata alone (None when a file
        # does not record them): an error names them all, not only those of the row group read
        self.null_counts = None if None in nulls else tuple(nulls)
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

    def _values(self, index: int):
        """Row group ``index`` of the column as one Arrow array."""
        import pyarrow.parquet as pq

        file_index, group, _, _ = self.groups[index]
        # one thread and no read-ahead buffer: Dask already runs one task per worker thread
        parquet = pq.ParquetFile(self.files[file_index], pre_buffer=False)
        column = parquet.read_row_group(group, columns=[self.column], use_threads=False)
        return column.column(0).combine_chunks()

    def _empty_rows(self, index: int, values) -> str:
        """What to say of the empty (null) rows found in row group ``index``: how many the whole
        column holds and the first of them, when the files' statistics tell; else those of this
        row group."""
        _, _, first_row, n = self.groups[index]
        counts = self.null_counts
        if counts is None or not counts[index]:
            return (
                f"has {values.null_count} empty (null) rows among rows {first_row} to {first_row + n - 1}, "
                f"the first at row {first_row + _first_null(values)}"
            )
        first_group = next(i for i, count in enumerate(counts) if count)
        if first_group != index:
            values = self._values(first_group)
        row = self.groups[first_group][2] + _first_null(values)
        return f"has {sum(counts)} empty (null) rows, the first at row {row}"

    def _decode(self, index: int) -> np.ndarray:
        """Row group ``index`` as a NumPy array that owns its memory (no Arrow buffer kept)."""
        _, _, first_row, n = self.groups[index]
        values = self._values(index)
        where = f"{self.label} column {self.column!r} of {self.origin}"
        if values.null_count:
            raise EvaluationError(f"{where} {self._empty_rows(index, values)}")
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


def _recorded_nulls(group, column: str) -> int | None:
    """Empty values of a top-level numeric ``column`` in a row group's metadata, or None when the
    file does not record them (or the column is nested: lists count their elements)."""
    for j in range(group.num_columns):
        chunk = group.column(j)
        if chunk.path_in_schema == column:
            stats = chunk.statistics
            return int(stats.null_count) if stats is not None and stats.has_null_count else None
    return None


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


def read_inputs(predictions, targets, prediction_column, target_column, chunk_rows):
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
