r"""Losses across processes on ``torch.distributed``: vocabulary-parallel cross-entropy (plain and
fused with the output layer) and InfoNCE with negatives gathered from every rank.

Import explicitly (``import losskit.torch.distributed``); it needs an initialised process group
(``torch.distributed.init_process_group``), any backend (gloo on CPU, NCCL on GPU).

Every function here is collective: all ranks of ``group`` must call it, in the same order, with
tensors of the same shapes (the cross-entropies check the token counts and hidden sizes in
their first collective and raise ``ValueError`` on every rank when the ranks disagree).  The
number of collectives per call is stated in each docstring, so the communication cost of a
training step can be counted:

===========================================  ==========================  =========================
function                                     forward                     backward
===========================================  ==========================  =========================
:func:`vocab_parallel_cross_entropy`         2 all-reduces (max,         none
                                             sum) (*)
:func:`vocab_parallel_linear_cross_entropy`  2 all-reduces (max,         1 all-reduce (sum), for
                                             sum) (*)                    the input's gradient
:func:`gathered_info_nce`                    1 all-gather (2 with        1 reduce-scatter (sum)
                                             ``symmetric=True`` or       per gathered tensor
                                             ``local_loss=False``)
:func:`all_gather`                           1 all-gather                1 reduce-scatter (sum)
===========================================  ==========================  =========================

(*) 3 all-reduces (max, max, sum) when the counted tokens' shard logsumexps span more than
600, e.g. a block of the vocabulary masked with a large finite negative instead of ``-inf``.

The all-reduces of the cross-entropies carry O(tokens) numbers (per-token statistics), never the
logits.  Their values match the single-process losses to rounding: the tests compare loss and
every gradient with ``torch.nn.functional.cross_entropy`` in float64 on real process groups of 2
and 4 ranks.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.distributed as dist

from ..core.backend import compute_dtype, namespace
from ..core.specs import (
    CrossEntropyOptions,
    LinearCrossEntropyArrays,
    LinearCrossEntropyOptions,
    LinearCrossEntropySpec,
    options_from,
    with_options,
)
from ..core.validation import check_float_array, check_integer_array, check_nonempty, check_number

__all__ = [
    "vocab_parallel_cross_entropy",
    "vocab_parallel_linear_cross_entropy",
    "gathered_info_nce",
    "all_gather",
]

# -- process groups --------------------------------------------------------------------------


def _membership(group) -> tuple[int, int]:
    """This process's rank in ``group`` and the group's size."""
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError(
            "losskit.torch.distributed needs an initialised process group; call "
            "torch.distributed.init_process_group(...) first (a group of one process works too)"
        )
    rank = dist.get_rank(group)
    if rank < 0:
        raise ValueError("group: this process is not a member of the process group it was given")
    return rank, dist.get_world_size(group)


def _all_gather_into(out: torch.Tensor, x: torch.Tensor, group) -> None:
    fn = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
    fn(out, x, group=group)


def _reduce_scatter_into(out: torch.Tensor, x: torch.Tensor, group) -> None:
    fn = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
    fn(out, x, op=dist.ReduceOp.SUM, group=group)


def _compute_dtype(*dtypes: torch.dtype) -> torch.dtype:
    """The promoted dtype of the arguments, float16/bfloat16 computed in float32."""
    dtype = dtypes[0]
    for d in dtypes[1:]:
        dtype = torch.promote_types(dtype, d)
    return compute_dtype(torch, dtype)


# -- shared math of the vocabulary-parallel cross-entropies ----------------------------------


def _local_logsumexp(logits: torch.Tensor) -> torch.Tensor:
    """Row logsumexp of this rank's shard; -inf for a row whose shard is all -inf."""
    m = logits.amax(dim=1)
    # a shard row of -inf alone has max -inf: shift by 0 instead so exp gives 0, not NaN
    m = torch.where(torch.isneginf(m), torch.zeros_like(m), m)
    s = (logits - m[:, None]).exp_().sum(dim=1)
    return m + torch.log(s)


def _fingerprint(target: torch.Tensor) -> torch.Tensor:
    """Two numbers that differ, almost surely, when two ranks hold different targets."""
    t = target.reshape(-1).to(torch.float64)
    position = torch.arange(1, t.numel() + 1, dtype=torch.float64, device=t.device)
    return torch.stack([t.sum(), (t * torch.cos(position)).sum()])


