"""Typed use of losskit's public API, checked by mypy (``tests/typing/test_mypy.py``, and
``make test``): the losses keep their real signatures, through ``value_and_grad`` and ``grad``
too, and ``reduction`` is one of the strings the losses accept."""

from __future__ import annotations

import numpy as np

import losskit as lk
from losskit.core.reduction import Reduction

prediction = np.array([2.5, 3.1, 4.8])
target = np.array([2.0, 3.0, 5.0])
logits = np.zeros((4, 3))
labels = np.array([0, 1, 2, 0])

value = lk.mse(prediction, target)
per_element = lk.mse(prediction, target, reduction="none")
smoothed = lk.cross_entropy(logits, labels, label_smoothing=0.1, ignore_index=-100, reduction="sum")
kl = lk.kl_div(np.log(np.full((2, 3), 1 / 3)), np.full((2, 3), 1 / 3), reduction="batchmean")

loss, gradient = lk.value_and_grad(lk.huber)(prediction, target, delta=0.5, reduction="mean")
both = lk.value_and_grad(lk.cross_entropy, argnums=0)(logits, labels, temperature=2.0)
only_gradient = lk.grad(lk.sigmoid_focal)(prediction, target, alpha=None, gamma=1.0)

reduction: Reduction = "sum"
summed = lk.dice(np.full((2, 3), 1 / 3), np.array([0, 2]), smooth=1.0, reduction=reduction)
