"""mypy on the typed usage sample: the correct code passes, and every deliberate mistake in
``sample_errors.py`` (a misspelled loss or keyword, a reduction losskit does not have, an option
of the wrong type, through ``value_and_grad`` and ``grad`` too) is reported on its line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# the flags of the Makefile's `make test` line
MYPY = ["-m", "mypy", "--follow-imports=silent", "--cache-dir", ".mypy_cache", "--no-error-summary"]


@pytest.fixture(scope="module")
def reported():
    files = [str(p.relative_to(ROOT)) for p in (HERE / "sample.py", HERE / "sample_errors.py")]
    command = [sys.executable, *MYPY, *files]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode in (0, 1), run.stdout + run.stderr  # 2: mypy itself failed
    errors: dict[str, set[int]] = {}
    for line in run.stdout.splitlines():
        match = re.match(r"(.+?):(\d+): error:", line)
        if match:
            errors.setdefault(Path(match.group(1)).name, set()).add(int(match.group(2)))
    return run, errors


def test_the_sample_type_checks(reported):
    run, errors = reported
    assert "sample.py" not in errors, run.stdout


def test_each_deliberate_mistake_is_reported(reported):
    run, errors = reported
    lines = (HERE / "sample_errors.py").read_text().splitlines()
    marked = {n for n, line in enumerate(lines, 1) if line.endswith("# error")}
    assert len(marked) >= 6
    assert errors.get("sample_errors.py", set()) == marked, run.stdout
