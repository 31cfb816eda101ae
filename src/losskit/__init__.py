"""losskit: the loss functions that train neural networks, on any array library.

Every loss takes arrays of NumPy, PyTorch, JAX, Dask or any Python-array-API library and
returns the caller's array type; every loss has an analytic gradient through
:func:`value_and_grad`.  :func:`catalog` lists them all.
"""

from __future__ import annotations

from ._catalog import LossInfo, catalog, lookup
from ._gradients import grad, value_and_grad
from .activations import log_sigmoid, log_softmax, logsumexp, sigmoid, softmax, softplus, tanh
from .classification import binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, nll
from .divergence import kl_div
from .regression import huber, l1, mae, mse, smooth_l1

__version__ = "0.1.0"

__all__ = [
    "LossInfo",
    "catalog",
    "lookup",
    "grad",
    "value_and_grad",
    # output layers
    "sigmoid",
    "log_sigmoid",
    "softplus",
    "softmax",
    "log_softmax",
    "logsumexp",
    "tanh",
    # regression
    "mse",
    "mae",
    "l1",
    "huber",
    "smooth_l1",
    # classification
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "nll",
    # divergence
    "kl_div",
]
