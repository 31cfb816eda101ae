"""Evaluate predictions larger than memory: losses over ``.npy`` and Parquet files on Dask.

``losskit.evaluate(predictions, targets, loss=...)`` and the ``losskit evaluate`` command read a
column (Parquet) or array (``.npy``) of predictions and one of targets as Dask arrays, chunk by
chunk (:mod:`.readers`), and compute one or several catalogued losses over all rows in a single
pass: every loss is the ordinary array-API loss applied to the lazy Dask arrays, and all of them
(with the NaN checks, and the losses' value checks run on each concrete chunk) are computed
together, so each chunk is read once and memory stays bounded by the chunk size times the number
of chunks in flight, whatever the size of the files.

Dask is imported on first use, never at ``import losskit``.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import logging
import os
import re
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
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return text  # a bare word: a string option such as reduction=sum (or nothing Python reads)


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
        specs = []
        for name, options in loss.items():
            if options is not None and not isinstance(options, Mapping):
                raise TypeError(
                    f"loss: the options of {name!r} must be a dict of name -> value; got {options!r}"
                )
            specs.append((name, dict(options or {})))
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
            name
            if not options
            else f"{name}(" + ", ".join(f"{k}={_show(v)}" for k, v in options.items()) + ")"
        )
        if label in labels:
            raise EvaluationError(f"loss {label} is asked for twice")
        labels.add(label)
        out.append((label, info, options))
    return out


def _show(value) -> str:
    """An option's value in a label: arrays by their kind, shape and dtype, never their data."""
    if _is_array(value) and len(value.shape) > 0:
        kind = type(value).__module__.split(".")[0]
        return f"<{kind} array {tuple(value.shape)} {value.dtype}>"
    return repr(value)


def _nan_rows(da, x):
    """(number of rows holding a NaN, index of the first such row), lazily."""
    bad = da.isnan(x)
    if x.ndim > 1:
        bad = bad.any(axis=tuple(range(1, x.ndim)))
    return bad.sum(), da.argmax(bad)


def _whole_rows(x):
    """``x`` chunked along its rows only, so that every chunk holds whole rows."""
    if any(len(c) > 1 for c in x.chunks[1:]):
        x = x.rechunk({axis: -1 for axis in range(1, x.ndim)})
    return x


def _is_array(value) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype")


def _array_options(options: dict[str, Any], pred) -> tuple[dict[str, Any], dict[str, Any], set[str]]:
    """``(for the lazy call, for the chunk checks, per-row names)`` of one loss's options.

    NumPy arrays become Dask arrays for the lazy call (every array of a call comes from one
    library).  An array with one entry per row (a ``where`` mask, per-sample weights) is chunked
    like the rows, and each chunk check gets its own rows of it; other arrays (per-class
    weights) go whole to every check.
    """
    import dask.array as da

    rows = pred.shape[0]
    lazy, concrete, per_row = dict(options), dict(options), set()
    for key, value in options.items():
        if not _is_array(value) or not isinstance(value, (np.ndarray, da.Array)):
            continue  # other libraries' arrays: the loss says what it makes of them
        by_row = (
            value.ndim >= 1
            and value.shape[0] == rows
            and (value.ndim > 1 or pred.ndim == 1 or key == "where")
        )
        if by_row:
            chunks = (pred.chunks[0],) + tuple((d,) for d in value.shape[1:])
            value = (
                value.rechunk(chunks) if isinstance(value, da.Array) else da.from_array(value, chunks=chunks)
            )
            lazy[key] = concrete[key] = value
            per_row.add(key)
        elif isinstance(value, np.ndarray):
            lazy[key] = da.from_array(value, chunks=value.shape or ())
    return lazy, concrete, per_row


