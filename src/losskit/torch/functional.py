"""Fused cross-entropy and chunked linear cross-entropy as ``torch.autograd.Function``\\ s.

Both compute the gradient during the forward pass, while the softmax is at hand, and keep only
that gradient for the backward, which is then a single multiply by the incoming gradient (a
scalar for ``"mean"``/``"sum"``, one factor per token for ``"none"``).  PyTorch's own
``F.cross_entropy`` keeps the log-probabilities and builds two more N x V buffers in the
backward; these keep one (cross-entropy) or none (linear cross-entropy).

On CPU float32/float64 tensors the work is done by the row-blocked kernel of
:mod:`losskit.kernels.cross_entropy` and the chunk loop of
:mod:`losskit.kernels.linear_cross_entropy` on the tensors' own memory (NumPy views, no copies);
other devices and dtypes use the same algorithm in portable array-API operations
(:mod:`losskit.losses`).

``cross_entropy_fast_path`` and ``linear_cross_entropy_fast_path`` are the ``"torch"`` fast
paths of :func:`losskit.cross_entropy` and :func:`losskit.linear_cross_entropy`: a tensor that
autograd will differentiate takes the Function.

The gradient buffer is handed to autograd in the backward and not kept, so a second backward
through the same graph (``retain_graph=True``) raises a clear error instead of silently
returning a consumed buffer.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import torch

from ..core.backend import compute_dtype, namespace
from ..core.specs import (
    CrossEntropyArrays,
    CrossEntropyOptions,
    CrossEntropySpec,
    LinearCrossEntropyArrays,
    LinearCrossEntropyOptions,
    LinearCrossEntropySpec,
    options_from,
    with_options,
)
from ..kernels.cross_entropy import cross_entropy_rows
from ..kernels.linear_cross_entropy import FastestMatmul, numpy_chunk_sweep, numpy_matmul
from ..losses.classification import portable_cross_entropy
from ..losses.linear_cross_entropy import chunk_sweep
from . import triton as _triton

__all__ = [
    "cross_entropy",
    "linear_cross_entropy",
    "CrossEntropyFunction",
    "LinearCrossEntropyFunction",
    "cross_entropy_fast_path",
    "linear_cross_entropy_fast_path",
]

# the array-API namespace of torch tensors (array_api_compat's wrapper)
_XP = array_api_compat.array_namespace(torch.empty(0))

_CONSUMED = (
    "the gradient saved by losskit's fused {name} was already used by an earlier backward; "
    "backward through it twice (retain_graph=True) is not supported -- recompute the loss"
)


def _numpy_ok(*tensors: torch.Tensor | None) -> bool:
    """CPU tensors NumPy can view without copying, in a dtype the NumPy kernels compute in."""
    for t in tensors:
        if t is None:
            continue
        if t.device.type != "cpu" or t.is_sparse or t.dtype in (torch.float16, torch.bfloat16):
            return False
    return True


def _as_numpy(t: torch.Tensor | None):
    return None if t is None else t.detach().numpy()


def _scale_(g: torch.Tensor, grad_output: torch.Tensor, reduction: str, axis: int) -> torch.Tensor:
    """Multiply the saved gradient by the incoming gradient, in place."""
    if reduction == "none":
        return g.mul_(grad_output.unsqueeze(axis).to(g.dtype))
    if grad_output.device.type == "cpu" and float(grad_output) == 1.0:
        return g  # loss.backward(): nothing to scale, no pass over the buffer
    return g.mul_(grad_output.to(g.dtype))


class CrossEntropyFunction(torch.autograd.Function):
    """``losskit.cross_entropy`` with the gradient computed in the forward (see the module)."""

    @staticmethod
    def forward(ctx, input, target, weight, where, normalizer, spec: CrossEntropySpec, inplace: bool):
        need = ctx.needs_input_grad[0]
        inplace = inplace and need
        norm = normalizer
        if isinstance(normalizer, torch.Tensor):
            norm = _as_numpy(normalizer) if _numpy_ok(input) else normalizer
        if _triton.wanted(input, target, weight, where):  # CUDA tensors, losskit[triton]: Triton
            arrays = CrossEntropyArrays(input.detach(), target, weight, where, normalizer)
            value, g = _triton.cross_entropy_rows(spec, arrays, grad=need, inplace=inplace)
            if need and inplace:
                g = input
                torch.autograd.graph.increment_version(input)
        elif _numpy_ok(input, target, weight, where) and input.dtype in (torch.float32, torch.float64):
            x = input.detach()
            if inplace and not x.is_contiguous():
                raise ValueError("inplace=True needs a contiguous input tensor")
            arrays = CrossEntropyArrays(x.numpy(), target.numpy(), _as_numpy(weight), _as_numpy(where), norm)
            value, g = cross_entropy_rows(spec, arrays, grad=need, inplace=inplace)
            value = torch.as_tensor(value)
            if need:
                if inplace:
                    g = input
                    # the logits now hold the gradient: make autograd refuse stale uses of them
                    torch.autograd.graph.increment_version(input)
                else:
                    g = torch.from_numpy(g)
        else:  # any device or dtype: the array-API implementation, value and gradient at once
            wrt = frozenset({0}) if need else frozenset()
            arrays = CrossEntropyArrays(input.detach(), target, weight, where, normalizer)
            value, grads = portable_cross_entropy(_XP, spec, arrays, wrt)
            g = grads.get(0)
            if need and inplace:
                input.detach().copy_(g)
                g = input
        ctx.spec = spec
        ctx.grad_input = g
        ctx.inplace = inplace
        if need and not inplace:
            # kept for a second backward (retain_graph) or a differentiable one (create_graph)
            ctx.save_for_backward(input)
            ctx.recompute = (target, weight, where, normalizer)
        return value

    @staticmethod
    def backward(ctx, grad_output):
        spec = ctx.spec
        g = ctx.grad_input
        unused = (None,) * 6
        if torch.is_grad_enabled() or g is None:
            if ctx.inplace:
                raise RuntimeError(_CONSUMED.format(name="cross_entropy"))
            # create_graph=True, or the saved gradient was already handed over: recompute it
            # from the logits with differentiable torch operations, so higher orders work
            (x,) = ctx.saved_tensors
            arrays = CrossEntropyArrays(x, *ctx.recompute)
            _, grads = portable_cross_entropy(_XP, spec, arrays, frozenset({0}))
            g = grads[0]
            scale = grad_output.unsqueeze(spec.axis) if spec.reduction == "none" else grad_output
            return (g * scale.to(g.dtype),) + unused
        ctx.grad_input = None  # hand the buffer over: autograd can then keep it without a copy
        return (_scale_(g, grad_output, spec.reduction, spec.axis),) + unused


@with_options(CrossEntropyOptions)
def cross_entropy(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    *,
    where: torch.Tensor | None = None,
    normalizer: float | torch.Tensor | None = None,
    inplace: bool = False,
    **options: Any,
) -> torch.Tensor:
    r"""Fused cross-entropy for PyTorch: :func:`losskit.cross_entropy`'s value, differentiable
    through a ``torch.autograd.Function`` whose gradient is computed in the forward.

    Same formula, options and defaults as :func:`losskit.cross_entropy` (keyword options
    ``ignore_index``, ``label_smoothing``, ``axis``, ``temperature``, ``reduction``,
    ``z_loss``; class axis ``axis``, default -1; PyTorch's ``(N, C, d1, ...)`` layout is
    ``axis=1``).  The backward multiplies the saved gradient by the incoming one; with
    ``reduction="none"`` every token's gradient is scaled by its own upstream factor, so
    ``loss.mul(w).sum().backward()`` is exact.

    Memory: the forward keeps one gradient buffer of ``input``'s size (PyTorch keeps the
    log-probabilities and allocates two more in the backward).  ``inplace=True`` writes the
    gradient into ``input``'s own storage -- use it when nothing else needs the logits after
    the loss (e.g. they come straight out of a linear layer); the extra memory is then O(N).
    autograd's version counter is bumped, so an operation that saved the logits fails loudly.

    Only ``input`` is differentiated (``target``, ``weight`` and ``where`` get no gradient).

    Equivalent: ``torch.nn.functional.cross_entropy(input, target, ...)`` with ``dim`` moved to
    ``axis``; Liger's and Apple's fused cross-entropy kernels.
    """
    for name, t in (("input", input), ("target", target)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor; got {type(t).__name__}")
    if not isinstance(inplace, bool):
        raise TypeError(f"inplace must be a bool; got {type(inplace).__name__}")
    xp = namespace(input=input, target=target, weight=weight, where=where)
    chosen = options_from(CrossEntropyOptions, options, "losskit.torch.cross_entropy")
    spec = CrossEntropySpec.of(xp, chosen, CrossEntropyArrays(input, target, weight, where, normalizer))
    return CrossEntropyFunction.apply(input, target, weight, where, normalizer, spec, inplace)


def _autograd_wants(*differentiable: torch.Tensor | None, constant: tuple = ()) -> bool:
    """Autograd will differentiate one of ``differentiable`` and nothing in ``constant`` (the
    Functions give no gradient to targets, class weights, masks or normalizers)."""
    if not torch.is_grad_enabled():
        return False
    if any(isinstance(a, torch.Tensor) and a.requires_grad for a in constant):
        return False
    return any(a is not None and a.requires_grad for a in differentiable)


def cross_entropy_fast_path(spec: CrossEntropySpec, arrays: CrossEntropyArrays, wrt: frozenset[int]):
    """``losskit.cross_entropy`` on torch logits that autograd will differentiate: the fused
    Function (same loss, gradient computed in the forward).  Declines everything else: no
    autograd, losskit's own ``value_and_grad`` (``wrt``), or a gradient wanted for an argument
    the Function treats as constant."""
    if wrt or not _autograd_wants(arrays.input, constant=arrays[1:]):
        return None
    return CrossEntropyFunction.apply(*arrays, spec, False), {}


class LinearCrossEntropyFunction(torch.autograd.Function):
    """``losskit.linear_cross_entropy`` as an autograd Function (see the module).

    ``"mean"``/``"sum"``: the forward computes the loss and all three gradients in one chunked
    sweep; the backward scales them.  ``"none"``: the upstream gradient differs per token and
    is only known in the backward, so the forward computes the losses alone and the backward
    makes one more sweep with each token's gradient scaled by its own upstream factor.
    """

    @staticmethod
    def forward(ctx, input, weight, bias, target, spec: LinearCrossEntropySpec):
        reduction = spec.reduction
        x2 = input.detach().reshape(-1, spec.hidden)
        t = target.reshape(-1)
        valid = t != spec.ignore_index
        safe_t = torch.where(valid, t, torch.zeros_like(t))
        dtype = torch.promote_types(input.dtype, weight.dtype)
        count = valid.sum().to(torch.float64)
        if reduction == "mean":
            factor = torch.where(count > 0, 1.0 / count.clamp(min=1.0), torch.zeros_like(count))
        else:
            factor = torch.ones_like(count)
        wants = ctx.needs_input_grad
        need = (wants[0], wants[1], bias is not None and wants[2])
        grads_now = any(need) and reduction != "none"
        row_scale = torch.where(valid, factor, torch.zeros_like(factor))
        w = weight.detach()
        b = None if bias is None else bias.detach()
        fast = _numpy_ok(input, weight, bias, target) and dtype in (torch.float32, torch.float64)
        run = _numpy_sweep if fast else _xp_sweep
        if _triton.wanted(input, weight, bias, target):  # CUDA tensors, losskit[triton]: Triton
            run = _triton.linear_sweep
        row_loss, gx, gw, gb = run(
            x2, w, b, safe_t, valid, row_scale, spec, need if grads_now else (False,) * 3, dtype
        )
        per_token = torch.where(valid, row_loss, torch.zeros_like(row_loss))
        if reduction == "none":
            value = per_token.reshape(spec.lead_shape)
        else:
            value = (per_token.sum(dtype=torch.float64) * factor).to(row_loss.dtype)
        ctx.reduction = reduction
        ctx.shapes = (tuple(input.shape), input.dtype, weight.dtype, None if bias is None else bias.dtype)
        if grads_now:
            ctx.grads = [gx, gw, gb]
        else:
            ctx.grads = None
            ctx.sweep = (run, x2, w, b, safe_t, valid, spec, need, dtype)
        return value.to(dtype)

    @staticmethod
    def backward(ctx, grad_output):
        shape, in_dtype, w_dtype, b_dtype = ctx.shapes
        if ctx.reduction != "none":
            if ctx.grads is None:
                raise RuntimeError(_CONSUMED.format(name="linear_cross_entropy"))
            gx, gw, gb = ctx.grads
            ctx.grads = None
            out = []
            for g in (gx, gw, gb):
                out.append(None if g is None else _scale_(g, grad_output, "mean", -1))
            gx, gw, gb = out
        else:
            run, x2, w, b, safe_t, valid, spec, need, dtype = ctx.sweep
            scale = torch.where(valid, grad_output.reshape(-1).to(dtype), torch.zeros((), dtype=dtype))
            _, gx, gw, gb = run(x2, w, b, safe_t, valid, scale, spec, need, dtype)
        gx = None if gx is None else gx.reshape(shape).to(in_dtype)
        gw = None if gw is None else gw.to(w_dtype)
        gb = None if gb is None else gb.to(b_dtype)
        return gx, gw, gb, None, None


def _torch_matmul(a, b, out):
    torch.matmul(torch.from_numpy(a), torch.from_numpy(b), out=torch.from_numpy(out))


# the chunk loop's matrix products: NumPy's BLAS or PyTorch's, whichever is faster for each
# product's shape in this process (they differ by CPU and by shape)
_CPU_MATMUL = FastestMatmul({"numpy": numpy_matmul, "torch": _torch_matmul})


def _numpy_sweep(x2, w, b, safe_t, valid, row_scale, spec, need, dtype):
    """The NumPy chunk loop of :mod:`losskit.kernels.linear_cross_entropy` on the tensors'
    memory, each matrix product by the faster of NumPy's and PyTorch's."""
    x2 = x2.to(dtype).contiguous()
    w = w.to(dtype)
    b = None if b is None else b.to(dtype)
    row_loss, gx, gw, gb = numpy_chunk_sweep(
        x2.numpy(),
        w.numpy(),
        None if b is None else b.numpy(),
        safe_t.numpy(),
        valid.numpy(),
        row_scale.to(dtype).numpy(),
        spec,
        need,
        matmul=_CPU_MATMUL,
    )
    wrap = lambda a: None if a is None else torch.from_numpy(a)  # noqa: E731
    return wrap(row_loss), wrap(gx), wrap(gw), wrap(gb)


def _xp_sweep(x2, w, b, safe_t, valid, row_scale, spec, need, dtype):
    """The portable chunk loop (any device, any dtype; low precision computed in float32)."""
    cdt = compute_dtype(torch, dtype)
    b = None if b is None else b.to(cdt)
    return chunk_sweep(_XP, x2.to(cdt), w.to(cdt), b, safe_t, valid, row_scale.to(cdt), spec, need)


@with_options(LinearCrossEntropyOptions)
def linear_cross_entropy(
    input: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    bias: torch.Tensor | None = None,
    **options: Any,
) -> torch.Tensor:
    r"""Chunked linear + cross-entropy for PyTorch, differentiable in ``input``, ``weight``
    and ``bias``, never holding the N x V logits.

    Same formula, options and defaults as :func:`losskit.linear_cross_entropy` (keyword
    options ``ignore_index``, ``label_smoothing``, ``z_loss``, ``softcap``, ``reduction``,
    ``chunk_size``): ``cross_entropy(input @ weight.T + bias, target)`` with optional label
    smoothing, z-loss and logit soft-capping; ``input`` is ``(..., D)``, ``weight``
    ``(V, D)``, ``bias`` ``(V,)``, ``target`` integer ``input.shape[:-1]``.  ``"mean"`` over
    zero counted tokens is 0 with zero gradients.  ``reduction="none"`` gives each token's
    gradient its own upstream factor (computed by a second chunked sweep in the backward).

    Equivalent: ``torch.nn.functional.linear_cross_entropy(input, weight, target,
    linear_bias=bias, reduction=..., ignore_index=..., label_smoothing=...)``.
    """
    for name, t in (("input", input), ("weight", weight), ("target", target), ("bias", bias)):
        if t is not None and not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor; got {type(t).__name__}")
    xp = namespace(input=input, weight=weight, target=target, bias=bias)
    chosen = options_from(LinearCrossEntropyOptions, options, "losskit.torch.linear_cross_entropy")
    spec = LinearCrossEntropySpec.of(xp, chosen, LinearCrossEntropyArrays(input, weight, target, bias))
    return LinearCrossEntropyFunction.apply(input, weight, bias, target, spec)


def linear_cross_entropy_fast_path(
    spec: LinearCrossEntropySpec, arrays: LinearCrossEntropyArrays, wrt: frozenset[int]
):
    """``losskit.linear_cross_entropy`` on torch tensors that autograd will differentiate: the
    chunked Function.  Declines when autograd is off or losskit's own ``value_and_grad`` asks
    (``wrt``)."""
    input, weight, target, bias = arrays
    if wrt or not _autograd_wants(input, weight, bias):
        return None
    return LinearCrossEntropyFunction.apply(input, weight, bias, target, spec), {}
