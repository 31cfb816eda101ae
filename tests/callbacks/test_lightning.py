"""A real Lightning training run with the callback: healthy, diverging, stopped."""

from __future__ import annotations

import logging
import warnings

import pytest

pytest.importorskip("lightning", reason="Lightning is not installed (pip install 'losskit[lightning]')")
torch = pytest.importorskip("torch")

import lightning.pytorch as pl  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from losskit.callbacks import LossDiagnosticsWarning  # noqa: E402
from losskit.callbacks.lightning import LossDiagnostics  # noqa: E402

from .torch_data import BATCH, DIM, lr_factor, regression  # noqa: E402

EPOCHS = 12
STEPS_PER_EPOCH = 4


class Regression(pl.LightningModule):
    def __init__(self, diverge_from: int | None = None, log_as: str = "step"):
        super().__init__()
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(DIM, 1, bias=False)
        self.diverge_from = diverge_from
        self.log_as = log_as

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        if self.log_as == "step":
            self.log("train_loss", loss)
        elif self.log_as == "epoch":
            self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.1)
        return {
            "optimizer": opt,
            "lr_scheduler": torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(self.diverge_from)),
        }


def fit(callback, **module_options):
    x, y = regression(STEPS_PER_EPOCH + 1)  # the last batch for validation
    train = DataLoader(TensorDataset(x[:-BATCH], y[:-BATCH]), batch_size=BATCH, shuffle=False)
    val = DataLoader(TensorDataset(x[-BATCH:], y[-BATCH:]), batch_size=BATCH)
    trainer = pl.Trainer(
        max_epochs=EPOCHS,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LossDiagnosticsWarning)
        trainer.fit(Regression(**module_options), train, val)
    reported = [w for w in caught if issubclass(w.category, LossDiagnosticsWarning)]
    return trainer, reported


@pytest.fixture(autouse=True)
def quiet_lightning():
    logger = logging.getLogger("lightning.pytorch")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


def test_a_healthy_run_reports_nothing():
    callback = LossDiagnostics()
    trainer, reported = fit(callback)
    assert trainer.current_epoch == EPOCHS
    assert callback.findings == [] and reported == []
    assert callback.tracker.num_train == EPOCHS * STEPS_PER_EPOCH
    assert callback.tracker.num_val == EPOCHS
    assert {f.severity for f in callback.diagnosis} == {"info"}


def test_a_divergence_is_reported_once_and_training_runs_to_the_end():
    callback = LossDiagnostics()
    trainer, reported = fit(callback, diverge_from=5)
    assert trainer.global_step == EPOCHS * STEPS_PER_EPOCH
    kinds = [f.kind for f in callback.findings]
    assert kinds.count("divergence") == 1, kinds
    assert len(kinds) == len(set(kinds)) and "nan" not in kinds
    [divergence] = [f for f in callback.findings if f.kind == "divergence"]
    assert divergence.epoch >= 4 and divergence.step >= 4 * STEPS_PER_EPOCH  # real steps and epochs
    messages = [str(w.message) for w in reported]
    assert sum("divergence" in m for m in messages) == 1, messages


def test_stop_on_divergence_stops_training_early():
    callback = LossDiagnostics(stop_on=("divergence", "nan"))
    trainer, _ = fit(callback, diverge_from=5)
    assert callback.stop_reason is not None and callback.stop_reason.kind == "divergence"
    assert trainer.global_step < EPOCHS * STEPS_PER_EPOCH
    assert trainer.current_epoch < EPOCHS - 1


def test_the_returned_loss_and_the_epoch_loss_are_read_when_nothing_is_logged_on_step():
    returned = LossDiagnostics()
    fit(returned, log_as="none")
    assert returned.tracker.num_train == EPOCHS * STEPS_PER_EPOCH
    per_epoch = LossDiagnostics(every_n=1)
    fit(per_epoch, log_as="epoch")
    # the returned loss is read per step; the stale epoch value is never read again
    assert per_epoch.tracker.num_train == EPOCHS * STEPS_PER_EPOCH


def test_report_info_reports_the_healthy_run_once(caplog):
    callback = LossDiagnostics(report_info=True, task="regression")
    logging.getLogger("lightning.pytorch").setLevel(logging.INFO)
    with caplog.at_level(logging.INFO):
        fit(callback)
    kinds = [f.kind for f in callback.findings]
    assert kinds.count("healthy") == 1 and {f.severity for f in callback.findings} == {"info"}
    assert sum("losskit: healthy (info)" in r.getMessage() for r in caplog.records) == 1
