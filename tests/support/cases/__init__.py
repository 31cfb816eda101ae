"""The shared table of test cases: one :class:`Case` per loss and option set.

Each family's cases live in a module of this package named like the family's module in
``losskit.losses`` and exporting ``CASES``; every module is collected here, and the generic
tests (parity with the reference, gradients against autograd and finite differences, every
backend, properties) run over ``ALL_CASES``.  A new loss needs new entries here, not a new test
file.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Args = tuple[tuple[Any, ...], dict[str, Any]]


@dataclass(frozen=True)
class Case:
    """One loss called with one set of options.

    Attributes:
      id: test id, e.g. ``"cross_entropy-weight-smoothing"``.
      fn: the losskit function.
      make_args: ``rng -> (args, kwargs)`` of float64 NumPy arrays and Python values (never
        ``reduction``, which the tests add).
      reference: ``(torch_args, torch_kwargs, reduction) -> torch.Tensor`` computing the same loss
        with PyTorch (float64), or ``None`` when ``optax_reference`` / ``numpy_reference`` is used.
      optax_reference: ``(jax_args, jax_kwargs, reduction) -> jax array`` (float64).
      numpy_reference: ``(np_args, np_kwargs, reduction) -> ndarray``, from the paper's formula,
        for losses no peer library has.
      reductions: reductions to test.
      grad_argnums: positional arguments whose analytic gradients are tested.
      backends: backends the case runs on (a custom callable argument may restrict it).
      nonnegative: the loss is >= 0 everywhere.
      perfect: ``rng -> (args, kwargs)`` of a perfect prediction, where the loss is exactly 0.
      zero_grad_at_perfect: the gradient vanishes at ``perfect`` too (False for losses of
        log-probabilities, whose unconstrained gradient there is not 0).
      fd_eps / fd_rtol: finite-difference step and tolerance (non-smooth losses may need care).
      rtol: parity tolerance.
    """

    id: str
    fn: Callable[..., Any]
    make_args: Callable[[np.random.Generator], Args]
    reference: Callable[..., Any] | None = None
    optax_reference: Callable[..., Any] | None = None
    numpy_reference: Callable[..., Any] | None = None
    reductions: tuple[str, ...] = ("mean", "sum", "none")
    grad_argnums: tuple[int, ...] = (0,)
    backends: tuple[str, ...] = ("numpy", "torch", "jax", "array_api_strict", "dask")
    nonnegative: bool = True
    perfect: Callable[[np.random.Generator], Args] | None = None
    zero_grad_at_perfect: bool = True
    fd_eps: float = 1e-6
    fd_rtol: float = 1e-5
    rtol: float = 1e-7
    atol: float = 1e-10
    extra: dict[str, Any] = field(default_factory=dict)


def _collect() -> list[Case]:
    cases: list[Case] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        cases.extend(module.CASES)
    ids = [c.id for c in cases]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise RuntimeError(f"duplicate case ids: {sorted(duplicates)}")
    return cases


ALL_CASES = _collect()
