"""Live loss diagnostics in a Lightning ``Trainer``: :class:`LossDiagnostics`.

::

    trainer = lightning.Trainer(callbacks=[LossDiagnostics(num_classes=10, stop_on=("nan", "divergence"))])

Needs Lightning 2 (``pip install 'losskit[lightning]'``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

try:
    from lightning.pytorch import Callback
    from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn
except ImportError as exc:  # pragma: no cover - the tests run with Lightning installed
    raise ImportError(
        "losskit.callbacks.lightning needs Lightning 2 (the `lightning` package): "
        "pip install 'losskit[lightning]'"
    ) from exc

from ..diagnostics import Finding
from ._tracker import LossDiagnosticsWarning, Reporter, TrackerCallback, format_finding, pick, scalar

__all__ = ["LossDiagnostics"]

log = logging.getLogger(__name__)


class LossDiagnostics(TrackerCallback, Callback):
    """A Lightning callback that diagnoses the loss curves while training runs.

    It reads the losses the ``LightningModule`` logs (``self.log("train_loss", loss)``,
    ``self.log("val_loss", loss)``) from ``trainer.callback_metrics``, at ``trainer.global_step``
    and ``trainer.current_epoch``:

    - the train loss after every batch: the first of ``train_key`` logged on step (also as
      ``<key>_step``); when none is logged on step at the first batch, the loss
      ``training_step`` returns; when it returns none (manual optimisation), the train loss
      logged per epoch, at the end of each epoch;
    - the validation loss at the end of each validation (the sanity check is skipped).

    At the end of each validation and each train epoch (and every ``every_n`` batches, and at
    once on a NaN) it re-runs :func:`losskit.diagnostics.diagnose`; each new finding is reported
    once (see :mod:`losskit.callbacks._tracker` for when a finding counts as new): warnings and
    errors as a :class:`~losskit.callbacks.LossDiagnosticsWarning` through Lightning's
    ``rank_zero_warn``, info findings (with ``report_info=True``) through ``rank_zero_info``.
    All reported findings are kept in :attr:`findings`.  At the end of training a final check
    also reports ``underfitting`` (and ``converged``/``healthy`` with ``report_info=True``).

    Args:
      num_classes, task, baseline: the baseline the losses are judged against (see
        :func:`losskit.diagnostics.diagnose`).
      stop_on: finding kinds that stop training (``trainer.should_stop = True``), e.g.
        ``("nan", "divergence")``.
      train_key, val_key: the logged metric names to read, first found wins.
      every_n: also diagnose every ``every_n`` train batches, for long epochs (``None``: at
        the end of each validation and epoch only).
      report_info: also report the info findings (``init_ok``, ``converged``, ``healthy``).
      min_points: the checks during training wait for this many train losses (a few noisy
        points say little about a curve); a NaN and the final check do not wait.
      on_finding: called with each new :class:`~losskit.diagnostics.Finding` as well.
      verbose: ``False`` reports nothing (the findings are still collected).

    In distributed training each process diagnoses its own logged losses (log them with
    ``sync_dist=True`` to agree), only rank zero reports, and a stop is agreed between the
    processes at the end of a validation or epoch.
    """

    def __init__(
        self,
        num_classes: int | None = None,
        task: str | None = None,
        baseline: float | None = None,
        stop_on: str | Iterable[str] = (),
        train_key: str | Iterable[str] = ("train_loss", "loss", "train/loss"),
        val_key: str | Iterable[str] = ("val_loss", "valid_loss", "validation_loss", "val/loss"),
        every_n: int | None = 50,
        report_info: bool = False,
        min_points: int = 20,
        on_finding: Reporter | None = None,
        verbose: bool = True,
    ) -> None:
        super().__init__()
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
        self._seen: dict[str, Any] = {}  # the metric objects already read, by key (stale values)
        self._epoch_points = 0  # train points recorded in the current epoch
        self._source: str | None = None  # where the train loss comes from: metric, returned, epoch

    # -- reading the logged metrics -------------------------------------------------------------

    def _fresh(self, metrics: Any, keys: Iterable[str]) -> float | None:
        """The first of ``keys`` whose value was logged since it was last read."""
        for key in keys:
            v = metrics.get(key) if metrics else None
            if v is None:
                continue
            if self._seen.get(key) is v:
                return None  # logged before, not since: a stale value
            self._seen[key] = v
            return scalar(v)
        return None

    @staticmethod
    def _returned_loss(outputs: Any) -> float | None:
        if isinstance(outputs, dict):
            outputs = outputs.get("loss")
        return None if outputs is None else scalar(outputs)

    def _stop(self, trainer: Any, *, agreed: bool) -> None:
        if not self.tracker.stop_on:
            return
        should = self.tracker.should_stop
        if trainer.world_size > 1:
            if not agreed:
                return  # a stop is agreed at the end of a validation or epoch, on every process
            should = bool(trainer.strategy.reduce_boolean_decision(should, all=False))
        if should and not trainer.should_stop:
            trainer.should_stop = True
            reason = (
                self.tracker.stop_message() or "losskit: stopping training (another process found a problem)"
            )
            if self.verbose:
                rank_zero_info(reason)

    def _emit(self, finding: Finding) -> None:
        text = format_finding(finding)
        if finding.severity == "info":
            rank_zero_info(text)
        else:
            rank_zero_warn(text, category=LossDiagnosticsWarning)

    # -- hooks ----------------------------------------------------------------------------------

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._epoch_points = 0

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._source is None:  # decided at the first batch, for the whole run
            step_keys = [f"{k}_step" for k in self.train_keys] + list(self.train_keys)
            if pick(trainer.callback_metrics, tuple(step_keys)) is not None:
                self._source = "metric"
            elif self._returned_loss(outputs) is not None:
                self._source = "returned"
            else:
                self._source = "epoch"
        if self._source == "metric":
            value = self._fresh(
                trainer.callback_metrics, [f"{k}_step" for k in self.train_keys] + list(self.train_keys)
            )
        elif self._source == "returned":
            value = self._returned_loss(outputs)
        else:
            return
        if value is None:
            return
        self.tracker.add_train(value, step=trainer.global_step, epoch=trainer.current_epoch)
        self._epoch_points += 1
        self._report(self.tracker.step_check())
        self._stop(trainer, agreed=False)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        value = self._fresh(
            trainer.callback_metrics, list(self.val_keys) + [f"{k}_epoch" for k in self.val_keys]
        )
        if value is not None:
            self.tracker.add_val(value, step=trainer.global_step, epoch=trainer.current_epoch)
        self._report(self.tracker.epoch_check())
        self._stop(trainer, agreed=True)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self._epoch_points == 0:  # the train loss is logged per epoch only
            keys = [f"{k}_epoch" for k in self.train_keys] + list(self.train_keys)
            value = self._fresh(trainer.callback_metrics, keys)
            if value is not None:
                self.tracker.add_train(value, step=trainer.global_step, epoch=trainer.current_epoch)
        self._report(self.tracker.epoch_check())
        self._stop(trainer, agreed=True)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._report(self.tracker.finish())
