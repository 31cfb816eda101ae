"""A real Keras 3 ``model.fit`` with the callback: healthy, diverging, stopped, per batch."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")  # before Keras is imported (any backend works)
keras = pytest.importorskip("keras", reason="Keras 3 is not installed (pip install 'losskit[keras]')")

from losskit.callbacks.keras import LossDiagnostics  # noqa: E402

EPOCHS = 20
BATCH = 16
STEPS_PER_EPOCH = 4
DIM = 4


def regression(n_batches, noise=0.05, seed=0):
    """Every batch has X^T X / b = I: SGD at rate r scales the error by (1 - 2r) per step."""
    rng = np.random.default_rng(seed)
    blocks = [np.linalg.qr(rng.normal(size=(BATCH, DIM)))[0] * BATCH**0.5 for _ in range(n_batches)]
    x = np.concatenate(blocks).astype("float32")
    w = 2.0 * rng.normal(size=(DIM, 1))
    return x, (x @ w + noise * rng.normal(size=(len(x), 1))).astype("float32")


def fit(callback, *, diverge_from=None, lr=0.1, nan=False, epochs=EPOCHS):
    keras.utils.set_random_seed(0)
    x, y = regression(STEPS_PER_EPOCH + 1)  # the last batch for validation
    if nan:
        x[3] = np.nan
    model = keras.Sequential([keras.Input((DIM,)), keras.layers.Dense(1, use_bias=False)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss="mse")
    schedule = keras.callbacks.LearningRateScheduler(
        lambda epoch, rate: 11 * lr if diverge_from is not None and epoch >= diverge_from else lr
    )
    history = model.fit(
        x[:-BATCH],
        y[:-BATCH],
        validation_data=(x[-BATCH:], y[-BATCH:]),
        batch_size=BATCH,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=[schedule, callback],
    )
    return model, history, (x[:-BATCH], y[:-BATCH])


def printed(capsys):
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith("losskit: ")]


def test_a_healthy_run_reports_nothing(capsys):
    callback = LossDiagnostics()
    _, history, _ = fit(callback)
    assert len(history.history["loss"]) == EPOCHS
    assert callback.findings == [] and printed(capsys) == []
    assert callback.tracker.num_train == EPOCHS and callback.tracker.num_val == EPOCHS
    assert {f.severity for f in callback.diagnosis} == {"info"}


def test_a_divergence_is_reported_once_at_a_1_based_epoch(capsys):
    callback = LossDiagnostics()
    _, history, _ = fit(callback, diverge_from=8)
    assert len(history.history["loss"]) == EPOCHS  # no stop_on: runs to the end
    kinds = [f.kind for f in callback.findings]
    assert kinds.count("divergence") == 1 and len(kinds) == len(set(kinds)), kinds
    [divergence] = [f for f in callback.findings if f.kind == "divergence"]
    assert divergence.step is None and 9 <= divergence.epoch <= EPOCHS  # the 9th epoch is the first fast one
    assert f"epoch {divergence.epoch}" in divergence.message
    assert sum(line.startswith("losskit: divergence") for line in printed(capsys)) == 1


def test_stop_on_divergence_stops_training_early(capsys):
    callback = LossDiagnostics(stop_on=("divergence", "nan"))
    _, history, _ = fit(callback, diverge_from=8)
    assert callback.stop_reason is not None and callback.stop_reason.kind == "divergence"
    assert len(history.history["loss"]) < EPOCHS
    assert any("stopping training" in line for line in printed(capsys))


def test_a_nan_stops_training_after_its_epoch():
    callback = LossDiagnostics(stop_on="nan", verbose=False)
    _, history, _ = fit(callback, nan=True)
    assert [f.kind for f in callback.findings] == ["nan"]
    assert callback.findings[0].epoch == 1 and len(history.history["loss"]) == 1


def test_per_batch_recovers_each_batch_loss_from_the_running_mean():
    callback = LossDiagnostics(per_batch=True, verbose=False)
    model, _, (x, y) = fit(callback, lr=0.0, epochs=2)  # the weights stay put
    series = callback.tracker.history().train
    w = model.layers[0].get_weights()[0]
    batches = range(0, len(x), BATCH)
    expected = [float(np.mean((x[i : i + BATCH] @ w - y[i : i + BATCH]) ** 2)) for i in batches]
    np.testing.assert_allclose(series.value, expected * 2, rtol=1e-4)
    assert list(series.step) == list(range(1, 2 * STEPS_PER_EPOCH + 1))
    assert list(series.epoch) == [1] * STEPS_PER_EPOCH + [2] * STEPS_PER_EPOCH
