"""Reading training logs of every supported format, and diagnosing them."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from losskit.diagnostics import FORMATS, LogError, detect_format, diagnose, read_log

EPOCHS = 40
SPE = 20  # steps per epoch
RISE = 15  # validation loss starts to rise after this epoch (0-based)
K = 10


def train_curve():
    rng = np.random.default_rng(0)
    x = np.arange(EPOCHS * SPE) / SPE
    return (0.15 + (math.log(K) - 0.15) * np.exp(-x / 5)) * (1 + 0.04 * rng.standard_normal(x.size))


def val_curve():
    e = np.arange(EPOCHS) + 1.0  # measured at the end of epoch e
    return 0.7 + 1.5 * np.exp(-e / 5) + 0.003 * np.maximum(0, e - (RISE + 1)) ** 2


BEST = int(np.argmin(val_curve()))  # epoch (0-based) of the validation minimum


def epoch_train_curve():
    return train_curve().reshape(EPOCHS, SPE).mean(axis=1)


def check_overfitting(history, expect_epoch=None, expect_step=None):
    findings = diagnose(history, num_classes=K)
    hits = [f for f in findings if f.kind == "overfitting"]
    assert hits, [f.kind for f in findings]
    f = hits[0]
    if expect_epoch is not None:
        assert f.epoch is not None and abs(f.epoch - expect_epoch) <= 0.5
    if expect_step is not None:
        assert f.step is not None and f.step == expect_step
    assert "init_ok" in [f.kind for f in findings]
    return findings


def write_plain_csv(path, with_nan=False):
    y = train_curve()
    if with_nan:
        y[333] = np.nan
    lines = ["step,train/loss,lr"] + [f"{i},{float(v)!r},0.001" for i, v in enumerate(y)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_lightning(path):
    y, v = train_curve(), val_curve()
    rows = ["epoch,step,train_loss,val_acc,val_loss"]
    for e in range(EPOCHS):
        for s in range(SPE):
            step = e * SPE + s
            rows.append(f"{e},{step},{y[step]:.6f},,")
        rows.append(f"{e},{e * SPE + SPE - 1},,0.5,{v[e]:.6f}")
    path.write_text("\n".join(rows) + "\n")
    return path


def write_keras(path):
    y, v = epoch_train_curve(), val_curve()
    rows = ["epoch,accuracy,loss,val_accuracy,val_loss"]
    rows += [f"{e},0.5,{y[e]:.6f},0.5,{v[e]:.6f}" for e in range(EPOCHS)]
    path.write_text("\n".join(rows) + "\n")
    return path


def write_hf(path):
    y, v = train_curve(), val_curve()
    log = []
    for step in range(1, EPOCHS * SPE + 1):
        if step % 5 == 0:
            log.append(
                {
                    "epoch": step / SPE,
                    "grad_norm": 1.0,
                    "learning_rate": 1e-4,
                    "loss": float(y[step - 1]),
                    "step": step,
                }
            )
        if step % SPE == 0:
            e = step // SPE
            log.append({"epoch": float(e), "eval_loss": float(v[e - 1]), "eval_runtime": 1.2, "step": step})
    log.append(
        {
            "epoch": float(EPOCHS),
            "step": EPOCHS * SPE,
            "total_flos": 1e12,
            "train_loss": 0.9,
            "train_runtime": 100.0,
        }
    )
    path.write_text(
        json.dumps({"best_metric": None, "global_step": EPOCHS * SPE, "log_history": log}, indent=2)
    )
    return path


def _tb_writer(directory):
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    w = EventFileWriter(str(directory))

    def scalar(tag, step, value, as_tensor=False):
        if as_tensor:  # how TF2 and newer writers store scalars
            from tensorboard.compat.proto import tensor_pb2, tensor_shape_pb2, types_pb2

            meta = summary_pb2.SummaryMetadata(
                plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
            )
            tensor = tensor_pb2.TensorProto(
                dtype=types_pb2.DT_FLOAT, float_val=[value], tensor_shape=tensor_shape_pb2.TensorShapeProto()
            )
            val = summary_pb2.Summary.Value(tag=tag, tensor=tensor, metadata=meta)
        else:
            val = summary_pb2.Summary.Value(tag=tag, simple_value=value)
        w.add_event(
            event_pb2.Event(step=step, wall_time=time.time(), summary=summary_pb2.Summary(value=[val]))
        )

    return w, scalar


def write_tb_single(directory, as_tensor=False):
    pytest.importorskip("tensorboard")
    y, v = train_curve(), val_curve()
    w, scalar = _tb_writer(directory)
    for step, value in enumerate(y):
        scalar("train/loss", step, float(value), as_tensor)
        scalar("epoch", step, float(step // SPE), as_tensor)
    for e in range(EPOCHS):
        scalar("validation/loss", e * SPE + SPE - 1, float(v[e]), as_tensor)
    w.close()
    return directory


def write_tb_keras(directory):
    pytest.importorskip("tensorboard")
    y, v = epoch_train_curve(), val_curve()
    for run, values in (("train", y), ("validation", v)):
        (directory / run).mkdir(parents=True)
        w, scalar = _tb_writer(directory / run)
        for e, value in enumerate(values):
            scalar("epoch_loss", e, float(value))
            scalar("epoch_accuracy", e, 0.5)
        w.close()
    return directory


# -- each format -------------------------------------------------------------------------------


def test_plain_csv(tmp_path):
    p = write_plain_csv(tmp_path / "log.csv")
    assert detect_format(p) == "csv"
    h = read_log(p)
    assert h.format == "csv" and h.columns == {"train": "train/loss"} and len(h.train) == EPOCHS * SPE
    assert h.val is None
    kinds = [f.kind for f in diagnose(h, num_classes=K)]
    assert "init_ok" in kinds and "healthy" in kinds


def test_plain_csv_nan_and_no_step_column(tmp_path):
    p = write_plain_csv(tmp_path / "log.csv", with_nan=True)
    f = [f for f in diagnose(read_log(p)) if f.kind == "nan"][0]
    assert f.step == 333
    q = tmp_path / "bare.csv"
    q.write_text("loss\n2.0\n1.5\nnan\n")
    h = read_log(q)
    assert list(h.train.step) == [0, 1, 2] and np.isnan(h.train.value[2])


def test_lightning_metrics_csv(tmp_path):
    p = write_lightning(tmp_path / "metrics.csv")
    assert detect_format(p) == "lightning_csv"
    assert detect_format(tmp_path) == "lightning_csv"  # the CSVLogger folder
    h = read_log(tmp_path)
    assert h.format == "lightning_csv" and h.columns == {"train": "train_loss", "val": "val_loss"}
    assert len(h.train) == EPOCHS * SPE and len(h.val) == EPOCHS
    check_overfitting(h, expect_epoch=BEST, expect_step=BEST * SPE + SPE - 1)


def test_keras_csv_logger(tmp_path):
    p = write_keras(tmp_path / "training.log")
    assert detect_format(p) == "keras_csv"
    h = read_log(p)
    assert h.columns == {"train": "loss", "val": "val_loss"} and h.train.step is None
    # Keras logs epoch 0 for its first epoch and shows it as "Epoch 1/N": findings count from 1
    f = check_overfitting(h, expect_epoch=BEST + 1)
    overfit = [x for x in f if x.kind == "overfitting"][0]
    assert overfit.epoch == BEST + 1 and "save_best_only=True" in overfit.message


def test_hf_trainer_state(tmp_path):
    p = write_hf(tmp_path / "trainer_state.json")
    assert detect_format(p) == "hf_trainer_state" and detect_format(tmp_path) == "hf_trainer_state"
    h = read_log(p)
    assert h.columns == {"train": "loss", "val": "eval_loss"}
    assert len(h.train) == EPOCHS * SPE // 5 and len(h.val) == EPOCHS  # the summary entry is skipped
    check_overfitting(h, expect_epoch=BEST + 1, expect_step=(BEST + 1) * SPE)


@pytest.mark.parametrize("as_tensor", [False, True], ids=["simple_value", "tensor"])
def test_tensorboard_single_run(tmp_path, as_tensor):
    d = write_tb_single(tmp_path / "tb", as_tensor)
    assert detect_format(d) == "tensorboard"
    h = read_log(d)
    assert h.format == "tensorboard" and h.columns == {"train": "train/loss", "val": "validation/loss"}
    assert h.train.epoch is not None  # from the 'epoch' tag
    check_overfitting(h, expect_epoch=BEST, expect_step=BEST * SPE + SPE - 1)
    event_file = next(d.glob("*tfevents*"))
    assert detect_format(event_file) == "tensorboard" and len(read_log(event_file).train) == EPOCHS * SPE


def test_tensorboard_keras_runs(tmp_path):
    d = write_tb_keras(tmp_path / "logs")
    h = read_log(d)
    assert h.columns == {"train": "train/epoch_loss", "val": "validation/epoch_loss"}
    check_overfitting(h, expect_step=BEST)  # Keras writes the epoch as the step


def test_explicit_columns(tmp_path):
    p = tmp_path / "log.csv"
    p.write_text("epoch,objective,holdout\n0,2.0,2.1\n1,1.5,1.7\n2,1.2,1.5\n3,1.0,1.6\n")
    with pytest.raises(LogError, match="no loss column"):
        read_log(p)
    q = tmp_path / "log2.csv"
    q.write_text("epoch,my_loss,holdout_loss\n0,2.0,2.1\n1,1.5,1.7\n2,1.2,1.5\n3,1.0,1.6\n")
    h = read_log(q, val="holdout_loss")
    assert h.columns == {"train": "my_loss", "val": "holdout_loss"}
    h = read_log(q, train="holdout_loss")
    assert h.columns["train"] == "holdout_loss"
    with pytest.raises(LogError, match="no validation loss column 'nope'"):
        read_log(q, val="nope")


def test_column_matching_prefers_known_names():
    from losskit.diagnostics.columns import pick_loss_columns

    assert pick_loss_columns(["epoch", "loss", "val_loss", "loss_scale"]) == ("loss", "val_loss")
    assert pick_loss_columns(["train_loss_epoch", "train_loss_step", "val_loss"]) == (
        "train_loss_step",
        "val_loss",
    )
    assert pick_loss_columns(["Loss/train", "Loss/validation", "test_loss"]) == (
        "Loss/train",
        "Loss/validation",
    )
    assert pick_loss_columns(["loss", "eval_loss"]) == ("loss", "eval_loss")
    assert pick_loss_columns(["train/loss"]) == ("train/loss", None)


# -- errors ------------------------------------------------------------------------------------


def test_errors_are_log_errors(tmp_path):
    with pytest.raises(LogError, match="no such file"):
        read_log(tmp_path / "missing.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(LogError, match="empty"):
        read_log(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("step,loss\n")
    with pytest.raises(LogError, match="no rows"):
        read_log(header_only)
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"\x00\x01\x02loss")
    with pytest.raises(LogError, match="unknown format|binary"):
        read_log(binary)
    other_json = tmp_path / "config.json"
    other_json.write_text('{"lr": 0.1}')
    with pytest.raises(LogError, match="log_history"):
        read_log(other_json)
    with pytest.raises(LogError, match="without a trainer_state.json"):
        read_log(tmp_path)
    with pytest.raises(LogError, match="unknown format"):
        read_log(header_only, format="parquet")
    hf_empty = tmp_path / "hf" / "trainer_state.json"
    hf_empty.parent.mkdir()
    hf_empty.write_text('{"log_history": []}')
    with pytest.raises(LogError, match="log_history is empty"):
        read_log(hf_empty)
    assert issubclass(LogError, ValueError)
    assert set(FORMATS) == {"csv", "lightning_csv", "keras_csv", "hf_trainer_state", "tensorboard"}
