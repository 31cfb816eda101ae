r"""Distillation from hidden states: a divergence between a teacher's and a student's next-token
distributions computed from their last hidden states and output heads, chunk by chunk, so
neither ``(tokens x vocab)`` logits tensor ever exists.

With tempered logits :math:`s = (h^S W_S^\top + b_S)/T` (student) and
:math:`t = (h^T W_T^\top + b_T)/T` (teacher), :math:`Q = \mathrm{softmax}(s)`,
:math:`P = \mathrm{softmax}(t)`, per token:

- forward KL, :math:`\mathrm{KL}(P\,\|\,Q) = \sum_v P_v(\log P_v - \log Q_v)` (mode covering,
  Hinton's distillation); :math:`\partial/\partial s_v = Q_v - P_v`;
- reverse KL, :math:`\mathrm{KL}(Q\,\|\,P) = \sum_v Q_v(\log Q_v - \log P_v)` (mode seeking,
  MiniLLM); with :math:`r = \log Q - \log P`,
  :math:`\partial/\partial s_j = \sum_v Q_v(\delta_{vj} - Q_j)(r_v + 1) = Q_j(r_j - \mathrm{KL})`;
- generalised Jensen-Shannon (GKD, Agarwal et al. 2024), with :math:`M = \beta P + (1-\beta) Q`,
  :math:`\mathrm{JSD}_\beta = \beta\,\mathrm{KL}(P\|M) + (1-\beta)\,\mathrm{KL}(Q\|M)
  = \beta\sum P\log P + (1-\beta)\sum Q\log Q - \sum M\log M`.  Its derivative in
  :math:`Q_v` is :math:`u_v = (1-\beta)(\log Q_v - \log M_v)` (the :math:`\log M` terms of
  :math:`\beta P` cancel against :math:`M`'s own), so through the softmax
  :math:`\partial/\partial s_j = Q_j(u_j - \sum_v Q_v u_v)`.  :math:`\beta = 0` and
  :math:`\beta = 1` are defined as forward and reverse KL (where the mixture formula itself
  degenerates to 0), the convention of TRL's ``generalized_jsd_loss`` and Liger-Kernel's
  ``LigerFusedLinearJSDLoss``.

The teacher is a constant: only the student's hidden states, weight and bias get gradients,
:math:`G = (\partial\ell/\partial s)/T` folded into :math:`G W_S`, :math:`G^\top h^S` and
:math:`\sum G` chunk by chunk in the same sweep as the value.
"""

from __future__ import annotations

import math

from ..core.backend import Array, Namespace, cast, compute_dtype, library_name, lift, namespace
from ..core.catalog import catalogued
from ..core.dispatch import dispatch, run_fast_path
from ..core.gradients import LossResult, loss_function
from ..core.log_prob_specs import LinearDistillationArrays, LinearDistillationOptions, LinearDistillationSpec
from ..core.reduction import Reduction

__all__ = ["linear_distillation", "distillation_sweep"]


def _log_softmax(xp: Namespace, z: Array) -> Array:
    m = xp.max(z, axis=-1, keepdims=True)
    zs = z - m
    return zs - xp.log(xp.sum(xp.exp(zs), axis=-1, keepdims=True))


def chunk_divergence(
    xp: Namespace, s: Array, t: Array, spec: LinearDistillationSpec, need_grad: bool
) -> tuple[Array, Array | None]:
    """Per-row divergence of tempered student logits ``s`` from teacher logits ``t`` (both
    ``(rows, V)``) and, if asked, its gradient with respect to ``s``."""
    log_q = _log_softmax(xp, s)
    log_p = _log_softmax(xp, t)
    q = xp.exp(log_q)
    div = spec.divergence
    if div == "forward_kl":
        p = xp.exp(log_p)
        loss = xp.sum(p * (log_p - log_q), axis=-1)
        grad = q - p if need_grad else None
    elif div == "reverse_kl":
        r = log_q - log_p
        loss = xp.sum(q * r, axis=-1)
        grad = q * (r - xp.expand_dims(loss, axis=-1)) if need_grad else None
    else:
        beta = spec.beta
        p = xp.exp(log_p)
        # log M, M = beta P + (1 - beta) Q, as a log-sum-exp of the two weighted log-probabilities
        # (no log of an underflowed M)
        a = log_p + math.log(beta)
        c = log_q + math.log(1.0 - beta)
        hi = xp.maximum(a, c)
        log_m = hi + xp.log(xp.exp(a - hi) + xp.exp(c - hi))
        loss = beta * xp.sum(p * (log_p - log_m), axis=-1) + (1.0 - beta) * xp.sum(
            q * (log_q - log_m), axis=-1
        )
        if need_grad:
            u = (1.0 - beta) * (log_q - log_m)
            grad = q * (u - xp.sum(q * u, axis=-1, keepdims=True))
        else:
            grad = None
    return loss, grad


