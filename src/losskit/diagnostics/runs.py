"""Find the training runs in a path: a log file is one run, a folder may hold several.

:func:`find_runs` walks a folder and returns one :class:`Run` per training run in it:

- a folder with a ``trainer_state.json`` (a Hugging Face output folder) is one run; without
  one, its newest ``checkpoint-N/trainer_state.json`` (the largest ``N``) stands for the run
  (each checkpoint's state holds the whole history up to it);
- a folder with a ``metrics.csv`` (Lightning's ``CSVLogger``) is one run;
- every folder holding TensorBoard event files is a run, so Lightning's
  ``lightning_logs/version_0``, ``version_1``, ... are several runs; sub-folders named for a
  split (``train``, ``validation``, ``val``, ``eval``, ...), as Keras writes them, belong to the
  run of the folder above them;
- a file is one run.

Nothing in a run is searched again for other runs.  :func:`read_run` reads one run's log; a
TensorBoard run whose folder also holds other runs (in sub-folders) is read without them.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .history import History
from .logs import LogError, read_log

__all__ = ["Run", "find_runs", "read_run", "SPLIT_FOLDERS"]

# sub-folders of event files that hold one split of the run above them (Keras' TensorBoard)
SPLIT_FOLDERS = frozenset({"train", "training", "validation", "val", "valid", "eval", "evaluation", "test"})

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


@dataclass(frozen=True)
class Run:
    """One training run found by :func:`find_runs`.

    Attributes:
      path: what :func:`~losskit.diagnostics.read_log` reads: a log file or a folder.
      label: how reports name the run: the path as given, or below the folder given.
      format: ``"tensorboard"`` for a folder of event files, else ``None`` (detected on reading).
      files: for a TensorBoard run whose folder holds other runs too, its own event files;
        ``None`` otherwise.
    """

    path: Path
    label: str
    format: str | None = None
    files: tuple[Path, ...] | None = None

    def __str__(self) -> str:
        return self.label


def _is_event_file(p: Path) -> bool:
    return "tfevents" in p.name and p.is_file()


def _has_events(folder: Path) -> bool:
    try:
        return any(_is_event_file(p) for p in folder.iterdir())
    except OSError:
        return False


def _subfolders(folder: Path) -> list[Path]:
    try:
        return sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.name)
    except OSError:
        return []


def _events_below(folder: Path) -> bool:
    return any(_is_event_file(p) for p in folder.rglob("*tfevents*"))


def _logs_below(folder: Path) -> bool:
    for _, _, names in os.walk(folder):
        if any("tfevents" in n or n in ("trainer_state.json", "metrics.csv") for n in names):
            return True
    return False


def _newest_checkpoint(folder: Path) -> Path | None:
    best: tuple[int, Path] | None = None
    for sub in _subfolders(folder):
        m = _CHECKPOINT.match(sub.name)
        if m and (sub / "trainer_state.json").is_file():
            n = int(m.group(1))
            if best is None or n > best[0]:
                best = (n, sub)
    return None if best is None else best[1] / "trainer_state.json"


def _label(path: Path, root: Path, given: str) -> str:
    if path == root:
        return given
    rel = path.relative_to(root).as_posix()
    return rel if given in ("", ".") else f"{given.rstrip('/' + os.sep)}/{rel}"


def _walk(folder: Path, root: Path, given: str, out: list[Run]) -> None:
    if (folder / "trainer_state.json").is_file():
        out.append(Run(folder / "trainer_state.json", _label(folder, root, given)))
        return
    checkpoint = _newest_checkpoint(folder)
    if checkpoint is not None:
        out.append(Run(checkpoint, _label(folder, root, given)))
        return
    if (folder / "metrics.csv").is_file():
        out.append(Run(folder / "metrics.csv", _label(folder, root, given)))
        return
    subs = [s for s in _subfolders(folder) if _logs_below(s)]
    splits = [s for s in subs if s.name.lower() in SPLIT_FOLDERS and not _nested_run(s)]
    others = [s for s in subs if s not in splits]
    if _has_events(folder) or (splits and not others):
        # this folder is a run (its split sub-folders are part of it)
        files = None
        if others:  # read without the other runs below it
            files = tuple(sorted(p for p in folder.iterdir() if _is_event_file(p)))
            for s in splits:
                files += tuple(sorted(p for p in s.rglob("*tfevents*") if p.is_file()))
        out.append(Run(folder, _label(folder, root, given), "tensorboard", files))
    elif splits:  # split folders next to other runs: each split folder its own run
        others = subs
    for s in others:
        _walk(s, root, given, out)


def _nested_run(folder: Path) -> bool:
    """Whether a split-named folder is itself a collection of runs (its event files sit deeper
    than one level of split folders)."""
    if _has_events(folder):
        return False
    return any(_events_below(s) and s.name.lower() not in SPLIT_FOLDERS for s in _subfolders(folder))


def find_runs(path: str | os.PathLike[str]) -> list[Run]:
    """The training runs in ``path``: one for a log file, one or more for a folder.

    Raises :class:`~losskit.diagnostics.LogError` when ``path`` does not exist or is a folder
    without any log (no ``trainer_state.json``, ``metrics.csv`` or event files in it or below it).
    """
    p = Path(path)
    given = os.fspath(path)
    if not p.exists():
        raise LogError(f"no such file or directory: {p}")
    if not p.is_dir():
        return [Run(p, given)]
    out: list[Run] = []
    _walk(p, p, given, out)
    if not out:
        raise LogError(
            f"{p} is a directory without a trainer_state.json, metrics.csv or TensorBoard event files"
        )
    return out


def read_run(
    run: Run, *, format: str | None = None, train: str | None = None, val: str | None = None
) -> History:
    """Read one run's log into a :class:`~losskit.diagnostics.History` (see
    :func:`~losskit.diagnostics.read_log` for the arguments)."""
    if run.files is None:
        return read_log(run.path, format=format or run.format, train=train, val=val)
    # a TensorBoard run with other runs below its folder: read its own files from a folder of links
    with tempfile.TemporaryDirectory(prefix="losskit-run-") as tmp:
        for f in run.files:
            link = Path(tmp) / f.relative_to(run.path)
            link.parent.mkdir(parents=True, exist_ok=True)
            try:
                link.symlink_to(f.resolve())
            except OSError:  # no symbolic links here: copy
                shutil.copyfile(f, link)
        try:
            return read_log(tmp, format=format or run.format, train=train, val=val)
        except LogError as exc:
            raise LogError(str(exc).replace(tmp, os.fspath(run.path))) from None
