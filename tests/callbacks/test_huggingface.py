"""A real Hugging Face Trainer run with the callback: healthy, diverging, stopped."""

from __future__ import annotations

import logging

import pytest

pytest.importorskip(
    "transformers", reason="transformers is not installed (pip install 'losskit[transformers]')"
)
pytest.importorskip("accelerate", reason="accelerate is not installed (pip install 'losskit[transformers]')")
torch = pytest.importorskip("torch")

import transformers  # noqa: E402

from losskit.callbacks.huggingface import LossDiagnostics  # noqa: E402

from .torch_data import BATCH, DIM, lr_factor, regression  # noqa: E402

EPOCHS = 12
STEPS_PER_EPOCH = 4
LOGGER = "losskit.callbacks.huggingface"


class Regression(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(DIM, 1, bias=False)

    def forward(self, x, labels=None):
        out = self.layer(x)
        return {"loss": torch.nn.functional.mse_loss(out, labels), "logits": out}


class Rows(torch.utils.data.Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "labels": self.y[i]}


def fit(callback, tmp_path, *, diverge_from=None, nan_at=None):
    x, y = regression(STEPS_PER_EPOCH + 1)  # the last batch for evaluation
    if nan_at is not None:
        x = x.clone()
        x[nan_at * BATCH] = float("nan")  # one poisoned row: that step's loss is NaN
    model = Regression()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    # the scheduler steps once per optimizer step: diverge_from counts steps
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(diverge_from))
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        report_to=[],
        logging_steps=1,
        use_cpu=True,
        save_strategy="no",
        eval_strategy="epoch",
        num_train_epochs=EPOCHS,
        per_device_train_batch_size=BATCH,
        per_device_eval_batch_size=BATCH,
        disable_tqdm=True,
        logging_nan_inf_filter=False,
        max_grad_norm=0.0,  # no clipping: the learning rate alone decides
        dataloader_num_workers=0,
    )
    trainer = transformers.Trainer(
        model=model,
        args=args,
        train_dataset=Rows(x[:-BATCH], y[:-BATCH]),
        eval_dataset=Rows(x[-BATCH:], y[-BATCH:]),
        optimizers=(opt, sched),
        callbacks=[callback],
    )
    trainer.train()
    return trainer


@pytest.fixture
def records(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    return caplog


def reported(caplog):
    return [
        r.getMessage() for r in caplog.records if r.name == LOGGER and r.getMessage().startswith("losskit: ")
    ]


def test_a_healthy_run_reports_nothing(tmp_path, records):
    callback = LossDiagnostics()
    trainer = fit(callback, tmp_path)
    assert trainer.state.global_step == EPOCHS * STEPS_PER_EPOCH
    assert callback.findings == [] and reported(records) == []
    assert callback.tracker.num_train == EPOCHS * STEPS_PER_EPOCH
    assert callback.tracker.num_val == EPOCHS
    assert {f.severity for f in callback.diagnosis} == {"info"}


def test_a_divergence_is_reported_once_and_training_runs_to_the_end(tmp_path, records):
    callback = LossDiagnostics()
    trainer = fit(callback, tmp_path, diverge_from=20)
    assert trainer.state.global_step == EPOCHS * STEPS_PER_EPOCH
    kinds = [f.kind for f in callback.findings]
    assert kinds.count("divergence") == 1, kinds
    assert len(kinds) == len(set(kinds))
    [divergence] = [f for f in callback.findings if f.kind == "divergence"]
    assert divergence.step > 20 and 5 <= divergence.epoch < EPOCHS  # the Trainer's step, its fractional epoch
    messages = reported(records)
    assert sum(m.startswith("losskit: divergence") for m in messages) == 1, messages


def test_stop_on_divergence_stops_training_early(tmp_path, records):
    callback = LossDiagnostics(stop_on=("divergence", "nan"))
    trainer = fit(callback, tmp_path, diverge_from=20)
    assert callback.stop_reason is not None and callback.stop_reason.kind == "divergence"
    assert trainer.state.global_step < EPOCHS * STEPS_PER_EPOCH
    assert any("stopping training" in m for m in (r.getMessage() for r in records.records))


def test_a_nan_stops_training_at_once(tmp_path):
    callback = LossDiagnostics(stop_on="nan", every_n=None)
    trainer = fit(callback, tmp_path, nan_at=2)
    [nan] = callback.findings
    assert nan.kind == "nan" and nan.step < EPOCHS * STEPS_PER_EPOCH
    assert trainer.state.global_step == nan.step  # stopped after the step whose loss was NaN
