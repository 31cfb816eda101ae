"""Live loss diagnostics inside the trainers people use.

Each framework has its own module, which imports the framework when it is imported (and only
then; ``import losskit.callbacks`` loads none of them):

- :class:`losskit.callbacks.lightning.LossDiagnostics`: a Lightning ``Callback``
  (``pip install 'losskit[lightning]'``);
- :class:`losskit.callbacks.huggingface.LossDiagnostics`: a Hugging Face ``TrainerCallback``
  (``pip install 'losskit[transformers]'``);
- :class:`losskit.callbacks.keras.LossDiagnostics`: a Keras 3 ``Callback``
  (``pip install 'losskit[keras]'``).

Each collects the logged train and validation loss, re-runs :func:`losskit.diagnostics.diagnose`
at the end of each epoch or validation (and every ``every_n`` logged losses, and at once on a
NaN), reports every new finding once, keeps them in ``callback.findings``, and can stop
training when a finding of a chosen kind appears (``stop_on=("nan", "divergence")``).
:class:`LossTracker` is the framework-free part, for a training loop of your own.

A finding is reported once:

- a finding about the state of the run (``divergence``, ``plateau``, ``overfitting``,
  ``bad_init``, ``nan``, ...) is keyed on its kind: it is reported when it first appears and not
  again while the following diagnoses still find it, even as its start moves with new data; a
  diagnosis that no longer finds it resolves it, and if it comes back it is reported again;
- a ``spike`` is keyed on its kind and position: each spike is reported once;
- ``underfitting``, ``converged`` and ``healthy`` judge a finished run and are reported by the
  final check at the end of training only; info findings (``init_ok``, ``converged``,
  ``healthy``) only with ``report_info=True``.
"""

from __future__ import annotations

from ._tracker import END_KINDS, LossDiagnosticsWarning, LossTracker, format_finding

__all__ = ["LossTracker", "LossDiagnosticsWarning", "END_KINDS", "format_finding"]