# the first all-reduce finds the largest counted shard logsumexp; when every counted token's
# shard logsumexps lie within this much of it, that one number shifts the exponentials of the
# second: exp(-600) ~ 1e-261 is still a normal float64 (underflow starts below exp(-708))
_SHIFT_SPAN = 600.0


class _Shards:
    """What the first all-reduce establishes: that every rank holds the same tokens, where this
    rank's shard sits in the vocabulary, and the shift of the exponentials the second
    all-reduce sums.

    ``shapes`` names this rank's arguments for the error messages (``{"local_logits": shape}``);
    ``hidden`` is the hidden size of linear cross-entropy's input (0 for logits)."""

    def __init__(self, lse_local, target, vocab_local, group, rank, world, ignore_index, shapes, hidden=0):
        n = lse_local.shape[0]
        device = lse_local.device
        t = target.reshape(-1)
        self.valid = t != ignore_index
        lse64 = lse_local.to(torch.float64)
        counted = self.valid & torch.isfinite(lse64)
        # one MAX all-reduce of a fixed number of values, whatever the ranks' shapes, so ranks
        # that disagree on them are told so here instead of crashing a collective sized by them:
        # every rank's shard size, token count and hidden size (each rank writes its own slot,
        # the others hold 0), a fingerprint of the targets with its negation (max(f) == -max(-f)
        # only when every rank holds the same f), and the largest and (negated) smallest finite
        # shard logsumexp of the counted tokens
        buf = torch.zeros(3 * world + 6, dtype=torch.float64, device=device)
        buf[rank] = vocab_local
        buf[world + rank] = n
        buf[2 * world + rank] = hidden
        fp = _fingerprint(target)
        buf[3 * world : 3 * world + 2] = fp
        buf[3 * world + 2 : 3 * world + 4] = -fp
        if n > 0:
            buf[3 * world + 4] = torch.where(counted, lse64, -math.inf).amax()
            buf[3 * world + 5] = torch.where(counted, -lse64, -math.inf).amax()
        else:
            buf[3 * world + 4 :] = -math.inf
        dist.all_reduce(buf, op=dist.ReduceOp.MAX, group=group)
        head = buf.tolist()  # one small host read; every rank sees the same numbers
        sizes = [int(round(v)) for v in head[:world]]
        tokens = [int(round(v)) for v in head[world : 2 * world]]
        hiddens = [int(round(v)) for v in head[2 * world : 3 * world]]
        shown = ", ".join(f"{name} {tuple(shape)}" for name, shape in shapes.items())
        if len(set(tokens)) > 1:
            first = next(iter(shapes))
            raise ValueError(
                f"{first} must hold the same number of tokens on every rank of the group (each "
                f"rank holds a shard of the vocabulary for the same tokens); got {tokens} tokens "
                f"on ranks 0..{world - 1}, this rank ({rank}) has {shown}"
            )
        if len(set(hiddens)) > 1:
            raise ValueError(
                f"input must have the same hidden size on every rank of the group (each rank "
                f"holds the rows of the output layer for a shard of the vocabulary); got hidden "
                f"sizes {hiddens} on ranks 0..{world - 1}, this rank ({rank}) has {shown}"
            )
        if head[3 * world : 3 * world + 2] != [-v for v in head[3 * world + 2 : 3 * world + 4]]:
            raise ValueError(
                "target must be identical on every rank of the group (each rank holds a shard "
                "of the vocabulary for the same tokens); got different targets on different ranks"
            )
        largest, smallest = head[3 * world + 4], -head[3 * world + 5]
        if largest - smallest <= _SHIFT_SPAN or not math.isfinite(largest):
            # one shift for every token: no exponential overflows, none that counts underflows
            self.max = torch.tensor(
                largest if math.isfinite(largest) else 0.0, dtype=torch.float64, device=device
            )
        else:
            # tokens of very different scale: each token's own largest shard logsumexp
            self.max = lse64.clone()
            dist.all_reduce(self.max, op=dist.ReduceOp.MAX, group=group)
        self.sizes = sizes
        self.offset = sum(sizes[:rank])
        self.num_classes = sum(sizes)
        bad = self.valid & ((t < 0) | (t >= self.num_classes))
        if bool(bad.any()):
            index = int(t[bad][0])
            raise ValueError(
                f"target holds class index {index} other than ignore_index={ignore_index}, "
                f"outside [0, {self.num_classes - 1}] for a vocabulary of {self.num_classes} "
                f"classes sharded as {sizes}"
            )
        self.in_shard = self.valid & (t >= self.offset) & (t < self.offset + vocab_local)
        self.local_target = torch.where(self.in_shard, t - self.offset, torch.zeros_like(t))


