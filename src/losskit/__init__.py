"""losskit: the loss functions that train neural networks, on any array library.

Every loss takes arrays of NumPy, PyTorch, JAX, Dask or any Python-array-API library and
returns the caller's array type; every loss has an analytic gradient through
:func:`value_and_grad`.  :func:`catalog` lists them all.
"""

from __future__ import annotations

import sys as _sys

__version__ = "0.1.0"

# Each family module declares its public names in __all__; they are all re-exported here.
from . import (
    activations,
    classification,
    classification_variants,
    contrastive,
    divergence,
    linear,
    margin,
    penalties,
    ranking,
    regression,
    segmentation,
    sequence,
)
from ._catalog import LossInfo, catalog, lookup
from ._gradients import grad, value_and_grad
from .activations import *  # noqa: F403
from .classification import *  # noqa: F403
from .classification_variants import *  # noqa: F403
from .contrastive import *  # noqa: F403
from .diagnostics import (
    baseline_loss,
    bits_per_byte,
    bits_per_character,
    bits_per_token,
    diagnose,
    explain,
    from_perplexity,
    perplexity,
    read_log,
    recommend,
    to_bits,
    to_nats,
)
from .divergence import *  # noqa: F403
from .evaluate import EvaluationError, evaluate  # imports Dask on first call, not here
from .linear import *  # noqa: F403
from .margin import *  # noqa: F403
from .penalties import *  # noqa: F403
from .ranking import *  # noqa: F403
from .regression import *  # noqa: F403
from .segmentation import *  # noqa: F403
from .sequence import *  # noqa: F403
from .sparsemax import *  # noqa: F403

_FAMILY_MODULES = (
    activations,
    regression,
    classification,
    classification_variants,
    linear,
    margin,
    _sys.modules[__name__ + ".sparsemax"],  # the module: its function sparsemax took the name
    divergence,
    contrastive,
    ranking,
    segmentation,
    sequence,
    penalties,
)

__all__ = ["LossInfo", "catalog", "lookup", "grad", "value_and_grad", "evaluate", "EvaluationError"] + [
    name for module in _FAMILY_MODULES for name in module.__all__
]

# diagnostics (NumPy only: plots, log readers and progress bars import their libraries lazily)
__all__ += [
    "baseline_loss",
    "bits_per_byte",
    "bits_per_character",
    "bits_per_token",
    "diagnose",
    "explain",
    "from_perplexity",
    "perplexity",
    "read_log",
    "recommend",
    "to_bits",
    "to_nats",
]
