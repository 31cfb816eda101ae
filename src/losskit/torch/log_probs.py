"""Per-token log-probabilities of a linear head, and distillation from hidden states, as
``torch.autograd.Function``\\ s.

:func:`linear_log_probs` computes ``log_softmax((hidden @ weight.T + bias) / T)`` at the given
tokens (and on request the entropies) chunk by chunk, never holding the N x V logits.  The
forward keeps two numbers per token, the log-sum-exp :math:`\\mathrm{lse}_i` and the softmax
mean :math:`\\bar z_i` of the tempered logits; the backward receives one upstream factor per
token for each output (:math:`g_i` for the log-prob, :math:`h_i` for the entropy) and makes one
more chunked sweep that recomputes each block of logits and folds

.. math::

   G_{iv} = \\big(g_i([v = t_i] - p_{iv}) - h_i\\,p_{iv}(z_{iv} - \\bar z_i)\\big) / T

into the gradients of the hidden states (:math:`G W`), the weight (:math:`G^\\top x`) and the
bias (:math:`\\sum_i G_i`); see :mod:`losskit.losses.log_probs` for the derivation.

On CPU float32/float64 tensors the sweeps run in the NumPy kernel of
:mod:`losskit.kernels.linear_log_probs` on the tensors' own memory; other devices and dtypes use
the portable loop (low precision computed in float32).

:func:`linear_log_probs_fast_path` is the ``("linear_log_probs", "torch")`` fast path of
:func:`losskit.linear_log_probs`: tensors that autograd will differentiate take the Function.

:class:`LinearDistillationFunction` is :func:`losskit.linear_distillation` on tensors whose
student autograd differentiates (``linear_distillation_fast_path``): the divergence of each
chunk and the gradient of its student logits are computed together, so the backward of a
``"mean"``/``"sum"`` loss is one multiply.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np
import torch

from ..core.backend import compute_dtype, namespace
from ..core.log_prob_specs import LinearLogProbsArrays, LinearLogProbsOptions, LinearLogProbsSpec
from ..core.specs import options_from, with_options
from ..losses.distillation import distillation_sweep, prepare_distillation
from ..losses.log_probs import LogProbSweep, log_prob_sweep, run_sweep
from . import triton as _triton

__all__ = [
    "linear_log_probs",
    "LinearLogProbsFunction",
    "linear_log_probs_fast_path",
    "LinearDistillationFunction",
    "linear_distillation_fast_path",
]

_XP = array_api_compat.array_namespace(torch.empty(0))
_NP = array_api_compat.array_namespace(np.empty(0))


def _numpy_ok(*tensors: torch.Tensor | None) -> bool:
    """CPU float32/float64 tensors NumPy can view without copying."""
    return all(
        t is None
        or (t.device.type == "cpu" and not t.is_sparse and t.dtype in (torch.float32, torch.float64))
        for t in tensors
    )


def sweep(x2, w, b, safe_t, spec: LinearLogProbsSpec, **kwargs: Any) -> LogProbSweep:
    """One chunked sweep on torch tensors (see :func:`losskit.losses.log_probs.log_prob_sweep`):
    the NumPy kernel on CPU float32/float64 memory, else the portable loop."""
    if _triton.wanted(x2, w, b, safe_t):  # CUDA tensors, losskit[triton]: the Triton kernels
        return _triton.log_probs_sweep(x2, w, b, safe_t, spec, **kwargs)
    if _numpy_ok(x2, w, b):
        as_np = lambda a: None if a is None else a.detach().contiguous().numpy()  # noqa: E731
        kw = dict(kwargs)
        for key in ("cotangents", "stats"):
            if kw.get(key) is not None:
                kw[key] = tuple(as_np(a) for a in kw[key])
        res = run_sweep(_NP, as_np(x2), as_np(w), as_np(b), as_np(safe_t), spec, **kw)
        return LogProbSweep(*(None if a is None else torch.from_numpy(np.asarray(a)) for a in res))
    return log_prob_sweep(_XP, x2, w, b, safe_t, spec, **kwargs)


def _prepare(hidden, weight, bias, tokens, spec: LinearLogProbsSpec):
    out_dtype = torch.promote_types(hidden.dtype, weight.dtype)
    dtype = compute_dtype(torch, out_dtype)
    x2 = hidden.detach().reshape(spec.num_tokens, spec.hidden_size).to(dtype)
    w = weight.detach().to(dtype)
    b = None if bias is None else bias.detach().to(dtype)
    t = tokens.reshape(-1)
    valid = t != spec.ignore_index
    safe_t = torch.where(valid, t, torch.zeros_like(t))
    return out_dtype, dtype, x2, w, b, safe_t, valid


class LinearLogProbsFunction(torch.autograd.Function):
    """``losskit.linear_log_probs`` as an autograd Function (see the module).

    ``apply(hidden, weight, bias, tokens, spec)`` returns ``(log_probs, entropy, lse, zbar)``;
    ``entropy`` is an empty tensor unless ``spec.return_entropy``, and ``lse``/``zbar`` (the
    statistics the backward needs) are not differentiable.
    """

    @staticmethod
    def forward(hidden, weight, bias, tokens, spec: LinearLogProbsSpec):
        out_dtype, dtype, x2, w, b, safe_t, valid = _prepare(hidden, weight, bias, tokens, spec)
        res = sweep(x2, w, b, safe_t, spec, entropy=spec.return_entropy)
        zero = torch.zeros((), dtype=dtype)
        log_probs = torch.where(valid, res.log_probs, zero).reshape(spec.lead_shape).to(out_dtype)
        if spec.return_entropy:
            entropy = torch.where(valid, res.entropy, zero).reshape(spec.lead_shape).to(out_dtype)
            zbar = res.zbar
        else:
            entropy = log_probs.new_empty((0,))
            zbar = res.lse.new_empty((0,))
        return log_probs, entropy, res.lse, zbar

    @staticmethod
    def setup_context(ctx, inputs, output):
        hidden, weight, bias, tokens, spec = inputs
        _, entropy, lse, zbar = output
        ctx.mark_non_differentiable(lse, zbar)
        if not spec.return_entropy:
            ctx.mark_non_differentiable(entropy)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(hidden, weight, bias, tokens, lse, zbar)
        ctx.spec = spec

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_log_probs, grad_entropy, _grad_lse, _grad_zbar):
        hidden, weight, bias, tokens, lse, zbar = ctx.saved_tensors
        spec = ctx.spec
        wants = ctx.needs_input_grad
        need = (wants[0], wants[1], bias is not None and wants[2])
        if not spec.return_entropy:
            grad_entropy = None
        if (grad_log_probs is None and grad_entropy is None) or not any(need):
            return None, None, None, None, None
        out_dtype, dtype, x2, w, b, safe_t, valid = _prepare(hidden, weight, bias, tokens, spec)
        zero = torch.zeros((), dtype=dtype)

        def masked(g):
            return torch.where(valid, g.reshape(-1).to(dtype), zero)

        g = (
            masked(grad_log_probs)
            if grad_log_probs is not None
            else torch.zeros(spec.num_tokens, dtype=dtype)
        )
        h = None if grad_entropy is None else masked(grad_entropy)
        stats = (lse, zbar if h is not None else None)
        res = sweep(x2, w, b, safe_t, spec, cotangents=(g, h), stats=stats, need=need)
        gx = None if res.grad_hidden is None else res.grad_hidden.reshape(hidden.shape).to(hidden.dtype)
        gw = None if res.grad_weight is None else res.grad_weight.to(weight.dtype)
        gb = None if res.grad_bias is None else res.grad_bias.to(bias.dtype)
        return gx, gw, gb, None, None


def _apply(arrays: LinearLogProbsArrays, spec: LinearLogProbsSpec):
    hidden, weight, tokens, bias = arrays
    log_probs, entropy, _, _ = LinearLogProbsFunction.apply(hidden, weight, bias, tokens, spec)
    return (log_probs, entropy) if spec.return_entropy else log_probs


@with_options(LinearLogProbsOptions)
def linear_log_probs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    tokens: torch.Tensor,
    bias: torch.Tensor | None = None,
    **options: Any,
):
    r"""Per-token log-probabilities of a linear head for PyTorch, differentiable in ``hidden``,
    ``weight`` and ``bias``, never holding the N x V logits.

    Same formula, options and defaults as :func:`losskit.linear_log_probs` (keyword options
    ``temperature``, ``ignore_index``, ``return_entropy``, ``chunk_size``,
    ``vocab_chunk_size``): ``log_softmax((hidden @ weight.T + bias) / T)`` at ``tokens``, 0 at
    ignored tokens; with ``return_entropy=True`` the pair ``(log_probs, entropy)``.  Each output
    takes its own upstream gradient per token, so any loss built on the log-probs (and the
    entropies) backpropagates exactly; the backward recomputes the logits chunk by chunk.

    Equivalent: ``torch.log_softmax(F.linear(hidden, weight, bias) / T, -1).gather(-1,
    tokens[..., None])[..., 0]``.
    """
    for name, t in (("hidden", hidden), ("weight", weight), ("tokens", tokens), ("bias", bias)):
        if t is not None and not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor; got {type(t).__name__}")
    xp = namespace(hidden=hidden, weight=weight, tokens=tokens, bias=bias)
    chosen = options_from(LinearLogProbsOptions, options, "losskit.torch.linear_log_probs")
    arrays = LinearLogProbsArrays(hidden, weight, tokens, bias)
    spec = LinearLogProbsSpec.of(xp, chosen, arrays)
    return _apply(arrays, spec)


def linear_log_probs_fast_path(spec: LinearLogProbsSpec, arrays: LinearLogProbsArrays, wrt: frozenset[int]):
    """``losskit.linear_log_probs`` on torch tensors that autograd will differentiate: the
    Function.  Declines when autograd is off or losskit's own ``value_and_grad`` asks
    (``wrt``)."""
    hidden, weight, tokens, bias = arrays
    if wrt or not torch.is_grad_enabled():
        return None
    if not any(a is not None and a.requires_grad for a in (hidden, weight, bias)):
        return None
    return _apply(arrays, spec), {}


# -- distillation from hidden states ---------------------------------------------------------------


class LinearDistillationFunction(torch.autograd.Function):
    """``losskit.linear_distillation`` as an autograd Function: gradients for the student's
    hidden states, weight and bias (the teacher is constant).

    ``"mean"``/``"sum"``: the forward computes the loss and the student's gradients in one
    chunked sweep (the gradient of each chunk's logits is folded in while the chunk's two
    softmaxes are at hand); the backward scales them.  ``"none"``: each token's upstream
    factor is known only in the backward, which makes one more sweep with those factors.
    """

    @staticmethod
    def forward(ctx, sh, sw, sb, th, tw, tb, where, spec, need):
        arrays = (sh.detach(), sw.detach(), th.detach(), tw.detach())
        arrays = arrays + tuple(None if a is None else a.detach() for a in (sb, tb)) + (where,)
        out_dtype, dtype, heads, valid, row_scale, factor = prepare_distillation(_XP, spec, arrays)
        now = any(need) and spec.reduction != "none"
        row_loss, gx, gw, gb = _distill_sweep(heads, row_scale if now else None, spec, need)
        per_token = torch.where(valid, row_loss, torch.zeros((), dtype=row_loss.dtype))
        if spec.reduction == "none":
            value = per_token.reshape(spec.lead_shape)
        else:
            value = per_token.sum() * factor
        ctx.spec = spec
        ctx.shapes = (tuple(sh.shape), sh.dtype, sw.dtype, None if sb is None else sb.dtype)
        if now:
            ctx.grads = (gx, gw, gb)
        else:
            ctx.grads = None
            ctx.sweep = (heads, valid, need)
        return value.to(out_dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        shape, x_dtype, w_dtype, b_dtype = ctx.shapes
        if ctx.grads is not None:
            gx, gw, gb = (None if g is None else g * grad_output.to(g.dtype) for g in ctx.grads)
        else:
            heads, valid, need = ctx.sweep
            dtype = heads[0].dtype
            scale = torch.where(valid, grad_output.reshape(-1).to(dtype), torch.zeros((), dtype=dtype))
            _, gx, gw, gb = _distill_sweep(heads, scale, ctx.spec, need)
        gx = None if gx is None else gx.reshape(shape).to(x_dtype)
        gw = None if gw is None else gw.to(w_dtype)
        gb = None if gb is None else gb.to(b_dtype)
        return gx, gw, gb, None, None, None, None, None, None


def _distill_sweep(heads, row_scale, spec, need):
    xs, ws, bs, xt, wt, bt = heads
    return distillation_sweep(_XP, xs, ws, bs, xt, wt, bt, row_scale, spec, need)


def linear_distillation_fast_path(spec, arrays, wrt: frozenset[int]):
    """``losskit.linear_distillation`` on torch tensors whose student autograd will
    differentiate: the Function.  Declines when autograd is off, losskit's own
    ``value_and_grad`` asks (``wrt``), or the teacher requires a gradient (it is a constant
    here; autograd through the portable loop then serves it)."""
    sh, sw, th, tw, sb, tb, where = arrays
    if wrt or not torch.is_grad_enabled():
        return None
    if any(a is not None and a.requires_grad for a in (th, tw, tb)):
        return None
    need = (sh.requires_grad, sw.requires_grad, sb is not None and sb.requires_grad)
    if not any(need):
        return None
    return LinearDistillationFunction.apply(sh, sw, sb, th, tw, tb, where, spec, need), {}