def _finish_forward(ctx, shards: _Shards, lse_local, picked_local, sum_local, options, shapes, group):
    """Second all-reduce (SUM) and the loss; stores what backward needs on ``ctx``.

    ``options`` carries label_smoothing, z_loss and reduction (a validated options object or
    spec); ``shapes`` is ``(target_shape, out_dtype, compute_dtype)``."""
    eps, z_coef, reduction = options.label_smoothing, options.z_loss, options.reduction
    target_shape, out_dtype, compute_dtype = shapes
    n = lse_local.shape[0]
    columns = 3 if sum_local is not None else 2
    buf = torch.empty(n, columns, dtype=torch.float64, device=lse_local.device)
    buf[:, 0] = torch.exp(lse_local.to(torch.float64) - shards.max)
    buf[:, 1] = torch.where(shards.in_shard, picked_local.to(torch.float64), 0.0)
    if sum_local is not None:
        buf[:, 2] = sum_local
    dist.all_reduce(buf, op=dist.ReduceOp.SUM, group=group)
    lse = shards.max + torch.log(buf[:, 0])
    # -(1-eps) log p_t - eps/C sum_c log p_c  ==  lse - (1-eps) x_t - eps/C sum_c x_c
    per_token = lse - (1.0 - eps) * buf[:, 1]
    if sum_local is not None:
        per_token = per_token - (eps / shards.num_classes) * buf[:, 2]
    if z_coef > 0:
        per_token = per_token + z_coef * lse * lse
    valid = shards.valid
    per_token = torch.where(valid, per_token, torch.zeros_like(per_token))
    if reduction == "none":
        factor = torch.ones((), dtype=torch.float64, device=lse.device)
        loss = per_token.reshape(target_shape)
    else:
        total = per_token.sum()
        if reduction == "sum":
            factor = torch.ones((), dtype=torch.float64, device=lse.device)
        else:  # mean over counted tokens; 0 with a zero gradient when none counts
            count = valid.sum().to(torch.float64)
            factor = torch.where(count > 0, 1.0 / count.clamp(min=1.0), torch.zeros_like(count))
        loss = total * factor
    # ignored tokens get lse = +inf so exp(x - lse) = 0 in backward (their logits may be NaN)
    lse_grad = torch.where(valid, lse, torch.full_like(lse, math.inf)).to(compute_dtype)
    # the z-loss lambda lse^2 adds 2 lambda lse p to the gradient: p's coefficient per token
    p_scale = None
    if z_coef > 0:
        p_scale = torch.where(valid, 1.0 + 2.0 * z_coef * lse, torch.zeros_like(lse)).to(compute_dtype)
    ctx.reduction = reduction
    ctx.eps = eps
    ctx.num_classes = shards.num_classes
    ctx.compute_dtype = compute_dtype
    return loss.to(out_dtype), lse_grad, factor.to(compute_dtype), p_scale


def _token_coefficients(grad_output, factor, valid, reduction, dtype):
    """d(loss)/d(per-token loss) times the upstream gradient, 0 for ignored tokens."""
    g = grad_output.to(dtype)
    g = g.reshape(-1) if reduction == "none" else g.expand(valid.shape[0])
    return torch.where(valid, g * factor, torch.zeros_like(g))


def _logit_gradient_(probs_buffer, coef, p_scale, local_target, in_shard, eps, num_classes):
    """Turn ``exp(x - lse)`` (in place) into d loss / d logits for one block of rows:
    coef * ((1 + 2 lambda lse) softmax - (1 - eps) onehot - eps / C)."""
    g = probs_buffer.mul_((coef if p_scale is None else coef * p_scale)[:, None])
    hit = torch.where(in_shard, -(1.0 - eps) * coef, torch.zeros_like(coef))
    g.scatter_add_(1, local_target[:, None], hit[:, None])
    if eps > 0:
        g.sub_((eps / num_classes) * coef[:, None])
    return g


# -- vocab_parallel_cross_entropy --------------------------------------------------------------


