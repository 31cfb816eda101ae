"""``losskit explain``: what a loss is, and optionally a picture of it and its gradient."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "explain",
        help="formula, derivative, properties and equivalents of a loss",
        description="Explain a loss: formula, derivative, input space, properties and its PyTorch/Optax/"
        "Keras "
        "equivalents; --plot draws the loss and its analytic gradient against the prediction.",
        epilog="examples:\n  losskit explain cross_entropy\n  losskit explain huber --plot huber.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("loss", metavar="LOSS", help="a loss name or alias (see losskit.catalog())")
    p.add_argument("--plot", type=Path, metavar="PNG", help="write the loss and its gradient to this PNG")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..diagnostics import explain
    from .common import CommandError, check_loss_name, print_json

    try:
        e = explain(check_loss_name(args.loss))
    except (ValueError, TypeError, KeyError) as exc:
        raise CommandError(str(exc).strip("'\"")) from None
    written = None
    if args.plot is not None:
        from ..plotting import plot_loss

        try:
            written = plot_loss(e.name, path=args.plot)
        except (ValueError, ImportError, OSError) as exc:
            raise CommandError(str(exc)) from None
    if args.json:
        d = e.to_dict()
        d["plot"] = None if written is None else str(written)
        print_json(d)
        return 0
    print(e)
    if written is not None:
        print(f"  picture: {written}")
    return 0
