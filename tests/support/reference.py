"""Evaluate a case's reference implementation (PyTorch, Optax or a NumPy formula) in float64."""

from __future__ import annotations

import numpy as np

from tests.support.backends import BY_NAME
from tests.support.cases import Case


def reference_value(case: Case, args, kwargs, reduction: str) -> np.ndarray:
    if case.reference is not None:
        torch_args, torch_kwargs = BY_NAME["torch"].args(args, kwargs)
        return BY_NAME["torch"].back(case.reference(torch_args, torch_kwargs, reduction))
    if case.optax_reference is not None:
        jax_args, jax_kwargs = BY_NAME["jax"].args(args, kwargs)
        return np.asarray(case.optax_reference(jax_args, jax_kwargs, reduction))
    if case.numpy_reference is not None:
        return np.asarray(case.numpy_reference(args, kwargs, reduction))
    raise AssertionError(f"case {case.id} has no reference")


def reference_grads(case: Case, args, kwargs, reduction: str, argnums):
    """Gradients of the (summed) reference loss by autograd: torch, else jax."""
    if case.reference is not None:
        import torch

        torch_args, torch_kwargs = BY_NAME["torch"].args(args, kwargs)
        torch_args = list(torch_args)
        for n in argnums:
            torch_args[n] = torch_args[n].clone().requires_grad_(True)
        value = case.reference(tuple(torch_args), torch_kwargs, reduction)
        grads = torch.autograd.grad(value.sum(), [torch_args[n] for n in argnums])
        return [g.numpy() for g in grads]
    if case.optax_reference is not None:
        import jax

        jax_args, jax_kwargs = BY_NAME["jax"].args(args, kwargs)

        def total(*diff):
            a = list(jax_args)
            for n, d in zip(argnums, diff):
                a[n] = d
            return case.optax_reference(tuple(a), jax_kwargs, reduction).sum()

        grads = jax.grad(total, argnums=tuple(range(len(argnums))))(*[jax_args[n] for n in argnums])
        return [np.asarray(g) for g in grads]
    return None