def _blame(function, pred, targ, options: dict[str, Any], exc: Exception) -> str:
    """The message of a loss's refusal, saying which array option it comes from when the
    message does not name it (the call goes through without that option)."""
    message = str(exc)
    for key, value in options.items():
        if not _is_array(value) or re.search(rf"\b{re.escape(key)}\b", message):
            continue
        try:
            function(pred, targ, **{k: v for k, v in options.items() if k != key})
        except (TypeError, ValueError):
            continue
        return f"{key} does not fit this loss and these predictions ({message})"
    return message


def _refusal(function, pred, targ, options: dict[str, Any]) -> str | None:
    """The message with which a loss refuses these concrete arrays, or None."""
    try:
        function(pred, targ, **options)
    except (TypeError, ValueError) as exc:
        return str(exc)
    return None


def _check_chunk(pred, targ, start: int, losses) -> int:
    """Run every loss on one chunk's concrete rows, inside a task of the one pass.

    On lazy Dask arrays the losses skip their value checks (class indices in range,
    probabilities in [0, 1], labels in {-1, 1}, ...); here the chunk is a NumPy array, so those
    checks run, on every chunk, and a bad value anywhere (or a column mixed up with another) is
    reported with its row instead of producing a meaningless number.  Once a loss refuses the
    chunk, the first row it refuses is found by bisecting the chunk's prefixes: the error path
    pays for that, a good chunk costs one call of each loss.  Rows holding NaN are left to the
    NaN check, which reports them by row.

    ``losses`` holds ``(label, name, options, per_row)``; the options named in ``per_row`` are
    this chunk's rows of a per-row option, such as a ``where`` mask.
    """
    if any(x.dtype.kind in "fc" and bool(np.isnan(x).any()) for x in (pred, targ)):
        return 0
    for label, name, options, per_row in losses:
        function = lookup(name).function
        error = _refusal(function, pred, targ, options)
        if error is None:
            continue
        good, bad = 0, len(pred)  # the prefix of `bad` rows is refused, that of `good` rows is not
        while bad - good > 1:
            mid = (good + bad) // 2
            prefix = {k: v[:mid] if k in per_row else v for k, v in options.items()}
            refused = _refusal(function, pred[:mid], targ[:mid], prefix)
            if refused is None:
                good = mid
            else:
                bad, error = mid, refused
        raise EvaluationError(f"loss {label}: {error} (row {start + bad - 1})")
    return 0


def _all_checked(results) -> int:
    return sum(results)


# -- running -------------------------------------------------------------------------------------


def _check_scheduler(scheduler) -> None:
    """A scheduler given by name must be a local scheduler's name or a Dask address."""
    if not isinstance(scheduler, str) or scheduler in _LOCAL_SCHEDULERS:
        return
    try:
        from distributed.comm import get_address_host_port, parse_address
        from distributed.comm.registry import get_backend
    except ImportError:  # pragma: no cover - part of the dask extra; _compute says what to install
        return

    try:
        scheme, _ = parse_address(scheduler)
        get_backend(scheme)
        if scheme in ("tcp", "tls"):
            get_address_host_port(scheduler)
    except (ValueError, TypeError) as exc:
        raise EvaluationError(
            f"scheduler {scheduler!r} is neither a Dask scheduler address such as tcp://host:8786 "
            f"({exc}) nor one of {', '.join(_LOCAL_SCHEDULERS)}"
        ) from None


def check_memory_limit(memory_limit, name: str = "memory_limit") -> None:
    """A memory limit per worker as the local cluster takes it: ``None``, ``"auto"``, a number of
    bytes (a fraction of the machine's memory when at most 1) or a size such as ``"2GiB"``."""
    if memory_limit is None or memory_limit == "auto":
        return
    expected = "a size such as '2GiB', a number of bytes, or 'auto'"
    if isinstance(memory_limit, bool) or not isinstance(memory_limit, (int, float, str)):
        raise TypeError(f"{name} must be {expected}; got {type(memory_limit).__name__}")
    value = memory_limit
    if isinstance(value, str):
        try:
            from dask.utils import parse_bytes
        except ImportError:  # pragma: no cover - the dask extra; evaluate says what to install
            return
        try:
            value = float(value)
        except ValueError:
            try:
                value = parse_bytes(value)
            except (ValueError, TypeError):
                raise EvaluationError(f"{name} must be {expected}; got {memory_limit!r}") from None
    if not (value >= 0 and value != float("inf")):
        raise EvaluationError(f"{name} must be {expected}, not negative or infinite; got {memory_limit!r}")