def distillation_sweep(
    xp: Namespace,
    xs: Array,
    ws: Array,
    bs: Array | None,
    xt: Array,
    wt: Array,
    bt: Array | None,
    row_scale: Array | None,
    spec: LinearDistillationSpec,
    need: tuple[bool, bool, bool],
) -> tuple[Array, Array | None, Array | None, Array | None]:
    """The chunk loop in portable array-API operations.

    ``xs`` ``(N, D_s)``, ``ws`` ``(V, D_s)``, ``xt`` ``(N, D_t)``, ``wt`` ``(V, D_t)`` and the
    biases, in the compute dtype.  Returns ``(row_loss, grad_hidden, grad_weight, grad_bias)``
    of the student (``None`` where not in ``need``), the gradients being those of
    ``sum(row_scale * row_loss)``.
    """
    n = xs.shape[0]
    inv_t = 1.0 / spec.temperature
    need_any = any(need) and row_scale is not None
    losses, gxs = [], []
    gw = gb = None
    wst, wtt = xp.matrix_transpose(ws), xp.matrix_transpose(wt)
    for lo in range(0, n, spec.chunk):
        hi = min(n, lo + spec.chunk)
        xc = xs[lo:hi, ...]
        s = xc @ wst
        t = xt[lo:hi, ...] @ wtt
        if bs is not None:
            s = s + bs
        if bt is not None:
            t = t + bt
        if inv_t != 1.0:
            s, t = s * inv_t, t * inv_t
        loss, g = chunk_divergence(xp, s, t, spec, need_any)
        losses.append(loss)
        if not need_any:
            continue
        g = g * xp.expand_dims(row_scale[lo:hi] * inv_t, axis=-1)
        if need[0]:
            gxs.append(g @ ws)
        if need[1]:
            part = xp.matrix_transpose(g) @ xc
            gw = part if gw is None else gw + part
        if need[2]:
            part = xp.sum(g, axis=0)
            gb = part if gb is None else gb + part
    row_loss = losses[0] if len(losses) == 1 else xp.concat(losses, axis=0)
    gx = None
    if need_any and need[0]:
        gx = gxs[0] if len(gxs) == 1 else xp.concat(gxs, axis=0)
    return row_loss, gx, gw, gb