class _VocabParallelCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, target, group, options: CrossEntropyOptions):
        rank, world = _membership(group)
        vocab_local = logits.shape[-1]
        dtype = _compute_dtype(logits.dtype)
        x = logits.reshape(-1, vocab_local).to(dtype)
        lse_local = _local_logsumexp(x)
        named = {"local_logits": logits.shape, "target": target.shape}
        shards = _Shards(lse_local, target, vocab_local, group, rank, world, options.ignore_index, named)
        picked = x.gather(1, shards.local_target[:, None]).squeeze(1)
        sum_local = torch.sum(x, dim=1, dtype=torch.float64) if options.label_smoothing > 0 else None
        shapes = (target.shape, logits.dtype, dtype)
        loss, lse, factor, p_scale = _finish_forward(
            ctx, shards, lse_local, picked, sum_local, options, shapes, group
        )
        ctx.save_for_backward(
            logits, lse, factor, p_scale, shards.valid, shards.in_shard, shards.local_target
        )
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        logits, lse, factor, p_scale, valid, in_shard, local_target = ctx.saved_tensors
        dtype = ctx.compute_dtype
        x = logits.reshape(-1, logits.shape[-1]).to(dtype)
        coef = _token_coefficients(grad_output, factor, valid, ctx.reduction, dtype)
        probs = torch.sub(x, lse[:, None]).exp_()
        g = _logit_gradient_(probs, coef, p_scale, local_target, in_shard, ctx.eps, ctx.num_classes)
        return g.reshape(logits.shape).to(logits.dtype), None, None, None


