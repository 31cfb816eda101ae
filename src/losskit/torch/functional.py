"""Fused cross-entropy and chunked linear cross-entropy as ``torch.autograd.Function``\\ s.

Both compute the gradient during the forward pass, while the softmax is at hand, and keep only
that gradient for the backward, which is then a single multiply by the incoming gradient (a
scalar for ``"mean"``/``"sum"``, one factor per token for ``"none"``).  PyTorch's own
``F.cross_entropy`` keeps the log-probabilities and builds two more N x V buffers in the
backward; these keep one (cross-entropy) or none (linear cross-entropy).

On CPU float32/float64 tensors the work is done by :mod:`losskit.fused`'s row-blocked kernel
and :mod:`losskit.linear`'s chunk loop on the tensors' own memory (NumPy views, no copies);
other devices and dtypes use the same algorithm in portable array-API operations.

The gradient buffer is handed to autograd in the backward and not kept, so a second backward
through the same graph (``retain_graph=True``) raises a clear error instead of silently
returning a consumed buffer.
"""

from __future__ import annotations

import torch

from .._validation import check_reduction

__all__ = ["cross_entropy", "linear_cross_entropy", "CrossEntropyFunction", "LinearCrossEntropyFunction"]

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
    def forward(ctx, input, target, weight, where, normalizer, options):
        from ..fused import fused_cross_entropy

        need = ctx.needs_input_grad[0]
        reduction = options["reduction"]
        ctx.reduction = reduction
        inplace = options.pop("inplace") and need
        norm = normalizer
        if isinstance(normalizer, torch.Tensor):
            norm = _as_numpy(normalizer) if _numpy_ok(input) else normalizer
        if _numpy_ok(input, target, weight, where) and input.dtype in (torch.float32, torch.float64):
            x = input.detach()
            if inplace and not x.is_contiguous():
                raise ValueError("inplace=True needs a contiguous input tensor")
            value, g = fused_cross_entropy(
                x.numpy(),
                target.numpy(),
                _as_numpy(weight),
                where=_as_numpy(where),
                normalizer=norm,
                grad=need,
                inplace=inplace,
                **options,
            )
            value = torch.as_tensor(value)
            if need:
                if inplace:
                    g = input
                    # the logits now hold the gradient: make autograd refuse stale uses of them
                    torch.autograd.graph.increment_version(input)
                else:
                    g = torch.from_numpy(g)
        else:  # any device or dtype: the array-API implementation, value and gradient at once
            import losskit

            fn = losskit.value_and_grad(losskit.cross_entropy) if need else losskit.cross_entropy
            out = fn(input.detach(), target, weight, where=where, normalizer=normalizer, **options)
            value, g = out if need else (out, None)
            if need and inplace:
                input.detach().copy_(g)
                g = input
        ctx.axis = options["axis"] % input.ndim
        ctx.grad_input = g
        ctx.inplace = inplace
        if need and not inplace:
            # kept for a second backward (retain_graph) or a differentiable one (create_graph)
            ctx.save_for_backward(input)
            ctx.recompute = (target, weight, where, normalizer, dict(options, reduction=reduction))
        return value

    @staticmethod
    def backward(ctx, grad_output):
        g = ctx.grad_input
        if torch.is_grad_enabled() or g is None:
            if ctx.inplace:
                raise RuntimeError(_CONSUMED.format(name="cross_entropy"))
            # create_graph=True, or the saved gradient was already handed over: recompute it
            # from the logits with differentiable torch operations, so higher orders work
            import losskit

            (x,) = ctx.saved_tensors
            target, weight, where, normalizer, options = ctx.recompute
            _, g = losskit.value_and_grad(losskit.cross_entropy)(
                x, target, weight, where=where, normalizer=normalizer, **options
            )
            scale = grad_output.unsqueeze(ctx.axis) if ctx.reduction == "none" else grad_output
            return g * scale.to(g.dtype), None, None, None, None, None
        ctx.grad_input = None  # hand the buffer over: autograd can then keep it without a copy
        return _scale_(g, grad_output, ctx.reduction, ctx.axis), None, None, None, None, None


