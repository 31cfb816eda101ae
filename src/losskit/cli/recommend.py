"""``losskit recommend``: the output layer and loss for a task."""

from __future__ import annotations

import argparse

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


def run(args: argparse.Namespace) -> int:
    from ..diagnostics import recommend
    from .common import CommandError, check_task_name, print_json

    try:
        r = recommend(check_task_name(args.task))
    except (ValueError, TypeError) as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        print_json(r.to_dict())
        return 0
    print(r)
    return 0
