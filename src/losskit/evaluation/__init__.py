"""Out-of-core evaluation on Dask: one or several losses over files larger than memory.

:func:`evaluate` (also :func:`losskit.evaluate` and ``losskit evaluate``) reads predictions and
targets from ``.npy`` or Parquet files with :mod:`.readers` and computes the losses in one pass
with :mod:`.engine`.  Only this package imports Dask (and pyarrow), on first use.
"""

from __future__ import annotations

from .engine import evaluate, evaluation_report
from .errors import EvaluationError

__all__ = ["evaluate", "evaluation_report", "EvaluationError"]
