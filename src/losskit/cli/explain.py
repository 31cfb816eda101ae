"""``losskit explain``: what a loss is, and optionally a picture of it and its gradient."""

from __future__ import annotations

import argparse
import textwrap
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
    from .common import CommandError, print_json

    try:
        e = explain(args.loss)
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
    print(f"{e.name}  ({e.family}; prediction in {e.input_space} space)")
    print(f"  formula:    {e.formula}")
    print(f"  derivative: {e.derivative or 'see the docstring'}")
    print(f"  signature:  {e.signature}")
    print("  properties:")
    for key, value in e.properties.items():
        print(f"    {key.replace('_', ' ')}: {value if value is not None else 'not described'}")
    if e.baseline:
        print(f"  baseline:   {e.baseline}")
    eq = ", ".join(f"{lib}: {name}" for lib, name in e.equivalents.items() if name)
    print(f"  equivalents: {eq or 'none'}")
    text = e.notes or e.summary
    if text:
        print(textwrap.fill(text, width=100, initial_indent="  ", subsequent_indent="  "))
    if written is not None:
        print(f"  picture: {written}")
    return 0
