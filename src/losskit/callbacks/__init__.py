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
at the end of each epoch or validation, reports every new finding once (the rule is in
:mod:`losskit.callbacks._tracker`), keeps them in ``callback.findings``, and can stop training
when a finding of a chosen kind appears (``stop_on=("nan", "divergence")``).
:class:`LossTracker` is the framework-free part, for a training loop of your own.
"""

from __future__ import annotations

from ._tracker import END_KINDS, LossDiagnosticsWarning, LossTracker, format_finding

__all__ = ["LossTracker", "LossDiagnosticsWarning", "END_KINDS", "format_finding"]
