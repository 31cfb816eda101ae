"""``losskit diagnose``: read training logs and say what is wrong, since when."""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from ..diagnostics.baseline import TASKS
from ..diagnostics.logs import FORMATS
from .common import positive_int

STDIN = "-"
STDIN_LABEL = "<stdin>"

EPILOG = """\
runs:
  Each LOG is a file or a folder; a folder may hold several runs, each diagnosed on its own:
  every folder of TensorBoard event files (Lightning's lightning_logs/version_0, version_1, ...;
  Keras' train/ and validation/ folders belong to the run above them), every metrics.csv, and
  a Hugging Face output folder (its trainer_state.json, else its newest checkpoint's).
  "-" reads one CSV or trainer_state.json from standard input (TensorBoard needs a file).

JSON (--json):
  {"runs": [RUN, ...], "html": FILE or null}, each RUN {"path", "format", "columns",
  "baseline", "unit", "train_points", "val_points", "findings", "warnings", "plot"} and each
  finding {"kind", "severity", "step", "epoch", "message", "value"}.  With a single run, its
  keys are also at the top level (as before several runs were read).

exit status:
  0  no finding at or above --fail-on (always 0 without --fail-on)
  1  a finding at or above --fail-on in some run
  2  a mistake in the command line or an unreadable log (one line on stderr)
  141  the output pipe was closed early (losskit diagnose ... | head)

examples:
  losskit diagnose metrics.csv --classes 10
  losskit diagnose runs/ lightning_logs/ trainer_state.json --fail-on error
  losskit diagnose runs/exp1 --json
  cat metrics.csv | losskit diagnose - --classes 10
  losskit diagnose trainer_state.json --classes 50257 --plot loss.png --html report.html
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "diagnose",
        help="find NaNs, bad initialisation, divergence, spikes, plateaus, overfitting in training logs",
        description="Read training logs (plain CSV, Lightning metrics.csv, Keras CSVLogger, Hugging Face "
        "trainer_state.json or TensorBoard event files; the format is detected) and report, run by run, "
        "what went wrong, where it starts, and what to do.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "logs",
        nargs="+",
        metavar="LOG",
        help="log files or folders (a folder may hold several runs); - reads a log from standard input",
    )
    p.add_argument("--classes", type=positive_int, metavar="K", help="number of classes (baseline ln K)")
    p.add_argument("--task", choices=TASKS, help="the task (binary/multilabel give the baseline ln 2)")
    p.add_argument(
        "--baseline", type=float, help="the baseline loss itself (e.g. the target variance for MSE)"
    )
    p.add_argument("--format", choices=FORMATS, help="skip format detection")
    p.add_argument("--train-column", metavar="NAME", help="column/tag of the train loss")
    p.add_argument("--val-column", metavar="NAME", help="column/tag of the validation loss")
    p.add_argument(
        "--fail-on",
        choices=("error", "warning"),
        help="exit with status 1 when any run has a finding of this severity or worse (for CI)",
    )
    p.add_argument("--json", action="store_true", help='print {"runs": [...]} as JSON (see below)')
    p.add_argument(
        "--plot",
        type=Path,
        metavar="PNG",
        help="write the curves with the findings marked (several runs: PNG-<run>.png each)",
    )
    p.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="write one self-contained HTML page: every run, its findings and its curves",
    )
    p.set_defaults(func=run)


def _stdin_log(folder: str):
    """Standard input saved as a file in ``folder``, named for its content (.json or .csv)."""
    from ..diagnostics.runs import Run
    from .common import CommandError

    data = sys.stdin.buffer.read()
    head = data[:4096].removeprefix(b"\xef\xbb\xbf").lstrip()
    if not head:
        raise CommandError("standard input is empty: no log to read")
    if b"\x00" in head or "tfevents" in str(head[:64]):
        raise CommandError(
            "standard input is binary: TensorBoard event files must be given as a file or folder, "
            "not on standard input"
        )
    name = "stdin.json" if head.startswith((b"{", b"[")) else "stdin.csv"
    path = Path(folder) / name
    path.write_bytes(data)
    return Run(path, STDIN_LABEL)


def _plot_paths(plot: Path, labels: list[str]) -> list[Path]:
    if len(labels) == 1:
        return [plot]
    paths: list[Path] = []
    for i, label in enumerate(labels, 1):
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", label.strip("/")).strip("._") or f"run{i}"
        candidate = plot.with_name(f"{plot.stem}-{slug}{plot.suffix or '.png'}")
        if candidate in paths:
            candidate = plot.with_name(f"{plot.stem}-{i}-{slug}{plot.suffix or '.png'}")
        paths.append(candidate)
    return paths


def run(args: argparse.Namespace) -> int:
    from ..diagnostics import find_runs, report
    from ..diagnostics.report import summary_line
    from .common import CommandError, one_line, print_json

    if args.logs.count(STDIN) > 1:
        raise CommandError("standard input (-) can be read once only")
    with tempfile.TemporaryDirectory(prefix="losskit-stdin-") as tmp:
        runs = []
        try:
            for log in args.logs:
                runs += [_stdin_log(tmp)] if log == STDIN else find_runs(log)
        except (ValueError, OSError) as exc:
            raise CommandError(str(exc)) from None
        reports = []
        for r in runs:
            try:
                reports.append(
                    report(
                        r,
                        num_classes=args.classes,
                        task=args.task,
                        baseline=args.baseline,
                        format=args.format,
                        train=args.train_column,
                        val=args.val_column,
                    )
                )
            except (ValueError, TypeError) as exc:
                raise CommandError(str(exc).replace(str(r.path), r.label)) from None
            except OSError as exc:
                raise CommandError(f"cannot read {r.label}: {exc.strerror or exc}") from None

    for rep in reports:  # a log read in part (damaged records skipped): one line each on stderr
        for note in rep.warnings:
            print(f"losskit diagnose: warning: {one_line(note)}", file=sys.stderr)

    written: list[Path | None] = [None] * len(reports)
    if args.plot is not None:
        from ..plotting import plot_history

        for i, (rep, path) in enumerate(zip(reports, _plot_paths(args.plot, [r.source for r in reports]))):
            try:
                written[i] = plot_history(
                    rep.history,
                    rep.findings,
                    path=path,
                    baseline=rep.baseline,
                    title=f"{Path(rep.source).name or rep.source} ({rep.format})",
                )
            except (ImportError, OSError, ValueError) as exc:
                raise CommandError(str(exc)) from None
    html_path = None
    if args.html is not None:
        html_path = _write_html(args.html, reports)

    if args.json:
        runs_json = [
            {**rep.to_dict(), "plot": None if w is None else str(w)} for rep, w in zip(reports, written)
        ]
        out = {**runs_json[0]} if len(runs_json) == 1 else {}
        out.update(runs=runs_json, html=None if html_path is None else str(html_path))
        print_json(out)
    else:
        for i, (rep, w) in enumerate(zip(reports, written)):
            if i:
                print()
            print(rep)
            if w is not None:
                print(f"picture: {w}")
        if len(reports) > 1:
            print()
            print(summary_line(reports))
        if html_path is not None:
            print(f"HTML report: {html_path}")

    if args.fail_on is not None:
        failed = [rep for rep in reports if rep.fails(args.fail_on)]
        if failed:
            which = "run has" if len(failed) == 1 else "runs have"
            print(
                f"losskit diagnose: {len(failed)} {which} findings at or above {args.fail_on} (--fail-on)",
                file=sys.stderr,
            )
            return 1
    return 0


def _write_html(path: Path, reports) -> Path:
    from ..diagnostics import render_html
    from .common import CommandError

    notes = []
    try:
        from ..plotting import report_png

        images = [report_png(rep) for rep in reports]
    except ImportError as exc:
        images, notes = None, [f"No loss curves: {exc}"]
    text = render_html(reports, images, title="losskit diagnose", notes=notes)
    if path.is_dir():
        raise CommandError(f"--html {path} is a directory; give a file name")
    try:
        if not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot write --html {path}: {exc.strerror or exc}") from None
    return path
