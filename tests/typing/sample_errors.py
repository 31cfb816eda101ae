"""Mistakes mypy must report in typed losskit code: each line marked ``# error`` is one
(``tests/typing/test_mypy.py`` checks that each is reported, on its own line)."""

from __future__ import annotations

import numpy as np

import losskit as lk

x = np.zeros(3)
y = np.zeros(3)

lk.mse(x, y, reduction="avg")  # error
lk.mse(x, y, reductoin="mean")  # error
lk.value_and_grad(lk.huber)(x, y, reduction="batchmean")  # error
lk.grad(lk.huber)(x, y, delta_=1.0)  # error
lk.cross_entropy(x, y, label_smoothing="0.1")  # error
lk.huberr(x, y)  # error
