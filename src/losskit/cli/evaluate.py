"""``losskit evaluate``: losses over prediction files larger than memory, on Dask."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import secrets
import sys
from pathlib import Path

from .common import CommandError

DESCRIPTION = """\
Compute one or several losses of PREDICTIONS against TARGETS over every row, in one pass,
reading the files chunk by chunk on a Dask cluster (a local one by default), so the files may
be far larger than memory.  PREDICTIONS and TARGETS are .npy files, Parquet files or
directories of Parquet files; without TARGETS the targets are another column of the Parquet
PREDICTIONS.  Prints one line per loss: its name and value.

examples:
  losskit evaluate preds.npy labels.npy --loss cross_entropy
  losskit evaluate val.parquet --loss mse --loss huber:delta=0.5 --prediction-column y_hat
  losskit evaluate preds/ targets.parquet --loss mae --scheduler tcp://10.0.0.5:8786 --json
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="compute losses over prediction files larger than memory, on Dask",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("predictions", metavar="PREDICTIONS", help=".npy file, Parquet file or directory")
    p.add_argument(
        "targets", metavar="TARGETS", nargs="?", default=None, help="same kinds; row for row with PREDICTIONS"
    )
    p.add_argument(
        "--loss",
        action="append",
        required=True,
        metavar="NAME[:OPTION=VALUE,...]",
        help="a catalogued loss, e.g. mse, cross_entropy:label_smoothing=0.1 (repeat for several)",
    )
    p.add_argument("--prediction-column", metavar="NAME", help="Parquet column of the predictions")
    p.add_argument("--target-column", metavar="NAME", help="Parquet column of the targets")
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="address of a running Dask scheduler (tcp://host:8786), or threads, processes or "
        "synchronous for Dask's local schedulers (default: start a local cluster)",
    )
    p.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for the scheduler given by --scheduler to answer (default 10)",
    )
    p.add_argument("--workers", type=int, metavar="N", help="worker processes of the local cluster")
    p.add_argument("--memory-limit", metavar="SIZE", help="memory limit per local worker, e.g. 2GiB")
    p.add_argument(
        "--chunk-rows", type=int, metavar="N", help="rows per chunk of .npy files (default: ~8 MiB)"
    )
    p.add_argument("--limit", type=int, metavar="N", help="evaluate only the first N rows")
    p.add_argument("--keep-dtype", action="store_true", help="compute in the files' float dtype, not float64")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument(
        "--output", metavar="FILE", type=Path, help="also write the results as JSON to FILE (all or nothing)"
    )
    p.set_defaults(func=run)


def _check_output(path: Path | None) -> None:
    """Refuse an unwritable output before spending the computation on it."""
    if path is None:
        return
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise CommandError(f"--output {path} is a directory; give a file name")
    if not parent.is_dir():
        raise CommandError(f"--output directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise CommandError(f"--output directory {parent} is not writable")


def _write_atomically(path: Path, text: str) -> None:
    """Write to a temporary file next to ``path`` and rename it: readers see all or nothing.

    The temporary file is created as any file is (mode 0666 less the umask), so the result gets
    the permissions the user's umask gives every other file (``mkstemp`` would make it 0600).
    """
    parent = path.parent if str(path.parent) else Path(".")
    while True:
        tmp = parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _number(value: float) -> float | str:
    return value if math.isfinite(value) else repr(value)  # JSON has no inf/nan


def run(args: argparse.Namespace) -> int:
    from ..evaluation import EvaluationError, evaluation_report

    for flag, value in (
        ("--workers", args.workers),
        ("--chunk-rows", args.chunk_rows),
        ("--limit", args.limit),
    ):
        if value is not None and value < 1:
            raise CommandError(f"{flag} must be a positive integer; got {value}")
    if not (args.connect_timeout > 0 and math.isfinite(args.connect_timeout)):
        raise CommandError(
            f"--connect-timeout must be a positive number of seconds; got {args.connect_timeout}"
        )
    if args.scheduler is not None and (args.workers is not None or args.memory_limit is not None):
        raise CommandError(
            "--workers and --memory-limit configure the local cluster; drop them with --scheduler"
        )
    from .common import check_loss_name

    for spec in args.loss:
        name = spec.split(":", 1)[0].strip()
        if name:
            check_loss_name(name, aliases=False)
    _check_output(args.output)
    from ..evaluation.engine import check_memory_limit

    try:
        check_memory_limit(args.memory_limit, "--memory-limit")
    except (ValueError, TypeError) as exc:
        raise CommandError(str(exc)) from None
    try:
        losses, rows, described = evaluation_report(
            args.predictions,
            args.targets,
            loss=args.loss,
            prediction_column=args.prediction_column,
            target_column=args.target_column,
            scheduler=args.scheduler,
            workers=args.workers,
            memory_limit=args.memory_limit,
            connect_timeout=args.connect_timeout,
            chunk_rows=args.chunk_rows or "auto",
            limit=args.limit,
            dtype=None if args.keep_dtype else "float64",
            progress=not args.no_progress,
        )
    except EvaluationError as exc:
        raise CommandError(str(exc)) from None
    report = {
        "predictions": described["predictions"],
        "targets": described["targets"],
        "rows": rows,
        "losses": {name: _number(v) for name, v in losses.items()},
    }
    text = json.dumps(report, indent=2) + "\n"
    if args.output is not None:
        try:
            _write_atomically(args.output, text)
        except OSError as exc:
            raise CommandError(f"cannot write --output {args.output}: {exc.strerror or exc}") from None
    if args.json:
        sys.stdout.write(text)
    else:
        width = max(len(name) for name in losses)
        for name, value in losses.items():
            print(f"{name:<{width}}  {value!r}")
    return 0
