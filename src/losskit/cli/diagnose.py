"""``losskit diagnose``: read a training log and say what is wrong, since when."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from ..diagnostics.baseline import TASKS
from ..diagnostics.logs import FORMATS
from .common import positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "diagnose",
        help="find NaNs, bad initialisation, divergence, spikes, plateaus, overfitting in a training log",
        description="Read a training log (plain CSV, Lightning metrics.csv, Keras CSVLogger, Hugging Face "
        "trainer_state.json or TensorBoard event files; the format is detected) and report what went "
        "wrong, where it starts, and what to do.",
        epilog="examples:\n  losskit diagnose metrics.csv --classes 10\n"
        "  losskit diagnose runs/exp1 --json\n  losskit diagnose trainer_state.json --classes 50257 --plot "
        "loss.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("log", type=Path, metavar="LOG", help="a log file or a folder holding one")
    p.add_argument("--classes", type=positive_int, metavar="K", help="number of classes (baseline ln K)")
    p.add_argument("--task", choices=TASKS, help="the task (binary/multilabel give the baseline ln 2)")
    p.add_argument(
        "--baseline", type=float, help="the baseline loss itself (e.g. the target variance for MSE)"
    )
    p.add_argument("--format", choices=FORMATS, help="skip format detection")
    p.add_argument("--train-column", metavar="NAME", help="column/tag of the train loss")
    p.add_argument("--val-column", metavar="NAME", help="column/tag of the validation loss")
    p.add_argument("--json", action="store_true", help='print {"format": ..., "findings": [...]} as JSON')
    p.add_argument("--plot", type=Path, metavar="PNG", help="write the curves with the findings marked")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..diagnostics import diagnose, read_log
    from ..diagnostics.baseline import task_baseline
    from ..diagnostics.logs import LogWarning
    from .common import CommandError, one_line, print_json

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", LogWarning)
            history = read_log(args.log, format=args.format, train=args.train_column, val=args.val_column)
        # a log read in part (damaged records skipped): one line each on stderr, and in the JSON
        notes = [one_line(str(w.message)) for w in caught if issubclass(w.category, LogWarning)]
        for w in caught:
            if not issubclass(w.category, LogWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        for note in notes:
            print(f"losskit diagnose: warning: {note}", file=sys.stderr)
        findings = diagnose(history, num_classes=args.classes, task=args.task, baseline=args.baseline)
        if args.baseline is not None:
            baseline = args.baseline
        else:
            b = task_baseline(args.task, args.classes)
            baseline = None if b is None else b.value
    except (ValueError, TypeError) as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"cannot read {args.log}: {exc.strerror or exc}") from None
    written = None
    if args.plot is not None:
        from ..plotting import plot_history

        try:
            written = plot_history(
                history,
                findings,
                path=args.plot,
                baseline=baseline,
                title=f"{args.log.name} ({history.format})",
            )
        except (ImportError, OSError, ValueError) as exc:
            raise CommandError(str(exc)) from None
    if args.json:
        print_json(
            {
                "format": history.format,
                "columns": history.columns,
                "baseline": baseline,
                "findings": [f.to_dict() for f in findings],
                "plot": None if written is None else str(written),
                "warnings": notes,
            }
        )
        return 0
    cols = ", ".join(f"{k}: {v}" for k, v in history.columns.items())
    n_val = 0 if history.val is None else len(history.val)
    print(
        f"{args.log}: {history.format} log ({cols}; {len(history.train)} train points, {n_val} validation "
        "points)"
    )
    if baseline is not None:
        print(f"baseline (constant guess): {baseline:.4f}")
    for f in findings:
        print(f"[{f.severity}] {f.kind}: {f.message}")
    if written is not None:
        print(f"picture: {written}")
    return 0
