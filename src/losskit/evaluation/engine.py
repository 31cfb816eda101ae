"""Evaluate predictions larger than memory: losses over ``.npy`` and Parquet files on Dask.

``losskit.evaluate(predictions, targets, loss=...)`` and the ``losskit evaluate`` command read a
column (Parquet) or array (``.npy``) of predictions and one of targets as Dask arrays, chunk by
chunk (:mod:`.readers`), and compute one or several catalogued losses over all rows in a single
pass: every loss is the ordinary array-API loss applied to the lazy Dask arrays, and all of them
(with the NaN checks) are computed together, so each chunk is read once and memory stays bounded
by the chunk size times the number of chunks in flight, whatever the size of the files.

Dask is imported on first use, never at ``import losskit``.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..core.catalog import LossInfo, lookup
from ..core.validation import check_number
from .errors import EvaluationError, require_dask
from .readers import read_inputs

__all__ = ["evaluate", "evaluation_report"]

_LOCAL_SCHEDULERS = ("threads", "processes", "synchronous", "sync")


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


def evaluation_report(
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
    """:func:`evaluate`'s work: ``(values, rows, described)`` with the number of rows read and
    a description of each input (for the command line's report)."""
    require_dask()
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

    pred, targ, described = read_inputs(predictions, targets, prediction_column, target_column, chunk_rows)
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
    return evaluation_report(
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
