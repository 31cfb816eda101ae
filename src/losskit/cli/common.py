"""What the subcommands share: the user-mistake error, JSON output, argument types."""

from __future__ import annotations

import argparse
import difflib
import json
import math
import sys
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "CommandError",
    "one_line",
    "print_json",
    "positive_int",
    "unknown_name",
    "check_loss_name",
    "check_task_name",
]

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


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def unknown_name(
    what: str, name: str, known: Iterable[str], aliases: Mapping[str, str] | None = None
) -> CommandError:
    """The one-line error for an unknown name: ``unknown loss 'hubber'; did you mean 'huber'?``
    (close matches among ``known`` and the ``aliases``' keys, given as the names they stand
    for), or the list of known names when nothing is close."""
    known = sorted(known)
    aliases = dict(aliases or {})
    key = _key(name)
    if key in known:  # another spelling of a known name (case, dashes)
        matches = [key]
    elif key in aliases:  # a spelling this command does not take, of a name it does
        matches = [aliases[key]]
    else:
        close = difflib.get_close_matches(key, [*known, *aliases], n=4, cutoff=0.6)
        matches = list(dict.fromkeys(aliases.get(m, m) for m in close))[:3]
    if not matches:
        plural = "losses" if what == "loss" else f"{what}s"
        return CommandError(f"unknown {what} {name!r}; known {plural}: {', '.join(known)}")
    quoted = [repr(m) for m in matches]
    options = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return CommandError(f"unknown {what} {name!r}; did you mean {options}?")


def check_loss_name(name: str, *, aliases: bool = True) -> str:
    """The catalog name of the loss ``name``, or a :class:`CommandError` suggesting close
    names.  ``aliases=False`` for commands that take catalog names only (``evaluate``)."""
    from ..core.catalog import catalog
    from ..diagnostics.baseline import ALIASES, resolve_loss_name

    names = {info.name for info in catalog()}
    if aliases:
        try:
            return resolve_loss_name(name)
        except (ValueError, TypeError):
            raise unknown_name("loss", name, names, ALIASES) from None
    if name in names:
        return name
    raise unknown_name("loss", name, names, {**ALIASES, **{_key(n): n for n in names if _key(n) != n}})


def check_task_name(name: str) -> str:
    """``name`` if it is a task :func:`losskit.recommend` knows (or an alias of one), else a
    :class:`CommandError` suggesting close names."""
    from ..diagnostics.recommend import TASK_ALIASES, TASKS

    key = _key(name)
    if key in TASKS or key in TASK_ALIASES:
        return name
    raise unknown_name("task", name, TASKS, TASK_ALIASES)
