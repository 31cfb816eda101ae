"""diagnose on logs written by the real frameworks (Lightning, torch.utils.tensorboard, the
Hugging Face Trainer, Keras 3), made by tools/make_diagnostics_logs.py and committed under
tests/diagnostics/data/real/ (see the README there)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from losskit.diagnostics import diagnose, read_log

REAL = Path(__file__).parent / "data" / "real"
K = 10
LIGHTNING = sorted(p.name for p in REAL.iterdir() if (p / "metrics.csv").is_file())


def findings(name, **kwargs):
    return diagnose(read_log(REAL / name), num_classes=K, **kwargs)


def kinds(fs):
    return [f.kind for f in fs]


def problems(fs):
    return [(f.kind, f.step, f.epoch) for f in fs if f.severity in ("error", "warning")]


def only(fs, kind):
    hits = [f for f in fs if f.kind == kind]
    assert hits, f"no {kind} finding in {kinds(fs)}"
    return hits


def test_every_finding_carries_the_loss_at_its_point():
    for p in sorted(REAL.iterdir()):
        if p.name == "README.md" or (p.suffix and p.suffix != ".csv"):
            continue
        if p.name == "tensorboard_overfit":
            pytest.importorskip("tensorboard")
        for f in diagnose(read_log(p), num_classes=K):
            assert f.value is not None and math.isfinite(f.value), (p.name, f)


def test_lightning_lr_spike_is_a_burst_at_its_start():
    # the learning rate is 50x for steps 300-304; the loss bursts from step 301 and takes tens
    # of steps to come back
    fs = findings("lightning_lr_spike")
    spikes = only(fs, "spike")
    assert len(spikes) == 1
    s = spikes[0]
    assert 300 <= s.step <= 303 and s.epoch == 4
    assert "burst" in s.message and "about 5 steps" in s.message and "peaking at 4.286" in s.message
    back = int(s.message.split("back near that level by step ")[1].split()[0])
    assert back - s.step >= 15  # a decaying tail, not a single point
    assert "lower the peak learning rate" in s.message and "clip gradients" in s.message
    assert s.value == pytest.approx(read_log(REAL / "lightning_lr_spike").train.value[302])
    # the validation loss rose after the burst and came back down: not overfitting
    assert problems(fs) == [("spike", s.step, s.epoch)]
    assert "healthy" not in kinds(fs)


def test_tensorboard_loss_test_is_the_held_out_curve():
    pytest.importorskip("tensorboard")
    h = read_log(REAL / "tensorboard_overfit")
    assert h.format == "tensorboard" and h.columns == {"train": "Loss/train", "val": "Loss/test"}
    fs = diagnose(h, num_classes=K)
    f = only(fs, "overfitting")[0]
    best = int(np.argmin(h.val.value))
    assert f.step == h.val.step[best] == 2
    assert "test loss (Loss/test, used as the held-out curve" in f.message
    assert f.value == pytest.approx(float(h.val.value[best]))
    assert "healthy" not in kinds(fs)


def test_still_falling_run_is_not_called_converged():
    fs = findings("lightning_still_falling")
    assert "converged" not in kinds(fs)
    f = only(fs, "improving")[0]
    assert f.severity == "info" and f.step == 383
    assert "still falling at the end" in f.message and "not converged" in f.message
    assert not problems(fs) and "healthy" in kinds(fs)
    # the loss did fall further: the last tenth is well below where "converged" was claimed
    y = read_log(REAL / "lightning_still_falling").train.value
    assert np.median(y[-38:]) < 0.85 * np.median(y[222:260])


def test_levelled_run_is_converged():
    fs = findings("lightning_levelled")
    f = only(fs, "converged")[0]
    assert "improving" not in kinds(fs) and not problems(fs)
    y = read_log(REAL / "lightning_levelled").train.value
    level = np.median(y[f.step :])
    assert f.value == pytest.approx(level) and abs(np.median(y[-128:]) / level - 1) < 0.05
    assert f.epoch == 14


def test_early_blowup_is_divergence_with_the_right_advice():
    fs = findings("lightning_early_blowup")
    assert problems(fs) == [("divergence", 5, 0)]
    f = fs[0]
    assert f.kind == "divergence" and f.severity == "error"
    assert "blew up early" in f.message and "17x the baseline" in f.message
    assert "lower it, add a warm-up, and clip gradients" in f.message
    for g in fs:
        assert "try a larger learning rate" not in g.message.lower()
    assert not {"spike", "plateau", "underfitting"} & set(kinds(fs))


def test_hf_trainer_zeros_after_a_nan_batch_are_a_nan_finding():
    h = read_log(REAL / "hf_nan_batch")
    assert h.format == "hf_trainer_state"
    first_zero = int(np.flatnonzero(h.train.value == 0.0)[0])
    fs = diagnose(h, num_classes=K)
    f = fs[0]
    assert f.kind == "nan" and f.severity == "error"
    assert f.step == h.train.step[first_zero] == 65 and f.value == 0.0
    assert "logging_nan_inf_filter" in f.message and "logged as exactly 0" in f.message
    assert [g.kind for g in fs if g.kind == "nan"] == ["nan"]
    assert not any(g.kind == "converged" and g.value == 0.0 for g in fs)
    assert "spike" not in kinds(fs)


def test_keras_overfitting_epochs_count_from_one_with_keras_advice():
    h = read_log(REAL / "keras_overfit.csv")
    assert h.format == "keras_csv"
    fs = diagnose(h, num_classes=K)
    f = only(fs, "overfitting")[0]
    best = int(np.argmin(h.val.value))  # 0-based in the CSV, as Keras writes it
    assert f.epoch == best + 1 == 2 and f.step is None
    assert "epoch 2" in f.message and "save_best_only=True" in f.message
    assert only(fs, "init_ok")[0].epoch == 1


def test_lightning_overfitting_advice_names_model_checkpoint(tmp_path):
    # the TensorBoard run's curves written as Lightning writes them (train and val on their
    # own rows): the advice is Lightning's
    rows = ["epoch,step,train_loss,val_loss"]
    keras = read_log(REAL / "keras_overfit.csv")
    for e, (t, v) in enumerate(zip(keras.train.value, keras.val.value)):
        rows += [f"{e},{10 * e + 9},{t},", f"{e},{10 * e + 9},,{v}"]
    (tmp_path / "metrics.csv").write_text("\n".join(rows) + "\n")
    h = read_log(tmp_path)
    assert h.format == "lightning_csv"
    f = only(diagnose(h, num_classes=K), "overfitting")[0]
    assert f.epoch == 1 and 'ModelCheckpoint(monitor="val_loss"' in f.message


def test_hf_overfitting_advice_names_load_best_model_at_end(tmp_path):
    import json

    keras = read_log(REAL / "keras_overfit.csv")
    log = []
    for e, (t, v) in enumerate(zip(keras.train.value, keras.val.value)):
        log += [{"loss": float(t), "epoch": e + 1, "step": 10 * (e + 1)}]
        log += [{"eval_loss": float(v), "epoch": e + 1, "step": 10 * (e + 1)}]
    (tmp_path / "trainer_state.json").write_text(json.dumps({"log_history": log}))
    f = only(diagnose(read_log(tmp_path), num_classes=K), "overfitting")[0]
    assert "load_best_model_at_end=True" in f.message and 'metric_for_best_model="eval_loss"' in f.message


@pytest.mark.parametrize("name", ["lightning_warmup_decay", "lightning_small_batch", "lightning_step_decay"])
def test_healthy_noisy_runs_have_no_warnings(name):
    fs = findings(name)
    assert not problems(fs), [f.message for f in fs]
    assert "healthy" in kinds(fs)


@pytest.mark.parametrize("name", LIGHTNING)
def test_lightning_csv_through_pandas_gives_the_same_findings(name):
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(REAL / name / "metrics.csv")
    assert frame["train_loss"].isna().any()  # train and validation on different rows
    direct = findings(name)
    through = diagnose(frame, num_classes=K)
    assert [f.to_dict() for f in through] == [f.to_dict() for f in direct]
    assert "nan" not in kinds(through)


def test_lightning_columns_as_a_mapping_with_nan_holes():
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(REAL / "lightning_lr_spike" / "metrics.csv")
    columns = {c: frame[c].tolist() for c in frame.columns}
    assert [f.to_dict() for f in diagnose(columns, num_classes=K)] == [
        f.to_dict() for f in findings("lightning_lr_spike")
    ]


def test_pandas_nullable_columns_read_like_the_csv():
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(REAL / "lightning_lr_spike" / "metrics.csv", dtype_backend="numpy_nullable")
    assert [f.to_dict() for f in diagnose(frame, num_classes=K)] == [
        f.to_dict() for f in findings("lightning_lr_spike")
    ]
