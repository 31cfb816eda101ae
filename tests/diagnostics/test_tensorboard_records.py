"""TensorBoard event files with damaged records: read past them, and say what was lost.

The event files are written by tensorboard's own writer (as in test_logs.py); bytes in the
middle are then overwritten, as a bad disk, an interrupted copy or a sync tool would.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from losskit.diagnostics import LogError, read_log
from losskit.diagnostics.logs import LogWarning
from tests.diagnostics.test_logs import EPOCHS, SPE, write_tb_single

pytest.importorskip("tensorboard")

SCRIPT = Path(sys.executable).with_name("losskit")
POINTS = EPOCHS * SPE  # train points written by write_tb_single


def _records(data: bytes) -> list[tuple[int, int]]:
    """(offset, length of the payload) of each record of a TFRecord file (no checks)."""
    out, pos = [], 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        out.append((pos, length))
        pos += 12 + length + 4
    return out


def _event_file(tmp_path) -> Path:
    d = write_tb_single(tmp_path / "tb")
    return next(d.glob("*tfevents*"))


def _damage(path: Path, where: str, record: int | None = None) -> int:
    """Overwrite part of a record in the middle of ``path``; the index of that record."""
    data = bytearray(path.read_bytes())
    records = _records(bytes(data))
    i = len(records) // 2 if record is None else record
    offset, length = records[i]
    if where == "payload":
        data[offset + 12 + length // 2] ^= 0xFF
    elif where == "length":
        data[offset : offset + 8] = struct.pack("<Q", 2**40)
    elif where == "two records":  # this record's payload and the next one's header
        data[offset + 12 + length // 2] ^= 0xFF
        data[records[i + 1][0] + 9] ^= 0x55
    path.write_bytes(bytes(data))
    return i


def _read_with_warnings(path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = read_log(path)
    return history, [w for w in caught if issubclass(w.category, LogWarning)]


@pytest.mark.parametrize("target", ["file", "folder"])
def test_a_corrupted_record_is_skipped_and_reported(tmp_path, target):
    event_file = _event_file(tmp_path)
    _damage(event_file, "payload")
    history, caught = _read_with_warnings(event_file if target == "file" else event_file.parent)
    # one record lost: at most one train point (the record may hold the epoch or the validation
    # value instead); everything after the damage is read
    assert POINTS - 1 <= len(history.train) <= POINTS
    assert history.train.step[-1] == POINTS - 1 and history.val is not None and len(history.val) >= EPOCHS - 1
    (warning,) = caught
    message = str(warning.message)
    assert event_file.name in message and "1 corrupted record" in message and "\n" not in message


def test_a_corrupted_length_is_read_past(tmp_path):
    event_file = _event_file(tmp_path)
    _damage(event_file, "length")
    history, caught = _read_with_warnings(event_file)
    assert POINTS - 1 <= len(history.train) <= POINTS and history.train.step[-1] == POINTS - 1
    (warning,) = caught
    assert event_file.name in str(warning.message) and "corrupted record" in str(warning.message)


def test_two_damaged_records_and_a_cut_tail(tmp_path):
    event_file = _event_file(tmp_path)
    _damage(event_file, "two records")
    with open(event_file, "r+b") as f:  # the last record cut short, as by a crash mid-write
        f.truncate(os.path.getsize(event_file) - 3)
    history, caught = _read_with_warnings(event_file)
    assert POINTS - 3 <= len(history.train) <= POINTS
    (warning,) = caught
    message = str(warning.message)
    assert "2 corrupted records" in message and "incomplete last record" in message, message


def test_an_intact_file_gives_no_warning_and_the_same_history(tmp_path):
    event_file = _event_file(tmp_path)
    history, caught = _read_with_warnings(event_file)
    assert caught == [] and len(history.train) == POINTS
    expected = np.asarray(history.train.value)
    np.testing.assert_array_equal(read_log(event_file.parent).train.value, expected)


def test_a_file_of_nothing_but_damage_is_a_log_error(tmp_path):
    event_file = tmp_path / "events.out.tfevents.1.host"
    event_file.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(LogError, match="no scalars"), warnings.catch_warnings():
        warnings.simplefilter("ignore", LogWarning)
        read_log(event_file)


def test_cli_reports_the_loss_on_one_line_of_stderr(tmp_path):
    event_file = _event_file(tmp_path)
    _damage(event_file, "payload")
    for extra in ([], ["--json"]):
        r = subprocess.run(
            [str(SCRIPT), "diagnose", str(event_file.parent), *extra],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr
        (line,) = r.stderr.strip().splitlines()
        assert line.startswith("losskit diagnose: warning: ") and event_file.name in line, line
        assert "1 corrupted record" in line
        if extra:
            report = json.loads(r.stdout)
            assert report["warnings"] == [line.removeprefix("losskit diagnose: warning: ")]
        else:
            assert "tensorboard log" in r.stdout