def vocab_parallel_cross_entropy(
    local_logits: torch.Tensor,
    target: torch.Tensor,
    *,
    group=None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Cross-entropy over a vocabulary sharded across the ranks of ``group``.

    Rank :math:`r` holds the logits of a contiguous block of classes: rank 0 the first
    ``local_logits.shape[-1]`` classes, rank 1 the next, and so on in group-rank order (shards
    may differ in size).  With :math:`x` the logits over the whole vocabulary of :math:`C`
    classes, target :math:`t` and smoothing :math:`\varepsilon`, each token's loss is

    .. math::
        \ell = \operatorname{lse}(x) - (1-\varepsilon)\,x_t - \tfrac{\varepsilon}{C}\sum_c x_c
               + \lambda \operatorname{lse}(x)^2
             = -(1-\varepsilon)\log p_t - \tfrac{\varepsilon}{C}\sum_c \log p_c
               + \lambda \operatorname{lse}(x)^2,

    exactly ``F.cross_entropy`` on the unsharded logits (plus the z-loss when
    :math:`\lambda > 0`), i.e. :func:`losskit.cross_entropy` with the same options.  Every rank
    returns the same loss, and the gradient of ``local_logits`` is its shard of the unsharded
    gradient, :math:`((1 + 2\lambda\,\mathrm{lse})\,p - (1-\varepsilon)\,e_t - \varepsilon/C)`
    times the upstream gradient (divided by the number of counted tokens for ``"mean"``).

    Collectives per call: **2 all-reduces in the forward, none in the backward.**  The first
    (MAX) carries a fixed number of values: every rank's shard size, token count and hidden
    size, a fingerprint of the targets, and the largest and smallest shard logsumexp of the
    counted tokens.  Ranks that disagree on the number of tokens or on the targets all raise
    ``ValueError`` there, before any collective sized by the tokens.  The second (SUM) carries
    each token's shard sum of exponentials shifted by that largest logsumexp, its target logit
    and (with label smoothing) its sum of logits: O(tokens) float64 numbers.  When the counted
    tokens' shard logsumexps span more than 600 (so that a shared shift could underflow some
    token's sum), a MAX all-reduce of each token's largest shard logsumexp comes between the
    two and shifts each token by its own: 3 all-reduces.  The backward recomputes the softmax
    of the local shard from the saved global logsumexp, so after the forward only O(tokens)
    extra memory is kept.

    Args:
      local_logits: this rank's shard of the logits, shape ``(..., V_local)``, floating
        (float16/bfloat16 are computed in float32 and the gradient cast back), the same number
        of tokens on every rank (checked: ``ValueError`` on every rank otherwise).
      target: integer class indices into the *whole* vocabulary, shape ``(...)``, identical
        on every rank (checked: different targets raise ``ValueError`` on every rank).
      group: the process group over which the vocabulary is sharded (default: the world).
      ignore_index: target value that does not count (default -100).
      label_smoothing: :math:`\varepsilon \in [0, 1]` (default 0).
      z_loss: :math:`\lambda \ge 0` (default 0), penalising :math:`\mathrm{lse}^2` per counted
        token (PaLM's auxiliary loss).
      reduction: ``"mean"`` (default; over the counted tokens, 0 with a zero gradient when
        none counts, where PyTorch returns NaN), ``"sum"`` or ``"none"`` (shape of ``target``).

    Returns:
      The loss, identical on every rank, in ``local_logits``' dtype.

    Equivalent: ``torch.nn.functional.cross_entropy(torch.cat(shards, -1), target)``; the
    vocabulary-parallel cross-entropy of Megatron-LM.
    """
    xp = namespace(local_logits=local_logits, target=target)
    check_float_array(xp, local_logits, "local_logits")
    check_integer_array(xp, target, "target")
    if local_logits.ndim == 0:
        raise ValueError("local_logits must have a class axis; got a 0-d tensor")
    check_nonempty(local_logits, "local_logits")
    if tuple(target.shape) != tuple(local_logits.shape[:-1]):
        raise ValueError(
            f"target must have local_logits' shape without the last (class) axis: expected "
            f"{tuple(local_logits.shape[:-1])}, got {tuple(target.shape)}"
        )
    options = CrossEntropyOptions(
        ignore_index=ignore_index, label_smoothing=label_smoothing, z_loss=z_loss, reduction=reduction
    )
    return _VocabParallelCrossEntropy.apply(local_logits, target, group, options)


# -- vocab_parallel_linear_cross_entropy -----------------------------------------------------


def _row_chunks(n: int, chunk_rows: int):
    for start in range(0, n, chunk_rows):
        yield start, min(n, start + chunk_rows)


def _chunk_logits(xc, w, b, cap):
    """A chunk's logits ``xc @ w.T + b``, soft-capped to ``cap * tanh(z / cap)`` when asked;
    with a cap, also ``tanh(z / cap)`` (for the gradient's chain factor)."""
    logits = xc @ w.T
    if b is not None:
        logits += b
    if cap is None:
        return logits, None
    t = logits.div_(cap).tanh_()
    return t * cap, t


class _VocabParallelLinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, weight, bias, target, group, spec: LinearCrossEntropySpec):
        rank, world = _membership(group)
        cap, chunk_rows = spec.softcap, spec.chunk
        vocab_local, hidden = weight.shape
        dtypes = [input.dtype, weight.dtype] + ([bias.dtype] if bias is not None else [])
        dtype = _compute_dtype(*dtypes)
        x = input.reshape(-1, hidden)
        n = x.shape[0]
        w = weight.to(dtype)
        b = None if bias is None else bias.to(dtype)
        # pass 1: per-token logsumexp (and sum of logits) of the local shard, chunk by chunk,
        # so at most chunk_rows x V_local logits are alive
        lse_local = torch.empty(n, dtype=dtype, device=x.device)
        sum_local = torch.empty(n, dtype=torch.float64, device=x.device) if spec.label_smoothing > 0 else None
        for start, stop in _row_chunks(n, chunk_rows):
            logits, _ = _chunk_logits(x[start:stop].to(dtype), w, b, cap)
            lse_local[start:stop] = _local_logsumexp(logits)
            if sum_local is not None:
                sum_local[start:stop] = torch.sum(logits, dim=1, dtype=torch.float64)
            del logits
        named = {"input": input.shape, "local_weight": weight.shape}
        shards = _Shards(lse_local, target, vocab_local, group, rank, world, spec.ignore_index, named, hidden)
        # the target logit is one dot product per token (O(N x D)), not a pass over the logits
        rows = w.index_select(0, shards.local_target)
        picked = (x.to(dtype) * rows).sum(dim=1)
        del rows
        if b is not None:
            picked = picked + b.index_select(0, shards.local_target)
        if cap is not None:
            picked = cap * torch.tanh(picked / cap)
        shapes = (target.shape, input.dtype, dtype)
        loss, lse, factor, p_scale = _finish_forward(
            ctx, shards, lse_local, picked, sum_local, spec, shapes, group
        )
        ctx.group = group
        ctx.chunk_rows = chunk_rows
        ctx.cap = cap
        ctx.save_for_backward(
            input, weight, bias, lse, factor, p_scale, shards.valid, shards.in_shard, shards.local_target
        )
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        input, weight, bias, lse, factor, p_scale, valid, in_shard, local_target = ctx.saved_tensors
        dtype = ctx.compute_dtype
        need_input, need_weight, need_bias = ctx.needs_input_grad[:3]
        vocab_local, hidden = weight.shape
        x = input.reshape(-1, hidden)
        n = x.shape[0]
        w = weight.to(dtype)
        b = None if bias is None else bias.to(dtype)
        coef = _token_coefficients(grad_output, factor, valid, ctx.reduction, dtype)
        grad_x = torch.empty(n, hidden, dtype=dtype, device=x.device) if need_input else None
        grad_w = torch.zeros(vocab_local, hidden, dtype=dtype, device=x.device) if need_weight else None
        grad_b = torch.zeros(vocab_local, dtype=dtype, device=x.device) if need_bias else None
        for start, stop in _row_chunks(n, ctx.chunk_rows):
            rows = slice(start, stop)
            xc = x[rows].to(dtype)
            logits, t = _chunk_logits(xc, w, b, ctx.cap)
            probs = logits.sub_(lse[rows, None]).exp_()
            g = _logit_gradient_(
                probs,
                coef[rows],
                None if p_scale is None else p_scale[rows],
                local_target[rows],
                in_shard[rows],
                ctx.eps,
                ctx.num_classes,
            )
            if t is not None:  # d(cap tanh(z / cap))/dz = 1 - tanh^2
                g.mul_(t.mul_(t).neg_().add_(1.0))
            if grad_x is not None:
                torch.matmul(g, w, out=grad_x[rows])
            if grad_w is not None:
                grad_w.addmm_(g.T, xc)
            if grad_b is not None:
                grad_b += g.sum(dim=0)
            del logits, probs, g, t
        if grad_x is not None:
            # each rank holds its shard's part of d loss / d input: their sum is the whole,
            # identical on every rank after this (the backward's one collective)
            dist.all_reduce(grad_x, op=dist.ReduceOp.SUM, group=ctx.group)
            grad_x = grad_x.reshape(input.shape).to(input.dtype)
        if grad_w is not None:
            grad_w = grad_w.to(weight.dtype)
        if grad_b is not None:
            grad_b = grad_b.to(bias.dtype)
        return (grad_x, grad_w, grad_b) + (None,) * 3


@with_options(LinearCrossEntropyOptions)
def vocab_parallel_linear_cross_entropy(
    input: torch.Tensor,
    local_weight: torch.Tensor,
    target: torch.Tensor,
    *,
    local_bias: torch.Tensor | None = None,
    group=None,
    **options: Any,
) -> torch.Tensor:
    r"""Output layer and cross-entropy fused, with the layer's weight sharded over the vocabulary.

    Computes the loss of :func:`vocab_parallel_cross_entropy` on the logits
    ``input @ local_weight.T + local_bias`` (soft-capped to :math:`c\tanh(z/c)` with
    ``softcap=c``) without ever holding them: the tokens are walked in chunks of
    ``chunk_size`` rows, so at most ``chunk_size x V_local`` logits are alive, and the backward
    recomputes each chunk's logits instead of saving them.  Rank :math:`r`'s ``local_weight``
    holds the rows of the output layer for a contiguous block of classes, in group-rank order
    (blocks may differ in size).  The options and the result are those of
    :func:`losskit.torch.linear_cross_entropy` on the unsharded weight.

    Gradients: the input's gradient :math:`\sum_r G_r W_r` (with :math:`G_r` the rank's logit
    gradient) is the same on every rank; each rank gets its own shard of the weight (and bias)
    gradient, :math:`G_r^\top X`, exactly the matching rows of the unsharded gradient.

    Collectives per call: **2 all-reduces in the forward** (MAX of a fixed number of values, then
    SUM of O(tokens) per-token statistics; 3 when the tokens' logsumexps span more than 600; as
    in :func:`vocab_parallel_cross_entropy`, which says what the first one checks -- here the
    hidden size too) **and 1 all-reduce in the backward** (SUM of the input's gradient,
    ``tokens x hidden`` numbers, only when the input requires a gradient), however many chunks
    there are.

    Args:
      input: hidden states, shape ``(..., D)``, identical on every rank, floating (the token
        count and ``D`` are checked: ``ValueError`` on every rank when they differ).
      local_weight: this rank's rows of the output layer, shape ``(V_local, D)``.
      target: integer class indices into the whole vocabulary, shape ``input.shape[:-1]``,
        identical on every rank.
      local_bias: optional bias of this rank's classes, shape ``(V_local,)`` (default None).
      group: as :func:`vocab_parallel_cross_entropy`.
      **options: the keyword options of :func:`losskit.linear_cross_entropy`
        (:class:`~losskit.core.specs.LinearCrossEntropyOptions`): ``ignore_index``,
        ``label_smoothing``, ``z_loss``, ``reduction`` as :func:`vocab_parallel_cross_entropy`;
        ``softcap`` :math:`c > 0` caps the logits to :math:`(-c, c)` before the softmax (Gemma
        style; default None, no cap); ``chunk_size``, rows per chunk, a positive int, or
        ``"auto"`` (default: about 64 MiB of local logits per chunk, a power of two of at least
        256 rows).

    Returns:
      The loss, identical on every rank, in ``input``'s dtype.  float16/bfloat16 arguments are
      computed in float32.

    Equivalent: ``F.cross_entropy(F.linear(input, torch.cat(weight_shards), bias), target)``;
    the single-process version is :func:`losskit.torch.linear_cross_entropy`
    (``torch.nn.functional.linear_cross_entropy`` in PyTorch).
    """
    xp = namespace(input=input, local_weight=local_weight, target=target, local_bias=local_bias)
    chosen = options_from(LinearCrossEntropyOptions, options, "vocab_parallel_linear_cross_entropy")
    arrays = LinearCrossEntropyArrays(input, local_weight, target, local_bias)
    # the class indices are checked after the first all-reduce, against the whole vocabulary
    spec = LinearCrossEntropySpec.of(
        xp, chosen, arrays, weight_name="local_weight", bias_name="local_bias", vocabulary_shard=True
    )
    return _VocabParallelLinearCrossEntropy.apply(input, local_weight, local_bias, target, group, spec)


# -- gathered InfoNCE --------------------------------------------------------------------------


class _AllGather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, group, world):
        ctx.group = group
        x = x.contiguous()
        out = torch.empty((world * x.shape[0],) + tuple(x.shape[1:]), dtype=x.dtype, device=x.device)
        _all_gather_into(out, x, group)
        return out

    @staticmethod
    def backward(ctx, grad):
        # every rank's loss may use this rank's rows: their gradients add up, and this rank
        # keeps the sum for its own rows (dropping the other ranks' share is the classic bug)
        grad = grad.contiguous()
        world = dist.get_world_size(ctx.group)
        shape = (grad.shape[0] // world,) + tuple(grad.shape[1:])
        out = torch.empty(shape, dtype=grad.dtype, device=grad.device)
        _reduce_scatter_into(out, grad, ctx.group)
        return out, None, None


def all_gather(tensor: torch.Tensor, *, group=None) -> torch.Tensor:
    r"""Concatenate every rank's ``tensor`` along the first axis, with gradients.

    The result has shape ``(world * n, ...)`` in group-rank order.  Its backward sums the
    gradients that every rank computes for this rank's rows (a reduce-scatter), so the gradient
    a rank receives is :math:`\sum_s \partial L_s / \partial x_r`.  Under
    ``DistributedDataParallel``'s averaging this gives exact gradients of the mean of the ranks'
    losses.

    Collectives per call: 1 all-gather in the forward, 1 reduce-scatter (sum) in the backward.
    All ranks must pass tensors of the same shape.

    Equivalent: ``torch.distributed.nn.functional.all_gather`` followed by ``torch.cat``.
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"tensor must be a torch.Tensor; got {type(tensor).__name__}")
    if tensor.ndim == 0:
        raise ValueError("tensor must have at least one axis to gather along; got a 0-d tensor")
    _, world = _membership(group)
    return _AllGather.apply(tensor, group, world)


def gathered_info_nce(
    query: torch.Tensor,
    key: torch.Tensor,
    *,
    group=None,
    temperature: float | torch.Tensor = 0.1,
    normalize: bool = True,
    local_loss: bool = True,
    symmetric: bool = False,
) -> torch.Tensor:
    r"""InfoNCE (CLIP / SimCLR style) with the negatives of every rank.

    Each rank holds ``B`` query rows and the ``B`` key rows paired with them.  With
    :math:`\hat q, \hat k` the L2-normalised rows (when ``normalize=True``), :math:`K` the keys
    of all ranks concatenated in group-rank order and :math:`\tau` the temperature, query
    :math:`i` of rank :math:`r` scores :math:`s = \hat q_i K^\top / \tau` and its positive is
    key :math:`i` of rank :math:`r` (column :math:`rB + i`); every other key of every rank is a
    negative:

    .. math:: \ell_i = -\log \frac{e^{s_{i, rB+i}}}{\sum_j e^{s_{ij}}}.

    ``local_loss=True`` (default): each rank's loss is the mean of :math:`\ell_i` over its own
    queries, so the mean of the ranks' losses is the global loss (the mean over all
    :math:`W B` queries).  ``local_loss=False``: every rank computes the global loss itself
    (queries are gathered too).  In both modes, the gradient a rank gets for its own query and
    key rows, divided by the world size :math:`W`, is exactly the global loss's gradient for
    those rows, so ``DistributedDataParallel``'s gradient averaging yields the global loss's
    parameter gradients.  (Gathering keys without gradient, or keeping only the local share of
    their gradient, gets this wrong by a factor that depends on the world size.)

    ``symmetric=True`` averages the query-to-key and key-to-query losses (CLIP's loss).

    Collectives per call: 1 all-gather (of the keys) in the forward, plus 1 (of the queries)
    when ``symmetric=True`` or ``local_loss=False``; in the backward 1 reduce-scatter (sum)
    per gathered tensor that requires a gradient.

    Args:
      query: ``(B, D)`` floating, this rank's queries (e.g. image embeddings).
      key: ``(B, D)``, the positives of the queries, row by row (e.g. text embeddings).
        ``B`` must be the same on every rank.
      group: process group (default: the world).
      temperature: :math:`\tau > 0` (default 0.1), a number or a 0-d tensor (a learnable
        temperature receives its gradient).
      normalize: L2-normalise query and key rows first (default True).
      local_loss: see above (default True).
      symmetric: also score keys against queries and average (default False).

    Returns:
      A 0-d tensor, this rank's loss, in the queries' dtype (float16/bfloat16 computed in float32).

    Equivalent: open_clip's ``ClipLoss(local_loss=..., gather_with_grad=True)`` (symmetric);
    the NT-Xent of SimCLR with cross-view negatives only.
    """
    xp = namespace(query=query, key=key)
    check_float_array(xp, query, "query")
    check_float_array(xp, key, "key")
    if query.ndim != 2:
        raise ValueError(f"query must have shape (batch, dim); got {tuple(query.shape)}")
    check_nonempty(query, "query")
    if tuple(key.shape) != tuple(query.shape):
        raise ValueError(
            f"key must have the shape of query {tuple(query.shape)} (key i is the positive of "
            f"query i); got {tuple(key.shape)}"
        )
    if isinstance(temperature, torch.Tensor):
        if temperature.ndim != 0 or not temperature.is_floating_point():
            raise ValueError(
                f"temperature must be a positive number or a 0-d floating tensor; got a tensor of "
                f"shape {tuple(temperature.shape)} and dtype {temperature.dtype}"
            )
        if not temperature.requires_grad and not bool(temperature > 0):
            raise ValueError(f"temperature must be > 0; got {float(temperature)}")
    else:
        check_number(temperature, "temperature", low=0.0, low_inclusive=False)
    for name, flag in (("normalize", normalize), ("local_loss", local_loss), ("symmetric", symmetric)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False; got {flag!r}")
    rank, world = _membership(group)
    out_dtype = query.dtype
    dtype = _compute_dtype(query.dtype, key.dtype)
    q, k = query.to(dtype), key.to(dtype)
    if normalize:
        q = torch.nn.functional.normalize(q, dim=1)
        k = torch.nn.functional.normalize(k, dim=1)
    b = q.shape[0]
    all_k = _AllGather.apply(k, group, world)
    if local_loss:
        labels = torch.arange(rank * b, (rank + 1) * b, device=q.device)
        loss = torch.nn.functional.cross_entropy(q @ all_k.T / temperature, labels)
        if symmetric:
            all_q = _AllGather.apply(q, group, world)
            loss = 0.5 * (loss + torch.nn.functional.cross_entropy(k @ all_q.T / temperature, labels))
    else:
        all_q = _AllGather.apply(q, group, world)
        labels = torch.arange(world * b, device=q.device)
        scores = all_q @ all_k.T / temperature
        loss = torch.nn.functional.cross_entropy(scores, labels)
        if symmetric:
            loss = 0.5 * (loss + torch.nn.functional.cross_entropy(scores.T, labels))
    return loss.to(out_dtype)