def _probe(address: str, timeout: float) -> None:
    """Ask the Dask scheduler at ``address`` who it is, all within ``timeout`` seconds.

    Dask's own connection waits for the peer's handshake without a time limit, so a port that
    accepts connections but is no scheduler (a dashboard, a proxy, a wedged scheduler) would
    hold it forever.  This exchange (connect, handshake, one request and its answer) runs on an
    event loop of its own in a thread of its own, under one deadline.
    """
    import asyncio
    import threading

    from distributed.comm import connect
    from distributed.security import Security

    async def identity():
        comm = await connect(address, timeout=timeout, **Security().get_connection_args("client"))
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["answer"] = asyncio.run(asyncio.wait_for(identity(), timeout))
        except BaseException as exc:  # reported below, in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="losskit-scheduler-probe", daemon=True)
    thread.start()
    thread.join(timeout + 5.0)  # the deadline is the event loop's; this only guards against it
    failure = f"cannot reach the Dask scheduler at {address}"
    if thread.is_alive() or isinstance(outcome.get("error"), (asyncio.TimeoutError, TimeoutError)):
        raise EvaluationError(
            f"{failure}: no answer from a Dask scheduler within {timeout:g} s (is one running there, "
            "and is this its address rather than its dashboard's?)"
        )
    error = outcome.get("error")
    if isinstance(error, MemoryError):  # Dask reads a frame's length from what came, and allocates it
        raise EvaluationError(f"{failure}: what it answers is not Dask's protocol; is it a Dask scheduler?")
    if error is not None:
        reason = str(error).strip() or type(error).__name__
        raise EvaluationError(f"{failure}: {reason.splitlines()[0]}")
    answer = outcome.get("answer")
    kind = answer.get("type") if isinstance(answer, dict) else None
    if not (isinstance(kind, str) and "Scheduler" in kind):
        what = f"a Dask {kind}" if isinstance(kind, str) else "something else"
        raise EvaluationError(f"{address} answers as {what}, not a Dask scheduler")