def cross_entropy(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    axis: int = -1,
    temperature: float = 1.0,
    *,
    reduction: str = "mean",
    where: torch.Tensor | None = None,
    z_loss: float = 0.0,
    normalizer: float | torch.Tensor | None = None,
    inplace: bool = False,
) -> torch.Tensor:
    r"""Fused cross-entropy for PyTorch: :func:`losskit.cross_entropy`'s value, differentiable
    through a ``torch.autograd.Function`` whose gradient is computed in the forward.

    Same formula, options and defaults as :func:`losskit.cross_entropy` (class axis ``axis``,
    default -1; PyTorch's ``(N, C, d1, ...)`` layout is ``axis=1``).  The backward multiplies
    the saved gradient by the incoming one; with ``reduction="none"`` every token's gradient
    is scaled by its own upstream factor, so ``loss.mul(w).sum().backward()`` is exact.

    Memory: the forward keeps one gradient buffer of ``input``'s size (PyTorch keeps the
    log-probabilities and allocates two more in the backward).  ``inplace=True`` writes the
    gradient into ``input``'s own storage -- use it when nothing else needs the logits after
    the loss (e.g. they come straight out of a linear layer); the extra memory is then O(N).
    autograd's version counter is bumped, so an operation that saved the logits fails loudly.

    Only ``input`` is differentiated (``target``, ``weight`` and ``where`` get no gradient).

    Equivalent: ``torch.nn.functional.cross_entropy(input, target, ...)`` with ``dim`` moved to
    ``axis``; Liger's and Apple's fused cross-entropy kernels.
    """
    if not isinstance(input, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError(
            f"input and target must be torch tensors; got {type(input).__name__} and {type(target).__name__}"
        )
    if not isinstance(inplace, bool):
        raise TypeError(f"inplace must be a bool; got {type(inplace).__name__}")
    check_reduction(reduction)
    ndim = max(input.ndim, 1)
    if isinstance(axis, bool) or not isinstance(axis, int) or not -ndim <= axis < ndim:
        raise ValueError(f"axis={axis!r} is out of range for an input with {input.ndim} dimensions")
    options = dict(
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        axis=axis,
        temperature=temperature,
        reduction=reduction,
        z_loss=z_loss,
        inplace=inplace,
    )
    return CrossEntropyFunction.apply(input, target, weight, where, normalizer, options)


class LinearCrossEntropyFunction(torch.autograd.Function):
    """``losskit.linear_cross_entropy`` as an autograd Function (see the module).

    ``"mean"``/``"sum"``: the forward computes the loss and all three gradients in one chunked
    sweep; the backward scales them.  ``"none"``: the upstream gradient differs per token and
    is only known in the backward, so the forward computes the losses alone and the backward
    makes one more sweep with each token's gradient scaled by its own upstream factor.
    """

    @staticmethod
    def forward(ctx, input, weight, bias, target, options):
        from ..linear import auto_chunk_size, check_linear_ce_args

        xp = _torch_xp()
        num_classes, eps, z, cap = check_linear_ce_args(
            xp,
            input,
            weight,
            target,
            bias,
            options["ignore_index"],
            options["label_smoothing"],
            options["z_loss"],
            options["softcap"],
            options["reduction"],
            options["chunk_size"],
        )
        reduction = options["reduction"]
        lead = tuple(input.shape[:-1])
        d = input.shape[-1]
        x2 = input.detach().reshape(-1, d)
        n = x2.shape[0]
        t = target.reshape(-1)
        valid = t != options["ignore_index"]
        safe_t = torch.where(valid, t, torch.zeros_like(t))
        chunk = options["chunk_size"]
        chunk = auto_chunk_size(n, num_classes, 4) if chunk == "auto" else min(chunk, n)
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
        params = (eps, z, cap, chunk)
        w = weight.detach()
        b = None if bias is None else bias.detach()
        fast = _numpy_ok(input, weight, bias, target) and dtype in (torch.float32, torch.float64)
        run = _numpy_sweep if fast else _xp_sweep
        row_loss, gx, gw, gb = run(
            x2, w, b, safe_t, valid, row_scale, params, need if grads_now else (False,) * 3, dtype
        )
        per_token = torch.where(valid, row_loss, torch.zeros_like(row_loss))
        if reduction == "none":
            value = per_token.reshape(lead)
        else:
            value = (per_token.sum(dtype=torch.float64) * factor).to(row_loss.dtype)
        ctx.reduction = reduction
        ctx.shapes = (tuple(input.shape), input.dtype, weight.dtype, None if bias is None else bias.dtype)
        if grads_now:
            ctx.grads = [gx, gw, gb]
        else:
            ctx.grads = None
            ctx.sweep = (run, x2, w, b, safe_t, valid, params, need, dtype)
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
            run, x2, w, b, safe_t, valid, params, need, dtype = ctx.sweep
            scale = torch.where(valid, grad_output.reshape(-1).to(dtype), torch.zeros((), dtype=dtype))
            _, gx, gw, gb = run(x2, w, b, safe_t, valid, scale, params, need, dtype)
        gx = None if gx is None else gx.reshape(shape).to(in_dtype)
        gw = None if gw is None else gw.to(w_dtype)
        gb = None if gb is None else gb.to(b_dtype)
        return gx, gw, gb, None, None


def _torch_xp():
    import array_api_compat

    return array_api_compat.array_namespace(torch.empty(0))


def _numpy_sweep(x2, w, b, safe_t, valid, row_scale, params, need, dtype):
    """The NumPy chunk loop of :mod:`losskit.linear` on the tensors' memory."""
    from ..linear import numpy_core

    eps, z, cap, chunk = params
    x2 = x2.to(dtype).contiguous()
    w = w.to(dtype)
    b = None if b is None else b.to(dtype)
    row_loss, gx, gw, gb = numpy_core(
        x2.numpy(),
        w.numpy(),
        None if b is None else b.numpy(),
        safe_t.numpy(),
        valid.numpy(),
        row_scale.to(dtype).numpy(),
        eps,
        z,
        cap,
        chunk,
        need,
    )
    wrap = lambda a: None if a is None else torch.from_numpy(a)  # noqa: E731
    return wrap(row_loss), wrap(gx), wrap(gw), wrap(gb)


def _xp_sweep(x2, w, b, safe_t, valid, row_scale, params, need, dtype):
    """The portable chunk loop (any device, any dtype; low precision computed in float32)."""
    from ..linear import xp_core

    eps, z, cap, chunk = params
    cdt = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    xp = _torch_xp()
    return xp_core(
        xp,
        x2.to(cdt),
        w.to(cdt),
        None if b is None else b.to(cdt),
        safe_t,
        valid,
        row_scale.to(cdt),
        eps,
        z,
        cap,
        chunk,
        need,
    )


def linear_cross_entropy(
    input: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
    reduction: str = "mean",
    chunk_size: int | str = "auto",
) -> torch.Tensor:
    r"""Chunked linear + cross-entropy for PyTorch, differentiable in ``input``, ``weight``
    and ``bias``, never holding the N x V logits.

    Same formula, options and defaults as :func:`losskit.linear_cross_entropy`:
    ``cross_entropy(input @ weight.T + bias, target)`` with optional label smoothing, z-loss
    and logit soft-capping; ``input`` is ``(..., D)``, ``weight`` ``(V, D)``, ``bias``
    ``(V,)``, ``target`` integer ``input.shape[:-1]``.  ``"mean"`` over zero counted tokens
    is 0 with zero gradients.  ``reduction="none"`` gives each token's gradient its own
    upstream factor (computed by a second chunked sweep in the backward).

    Equivalent: ``torch.nn.functional.linear_cross_entropy(input, weight, target,
    linear_bias=bias, reduction=..., ignore_index=..., label_smoothing=...)``.
    """
    for name, t in (("input", input), ("weight", weight), ("target", target), ("bias", bias)):
        if t is not None and not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor; got {type(t).__name__}")
    options = dict(
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        softcap=softcap,
        reduction=reduction,
        chunk_size=chunk_size,
    )
    return LinearCrossEntropyFunction.apply(input, weight, bias, target, options)
