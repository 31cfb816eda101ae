"""Live loss diagnostics in a Hugging Face ``Trainer``: :class:`LossDiagnostics`.

::

    trainer = transformers.Trainer(..., callbacks=[LossDiagnostics(num_classes=32000, task="sequence")])

Needs transformers (``pip install 'losskit[transformers]'``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

try:
    from transformers import TrainerCallback
    from transformers.utils import logging as hf_logging
except ImportError as exc:  # pragma: no cover - the tests run with transformers installed
    raise ImportError(
        "losskit.callbacks.huggingface needs Hugging Face transformers: pip install 'losskit[transformers]'"
    ) from exc

from ..diagnostics import Finding
from ._tracker import Reporter, TrackerCallback, format_finding, pick, scalar

__all__ = ["LossDiagnostics"]

logger = hf_logging.get_logger(__name__)


class LossDiagnostics(TrackerCallback, TrainerCallback):
    """A Hugging Face ``TrainerCallback`` that diagnoses the loss curves while training runs.

    ``on_log`` reads the train loss (``logs["loss"]``, logged every ``logging_steps``) and the
    evaluation loss (``logs["eval_loss"]``) at ``state.global_step`` and ``state.epoch`` (a
    fraction of an epoch, as the Trainer counts).  It re-runs
    :func:`losskit.diagnostics.diagnose` after each evaluation, at the end of each epoch, every
    ``every_n`` logged train losses, and at once on a NaN; each new finding is reported once
    (see :mod:`losskit.callbacks._tracker` for when a finding counts as new) through the
    ``transformers`` logging (errors with ``logger.error``, warnings with ``logger.warning``,
    info findings with ``logger.info``, shown at the ``info`` verbosity), and kept in
    :attr:`findings`.  The end of training brings a final check, which also reports
    ``underfitting`` (and ``converged``/``healthy`` with ``report_info=True``).

    The Trainer replaces a NaN or infinite loss by the mean of the finite ones before logging
    it, unless ``TrainingArguments(logging_nan_inf_filter=False)``: set that for ``"nan"`` to be
    seen.

    Args:
      num_classes, task, baseline: the baseline the losses are judged against (see
        :func:`losskit.diagnostics.diagnose`); for a language model, ``num_classes`` is the
        vocabulary size and ``task="sequence"``.
      stop_on: finding kinds that stop training (``control.should_training_stop = True``),
        e.g. ``("nan", "divergence")``.
      train_key, val_key: the logged names to read, first found wins.
      every_n: also diagnose every ``every_n`` logged train losses (``None``: after each
        evaluation and epoch only).
      report_info: also report the info findings (``init_ok``, ``converged``, ``healthy``).
      min_points: the checks during training wait for this many train losses (a few noisy
        points say little about a curve); a NaN and the final check do not wait.
      on_finding: called with each new :class:`~losskit.diagnostics.Finding` as well.
      verbose: ``False`` reports nothing (the findings are still collected).

    Each process of a distributed run diagnoses the losses it logs (the Trainer logs on the
    main process).
    """

    def __init__(
        self,
        num_classes: int | None = None,
        task: str | None = None,
        baseline: float | None = None,
        stop_on: str | Iterable[str] = (),
        train_key: str | Iterable[str] = ("loss",),
        val_key: str | Iterable[str] = ("eval_loss", "eval_val_loss", "eval_validation_loss"),
        every_n: int | None = 50,
        report_info: bool = False,
        min_points: int = 20,
        on_finding: Reporter | None = None,
        verbose: bool = True,
    ) -> None:
        self._setup_tracker(
            num_classes=num_classes,
            task=task,
            baseline=baseline,
            stop_on=stop_on,
            train_key=train_key,
            val_key=val_key,
            every_n=every_n,
            report_info=report_info,
            min_points=min_points,
            on_finding=on_finding,
            verbose=verbose,
        )

    def _emit(self, finding: Finding) -> None:
        text = format_finding(finding)
        if finding.severity == "error":
            logger.error(text)
        elif finding.severity == "warning":
            logger.warning(text)
        else:
            logger.info(text)

    def _after(self, new: list[Finding], control: Any) -> Any:
        if self._report(new) and not control.should_training_stop:
            control.should_training_stop = True
            if self.verbose:
                logger.warning(self.tracker.stop_message())
        return control

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> Any:
        new: list[Finding] = []
        train = pick(logs, self.train_keys)
        if train is not None and (value := scalar(train[1])) is not None:
            self.tracker.add_train(value, step=state.global_step, epoch=state.epoch)
            new += self.tracker.step_check()
        val = pick(logs, self.val_keys)
        if val is not None and (value := scalar(val[1])) is not None:
            self.tracker.add_val(value, step=state.global_step, epoch=state.epoch)
            new += self.tracker.epoch_check()
        return self._after(new, control)

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        return self._after(self.tracker.epoch_check(), control)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        self._report(self.tracker.finish())
        return control