@contextlib.contextmanager
def _connect(address: str, timeout: float):
    """A client of the scheduler at ``address``, or an :class:`EvaluationError` within about
    ``timeout`` seconds."""
    import dask.utils
    from distributed import Client

    _probe(address, timeout)
    # the probe has had the scheduler's answer within ``timeout``; the client lives as long as
    # the computation, and its timeout also bounds every later connection it opens and how long
    # it tries to reconnect, so a short one would end a long evaluation at a passing stall
    kept = dask.utils.parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="seconds")
    try:
        client = Client(address, timeout=max(timeout, kept))
    except Exception as exc:  # whatever the connection raises, the user gets one line
        reason = str(exc).strip() or type(exc).__name__
        raise EvaluationError(
            f"cannot reach the Dask scheduler at {address}: {reason.splitlines()[0]}"
        ) from None
    with client:
        yield client


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
                    # no dashboard, and its HTTP server on a free local port: the default 8787
                    # may be taken, which Dask reports with a warning on stderr
                    dashboard_address="127.0.0.1:0",
                    scheduler_kwargs={"dashboard": False},
                    # task errors reach the user once, through the client; not as worker logs too
                    silence_logs=logging.CRITICAL,
                )
            )
            client = stack.enter_context(Client(cluster))
        elif isinstance(scheduler, str):
            client = stack.enter_context(_connect(scheduler, connect_timeout))
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
    if connect_timeout == float("inf"):
        raise ValueError("connect_timeout must be a finite number of seconds; got inf")
    check_memory_limit(memory_limit)
    _check_scheduler(scheduler)
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
    # one chunk of whole rows on either side: files are read so already; arrays given in memory
    # may be chunked otherwise
    pred, targ = _whole_rows(pred), _whole_rows(targ)
    if targ.chunks[0] != pred.chunks[0]:
        targ = targ.rechunk({0: pred.chunks[0]})
    graph, specs = {}, []
    for label, info, options in losses:
        lazy, concrete, per_row = _array_options(options, pred)
        try:
            graph[label] = info.function(pred, targ, **lazy)
        except (TypeError, ValueError) as exc:
            raise EvaluationError(f"loss {label}: {_blame(info.function, pred, targ, lazy, exc)}") from None
        if graph[label].ndim != 0:
            raise EvaluationError(
                f"loss {label} returns an array of shape {graph[label].shape}, not one number"
            )
        specs.append((label, info.name, concrete, per_row))
    checks = {}
    for label, x in (("predictions", pred), ("targets", targ)):
        if x.dtype.kind == "f":
            checks[label] = _nan_rows(da, x)
    # every loss on every chunk, by the chunks' own keys: read once by the pass, so checking
    # them costs no read
    blocks = {
        key: x.to_delayed(optimize_graph=False).ravel()
        for key, x in [("predictions", pred), ("targets", targ)]
        + [((label, k), concrete[k]) for label, _, concrete, per_row in specs for k in per_row]
    }
    starts = np.cumsum((0,) + pred.chunks[0][:-1])
    value_checks = [
        dask.delayed(_check_chunk)(
            blocks["predictions"][i],
            blocks["targets"][i],
            int(start),
            [
                (
                    label,
                    name,
                    {k: blocks[label, k][i] if k in per_row else v for k, v in concrete.items()},
                    per_row,
                )
                for label, name, concrete, per_row in specs
            ],
        )
        for i, start in enumerate(starts)
    ]
    results = _compute(
        {
            **graph,
            **{f"nan {k}": v for k, v in checks.items()},
            "value checks": dask.delayed(_all_checked)(value_checks),
        },
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
    arrays skip, run on every chunk within the same pass (each loss is called once more on each
    concrete chunk; no chunk is read twice): the first chunk found to hold a bad value stops the
    run, naming its first bad row.  Rows holding NaN (or, in Parquet, empty values) are
    reported by row number too.  Checks that relate rows to each other (hinge labels in
    {-1, 1} or in {0, 1}, never both) hold within each chunk.

    Args:
      predictions: a ``.npy`` file, a Parquet file or a directory of Parquet files (read in
        name order), or an array (NumPy or Dask).  Parquet columns hold numbers, or lists of
        numbers of one length (e.g. logits).
      targets: the same kinds of input, row for row with ``predictions``; ``None`` (default)
        takes the targets from another column of the Parquet predictions.
      loss: a catalogued loss name (``"mse"``), a list of names, or a dict of name -> options
        (``{"huber": {"delta": 0.5}, "mae": {}}``); a name may carry options as
        ``"huber:delta=0.5"``.  Required.  Each loss must be called as ``loss(input, target)``.
        Options may be NumPy or Dask arrays: one with an entry per row (a ``where`` mask, a
        per-sample weight) is split like the rows; others (per-class weights) go whole.
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
      connect_timeout: seconds to wait for the scheduler at ``scheduler``'s address: for the
        whole connection (connect, handshake, the scheduler's first answer), so an address that
        accepts connections but is no Dask scheduler fails in that time (default 10).  Once
        it has answered, the connection keeps Dask's own timeouts
        (``distributed.comm.timeouts.connect``) while the evaluation runs.
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
      EvaluationError: (a ``ValueError``) a missing or unreadable file, an unknown column or
        loss, inputs whose row counts differ, NaN or empty (null) rows, arguments or values a
        loss refuses, a scheduler address that cannot be reached within ``connect_timeout``.

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
