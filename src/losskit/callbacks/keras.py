"""Live loss diagnostics in Keras 3's ``model.fit``: :class:`LossDiagnostics`.

::

    model.fit(x, y, validation_split=0.1, epochs=50, callbacks=[LossDiagnostics(num_classes=10)])

Needs Keras 3 on any backend (``pip install 'losskit[keras]'``; set ``KERAS_BACKEND`` before
Keras is imported).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

try:
    import keras
except ImportError as exc:  # pragma: no cover - the tests run with Keras installed
    raise ImportError("losskit.callbacks.keras needs Keras 3: pip install 'losskit[keras]'") from exc

from ..diagnostics import Finding
from ._tracker import Reporter, TrackerCallback, format_finding, pick, scalar

__all__ = ["LossDiagnostics"]

log = logging.getLogger(__name__)
_LEVELS = {"error": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO}


class LossDiagnostics(TrackerCallback, keras.callbacks.Callback):
    """A Keras callback that diagnoses the loss curves while ``model.fit`` runs.

    ``on_epoch_end`` reads ``logs["loss"]`` and ``logs["val_loss"]`` at the epoch, counted from
    1 as Keras's progress bar shows it, and re-runs :func:`losskit.diagnostics.diagnose`; each
    new finding is reported once (see :mod:`losskit.callbacks._tracker` for when a finding
    counts as new): printed like Keras's own messages (through Python ``logging`` when Keras's
    interactive logging is off), and kept in :attr:`findings`.  The end of training brings a
    final check, which also reports ``underfitting`` (and ``converged``/``healthy`` with
    ``report_info=True``).

    With ``per_batch=True`` the train loss is read after every batch instead, at the step
    counted from 1 over the whole run: Keras logs the running mean of the epoch so far, from
    which the loss of the batches since the last one is recovered (exact for batches of equal
    size); every ``every_n`` batches and at a NaN it diagnoses too.

    Args:
      num_classes, task, baseline: the baseline the losses are judged against (see
        :func:`losskit.diagnostics.diagnose`).
      stop_on: finding kinds that stop training (``model.stop_training = True``), e.g.
        ``("nan", "divergence")``.
      train_key, val_key: the logged names to read, first found wins.
      every_n: with ``per_batch=True``, also diagnose every ``every_n`` batches.
      per_batch: read the train loss per batch rather than per epoch.
      report_info: also report the info findings (``init_ok``, ``converged``, ``healthy``).
      min_points: the checks during training wait for this many train losses; a NaN and the
        final check do not wait.
      on_finding: called with each new :class:`~losskit.diagnostics.Finding` as well.
      verbose: ``False`` reports nothing (the findings are still collected).
    """

    def __init__(
        self,
        num_classes: int | None = None,
        task: str | None = None,
        baseline: float | None = None,
        stop_on: str | Iterable[str] = (),
        train_key: str | Iterable[str] = ("loss",),
        val_key: str | Iterable[str] = ("val_loss",),
        every_n: int | None = 50,
        per_batch: bool = False,
        report_info: bool = False,
        min_points: int | None = None,
        on_finding: Reporter | None = None,
        verbose: bool = True,
    ) -> None:
        super().__init__()
        self.per_batch = bool(per_batch)
        self._setup_tracker(
            num_classes=num_classes,
            task=task,
            baseline=baseline,
            stop_on=stop_on,
            train_key=train_key,
            val_key=val_key,
            every_n=every_n if self.per_batch else None,
            report_info=report_info,
            # an epoch's loss is a mean over many batches: a few epochs already make a curve
            min_points=min_points if min_points is not None else (20 if self.per_batch else 5),
            on_finding=on_finding,
            verbose=verbose,
        )
        self._epoch = 0  # the epoch running, from 0 as Keras passes it
        self._step = 0  # batches trained, over the whole run
        self._epoch_start = 0  # the step at the start of this epoch
        self._last: tuple[int, float] = (0, 0.0)  # (batches into the epoch, running mean) last read

    def _emit(self, finding: Finding) -> None:
        self._say(format_finding(finding), _LEVELS[finding.severity])

    @staticmethod
    def _say(text: str, level: int) -> None:
        if keras.config.is_interactive_logging_enabled():
            print(text, flush=True)
        else:
            log.log(level, text)

    def _stop(self) -> None:
        if self.tracker.should_stop and not self.model.stop_training:
            self.model.stop_training = True
            if self.verbose:
                self._say(self.tracker.stop_message(), logging.WARNING)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch
        self._epoch_start = self._step
        self._last = (0, 0.0)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        done = batch + 1  # batches into the epoch (several per call with steps_per_execution)
        self._step = self._epoch_start + done
        if not self.per_batch:
            return
        found = pick(logs, self.train_keys)
        mean = None if found is None else scalar(found[1])
        if mean is None:
            return
        before, mean_before = self._last
        self._last = (done, mean)
        if done <= before:
            return
        # the running mean of the epoch so far -> the mean of the batches since the last call
        value = (done * mean - before * mean_before) / (done - before)
        self.tracker.add_train(value, step=self._step, epoch=self._epoch + 1)
        self._report(self.tracker.step_check())
        self._stop()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        step = self._step if self.per_batch else None
        if not self.per_batch:
            found = pick(logs, self.train_keys)
            value = None if found is None else scalar(found[1])
            if value is not None:
                self.tracker.add_train(value, step=None, epoch=epoch + 1)
        found = pick(logs, self.val_keys)
        value = None if found is None else scalar(found[1])
        if value is not None:
            self.tracker.add_val(value, step=step, epoch=epoch + 1)
        self._report(self.tracker.epoch_check())
        self._stop()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._report(self.tracker.finish())
