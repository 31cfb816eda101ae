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

import inspect
import warnings
from typing import Any

import torch

from ..core.backend import compute_dtype, namespace
from ..core.dispatch import load_fast_paths
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
from ..core.validation import check_float_array
from ..kernels.cross_entropy import cross_entropy_rows
from ..kernels.linear_cross_entropy import numpy_chunk_sweep
from ..losses.classification import portable_cross_entropy
from ..losses.linear_cross_entropy import chunk_sweep, portable_linear_cross_entropy
from . import triton as _triton
from .cpu_matmul import CPU_MATMUL, CPU_MATMUL_ADD
from .ops import XP, device_scope, is_concrete, is_tracing

__all__ = [
    "cross_entropy",
    "linear_cross_entropy",
    "CrossEntropyFunction",
    "LinearCrossEntropyFunction",
    "cross_entropy_fast_path",
    "linear_cross_entropy_fast_path",
]

# the array-API namespace of torch tensors (array_api_compat's wrapper, as losskit.torch.ops
# adapts it)
_XP = XP

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


def _wrapped(t: torch.Tensor | None) -> bool:
    """``t`` is a ``torch.func`` transform's tensor (``grad``, ``vmap``, ``jacrev``)."""
    return t is not None and torch._C._functorch.is_functorch_wrapped_tensor(t)


def _traced(t: torch.Tensor) -> bool:
    """A graph is being traced (``torch.compile``, ``torch.export``) or ``t`` has no values
    (meta or fake tensor): the portable operations run instead of the Functions, so the graph
    stays whole and autograd (AOTAutograd under the compiler) differentiates them."""
    return is_tracing() or not is_concrete(t) and not _wrapped(t)


def _fused_cross_entropy(input, target, weight, where, normalizer, spec, need, inplace):
    """The value and, when ``need``, the gradient of cross-entropy with respect to the logits:
    the NumPy row kernel on CPU float32/float64 tensors in eager mode, else the portable
    array-API code (any device or dtype, and the tensors of ``torch.func`` transforms)."""
    plain = not any(_wrapped(t) for t in (input, target, weight, where))
    if plain and _triton.wanted(input, target, weight, where):  # CUDA tensors, losskit[triton]: Triton
        arrays = CrossEntropyArrays(input.detach(), target, weight, where, normalizer)
        value, g = _triton.cross_entropy_rows(spec, arrays, grad=need, inplace=inplace)
        if need and inplace:
            g = input
            torch.autograd.graph.increment_version(input)
        return value, g
    norm = normalizer
    if isinstance(normalizer, torch.Tensor):
        readable = plain and _numpy_ok(input) and not _wrapped(normalizer)
        norm = _as_numpy(normalizer) if readable else normalizer
    if plain and _numpy_ok(input, target, weight, where) and input.dtype in (torch.float32, torch.float64):
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
    return value, g


