"""``losskit demo``: the whole library in one run (see :mod:`losskit.demo`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="worked examples, two small NumPy MLPs trained with losskit's gradients, diagnosed and plotted",
        description="Print the worked examples (loss, analytic gradient, constant-guess baseline), train a "
        "next-character classifier (cross-entropy) and a regression (MSE) in pure NumPy with losskit's "
        "analytic loss gradients, diagnose both runs, print a summary and write the loss curves as PNGs. "
        "The PNGs need matplotlib (pip install 'losskit[plot]'); without it everything else runs and the "
        "report says the plots were skipped.",
        epilog="examples:\n  losskit demo\n  losskit demo --quick --out /tmp/demo",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("losskit-demo"),
        metavar="DIR",
        help="folder for the PNGs (default: ./losskit-demo)",
    )
    p.add_argument("--quick", action="store_true", help="a small run of a few seconds (for tests)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--seed", type=int, default=0, help="seed of data, initialisation and batches (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import run_demo
    from .common import CommandError

    if args.out.exists() and not args.out.is_dir():
        raise CommandError(f"--out {args.out} exists and is not a folder")
    try:
        run_demo(args.out, quick=args.quick, progress=not args.no_progress, seed=args.seed)
    except ImportError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"cannot write to {args.out}: {exc.strerror or exc}") from None
    return 0
