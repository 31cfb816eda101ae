"""The fused linear preference losses (:func:`losskit.linear_dpo`, ``linear_simpo``,
``linear_orpo``, ``linear_cpo``) in one chunked sweep, as a ``torch.autograd.Function``.

A pair's loss depends on that pair's two sequence log-probabilities only, so the portable
single-pass routine (``losskit.losses.linear_preference._single_pass_pairs``) takes chunks of
whole pairs and, while a chunk's softmax is still in its buffer, computes the chunk's loss, the
factor :math:`\\partial L/\\partial s` of each sequence and from them the gradients of the hidden
states, the weight and the bias (three matrix products per chunk, none of the logits
recomputed).  :class:`SinglePassFunction` runs it in its forward, keeps the gradients, and its
backward multiplies them by the upstream scalar (as losskit's fused cross-entropy does).

:func:`linear_preference_fast_path` is the ``("linear_preference", "torch")`` fast path: it
takes eager calls whose hidden states or head autograd differentiates and declines graph
tracing (``torch.compile``, ``torch.export``), ``torch.func`` transforms, meta tensors and
reference or mask tensors that require a gradient; the composition ``linear_log_probs`` → loss
(differentiated by autograd through ``linear_log_probs``' own Function) then runs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

from .ops import is_concrete

__all__ = ["SinglePassFunction", "linear_preference_fast_path"]


class SinglePassFunction(torch.autograd.Function):
    """``apply(hidden, weight, bias, compute, need)`` → ``(value, gx, gw, gb)``: ``compute(need,
    hidden, weight, bias)`` returns the loss and the gradients asked for in ``need`` (hidden,
    weight, bias); the gradients are outputs marked non-differentiable (empty where not asked)."""

    @staticmethod
    def forward(hidden, weight, bias, compute: Callable[..., Any], need: tuple[bool, bool, bool]):
        detached = [None if t is None else t.detach() for t in (hidden, weight, bias)]
        value, gx, gw, gb = compute(need, *detached)
        empty = value.new_empty((0,))
        return (value,) + tuple(empty if g is None else g for g in (gx, gw, gb))

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, gx, gw, gb = output
        ctx.mark_non_differentiable(gx, gw, gb)
        ctx.set_materialize_grads(False)
        ctx.grads = [g if g.numel() else None for g in (gx, gw, gb)]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output, *_unused):
        if grad_output is None:
            return None, None, None, None, None
        if grad_output.device.type == "cpu" and float(grad_output) == 1.0:
            grads = ctx.grads  # loss.backward(): nothing to scale
        else:
            grads = [None if g is None else g * grad_output.to(g.dtype) for g in ctx.grads]
        return (*grads, None, None)


SinglePassFunction.forward.__signature__ = inspect.signature(SinglePassFunction.forward)  # type: ignore[attr-defined]


def linear_preference_fast_path(compute, hidden, weight, bias, others):
    """The single sweep for eager torch tensors whose ``hidden``/``weight``/``bias`` autograd
    differentiates; ``None`` (the composition then runs) otherwise.  ``others`` are the call's
    remaining tensors (tokens, reference log-probs, ``where``), which must not need a gradient."""
    if not isinstance(hidden, torch.Tensor) or not torch.is_grad_enabled():
        return None
    need = tuple(t is not None and t.requires_grad for t in (hidden, weight, bias))
    if not any(need):
        return None
    tensors = [t for t in (hidden, weight, bias, *others) if isinstance(t, torch.Tensor)]
    if not all(is_concrete(t) for t in tensors):  # tracing, torch.func, meta or fake tensors
        return None
    if any(t.requires_grad for t in tensors[3 if bias is not None else 2 :]):
        return None
    value, _, _, _ = SinglePassFunction.apply(hidden, weight, bias, compute, need)
    return value