class CrossEntropyFunction(torch.autograd.Function):
    """``losskit.cross_entropy`` with the gradient computed in the forward (see the module).

    ``apply(input, target, weight, where, normalizer, spec, need, inplace)`` returns ``(loss,
    gradient)``: ``need`` asks for the gradient with respect to ``input`` now (an empty tensor
    otherwise); the gradient output is not differentiable.  In eager mode the gradient buffer
    is kept on the context and handed to autograd by the backward (no copy); under
    ``torch.func`` transforms (``grad``, ``vmap(grad(...))``, ``jacrev``; the vmap rule is
    generated) it is saved with ``save_for_backward``, and a backward that must itself be
    differentiable recomputes it with differentiable operations.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input, target, weight, where, normalizer, spec: CrossEntropySpec, need: bool, inplace: bool):
        value, g = _fused_cross_entropy(input, target, weight, where, normalizer, spec, need, inplace)
        # inplace: the gradient is the input's own storage, taken from the inputs below
        return value, (g if need and not inplace else input.new_empty((0,)))

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, target, weight, where, normalizer, spec, need, inplace = inputs
        _, g = output
        ctx.mark_non_differentiable(g)
        ctx.set_materialize_grads(False)  # no zeros of the gradient output's size in the backward
        ctx.spec = spec
        ctx.inplace = inplace and need
        ctx.eager = not (_wrapped(g) or _wrapped(input))
        constant = normalizer if not isinstance(normalizer, torch.Tensor) else None
        ctx.normalizer = constant
        if ctx.eager:
            ctx.grad_input = (input if inplace else g) if need else None
            if not ctx.inplace:
                # kept for a second backward (retain_graph) or a differentiable one (create_graph)
                ctx.save_for_backward(input, target, weight, where, normalizer if constant is None else None)
        else:
            tensor_norm = None if constant is not None else normalizer
            ctx.has_grad = need
            ctx.save_for_backward(input, target, weight, where, tensor_norm, g)

    @staticmethod
    def backward(ctx, grad_output, _grad_of_gradient):
        spec = ctx.spec
        unused = (None,) * 7
        if ctx.eager:
            g = ctx.grad_input
            if torch.is_grad_enabled() or g is None:
                if ctx.inplace:
                    raise RuntimeError(_CONSUMED.format(name="cross_entropy"))
                x, target, weight, where, norm = ctx.saved_tensors
                norm = ctx.normalizer if norm is None else norm
                g = _recomputed_gradient(x, target, weight, where, norm, spec)
                return (g * _upstream(grad_output, spec).to(g.dtype),) + unused
            ctx.grad_input = None  # hand the buffer over: autograd can then keep it without a copy
            return (_scale_(g, grad_output, spec.reduction, spec.axis),) + unused
        x, target, weight, where, norm, g = ctx.saved_tensors
        if torch.is_grad_enabled() or not ctx.has_grad:
            # jacrev, hessian, grad of grad: the gradient as a differentiable function of x
            g = _recomputed_gradient(x, target, weight, where, ctx.normalizer if norm is None else norm, spec)
        return (g * _upstream(grad_output, spec).to(g.dtype),) + unused


def _signature_once(function: type[torch.autograd.Function]) -> None:
    """``Function.apply`` of a ``setup_context`` Function asks ``inspect.signature`` for the
    forward's on every call; computed once here and kept on the forward, that look-up is a
    read (tens of microseconds a call, which tiny batches notice)."""
    function.forward.__signature__ = inspect.signature(function.forward)  # type: ignore[attr-defined]


_signature_once(CrossEntropyFunction)


def _upstream(grad_output: torch.Tensor, spec: CrossEntropySpec) -> torch.Tensor:
    """The incoming gradient, broadcast against the logits' gradient."""
    return grad_output.unsqueeze(spec.axis) if spec.reduction == "none" else grad_output


def _recomputed_gradient(x, target, weight, where, normalizer, spec) -> torch.Tensor:
    """The gradient with respect to the logits ``x`` from differentiable torch operations."""
    _, grads = portable_cross_entropy(
        _XP, spec, CrossEntropyArrays(x, target, weight, where, normalizer), frozenset({0})
    )
    return grads[0]


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
    arrays = CrossEntropyArrays(input, target, weight, where, normalizer)
    spec = CrossEntropySpec.of(xp, chosen, arrays)
    if _traced(input):  # torch.compile / torch.export / meta: portable operations, one graph
        with device_scope(input):
            return portable_cross_entropy(_XP, spec, arrays, frozenset())[0]
    need = torch.is_grad_enabled() and input.requires_grad
    inplace = inplace and need and not _wrapped(input)
    return CrossEntropyFunction.apply(input, target, weight, where, normalizer, spec, need, inplace)[0]


