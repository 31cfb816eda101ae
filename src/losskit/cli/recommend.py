"""``losskit recommend``: the output layer and loss for a task."""

from __future__ import annotations

import argparse
import textwrap

from ..diagnostics.baseline import TASKS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "recommend",
        help="the output layer and loss for a task, and the mistakes to avoid",
        description="Which output layer and loss a task wants, why, its baseline loss, and common mistakes.",
        epilog="example:\n  losskit recommend multiclass",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("task", metavar="TASK", help=f"one of: {', '.join(TASKS)}")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def _wrap(text: str, indent: str = "    ") -> str:
    return textwrap.fill(text, width=100, initial_indent=indent, subsequent_indent=indent)


def run(args: argparse.Namespace) -> int:
    from ..diagnostics import recommend
    from .common import CommandError, print_json

    try:
        r = recommend(args.task)
    except (ValueError, TypeError) as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        print_json(r.to_dict())
        return 0
    print(f"task: {r.task}")
    print(f"  output layer: {r.output_layer}")
    print(f"  loss:         {r.loss}")
    print("  why:")
    print(_wrap(r.why))
    print(f"  baseline:     {r.baseline}")
    print("  common mistakes:")
    for m in r.mistakes:
        print(textwrap.fill(m, width=100, initial_indent="    - ", subsequent_indent="      "))
    if r.alternatives:
        print("  alternatives:")
        for a in r.alternatives:
            print(f"    - {a}")
    if r.also_in_losskit:
        print(f"  in losskit's catalog for this family: {', '.join(r.also_in_losskit)}")
    return 0
