"""What the subcommands share: the user-mistake error, JSON output, argument types."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

__all__ = ["CommandError", "one_line", "print_json", "positive_int"]

# what str.splitlines() breaks a line at
_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


class CommandError(Exception):
    """A mistake in the user's input (missing file, unknown name, ...): reported in one line."""


def one_line(text: str) -> str:
    """``text`` on one line: the line breaks inside it (from a file name, a column name, ...)
    written as escapes, so that an error stays one line on stderr."""
    return "".join(repr(c)[1:-1] if c in _LINE_BREAKS else c for c in text.strip())


def print_json(obj: Any) -> None:
    """Print ``obj`` as JSON (non-finite floats become ``null`` so any JSON reader copes)."""

    def clean(x: Any) -> Any:
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    json.dump(clean(obj), sys.stdout, indent=2)
    sys.stdout.write("\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value
