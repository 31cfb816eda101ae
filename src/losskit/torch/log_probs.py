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

float32/float64 tensors (any device) run :func:`torch_log_prob_sweep`, the algorithm of the
NumPy kernel (:mod:`losskit.kernels.linear_log_probs`) in torch operations on one reused buffer
with torch's own matrix products (faster than NumPy's BLAS on the same memory); CUDA tensors
with Triton installed run the Triton kernels; low precision is computed in float32.

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
import torch

from ..core.backend import compute_dtype, namespace
from ..core.log_prob_specs import LinearLogProbsArrays, LinearLogProbsOptions, LinearLogProbsSpec
from ..core.specs import options_from, with_options
from ..losses.distillation import distillation_sweep, prepare_distillation
from ..losses.log_probs import LogProbSweep, log_prob_sweep
from . import triton as _triton
from .cpu_matmul import tensor_products

__all__ = [
    "linear_log_probs",
    "LinearLogProbsFunction",
    "linear_log_probs_fast_path",
    "log_prob_chunks_fast_path",
    "torch_log_prob_sweep",
    "LinearDistillationFunction",
    "linear_distillation_fast_path",
]

_XP = array_api_compat.array_namespace(torch.empty(0))


def sweep(x2, w, b, safe_t, spec: LinearLogProbsSpec, **kwargs: Any) -> LogProbSweep:
    """One chunked sweep on torch tensors (see :func:`losskit.losses.log_probs.log_prob_sweep`):
    the in-place torch loop for float32/float64, else the portable loop."""
    if _triton.wanted(x2, w, b, safe_t):  # CUDA tensors, losskit[triton]: the Triton kernels
        return _triton.log_probs_sweep(x2, w, b, safe_t, spec, **kwargs)
    if (
        x2.dtype in (torch.float32, torch.float64)
        and x2.dtype == w.dtype
        and (b is None or b.dtype == w.dtype)
    ):
        return torch_log_prob_sweep(x2, w, b, safe_t, spec, **kwargs)
    return log_prob_sweep(_XP, x2, w, b, safe_t, spec, **kwargs)


def log_prob_chunks_fast_path(x2, w, b, safe_t, spec: LinearLogProbsSpec, **kwargs: Any):
    """The ``("linear_log_probs_chunks", "torch")`` fast path (the chunk loop inside the portable
    :func:`losskit.linear_log_probs`, e.g. under ``losskit.value_and_grad``): the in-place
    torch loop for float32/float64 tensors that autograd does not track; declines others."""
    if torch.is_grad_enabled() and any(a is not None and a.requires_grad for a in (x2, w, b)):
        return None
    if x2.dtype not in (torch.float32, torch.float64) or w.dtype != x2.dtype:
        return None
    if b is not None and b.dtype != x2.dtype:
        return None
    return tuple(torch_log_prob_sweep(x2, w, b, safe_t, spec, **kwargs))


