"""Coverage-guided fuzzing of the log readers and ``losskit diagnose`` with atheris (libFuzzer).

Not part of the suite (``pip install atheris`` first; ``make fuzz`` runs it for a while):

    python tests/diagnostics/fuzz_logs_atheris.py -max_total_time=300 [corpus_dir]

The first byte of an input picks the file name (and so the format detection's path); the
second picks whether the rest is taken as it is, or split into records framed as a TensorBoard
event file with valid checksums (random bytes would almost never pass them).  The property is
the one of ``test_logs_fuzz.py``: ``read_log`` returns a history or raises ``LogError``, and
``losskit diagnose`` exits 0, or 2 with one line on stderr, never with a traceback.  A crash
is an input to keep as an ``@example`` there.
"""

from __future__ import annotations

import struct
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    import losskit.cli.diagnose  # noqa: F401
    import losskit.diagnostics.columns  # noqa: F401
    import losskit.diagnostics.history  # noqa: F401
    import losskit.diagnostics.logs  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.diagnostics.test_logs_fuzz import NAMES, _masked_crc, check_file  # noqa: E402


def _framed(fdp: atheris.FuzzedDataProvider) -> bytes:
    out = []
    for _ in range(fdp.ConsumeIntInRange(0, 20)):
        payload = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 200))
        header = struct.pack("<Q", len(payload))
        out.append(
            header
            + struct.pack("<I", _masked_crc(header))
            + payload
            + struct.pack("<I", _masked_crc(payload))
        )
    return b"".join(out) + fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 8))  # maybe a cut tail


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    name = NAMES[fdp.ConsumeIntInRange(0, len(NAMES) - 1)]
    if name.startswith("events") and fdp.ConsumeBool():
        content = _framed(fdp)
    else:
        content = fdp.ConsumeBytes(fdp.remaining_bytes())
    check_file(name, content)


def _seeds(directory: Path) -> None:
    """A few well-formed logs to start from (the first byte picks the name, see above)."""
    seeds = {
        0: b"step,loss,lr\n0,2.3,0.1\n1,2.0,0.1\n2,1.7,0.1\n",
        1: b"epoch,step,train_loss,val_loss\n0,0,2.3,\n0,1,2.1,\n0,1,,2.2\n",
        2: b"epoch,loss,val_loss\n0,2.3,2.4\n1,2.0,2.2\n",
        3: b'{"log_history": [{"loss": 2.3, "step": 1}, {"eval_loss": 2.4, "step": 1}]}',
    }
    for index, content in seeds.items():
        (directory / f"seed{index}").write_bytes(bytes([index, 0]) + content)


if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(not a.startswith("-") for a in args):  # no corpus folder given: a fresh one
        corpus = Path(tempfile.mkdtemp(prefix="losskit-fuzz-"))
        _seeds(corpus)
        args.append(str(corpus))
    atheris.Setup([sys.argv[0], *args], one_input)
    atheris.Fuzz()
