"""Array backends for tests: convert NumPy test data to each library and back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Backend:
    name: str
    to: Callable[[np.ndarray], Any]
    back: Callable[[Any], np.ndarray]

    def convert(self, value):
        if isinstance(value, np.ndarray):
            return self.to(value)
        if isinstance(value, (tuple, list)) and value and isinstance(value[0], np.ndarray):
            return type(value)(self.to(v) for v in value)
        return value

    def args(self, args, kwargs):
        return tuple(self.convert(a) for a in args), {k: self.convert(v) for k, v in kwargs.items()}


def _torch_to(a):
    import torch

    return torch.from_numpy(np.array(a, order="C", copy=True))  # ascontiguousarray makes 0-d 1-d


def _torch_back(t):
    return t.detach().cpu().numpy()


def _jax_to(a):
    import jax.numpy as jnp

    return jnp.asarray(a)


def _strict_to(a):
    import array_api_strict as xps

    return xps.asarray(a)


def _strict_back(a):
    import array_api_strict as xps

    # array-api-strict arrays expose the buffer protocol through __dlpack__
    return np.from_dlpack(xps.asarray(a, copy=True)) if hasattr(np, "from_dlpack") else np.asarray(a)


def _dask_to(a):
    import dask.array as da

    chunks = tuple(max(1, (d + 1) // 2) for d in a.shape)
    return da.from_array(a, chunks=chunks)


def _dask_back(a):
    return np.asarray(a.compute())


BACKENDS = [
    Backend("numpy", lambda a: a, np.asarray),
    Backend("torch", _torch_to, _torch_back),
    Backend("jax", _jax_to, np.asarray),
    Backend("array_api_strict", _strict_to, _strict_back),
    Backend("dask", _dask_to, _dask_back),
]
BY_NAME = {b.name: b for b in BACKENDS}