@catalogued(
    family="divergence",
    input_space="embeddings",
    formula="KL(P||Q), KL(Q||P) or JSD_beta of softmax(h W^T + b)/T heads, chunked",
    torch=None,
    optax=None,
    keras=None,
)
@loss_function
def linear_distillation(
    student_hidden: Array,
    student_weight: Array,
    teacher_hidden: Array,
    teacher_weight: Array,
    student_bias: Array | None = None,
    teacher_bias: Array | None = None,
    *,
    divergence: str = "forward_kl",
    beta: float = 0.5,
    temperature: float = 1.0,
    reduction: Reduction = "mean",
    where: Array | None = None,
    chunk_size: int | str = "auto",
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""Distillation loss between a teacher's and a student's output heads, from their hidden
    states, without materialising either ``(tokens x vocab)`` logits tensor.

    Per token, with :math:`Q = \mathrm{softmax}((h^S W_S^\top + b_S)/T)` (student) and
    :math:`P = \mathrm{softmax}((h^T W_T^\top + b_T)/T)` (teacher):

    - ``divergence="forward_kl"``: :math:`\mathrm{KL}(P\|Q) = \sum_v P_v \log(P_v/Q_v)`;
    - ``"reverse_kl"``: :math:`\mathrm{KL}(Q\|P)`;
    - ``"jsd"``: the generalised Jensen-Shannon divergence of GKD (Agarwal et al. 2024),
      :math:`\beta\,\mathrm{KL}(P\|M) + (1-\beta)\,\mathrm{KL}(Q\|M)` with
      :math:`M = \beta P + (1-\beta) Q`; ``beta=0`` is defined as forward KL and ``beta=1`` as
      reverse KL (the convention of TRL's ``generalized_jsd_loss`` and Liger-Kernel's
      ``LigerFusedLinearJSDLoss``; ``beta=0.5`` is the symmetric JSD).

    The loss is not multiplied by :math:`T^2` (multiply it yourself for Hinton's scaling, as
    :func:`distillation_kl` does).  Tokens are processed ``chunk_size`` at a time; each chunk's
    two logits blocks give the chunk's values and the gradient of the student's logits, which is
    folded into the gradients of ``student_hidden`` (argnum 0), ``student_weight`` (1) and
    ``student_bias`` (4) at once.  The teacher is a constant (no gradients).

    Args:
      student_hidden: shape ``(..., D_s)``.
      student_weight: the student's head, ``(V, D_s)``.
      teacher_hidden: shape ``(..., D_t)``, the same leading shape (one row per token).
      teacher_weight: the teacher's head, ``(V, D_t)`` (the same vocabulary).
      student_bias, teacher_bias: optional ``(V,)``.
      divergence: ``"forward_kl"`` (default), ``"reverse_kl"`` or ``"jsd"``.
      beta: :math:`\beta \in [0, 1]`, the mixture weight of the teacher in ``"jsd"`` (default
        0.5); ignored by the KLs.
      temperature: :math:`T > 0` dividing both heads' logits (default 1).
      reduction: ``"mean"`` over the counted tokens (default; 0 with zero gradients when none
        counts), ``"sum"`` or ``"none"`` (per token, 0 where masked).
      where: optional boolean mask over the tokens (shape ``student_hidden.shape[:-1]``).
      chunk_size: tokens per chunk, or ``"auto"`` (about 64 MiB of logits per chunk, at least
        256 tokens).

    Equivalent: ``F.kl_div(log_softmax(s), log_softmax(t), log_target=True)`` summed over the
    vocabulary (forward KL) on the full logits; TRL's ``GKDTrainer.generalized_jsd_loss`` and
    Liger's ``LigerFusedLinearJSDLoss`` (``jsd``).
    """
    xp = namespace(
        student_hidden=student_hidden,
        student_weight=student_weight,
        teacher_hidden=teacher_hidden,
        teacher_weight=teacher_weight,
        student_bias=student_bias,
        teacher_bias=teacher_bias,
        where=where,
    )
    options = LinearDistillationOptions(divergence, beta, temperature, reduction, chunk_size)
    arrays = LinearDistillationArrays(
        student_hidden, student_weight, teacher_hidden, teacher_weight, student_bias, teacher_bias, where
    )
    spec = LinearDistillationSpec.of(xp, options, arrays)
    return dispatch(
        "linear_distillation",
        library_name(student_hidden),
        portable_linear_distillation,
        xp,
        spec,
        arrays,
        wrt,
    )


def prepare_distillation(xp: Namespace, spec: LinearDistillationSpec, arrays: LinearDistillationArrays):
    """The flattened arrays in the compute dtype, the token mask, the per-token scale of the
    reduction and the reduction's factor."""
    sh, sw, th, tw, sb, tb, where = arrays
    out_dtype = xp.result_type(sh.dtype, sw.dtype)
    dtype = compute_dtype(xp, out_dtype)
    n = spec.num_tokens
    xs = xp.reshape(lift(xp, sh, dtype), (n, spec.student_size))
    xt = xp.reshape(lift(xp, th, dtype), (n, spec.teacher_size))
    ws, wt = lift(xp, sw, dtype), lift(xp, tw, dtype)
    bs = None if sb is None else lift(xp, sb, dtype)
    bt = None if tb is None else lift(xp, tb, dtype)
    if dtype != xt.dtype:
        xt, wt = xp.astype(xt, dtype), xp.astype(wt, dtype)
        bt = None if bt is None else xp.astype(bt, dtype)
    valid = xp.ones((n,), dtype=xp.bool) if where is None else xp.reshape(where, (n,))
    count = xp.sum(xp.astype(valid, dtype))
    if spec.reduction == "mean":
        positive = count > 0
        factor = xp.where(
            positive, 1.0 / xp.where(positive, count, xp.ones_like(count)), xp.zeros_like(count)
        )
    else:
        factor = xp.ones_like(count)
    row_scale = xp.where(valid, xp.broadcast_to(factor, valid.shape), xp.zeros_like(factor))
    return out_dtype, dtype, (xs, ws, bs, xt, wt, bt), valid, row_scale, factor


def portable_linear_distillation(
    xp: Namespace, spec: LinearDistillationSpec, arrays: LinearDistillationArrays, wrt: frozenset[int]
) -> LossResult:
    """:func:`linear_distillation` for a validated ``spec``: ``(value, grads)`` for the
    arguments in ``wrt`` (0 student hidden, 1 student weight, 4 student bias)."""
    out_dtype, dtype, heads, valid, row_scale, factor = prepare_distillation(xp, spec, arrays)
    xs, ws, bs, xt, wt, bt = heads
    for n in wrt:
        if n in (2, 3, 5):
            names = {2: "teacher_hidden", 3: "teacher_weight", 5: "teacher_bias"}
            raise ValueError(
                f"linear_distillation treats the teacher as a constant: no gradient for {names[n]}"
            )
    need = (0 in wrt, 1 in wrt, 4 in wrt and bs is not None)
    args = (xs, ws, bs, xt, wt, bt, row_scale if any(need) else None, spec, need)
    result = run_fast_path("linear_distillation_chunks", library_name(xs), *args)
    row_loss, gx, gw, gb = distillation_sweep(xp, *args) if result is None else result
    per_token = xp.where(valid, row_loss, xp.zeros_like(row_loss))
    value = xp.reshape(per_token, spec.lead_shape) if spec.reduction == "none" else xp.sum(per_token) * factor
    sh, sw, _, _, sb, _, _ = arrays
    grads = {}
    if need[0]:
        grads[0] = cast(xp, xp.reshape(gx, tuple(sh.shape)), sh.dtype)
    if need[1]:
        grads[1] = cast(xp, gw, sw.dtype)
    if need[2]:
        grads[4] = cast(xp, gb, sb.dtype)
    return cast(xp, value, out_dtype), grads