def _autograd_wants(*differentiable: torch.Tensor | None, constant: tuple = ()) -> bool:
    """Autograd will differentiate one of ``differentiable`` and nothing in ``constant`` (the
    Functions give no gradient to targets, class weights, masks or normalizers)."""
    if not torch.is_grad_enabled():
        return False
    if any(isinstance(a, torch.Tensor) and a.requires_grad for a in constant):
        return False
    return any(a is not None and a.requires_grad for a in differentiable)


def cross_entropy_fast_path(spec: CrossEntropySpec, arrays: CrossEntropyArrays, wrt: frozenset[int]):
    """``losskit.cross_entropy`` on torch logits that autograd will differentiate in eager
    mode: the fused Function (same loss, gradient computed in the forward).  Declines
    everything else: no autograd, losskit's own ``value_and_grad`` (``wrt``), a gradient
    wanted for an argument the Function treats as constant, and tensors that are traced
    (``torch.compile``, ``torch.export``), meta or fake, or transformed by ``torch.func``:
    the portable operations then run, which every transform (also ``hessian`` and
    ``jvp``) differentiates."""
    if wrt or _traced(arrays.input) or _wrapped(arrays.input):
        return None  # compiled, exported, meta, or under torch.func (hessian, jvp): portable ops
    if not _autograd_wants(arrays.input, constant=arrays[1:]):
        return None
    return CrossEntropyFunction.apply(*arrays, spec, True, False)[0], {}


