"""The ``losskit`` command line.

Each subcommand lives in its own module of this package and exposes ``register(subparsers)``,
which adds its parser and sets ``func`` (called with the parsed arguments, returning an exit
status).  User mistakes raise :class:`~losskit.cli.common.CommandError`: one clear line on
stderr and exit status 2, never a traceback.

Exit statuses: 0 success; 1 ``diagnose --fail-on`` found a finding at or above the threshold;
2 a user mistake; 130 interrupted; 141 the reader of the output went away (``losskit ... |
head``): the status a shell reports for a program ended by SIGPIPE (128 + 13), as ``git`` or
``cat`` end there, quietly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from .. import __version__
from .common import CommandError, one_line

__all__ = ["main", "build_parser", "CommandError"]

# the subcommands, each a module of this package
COMMANDS = ("baseline", "demo", "diagnose", "evaluate", "explain", "recommend", "units")

# the status of a command whose output pipe was closed early: what a shell reports for a program
# ended by SIGPIPE (128 + 13), as coreutils and git end there
CLOSED_PIPE = 141

EPILOG = """\
exit status:
  0    success
  1    diagnose --fail-on: a finding at or above the threshold
  2    a mistake in the command line or its input (one line on stderr)
  130  interrupted
  141  the output pipe was closed early (losskit ... | head), as for SIGPIPE
"""


class _Parser(argparse.ArgumentParser):
    """argparse's parser, with its usage errors in one line like every other user mistake."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")

    def _print_message(self, message: str, file=None) -> None:
        # argparse ignores a failed write of --help or --version; a closed pipe must reach main()
        if message:
            (file or sys.stderr).write(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="losskit",
        description="Loss functions for neural networks: compute, check and explain them.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"losskit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``) and return its exit status."""
    try:
        try:
            status = _main(argv)
        except SystemExit:  # argparse's --help, --version and usage errors: their output too
            sys.stdout.flush()
            raise
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        return _closed_pipe()


def _closed_pipe() -> int:
    """Nobody reads the output any more: stop quietly.  Standard output is pointed at the null
    device so that Python's own flush at exit does not fail on the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout replaced by something without a file
        pass
    return CLOSED_PIPE


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CommandError as exc:
        print(f"losskit {args.command}: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
