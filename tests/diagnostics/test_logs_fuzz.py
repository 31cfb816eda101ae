"""Fuzzing the log readers and ``losskit diagnose`` with hypothesis.

Whatever a file holds (arbitrary bytes, or CSV, Lightning metrics.csv, Keras CSVLogger,
trainer_state.json and TensorBoard event files that are well framed but hostile inside), the
property is the same: ``read_log`` returns a history or raises the library's own ``LogError``
(a ``ValueError``); ``losskit diagnose`` exits 0, or 2 with one line on stderr, and never with
a traceback.

The suite runs a few examples per strategy; ``LOSSKIT_FUZZ_EXAMPLES=100000`` runs a long
campaign (each crash found is then kept below as a regression example).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import struct
import tempfile
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from losskit.cli import main
from losskit.diagnostics import History, LogError, detect_format, read_log
from losskit.diagnostics.logs import LogWarning

EXAMPLES = int(os.environ.get("LOSSKIT_FUZZ_EXAMPLES", "30"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

NAMES = [
    "log.csv",
    "metrics.csv",
    "training.log",
    "trainer_state.json",
    "state.json",
    "events.out.tfevents.1.h",
]


# -- the property ----------------------------------------------------------------------------------


def check_file(name: str, content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(content)
        check_path(path)
        check_path(Path(tmp))  # the folder holding it


def check_path(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LogWarning)
        warnings.simplefilter("error", RuntimeWarning)  # reading a log computes nothing that may overflow
        try:
            fmt = detect_format(path)
        except LogError:
            fmt = None
        try:
            history = read_log(path)
        except LogError:
            history = None
    if history is not None:
        assert isinstance(history, History) and len(history.train) > 0
        assert fmt == history.format
    for extra in ([], ["--json"]):
        check_cli(["diagnose", str(path), *extra])


def check_cli(argv: list[str]) -> None:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        # numpy's RuntimeWarnings (e.g. the findings' sums overflowing near the largest float)
        # are not this property's concern; they are not tracebacks
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
    stderr = err.getvalue()
    assert code in (0, 2), (code, stderr)
    assert "Traceback" not in stderr
    if code == 2:
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("losskit diagnose: error: "), stderr
        assert out.getvalue() == ""
    else:
        for line in stderr.strip().splitlines():
            assert line.startswith("losskit diagnose: warning: "), stderr
        if "--json" in argv:
            json.loads(out.getvalue())


# -- strategies ------------------------------------------------------------------------------------

LOSS_NAMES = ["loss", "train_loss", "val_loss", "eval_loss", "train/loss", "validation/loss", "epoch_loss"]
OTHER_NAMES = ["step", "epoch", "lr", "val_acc", "accuracy", "Step", "EPOCH", "train_runtime", "loss_scale"]
column_names = st.one_of(st.sampled_from(LOSS_NAMES + OTHER_NAMES), st.text(max_size=12))

numbers_as_text = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(
        ["nan", "-nan", "inf", "-Infinity", "1e999", "-1e999", "1_0", "0x10", " 1 ", "", "NaN", "1e-400"]
    ),
)
cells = st.one_of(numbers_as_text, st.text(max_size=20), st.just('"'), st.just('""'), st.just("a,b"))


@st.composite
def csv_logs(draw, header_first=None):
    columns = draw(st.lists(column_names, min_size=1, max_size=6))
    if header_first:
        columns = [header_first, *columns]
    delimiter = draw(st.sampled_from([",", ",", ";", "\t"]))
    rows = draw(st.lists(st.lists(cells, min_size=0, max_size=len(columns) + 2), max_size=25))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = newline.join(delimiter.join(r) for r in [columns, *rows])
    bom = draw(st.sampled_from(["", "\ufeff"]))
    return (bom + text + draw(st.sampled_from(["", newline]))).encode("utf-8", "surrogatepass")


@st.composite
def lightning_logs(draw):
    metrics = draw(
        st.lists(st.sampled_from(["train_loss", "val_loss", "val_acc", "train_loss_step"]), min_size=1)
    )
    lines = [",".join(["epoch", "step", *metrics])]
    for _ in range(draw(st.integers(0, 30))):
        lines.append(",".join(draw(st.sampled_from(["", "0", "1"])) for _ in range(2)))
        lines[-1] += "," + ",".join(draw(st.one_of(numbers_as_text, st.just(""))) for _ in metrics)
    return "\n".join(lines).encode()


@st.composite
def keras_logs(draw):
    columns = ["epoch", *draw(st.lists(st.sampled_from(["loss", "val_loss", "accuracy", "lr"]), min_size=1))]
    rows = draw(
        st.lists(st.lists(numbers_as_text, min_size=len(columns), max_size=len(columns)), max_size=30)
    )
    return "\n".join(",".join(r) for r in [columns, *rows]).encode()


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
entry_keys = st.sampled_from(
    ["loss", "eval_loss", "step", "epoch", "train_runtime", "learning_rate", "train_loss"]
)


@st.composite
def trainer_states(draw):
    entries = draw(
        st.lists(st.one_of(st.dictionaries(entry_keys, json_scalars, max_size=5), json_values), max_size=30)
    )
    state = draw(
        st.one_of(
            st.just({"log_history": entries}),
            st.dictionaries(st.sampled_from(["log_history", "global_step", "best_metric"]), json_values),
            json_values,
        )
    )
    text = json.dumps(state, allow_nan=True)
    bom = draw(st.sampled_from([b"", b"\xef\xbb\xbf"]))
    return bom + text.encode()


def _masked_crc(data: bytes) -> int:
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    return masked_crc32c(data)


def _record(payload: bytes) -> bytes:
    header = struct.pack("<Q", len(payload))
    return header + struct.pack("<I", _masked_crc(header)) + payload + struct.pack("<I", _masked_crc(payload))


@st.composite
def event_files(draw):
    """Well-framed TensorBoard event files of hostile events, then maybe damaged."""
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2

    tags = st.one_of(
        st.sampled_from(["loss", "train/loss", "val_loss", "epoch", "epoch_loss"]), st.text(max_size=8)
    )
    values = st.floats(width=32, allow_nan=True, allow_infinity=True)
    steps = st.integers(min_value=-(2**63), max_value=2**63 - 1)
    records = []
    if draw(st.booleans()):
        records.append(
            event_pb2.Event(file_version=draw(st.sampled_from(["brain.Event:2", "brain.Event:1", "x"])))
        )
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(["simple", "tensor", "odd_tensor", "start", "raw"]))
        step = draw(steps)
        if kind == "simple":
            value = summary_pb2.Summary.Value(tag=draw(tags), simple_value=draw(values))
        elif kind in ("tensor", "odd_tensor"):
            dtype = (
                types_pb2.DT_FLOAT
                if kind == "tensor"
                else draw(st.sampled_from([types_pb2.DT_STRING, types_pb2.DT_INT64, 0, 99]))
            )
            dims = (
                []
                if kind == "tensor"
                else [tensor_shape_pb2.TensorShapeProto.Dim(size=draw(st.integers(-1, 3)))]
            )
            tensor = tensor_pb2.TensorProto(
                dtype=dtype,
                float_val=draw(st.lists(values, max_size=3)),
                tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=dims),
                tensor_content=draw(st.binary(max_size=16)) if kind == "odd_tensor" else b"",
            )
            value = summary_pb2.Summary.Value(tag=draw(tags), tensor=tensor)
        elif kind == "start":
            records.append(
                event_pb2.Event(
                    step=step, session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)
                )
            )
            continue
        else:
            records.append(draw(st.binary(max_size=40)))
            continue
        records.append(event_pb2.Event(step=step, wall_time=1.0, summary=summary_pb2.Summary(value=[value])))
    data = bytearray(b"".join(_record(r if isinstance(r, bytes) else r.SerializeToString()) for r in records))
    for _ in range(draw(st.integers(0, 3))):  # damage: flipped bytes, a cut, inserted garbage
        if not data:
            break
        what = draw(st.sampled_from(["flip", "cut", "insert"]))
        at = draw(st.integers(0, len(data) - 1))
        if what == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif what == "cut":
            del data[at:]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=20))
    return bytes(data)


# -- the tests -------------------------------------------------------------------------------------


@FUZZ
@given(name=st.sampled_from(NAMES), content=st.binary(max_size=400))
@example(name="trainer_state.json", content=b"3")
@example(name="trainer_state.json", content=b"[1, 2]")
@example(name="trainer_state.json", content=b"\xef\xbb\xbf" + b'{"log_history": [{"loss": 1.0}]}')
@example(name="state.json", content=b"[" * 100_000)
@example(name="log.csv", content=b'step,loss\n0,"' + b"x" * 140_000 + b'"\n')
@example(name="log.csv", content=b"step,loss\n0,1\n1,\xff\xfe\n")
@example(name="log.csv", content=b"\x01\x0b\x01")  # a line break of str.splitlines in a column name
def test_arbitrary_bytes(name, content):
    check_file(name, content)


@FUZZ
@given(name=st.sampled_from(["log.csv", "metrics.csv", "training.log"]), content=csv_logs())
@example(name="log.csv", content=b"0\x0c0")  # a line break of str.splitlines in a column name
def test_csv_logs(name, content):
    check_file(name, content)


@FUZZ
@given(content=st.one_of(lightning_logs(), csv_logs(header_first="epoch")))
@example(content=b"epoch,0\x0c0")
def test_lightning_metrics_csv(content):
    check_file("metrics.csv", content)


@FUZZ
@given(content=keras_logs())
@example(content=b"epoch,loss,loss,loss\n0.0,0.0,0.0,0.0\n0.0,0.0,0.0,0.0\n0.0,0.0,0.0,8.98846567431158e+307")
def test_keras_csv_logger(content):
    check_file("training.log", content)


@FUZZ
@given(name=st.sampled_from(["trainer_state.json", "state.json"]), content=trainer_states())
@example(name="trainer_state.json", content=b'{"log_history": [{"loss": ' + b"9" * 400 + b"}]}")
@example(name="trainer_state.json", content=b'{"log_history": [{"\\r": null}]}')
def test_trainer_state(name, content):
    check_file(name, content)


@FUZZ
@given(content=event_files())
@example(  # a tag holding a line break
    content=b"\x15\x00\x00\x00\x00\x00\x00\x00\xd6\xabk+\t\x00\x00\x00\x00\x00\x00\xf0?*\n\n\x08\n\x01\r"
    b"\x15\x00\x00\x00\x007\xdbY\x99"
)
def test_tensorboard_event_files(content):
    pytest.importorskip("tensorboard")
    check_file("events.out.tfevents.1.host", content)


def test_the_property_holds_on_a_good_log(tmp_path):
    """The property's own check: a good log gives a history and exit status 0."""
    log = tmp_path / "log.csv"
    log.write_text("step,loss\n" + "".join(f"{i},{2.0 / (i + 1)}\n" for i in range(30)))
    check_path(log)
    assert read_log(log).format == "csv" and not math.isnan(read_log(log).train.value[0])