class LinearCrossEntropyFunction(torch.autograd.Function):
    """``losskit.linear_cross_entropy`` as an autograd Function (see the module).

    ``apply(input, weight, bias, target, spec, need)`` returns ``(loss, grad_input,
    grad_weight, grad_bias)``; ``need`` says which of the three gradients autograd will ask
    for (the gradient outputs are not differentiable, empty when not computed in the forward).

    ``"mean"``/``"sum"`` in eager mode: the forward computes the loss and the gradients in one
    chunked sweep; the backward scales them.  ``"none"``, and under ``torch.func`` transforms
    (``grad``, ``vmap(grad(...))``, ``jacrev``; the vmap rule is generated): the upstream
    gradient is only known in the backward, so the forward computes the losses alone and the
    backward makes one more sweep with each token's gradient scaled by its upstream factor.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(input, weight, bias, target, spec: LinearCrossEntropySpec, need: tuple[bool, bool, bool]):
        plain = not any(_wrapped(t) for t in (input, weight, bias, target))
        grads_now = plain and any(need) and spec.reduction != "none"
        x2, w, b, safe_t, valid, factor, dtype, run = _prepare_sweep(input, weight, bias, target, spec)
        row_scale = torch.where(valid, factor, torch.zeros_like(factor))
        row_loss, gx, gw, gb = run(
            x2, w, b, safe_t, valid, row_scale, spec, need if grads_now else (False,) * 3, dtype
        )
        per_token = torch.where(valid, row_loss, torch.zeros_like(row_loss))
        if spec.reduction == "none":
            value = per_token.reshape(spec.lead_shape)
        else:
            value = (per_token.sum(dtype=torch.float64) * factor).to(row_loss.dtype)
        empty = input.new_empty((0,))
        return (value.to(dtype),) + tuple(empty if g is None else g for g in (gx, gw, gb))

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, weight, bias, target, spec, need = inputs
        value, gx, gw, gb = output
        ctx.mark_non_differentiable(gx, gw, gb)
        ctx.set_materialize_grads(False)  # no zeros of the gradient outputs' sizes in the backward
        ctx.spec = spec
        ctx.dtypes = (input.dtype, weight.dtype, None if bias is None else bias.dtype)
        plain = not any(_wrapped(t) for t in (input, weight, bias, target, value))
        precomputed = plain and any(need) and spec.reduction != "none"
        if precomputed:  # handed to autograd by the backward, not saved (no second copy)
            ctx.grads = [g if g.numel() else None for g in (gx, gw, gb)]
        else:
            ctx.grads = None
            ctx.save_for_backward(input, weight, bias, target)
        ctx.precomputed = precomputed

    @staticmethod
    def backward(ctx, grad_output, *_grads_of_gradients):
        in_dtype, w_dtype, b_dtype = ctx.dtypes
        spec = ctx.spec
        if ctx.precomputed:
            if ctx.grads is None:
                raise RuntimeError(_CONSUMED.format(name="linear_cross_entropy"))
            grads = ctx.grads
            ctx.grads = None
            gx, gw, gb = [None if g is None else _scale_(g, grad_output, "mean", -1) for g in grads]
            shape = spec.lead_shape + (spec.hidden,)
        else:
            input, weight, bias, target = ctx.saved_tensors
            x2, w, b, safe_t, valid, factor, dtype, run = _prepare_sweep(input, weight, bias, target, spec)
            zero = torch.zeros((), dtype=dtype, device=x2.device)
            if spec.reduction == "none":
                upstream = grad_output.reshape(-1).to(dtype)
            else:
                upstream = (factor * grad_output).to(dtype).expand(valid.shape)
            scale = torch.where(valid, upstream, zero)
            wants = ctx.needs_input_grad
            need = (wants[0], wants[1], bias is not None and wants[2])
            _, gx, gw, gb = run(x2, w, b, safe_t, valid, scale, spec, need, dtype)
            shape = tuple(input.shape)
        gx = None if gx is None else gx.reshape(shape).to(in_dtype)
        gw = None if gw is None else gw.to(w_dtype)
        gb = None if gb is None else gb.to(b_dtype)
        return gx, gw, gb, None, None, None


_signature_once(LinearCrossEntropyFunction)


def _prepare_sweep(input, weight, bias, target, spec):
    """The flattened tokens, detached weights, targets with ignored ones replaced by 0, the mask
    of counted tokens, the reduction's factor (1/count for "mean"), the result dtype and the
    chunk loop to run: NumPy's on plain CPU float32/float64 tensors, else the portable one."""
    x2 = input.detach().reshape(-1, spec.hidden)
    t = target.reshape(-1)
    valid = t != spec.ignore_index
    safe_t = torch.where(valid, t, torch.zeros_like(t))
    dtype = torch.promote_types(input.dtype, weight.dtype)
    count = valid.sum().to(torch.float64)
    if spec.reduction == "mean":
        factor = torch.where(count > 0, 1.0 / count.clamp(min=1.0), torch.zeros_like(count))
    else:
        factor = torch.ones_like(count)
    w = weight.detach()
    b = None if bias is None else bias.detach()
    plain = not any(_wrapped(a) for a in (input, weight, bias, target))
    fast = plain and _numpy_ok(input, weight, bias, target) and dtype in (torch.float32, torch.float64)
    run = _numpy_sweep if fast else _xp_sweep
    if plain and _triton.wanted(input, weight, bias, target):  # CUDA tensors, losskit[triton]: Triton
        run = _triton.linear_sweep
    return x2, w, b, safe_t, valid, factor, dtype, run


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
        matmul=CPU_MATMUL,
        matmul_add=CPU_MATMUL_ADD,
    )
    wrap = lambda a: None if a is None else torch.from_numpy(a)  # noqa: E731
    return wrap(row_loss), wrap(gx), wrap(gw), wrap(gb)


def _xp_sweep(x2, w, b, safe_t, valid, row_scale, spec, need, dtype):
    """The portable chunk loop (any device, any dtype; low precision computed in float32)."""
    cdt = compute_dtype(torch, dtype)
    b = None if b is None else b.to(cdt)
    return chunk_sweep(_XP, x2.to(cdt), w.to(cdt), b, safe_t, valid, row_scale.to(cdt), spec, need)