@torch.no_grad()
def torch_log_prob_sweep(
    x2: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor | None,
    safe_t: torch.Tensor,
    spec: LinearLogProbsSpec,
    *,
    entropy: bool = False,
    cotangents: tuple[torch.Tensor, torch.Tensor | None] | None = None,
    stats: tuple[torch.Tensor, torch.Tensor | None] | None = None,
    need: tuple[bool, bool, bool] = (False, False, False),
) -> LogProbSweep:
    """The chunk loop of :func:`losskit.losses.log_probs.log_prob_sweep` in torch operations
    on one reused ``(chunk, vocab_chunk)`` buffer, in place (any device): the same algorithm
    and derivation as the NumPy kernel of :mod:`losskit.kernels.linear_log_probs`.  The matrix
    products are torch's, or on eager CPU tensors whichever of NumPy's and PyTorch's BLAS is
    faster for the chunk's shape (:mod:`losskit.torch.cpu_matmul`); the weight gradient
    accumulates inside the product (``beta = 1``), without a temporary."""
    n, d = x2.shape
    v = w.shape[0]
    dtype, device = x2.dtype, x2.device
    chunk, vb = spec.chunk, spec.vocab_chunk
    inv_t = 1.0 / spec.temperature
    blocks = [(v0, min(v, v0 + vb)) for v0 in range(0, v, vb)]
    single = len(blocks) == 1
    deferred = callable(cotangents)  # (lo, hi, log_probs) -> (g, None), once per chunk
    g_all, h_all = (None, None) if cotangents is None or deferred else cotangents
    grads = cotangents is not None and any(need)
    need_x, need_w = grads and need[0], grads and need[1]
    need_b = grads and need[2] and b is not None
    want_zbar = entropy or h_all is not None
    compute_stats = stats is None
    rows_max = min(chunk, n)
    flat = torch.empty(rows_max * min(vb, v), dtype=dtype, device=device)
    eflat = torch.empty_like(flat) if want_zbar else None
    empty = lambda: torch.empty(n, dtype=dtype, device=device)  # noqa: E731
    lp = empty() if compute_stats else None
    ent = empty() if compute_stats and entropy else None
    lse_all = empty() if compute_stats else stats[0].to(dtype)
    zbar_all = None
    if compute_stats and want_zbar:
        zbar_all = empty()
    elif not compute_stats and stats[1] is not None:
        zbar_all = stats[1].to(dtype)
    gx = torch.empty((n, d), dtype=dtype, device=device) if need_x else None
    gw = torch.empty((v, d), dtype=dtype, device=device) if need_w else None
    gb = torch.zeros(v, dtype=dtype, device=device) if need_b else None
    matmul, matmul_add = tensor_products(x2, w, b)

    def view(buf: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
        return buf[: rows * cols].view(rows, cols)  # contiguous, so out= writes in place

    def logits(xc: torch.Tensor, v0: int, v1: int) -> torch.Tensor:
        lb = view(flat, xc.shape[0], v1 - v0)
        matmul(xc, w[v0:v1].T, lb)
        if b is not None:
            lb.add_(b[v0:v1])
        if inv_t != 1.0:
            lb.mul_(inv_t)
        return lb

    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        rows = hi - lo
        xc = x2[lo:hi]
        tc = safe_t[lo:hi]
        ar = torch.arange(rows, device=device)
        reuse = False
        if compute_stats:
            m = s = a = None
            zt = torch.zeros(rows, dtype=dtype, device=device)
            for v0, v1 in blocks:
                lb = logits(xc, v0, v1)
                inside = (tc >= v0) & (tc < v1)
                local = torch.where(inside, tc - v0, 0)
                zt = torch.where(inside, lb[ar, local], zt)
                bm = lb.amax(dim=1)
                m_new = bm if m is None else torch.maximum(m, bm)
                lb.sub_(m_new[:, None])  # z - m'
                if want_zbar:
                    eb = view(eflat, rows, v1 - v0)
                    torch.exp(lb, out=eb)
                    bs = eb.sum(dim=1)
                    ba = torch.linalg.vecdot(eb, lb)
                else:
                    lb.exp_()
                    bs = lb.sum(dim=1)
                    ba = None
                if m is None:
                    s, a = bs, ba
                else:  # online log-sum-exp: rescale by e^(m - m') (see the NumPy kernel)
                    dm = m - m_new
                    r = torch.exp(dm)
                    if want_zbar:
                        a = r * (a + dm * s) + ba
                    s = r * s + bs
                m = m_new
            log_s = torch.log(s)
            lse = m + log_s
            lse_all[lo:hi] = lse
            lp[lo:hi] = zt - lse
            if want_zbar:
                mean_shift = a / s
                zbar_all[lo:hi] = m + mean_shift
                if entropy:
                    ent[lo:hi] = log_s - mean_shift
            reuse = single
        if not grads:
            continue
        if deferred:
            g, h = cotangents(lo, hi, lp[lo:hi])
            g = g.to(dtype)
        else:
            g = g_all[lo:hi].to(dtype)
            h = None if h_all is None else h_all[lo:hi].to(dtype)
        lse = lse_all[lo:hi]
        for j, (v0, v1) in enumerate(blocks):
            if reuse:  # the buffer holds z - m (with the entropy) or e^(z - m); p = e^(z - m) / s
                lb = view(flat, rows, v1 - v0)
                if h is None:
                    src = view(eflat, rows, v1 - v0) if want_zbar else lb
                    torch.mul(src, (-inv_t * g / s)[:, None], out=lb)  # -g p / T
                else:
                    eb = view(eflat, rows, v1 - v0)
                    lb.sub_((a / s)[:, None]).mul_(h[:, None]).add_(g[:, None])  # g + h (z - zbar)
                    lb.mul_(eb).mul_((-inv_t / s)[:, None])  # -p (g + h (z - zbar)) / T
            else:
                lb = logits(xc, v0, v1)
                lb.sub_(lse[:, None])  # log p
                if h is None:
                    lb.exp_().mul_((-inv_t * g)[:, None])
                else:
                    eb = view(eflat, rows, v1 - v0)
                    torch.exp(lb, out=eb)  # p
                    lb.add_((lse - zbar_all[lo:hi])[:, None]).mul_(h[:, None]).add_(g[:, None])
                    lb.mul_(eb).mul_(-inv_t)
            inside = (tc >= v0) & (tc < v1)
            idx = ar[inside]
            lb.index_put_((idx, tc[inside] - v0), inv_t * g[inside], accumulate=True)  # + g [v = t] / T
            if need_x:
                if j == 0:
                    matmul(lb, w[v0:v1], gx[lo:hi])
                else:
                    matmul_add(lb, w[v0:v1], gx[lo:hi])
            if need_w:
                if lo == 0:
                    matmul(lb.T, xc, gw[v0:v1])
                else:
                    matmul_add(lb.T, xc, gw[v0:v1])
            if need_b:
                gb[v0:v1] += lb.sum(dim=0)
    return LogProbSweep(
        lp,
        ent,
        lse_all if compute_stats else None,
        zbar_all if compute_stats else None,
        gx,
        gw,
        gb,
    )


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
    if xs.dtype in (torch.float32, torch.float64) and all(a is None or a.dtype == xs.dtype for a in heads):
        return torch_distillation_sweep(xs, ws, bs, xt, wt, bt, row_scale, spec, need)
    return distillation_sweep(_XP, xs, ws, bs, xt, wt, bt, row_scale, spec, need)


def _log_softmax_(z: torch.Tensor) -> torch.Tensor:
    """``z`` turned into its row log-softmax in place (one temporary for the exponentials)."""
    z.sub_(z.amax(dim=1, keepdim=True))
    return z.sub_(torch.exp(z).sum(dim=1, keepdim=True).log_())


def _divergence_(s: torch.Tensor, t: torch.Tensor, spec, need_grad: bool):
    """Per-row divergence of the tempered student logits ``s`` from the teacher's ``t`` (both
    consumed) and, if asked, its gradient with respect to ``s`` (written into ``s``'s memory);
    the formulas and derivatives of :mod:`losskit.losses.distillation`, with few passes over
    the chunk and two temporaries."""
    ls, lt = _log_softmax_(s), _log_softmax_(t)  # log Q (student), log P (teacher)
    vecdot = torch.linalg.vecdot
    if spec.divergence == "forward_kl":
        p = torch.exp(lt)
        loss = vecdot(p, lt.sub_(ls))  # sum P (log P - log Q)
        return loss, (ls.exp_().sub_(p) if need_grad else None)  # Q - P
    if spec.divergence == "reverse_kl":
        q = torch.exp(ls)
        r = ls.sub_(lt)  # log Q - log P
        loss = vecdot(q, r)
        return loss, (r.sub_(loss[:, None]).mul_(q) if need_grad else None)  # Q (r - KL)
    beta = spec.beta
    q, p = torch.exp(ls), torch.exp(lt)
    # log M, M = beta P + (1 - beta) Q; an M that underflows has P and Q below it, so clamping
    # it at the smallest normal number leaves their (vanishing) terms finite
    log_m = torch.lerp(q, p, beta).clamp_(min=torch.finfo(q.dtype).tiny).log_()
    lt.sub_(log_m)
    ls.sub_(log_m)
    loss = beta * vecdot(p, lt) + (1.0 - beta) * vecdot(q, ls)
    if not need_grad:
        return loss, None
    u = ls.mul_(1.0 - beta)  # u = (1 - beta)(log Q - log M)
    return loss, u.sub_(vecdot(q, u)[:, None]).mul_(q)  # Q (u - sum Q u)


@torch.no_grad()
def torch_distillation_sweep(xs, ws, bs, xt, wt, bt, row_scale, spec, need):
    """:func:`losskit.losses.distillation.distillation_sweep` in torch operations, the two
    logits blocks of a chunk, written into two reused buffers, turned in place into the
    divergence and the student's logit gradient.  The products are those of
    :func:`losskit.torch.cpu_matmul.tensor_products` (on CPU the faster of NumPy's and
    PyTorch's BLAS); the weight gradient accumulates inside the product."""
    n, d = xs.shape
    v = ws.shape[0]
    inv_t = 1.0 / spec.temperature
    need_any = any(need) and row_scale is not None
    losses = torch.empty(n, dtype=xs.dtype, device=xs.device)
    gx = torch.empty((n, d), dtype=xs.dtype, device=xs.device) if need_any and need[0] else None
    gw = torch.empty((v, d), dtype=xs.dtype, device=xs.device) if need_any and need[1] else None
    gb = torch.zeros(v, dtype=xs.dtype, device=xs.device) if need_any and need[2] else None
    matmul, matmul_add = tensor_products(xs, ws, bs, xt, wt, bt)
    rows_max = min(spec.chunk, n)
    s_buf = torch.empty((rows_max, v), dtype=xs.dtype, device=xs.device)
    t_buf = torch.empty((rows_max, v), dtype=xt.dtype, device=xt.device)
    for lo in range(0, n, spec.chunk):
        hi = min(n, lo + spec.chunk)
        xc = xs[lo:hi]
        s, t = s_buf[: hi - lo], t_buf[: hi - lo]
        matmul(xc, ws.T, s)
        matmul(xt[lo:hi], wt.T, t)
        if bs is not None:
            s.add_(bs)
        if bt is not None:
            t.add_(bt)
        if inv_t != 1.0:
            s.mul_(inv_t)
            t.mul_(inv_t)
        loss, g = _divergence_(s, t, spec, need_any)
        losses[lo:hi] = loss
        if not need_any:
            continue
        g.mul_((row_scale[lo:hi] * inv_t)[:, None])
        if gx is not None:
            matmul(g, ws, gx[lo:hi])
        if gw is not None:
            if lo == 0:
                matmul(g.T, xc, gw)
            else:
                matmul_add(g.T, xc, gw)
        if gb is not None:
            gb += g.sum(dim=0)
    return losses, gx, gw, gb


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