def linear_cross_entropy(
    input: torch.Tensor,
    linear_weight: torch.Tensor,
    target: torch.Tensor,
    *,
    linear_bias: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
    reduction: str = "mean",
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    options: Any = None,
    z_loss: float = 0.0,
    softcap: float | None = None,
    chunk_size: int | str = "auto",
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Chunked linear + cross-entropy for PyTorch, with the arguments of
    ``torch.nn.functional.linear_cross_entropy``: ``cross_entropy(input @ linear_weight.T +
    linear_bias, target, weight=weight, ...)``, differentiable in ``input``, ``linear_weight``
    and ``linear_bias``.

    Args:
      input: hidden states ``(..., D)`` (PyTorch takes ``(D,)`` or ``(N, D)``; any leading
        shape works here).
      linear_weight: the output layer's weight ``(V, D)`` (``nn.Linear``'s layout).
      target: class indices (integer, ``input.shape[:-1]``) or class probabilities (floating,
        ``input.shape[:-1] + (V,)``).
      linear_bias: the output layer's bias ``(V,)`` (keyword only, as in PyTorch).
      weight: per-class weights ``(V,)``, as in ``F.cross_entropy`` (``"mean"`` divides by the
        summed weights of the counted tokens).
      reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
      ignore_index: target value that does not count; ``None`` (default) means -100 for class
        indices; with class probabilities it must stay ``None``.
      label_smoothing: :math:`\varepsilon` in [0, 1].
      options: PyTorch's ``torch.nn.LinearCrossEntropyOptions`` or ``None``: losskit always
        chunks; a ``batch_chunk_size`` given there sets ``chunk_size``, the other fields
        (accumulation policy and dtype) are PyTorch's kernel's own and have no effect here.
      z_loss, softcap, chunk_size: losskit's options (see :func:`losskit.linear_cross_entropy`).
      bias: the former name of ``linear_bias``; deprecated (a ``DeprecationWarning``).

    Which code runs: class indices without class weights take the chunked Function, which never
    holds the N x V logits (on CPU float32/float64 tensors in eager mode, NumPy's chunk loop on
    the tensors' memory).  Class weights or probability targets materialise the logits once
    and take the fused :func:`cross_entropy` on them.  Under ``torch.compile``/``torch.export``
    and on meta tensors the chunk loop runs as torch operations that the compiler traces and
    differentiates.  ``reduction="none"`` gives each token's gradient its own upstream factor
    (a second chunked sweep in the backward).

    Before PyTorch 2.13's names were adopted, the output layer's weight and bias were
    ``weight`` and ``bias``: ``weight`` is now the class weights, and a 2-d ``weight`` is
    refused with a ``ValueError`` that names ``linear_weight`` (never silently read as class
    weights); ``bias=`` still works with a ``DeprecationWarning``.

    Equivalent: ``torch.nn.functional.linear_cross_entropy`` with the same arguments.
    """
    if bias is not None:
        if linear_bias is not None:
            raise TypeError("pass the output layer's bias once, as linear_bias= (bias= is its former name)")
        warnings.warn(
            "losskit.torch.linear_cross_entropy: bias= is deprecated; pass linear_bias= "
            "(torch.nn.functional.linear_cross_entropy's name)",
            DeprecationWarning,
            stacklevel=2,
        )
        linear_bias = bias
    names = (("input", input), ("linear_weight", linear_weight), ("target", target),
             ("linear_bias", linear_bias), ("weight", weight))  # fmt: skip
    for name, t in names:
        if t is not None and not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor; got {type(t).__name__}")
    if weight is not None and weight.ndim != 1:
        raise ValueError(
            f"weight holds per-class weights of shape (num_classes,), as in "
            f"torch.nn.functional.linear_cross_entropy; got shape {tuple(weight.shape)}. The output "
            "layer's weight (num_classes, in_features) is linear_weight, the second argument"
        )
    if options is not None:
        batch_chunk = getattr(options, "batch_chunk_size", None)
        if batch_chunk is not None:
            chunk_size = batch_chunk
    probabilities = target.is_floating_point()
    if probabilities and ignore_index is not None:
        raise ValueError("ignore_index cannot be given when target holds class probabilities")
    index = -100 if ignore_index is None else ignore_index
    chosen = LinearCrossEntropyOptions(index, label_smoothing, z_loss, softcap, reduction, chunk_size)
    if weight is not None or probabilities:
        return _unchunked_linear_cross_entropy(input, linear_weight, target, linear_bias, weight, chosen)
    xp = namespace(input=input, linear_weight=linear_weight, target=target, linear_bias=linear_bias)
    arrays = LinearCrossEntropyArrays(input, linear_weight, target, linear_bias)
    spec = LinearCrossEntropySpec.of(xp, chosen, arrays, weight_name="linear_weight", bias_name="linear_bias")
    if _traced(input):
        with device_scope(input):
            return portable_linear_cross_entropy(_XP, spec, arrays, frozenset())[0]
    return LinearCrossEntropyFunction.apply(
        input, linear_weight, linear_bias, target, spec, _wanted(input, linear_weight, linear_bias)
    )[0]


def _wanted(input, weight, bias) -> tuple[bool, bool, bool]:
    """The gradients the Function computes in its forward: those autograd will ask for, in
    eager mode (under ``torch.func`` the backward computes them)."""
    if not torch.is_grad_enabled() or any(_wrapped(t) for t in (input, weight, bias)):
        return (False, False, False)
    return (input.requires_grad, weight.requires_grad, bias is not None and bias.requires_grad)


def _unchunked_linear_cross_entropy(input, linear_weight, target, linear_bias, weight, chosen):
    """Class weights or probability targets: the logits once, then the fused cross-entropy."""
    xp = namespace(input=input, linear_weight=linear_weight, linear_bias=linear_bias)
    check_float_array(xp, input, "input")
    check_float_array(xp, linear_weight, "linear_weight")
    if input.ndim < 1 or linear_weight.ndim != 2 or linear_weight.shape[1] != input.shape[-1]:
        raise ValueError(
            f"linear_weight must have shape (num_classes, {input.shape[-1] if input.ndim else '?'}) to "
            f"match input's last axis; got input {tuple(input.shape)} and linear_weight "
            f"{tuple(linear_weight.shape)}"
        )
    if linear_bias is not None and tuple(linear_bias.shape) != (linear_weight.shape[0],):
        raise ValueError(
            f"linear_bias must have shape ({linear_weight.shape[0]},), one value per class; got "
            f"{tuple(linear_bias.shape)}"
        )
    logits = torch.nn.functional.linear(input, linear_weight, linear_bias)
    if chosen.softcap is not None:
        logits = chosen.softcap * torch.tanh(logits / chosen.softcap)
    return cross_entropy(
        logits,
        target,
        weight,
        ignore_index=chosen.ignore_index,
        label_smoothing=chosen.label_smoothing,
        z_loss=chosen.z_loss,
        reduction=chosen.reduction,
    )


def linear_cross_entropy_fast_path(
    spec: LinearCrossEntropySpec, arrays: LinearCrossEntropyArrays, wrt: frozenset[int]
):
    """``losskit.linear_cross_entropy`` on torch tensors that autograd will differentiate in
    eager mode: the chunked Function.  Declines when autograd is off, losskit's own
    ``value_and_grad`` asks (``wrt``), or the tensors are traced, meta, fake or transformed
    by ``torch.func`` (the portable chunk loop then runs as differentiable torch operations)."""
    input, weight, target, bias = arrays
    if wrt or _traced(input) or _wrapped(input) or not _autograd_wants(input, weight, bias):
        return None
    need = _wanted(input, weight, bias)
    return LinearCrossEntropyFunction.apply(input, weight, bias, target, spec, need)[0], {}


# torch.compile cannot follow an import: the torch fast paths are loaded with this module
load_fast_paths("torch")
