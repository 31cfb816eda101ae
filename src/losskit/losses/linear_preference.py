r"""Preference and policy-gradient losses straight from a language model's hidden states.

Each function here is one composition: :func:`~losskit.linear_log_probs` (the chunked per-token
log-probabilities of the head, never the ``(tokens x vocab)`` logits) → the sum or mean over
each completion's tokens → the loss of :mod:`~losskit.losses.preference` or
:mod:`~losskit.losses.policy`.  Nothing is reimplemented: the loss is the same function, so the
fused and the plain paths cannot drift apart.

The gradient runs the chain rule backwards through the same pieces.  The loss gives
:math:`\partial L/\partial s_k` for each sequence value :math:`s_k = \sum_{j} m_{kj}
\log p(t_{kj})` (divided by the count :math:`n_k = \sum_j m_{kj}` for a mean), so each token's
log-probability gets the upstream factor

.. math:: g_{kj} = \frac{\partial L}{\partial s_k}\, m_{kj}\ (/\, n_k),

and the gradient of the chunk's logits is :math:`G = g([v = t] - p)/T`.

The pair losses (DPO, SimPO, ORPO, CPO) and GRPO with ``reduction`` ``"mean"`` or ``"sum"``
take one chunked sweep: a pair's loss depends on that pair alone, a GRPO token's on its own
log-prob, and the mean's divisor (counted pairs; sequences, counted tokens or the constant of
GRPO's ``loss_type``) is known before the sweep.  So each chunk of whole pairs (chosen row
``k`` beside rejected row ``B + k``) or whole sequences computes its logits, its log-probs,
its sequence values, its loss and :math:`\partial L/\partial s`, and folds :math:`G` into the
gradients (:math:`GW`, :math:`G^\top x`, :math:`\sum G`) while the chunk's softmax is still in
the buffer: three matrix products per chunk, as in Liger-Kernel's chunked losses.  A chunk
holds whole pairs (sequences) up to ``chunk_size`` tokens, and at least one pair: ``2 L``
tokens of logits.  On NumPy :func:`losskit.value_and_grad` takes this path; on torch an
autograd Function does (eager calls whose hidden states or head require a gradient; its
backward scales the saved gradients).

Everything else takes the composition: ``reduction="none"``, KTO (its batch KL reference
point and the per-completion losses need every sequence before any gradient), torch under
``torch.compile``/``torch.export``/``torch.func`` or with a reference, mask or ``beta``
that requires a gradient, and JAX.  There :func:`~losskit.linear_log_probs_vjp` (or
``linear_log_probs``' autograd Function / ``custom_vjp``) turns the per-token factors into the
gradients in a second chunked sweep that recomputes the logits block by block (four products).

Layout, as in TRL and Liger-Kernel: ``hidden`` has shape ``(2B, L, D)`` for ``B`` pairs, the
chosen completions in rows ``0 .. B-1`` and the rejected ones in rows ``B .. 2B-1``; ``tokens``
``(2B, L)`` holds the token each position predicts (labels already shifted), with
``ignore_index`` on the prompt and the padding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core.backend import Array, Namespace, cast, library_name, namespace, stop_gradient
from ..core.dispatch import run_fast_path
from ..core.gradients import LossResult, loss_function, value_and_grad
from ..core.log_prob_specs import LinearLogProbsArrays, LinearLogProbsOptions, LinearLogProbsSpec
from ..core.reduction import Reduction
from ..core.validation import check_int
from .log_probs import _prepare, linear_log_probs, linear_log_probs_vjp, run_sweep
from .policy import grpo
from .preference import cpo, dpo, kto, orpo, simpo

__all__ = ["linear_dpo", "linear_simpo", "linear_orpo", "linear_cpo", "linear_kto", "linear_grpo"]


def _head(
    hidden: Array,
    weight: Array,
    tokens: Array,
    bias: Array | None,
    head: dict[str, Any],
) -> tuple[Namespace, Array, Array, Array]:
    """Per-token log-probs (0 where ignored), the counted-token mask and each row's count."""
    xp = namespace(hidden=hidden, weight=weight, tokens=tokens, bias=bias)
    if tokens.ndim != 2:
        raise ValueError(f"tokens must have shape (sequences, positions); got shape {tuple(tokens.shape)}")
    log_probs = linear_log_probs(hidden, weight, tokens, bias, **head)
    valid = tokens != check_int(head["ignore_index"], "ignore_index")
    counted = xp.sum(xp.astype(valid, log_probs.dtype), axis=-1)
    return xp, log_probs, valid, counted


def _sequences(xp: Namespace, log_probs: Array, counted: Array, average: bool) -> tuple[Array, Array]:
    """Each row's sum (or mean) of token log-probs, and d(value)/d(token) per row."""
    total = xp.sum(log_probs, axis=-1)
    if not average:
        return total, xp.ones_like(total)
    inverse = 1.0 / xp.maximum(counted, xp.ones_like(counted))  # a row with no token: 0, no gradient
    return total * inverse, inverse


def _backward(
    xp: Namespace,
    hidden: Array,
    weight: Array,
    tokens: Array,
    bias: Array | None,
    head: dict[str, Any],
    token_grad: Array,
    wrt: frozenset[int],
    bias_argnum: int,
) -> dict[int, Array]:
    """Gradients for hidden (0), weight (1) and bias (``bias_argnum``) from per-token factors."""
    options = {k: v for k, v in head.items() if k != "return_entropy"}
    gx, gw, gb = linear_log_probs_vjp(
        hidden, weight, tokens, bias, grad_log_probs=xp.astype(token_grad, hidden.dtype), **options
    )
    grads = {}
    for n, g in ((0, gx), (1, gw), (bias_argnum, gb)):
        if n in wrt and g is not None:
            grads[n] = g
    return grads


def _split_pairs(tokens: Array) -> int:
    rows = tokens.shape[0]
    if rows % 2 != 0:
        raise ValueError(
            f"tokens must hold 2B rows, the B chosen completions then the B rejected ones; got {rows} rows"
        )
    return rows // 2


def _whole_rows_spec(xp: Namespace, arrays: LinearLogProbsArrays, head: dict[str, Any], group: int):
    """The sweep's spec with chunks of whole groups of ``group`` tokens: as many as the
    ``chunk_size`` tokens hold ("auto": about 64 MiB of logits), at least one."""
    temperature, ignore_index = head["temperature"], head["ignore_index"]
    auto = LinearLogProbsSpec.of(
        xp, LinearLogProbsOptions(temperature, ignore_index, False, head["chunk_size"]), arrays
    )
    per_chunk = max(1, auto.chunk // group) * group
    options = LinearLogProbsOptions(temperature, ignore_index, False, per_chunk, auto.vocab_chunk)
    return LinearLogProbsSpec.of(xp, options, arrays)


def _single_pass_pairs(
    xp: Namespace,
    loss: Callable[..., Array],
    hidden: Array,
    weight: Array,
    tokens: Array,
    bias: Array | None,
    extra: tuple[Array, ...],
    head: dict[str, Any],
    average: bool,
    options: dict[str, Any],
    need: tuple[bool, bool, bool],
    lengths_option: str | None,
) -> tuple[Array, Array | None, Array | None, Array | None]:
    r"""The loss and its gradients for hidden, weight and bias in one chunked sweep over whole
    pairs of sequences (``reduction`` ``"mean"`` or ``"sum"``).

    A pair's loss depends on that pair's two sequence values only, and ``"mean"`` divides by
    the number of counted pairs, known before the sweep.  So the rows are taken pair by pair
    (chosen row ``k`` beside rejected row ``B + k``), and a chunk of whole pairs is handled at
    once: its logits and log-softmax statistics, its per-token log-probs, its sequence values
    :math:`s`, the loss of its pairs (``loss`` with ``reduction="sum"`` and the chunk's
    ``where``) and :math:`\partial L/\partial s` (times :math:`1/\text{count}` for the mean),
    whence each token's factor :math:`g_{kj} = \partial L/\partial s_k\, m_{kj}\,(/\,n_k)`;
    then the gradient of the chunk's logits :math:`G = g([v = t] - p)/T` from the softmax still
    in the buffer, and :math:`GW`, :math:`G^\top x`, :math:`\sum G` -- three matrix products per
    chunk where the two-sweep path (``linear_log_probs`` then ``linear_log_probs_vjp``) needs
    four.  A chunk holds as many pairs as the ``chunk_size`` tokens allow ("auto": about
    64 MiB of logits), and at least one pair (``2 L`` tokens of logits, as Liger-Kernel's
    chunked losses hold).
    """
    rows, length = tokens.shape
    half = rows // 2
    d = hidden.shape[-1]
    # chosen k, rejected k, chosen k+1, ...: each pair's two rows side by side
    pairs = xp.arange(half)
    order = xp.reshape(xp.stack([pairs, pairs + half], axis=1), (rows,))
    if half > 1:
        hidden_pairs = xp.take(xp.reshape(hidden, (rows, length, d)), order, axis=0)
        tokens_pairs = xp.take(tokens, order, axis=0)
    else:
        hidden_pairs, tokens_pairs = hidden, tokens
    arrays = LinearLogProbsArrays(hidden_pairs, weight, tokens_pairs, bias)
    spec = _whole_rows_spec(xp, arrays, head, 2 * length)  # whole pairs per chunk
    out_dtype, dtype, x2, w, b, safe_t, valid = _prepare(xp, spec, arrays)
    options = dict(options)
    where = options.pop("where", None)
    reduction = options.pop("reduction")
    if where is None:
        count = xp.asarray(float(half), dtype=dtype)
    else:
        count = xp.sum(xp.astype(where, dtype))
    # "mean": 1/count, and 0 when no pair counts (the loss 0, no gradient)
    zero, one = xp.zeros((), dtype=dtype), xp.ones((), dtype=dtype)
    scale = one if reduction == "sum" else xp.where(count > 0, one / xp.where(count > 0, count, one), zero)
    total: list[Array] = []

    def cotangents(lo: int, hi: int, chunk_log_probs: Array) -> tuple[Array, None]:
        r0, r1 = lo // length, hi // length
        p0, p1 = r0 // 2, r1 // 2
        kept = valid[lo:hi]
        lp = xp.reshape(xp.where(kept, chunk_log_probs, zero), (r1 - r0, length))
        counted = xp.sum(xp.astype(xp.reshape(kept, (r1 - r0, length)), dtype), axis=-1)
        seq, d_seq = _sequences(xp, lp, counted, average)
        chosen, rejected = seq[0::2], seq[1::2]
        chunk_options = dict(options, reduction="sum")
        if where is not None:
            chunk_options["where"] = where[p0:p1]
        if lengths_option is not None:
            chunk_options[lengths_option] = xp.maximum(counted[0::2], xp.ones_like(counted[0::2]))
        args = (cast(xp, chosen, out_dtype), cast(xp, rejected, out_dtype), *(e[p0:p1] for e in extra))
        value, (g_chosen, g_rejected) = value_and_grad(loss, argnums=(0, 1))(*args, **chunk_options)
        total.append(value)  # the loss's own dtype (a float64 reference promotes it)
        row_grad = xp.reshape(xp.stack([g_chosen, g_rejected], axis=1), (r1 - r0,))
        row_grad = xp.astype(row_grad, dtype) * d_seq * scale
        g = xp.where(xp.reshape(kept, (r1 - r0, length)), xp.expand_dims(row_grad, axis=-1), zero)
        return xp.reshape(g, (hi - lo,)), None

    res = run_sweep(xp, x2, w, b, safe_t, spec, cotangents=cotangents, need=need)
    value = total[0]
    for part in total[1:]:
        value = value + part
    value = value * xp.astype(scale, value.dtype)
    gx = gw = gb = None
    if need[0]:
        gx = xp.reshape(res.grad_hidden, (rows, length, d))
        if half > 1:  # back to chosen rows then rejected rows
            back = xp.concat([2 * pairs, 2 * pairs + 1])
            gx = xp.take(gx, back, axis=0)
        gx = cast(xp, xp.reshape(gx, tuple(hidden.shape)), hidden.dtype)
    if need[1]:
        gw = cast(xp, res.grad_weight, weight.dtype)
    if need[2]:
        gb = cast(xp, res.grad_bias, bias.dtype)
    return value, gx, gw, gb


def _single_pass_grpo(
    xp: Namespace,
    hidden: Array,
    weight: Array,
    tokens: Array,
    bias: Array | None,
    advantages: Array,
    old_log_probs: Array | None,
    head: dict[str, Any],
    options: dict[str, Any],
    need: tuple[bool, bool, bool],
) -> tuple[Array, Array | None, Array | None, Array | None]:
    r"""GRPO's loss and gradients in one chunked sweep over whole sequences (``reduction``
    ``"mean"`` or ``"sum"``).

    A token's loss depends on its own log-prob, its old and reference log-probs and its
    advantage, and the normaliser of each ``loss_type`` is known before the sweep: ``"grpo"``
    divides each sequence's mean by the number of sequences ``R``, ``"dapo"`` by the counted
    tokens of the batch (or ``normalizer``), ``"dr_grpo"`` by ``R L`` (or ``normalizer``).  So
    each chunk of whole rows evaluates :func:`~losskit.grpo` on its rows with the batch's
    normaliser (``"grpo"``: the chunk's mean times ``R_c / R``), takes
    :math:`\partial L/\partial \log p_t` from it, and folds the gradient in from the chunk's
    softmax (three matrix products per chunk, as for the pair losses).
    """
    rows, length = tokens.shape
    arrays = LinearLogProbsArrays(hidden, weight, tokens, bias)
    spec = _whole_rows_spec(xp, arrays, head, length)  # whole sequences per chunk
    out_dtype, dtype, x2, w, b, safe_t, valid = _prepare(xp, spec, arrays)
    options = dict(options)
    loss_type, reduction = options["loss_type"], options["reduction"]
    if reduction == "mean" and options["normalizer"] is None:
        if loss_type == "dapo":
            total = xp.sum(xp.astype(valid, dtype))
            options["normalizer"] = xp.maximum(total, xp.ones_like(total))
        elif loss_type == "dr_grpo":
            options["normalizer"] = float(rows * length)
    ref = options.pop("ref_log_probs")
    zero = xp.zeros((), dtype=dtype)
    total_value: list[Array] = []

    def cotangents(lo: int, hi: int, chunk_log_probs: Array) -> tuple[Array, None]:
        r0, r1 = lo // length, hi // length
        kept = xp.reshape(valid[lo:hi], (r1 - r0, length))
        lp = xp.where(kept, xp.reshape(chunk_log_probs, (r1 - r0, length)), zero)
        lp = cast(xp, lp, out_dtype)
        old = lp if old_log_probs is None else old_log_probs[r0:r1, ...]
        chunk_options = dict(options, where=kept, ref_log_probs=None if ref is None else ref[r0:r1, ...])
        value, g = value_and_grad(grpo)(lp, old, advantages[r0:r1, ...], **chunk_options)
        g = xp.astype(g, dtype)
        if reduction == "mean" and loss_type == "grpo":  # the chunk's mean times R_c / R
            value, g = value * ((r1 - r0) / rows), g * ((r1 - r0) / rows)
        total_value.append(value)
        return xp.reshape(xp.where(kept, g, zero), (hi - lo,)), None

    res = run_sweep(xp, x2, w, b, safe_t, spec, cotangents=cotangents, need=need)
    value = total_value[0]
    for part in total_value[1:]:
        value = value + part
    gx = None if not need[0] else cast(xp, xp.reshape(res.grad_hidden, tuple(hidden.shape)), hidden.dtype)
    gw = None if not need[1] else cast(xp, res.grad_weight, weight.dtype)
    gb = None if not need[2] else cast(xp, res.grad_bias, bias.dtype)
    return value, gx, gw, gb


def _single_pass_applies(hidden: Array, tokens: Array, extra: tuple[Array, ...], options: dict) -> bool:
    """Whether :func:`_single_pass_pairs` serves the call: a ``"mean"``/``"sum"`` reduction and
    well-shaped arrays (anything else takes the composition, whose checks name the argument)."""
    if options["reduction"] not in ("mean", "sum") or tokens.ndim != 2 or hidden.ndim != 3:
        return False
    rows = tokens.shape[0]
    if rows < 2 or rows % 2 or tuple(hidden.shape[:-1]) != tuple(tokens.shape):
        return False
    where = options.get("where")
    per_pair = (*extra, *(() if where is None else (where,)))
    return all(tuple(getattr(a, "shape", ())) == (rows // 2,) for a in per_pair)


def _grpo_single_pass_applies(hidden, tokens, advantages, old_log_probs, ref_log_probs, options) -> bool:
    """Whether :func:`_single_pass_grpo` serves the call (else the composition, whose checks
    name a bad argument)."""
    if options["reduction"] not in ("mean", "sum") or options["loss_type"] not in ("grpo", "dapo", "dr_grpo"):
        return False
    if tokens.ndim != 2 or hidden.ndim != 3 or tuple(hidden.shape[:-1]) != tuple(tokens.shape):
        return False
    if options["loss_type"] == "grpo" and options["normalizer"] is not None:
        return False
    shape = tuple(tokens.shape)
    if tuple(getattr(advantages, "shape", ())) not in (shape, shape[:1]) or shape[0] == 0:
        return False
    return all(a is None or tuple(getattr(a, "shape", ())) == shape for a in (old_log_probs, ref_log_probs))


def _pairwise(
    loss: Callable[..., Array],
    hidden: Array,
    weight: Array,
    tokens: Array,
    bias: Array | None,
    extra: tuple[Array, ...],
    head: dict[str, Any],
    average: bool,
    options: dict[str, Any],
    wrt: frozenset[int],
    bias_argnum: int,
    lengths_option: str | None = None,
) -> LossResult:
    """A pairwise loss ``loss(chosen, rejected, *extra, **options)`` on the sequence values of the
    ``2B`` rows of a head's log-probs."""
    if _single_pass_applies(hidden, tokens, extra, options):
        xp = namespace(hidden=hidden, weight=weight, tokens=tokens, bias=bias)

        def single_pass(need: tuple[bool, bool, bool], h: Array, w: Array, b: Array | None):
            return _single_pass_pairs(
                xp, loss, h, w, tokens, b, extra, head, average, options, need, lengths_option
            )

        library = library_name(hidden)
        if not wrt:  # torch tensors that autograd differentiates: one sweep in a Function
            others = (tokens, *extra, *options.values())  # a learnable beta stays with autograd
            result = run_fast_path("linear_preference", library, single_pass, hidden, weight, bias, others)
            if result is not None:
                return result, {}
        elif library == "numpy":
            need = (0 in wrt, 1 in wrt, bias is not None and bias_argnum in wrt)
            value, gx, gw, gb = single_pass(need, hidden, weight, bias)
            grads = {n: g for n, g in ((0, gx), (1, gw), (bias_argnum, gb)) if g is not None}
            return value, grads
    xp, log_probs, valid, counted = _head(hidden, weight, tokens, bias, head)
    half = _split_pairs(tokens)
    seq, d_seq = _sequences(xp, log_probs, counted, average)
    if lengths_option is not None:  # CPO's NLL per token: the chosen completions' lengths
        options = dict(options, **{lengths_option: xp.maximum(counted[:half], xp.ones_like(counted[:half]))})
    args = (seq[:half], seq[half:], *extra)
    if not wrt:
        return loss(*args, **options), {}
    value, (g_chosen, g_rejected) = value_and_grad(loss, argnums=(0, 1))(*args, **options)
    row_grad = xp.concat([g_chosen, g_rejected]) * d_seq
    token_grad = xp.where(valid, xp.expand_dims(row_grad, axis=-1), xp.zeros_like(log_probs))
    return value, _backward(xp, hidden, weight, tokens, bias, head, token_grad, wrt, bias_argnum)


def _head_options(temperature: float, ignore_index: int, chunk_size: int | str) -> dict[str, Any]:
    return {"temperature": temperature, "ignore_index": ignore_index, "chunk_size": chunk_size}


@loss_function
def linear_dpo(
    hidden: Array,
    weight: Array,
    tokens: Array,
    reference_chosen_logps: Array,
    reference_rejected_logps: Array,
    bias: Array | None = None,
    *,
    beta: float | Array = 0.1,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
    average: bool = False,
    temperature: float = 1.0,
    ignore_index: int = -100,
    chunk_size: int | str = "auto",
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r""":func:`~losskit.dpo` of the policy head's log-probabilities, from hidden states.

    :math:`\log\pi(y)` of each completion is the sum over its counted tokens of
    :func:`~losskit.linear_log_probs` (the mean with ``average=True``, as IPO is used), and the
    loss is ``dpo(chosen, rejected, reference_chosen_logps, reference_rejected_logps, ...)``.

    Args:
      hidden: the policy's last hidden states, shape ``(2B, L, D)``: the ``B`` chosen
        completions, then the ``B`` rejected ones.
      weight: the policy's head, shape ``(V, D)``; ``bias`` optional, shape ``(V,)``.
      tokens: the predicted tokens, shape ``(2B, L)``, ``ignore_index`` where not counted.
      reference_chosen_logps, reference_rejected_logps: the reference model's sequence
        log-probabilities, shape ``(B,)`` (e.g. ``linear_log_probs`` of the reference head
        summed per row, computed without gradient).
      beta, loss_type, label_smoothing, reduction, where: as in :func:`~losskit.dpo`.
      average: mean instead of sum of token log-probs (default False; True for IPO).
      temperature, ignore_index, chunk_size: as in :func:`~losskit.linear_log_probs`.

    Gradients: ``argnums`` 0 (hidden), 1 (weight), 5 (bias).
    """
    head = _head_options(temperature, ignore_index, chunk_size)
    options = dict(
        beta=beta, loss_type=loss_type, label_smoothing=label_smoothing, reduction=reduction, where=where
    )
    extra = (reference_chosen_logps, reference_rejected_logps)
    return _pairwise(dpo, hidden, weight, tokens, bias, extra, head, average, options, wrt, 5)


@loss_function
def linear_simpo(
    hidden: Array,
    weight: Array,
    tokens: Array,
    bias: Array | None = None,
    *,
    beta: float | Array = 2.0,
    gamma: float | Array = 1.0,
    label_smoothing: float = 0.0,
    temperature: float = 1.0,
    ignore_index: int = -100,
    chunk_size: int | str = "auto",
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r""":func:`~losskit.simpo` of the mean token log-probability of each completion, from
    hidden states (layout and head arguments as :func:`linear_dpo`; no reference model).

    Gradients: ``argnums`` 0 (hidden), 1 (weight), 3 (bias).
    """
    head = _head_options(temperature, ignore_index, chunk_size)
    options = dict(beta=beta, gamma=gamma, label_smoothing=label_smoothing, reduction=reduction, where=where)
    return _pairwise(simpo, hidden, weight, tokens, bias, (), head, True, options, wrt, 3)


@loss_function
def linear_orpo(
    hidden: Array,
    weight: Array,
    tokens: Array,
    bias: Array | None = None,
    *,
    beta: float | Array = 0.1,
    temperature: float = 1.0,
    ignore_index: int = -100,
    chunk_size: int | str = "auto",
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r""":func:`~losskit.orpo` of the mean token log-probability of each completion, from hidden
    states (layout and head arguments as :func:`linear_dpo`; no reference model).

    Gradients: ``argnums`` 0 (hidden), 1 (weight), 3 (bias).
    """
    head = _head_options(temperature, ignore_index, chunk_size)
    options = dict(beta=beta, reduction=reduction, where=where)
    return _pairwise(orpo, hidden, weight, tokens, bias, (), head, True, options, wrt, 3)


@loss_function
def linear_cpo(
    hidden: Array,
    weight: Array,
    tokens: Array,
    bias: Array | None = None,
    *,
    beta: float | Array = 0.1,
    alpha: float | Array = 1.0,
    label_smoothing: float = 0.0,
    temperature: float = 1.0,
    ignore_index: int = -100,
    chunk_size: int | str = "auto",
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r""":func:`~losskit.cpo` of the summed token log-probabilities of each completion, its NLL
    term per token (the chosen rows' counted tokens as ``chosen_lengths``), from hidden states
    (layout and head arguments as :func:`linear_dpo`; no reference model).

    Gradients: ``argnums`` 0 (hidden), 1 (weight), 3 (bias).
    """
    head = _head_options(temperature, ignore_index, chunk_size)
    options = dict(beta=beta, alpha=alpha, label_smoothing=label_smoothing, reduction=reduction, where=where)
    return _pairwise(cpo, hidden, weight, tokens, bias, (), head, False, options, wrt, 3, "chosen_lengths")


@loss_function
def linear_kto(
    hidden: Array,
    weight: Array,
    tokens: Array,
    reference_logps: Array,
    desirable: Array,
    bias: Array | None = None,
    *,
    policy_kl_logps: Array | None = None,
    reference_kl_logps: Array | None = None,
    beta: float | Array = 0.1,
    desirable_weight: float | Array = 1.0,
    undesirable_weight: float | Array = 1.0,
    temperature: float = 1.0,
    ignore_index: int = -100,
    chunk_size: int | str = "auto",
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r""":func:`~losskit.kto` of the summed token log-probabilities of each completion, from
    hidden states.

    Args:
      hidden: the policy's hidden states, shape ``(B, L, D)``, one row per completion (unpaired).
      weight, tokens, bias, temperature, ignore_index, chunk_size: as in :func:`linear_dpo`.
      reference_logps: the reference's sequence log-probabilities, shape ``(B,)``.
      desirable: boolean, shape ``(B,)``.
      policy_kl_logps, reference_kl_logps: as in :func:`~losskit.kto`; they enter without
        gradient, so ``linear_log_probs`` of the mismatched completions can run detached.
      beta, desirable_weight, undesirable_weight, reduction, where: as in :func:`~losskit.kto`.

    Gradients: ``argnums`` 0 (hidden), 1 (weight), 5 (bias).
    """
    head = _head_options(temperature, ignore_index, chunk_size)
    options = dict(
        policy_kl_logps=policy_kl_logps,
        reference_kl_logps=reference_kl_logps,
        beta=beta,
        desirable_weight=desirable_weight,
        undesirable_weight=undesirable_weight,
        reduction=reduction,
        where=where,
    )
    xp, log_probs, valid, counted = _head(hidden, weight, tokens, bias, head)
    seq = xp.sum(log_probs, axis=-1)
    if not wrt:
        return kto(seq, reference_logps, desirable, **options), {}
    value, row_grad = value_and_grad(kto)(seq, reference_logps, desirable, **options)
    token_grad = xp.where(valid, xp.expand_dims(row_grad, axis=-1), xp.zeros_like(log_probs))
    return value, _backward(xp, hidden, weight, tokens, bias, head, token_grad, wrt, 5)


@loss_function
def linear_grpo(
    hidden: Array,
    weight: Array,
    tokens: Array,
    advantages: Array,
    old_log_probs: Array | None = None,
    bias: Array | None = None,
    *,
    ref_log_probs: Array | None = None,
    beta: float | Array = 0.0,
    epsilon_low: float = 0.2,
    epsilon_high: float | None = None,
    loss_type: str = "grpo",
    normalizer: float | Array | None = None,
    temperature: float = 1.0,
    ignore_index: int = -100,
    chunk_size: int | str = "auto",
    reduction: Reduction = "mean",
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r""":func:`~losskit.grpo` of the policy head's per-token log-probabilities, from hidden
    states; the counted tokens (``where``) are those not equal to ``ignore_index``.

    Args:
      hidden: the policy's hidden states at the completions, shape ``(B, L, D)``.
      weight, bias, temperature, ignore_index, chunk_size: as in :func:`linear_dpo`.
      tokens: the sampled tokens, shape ``(B, L)``, ``ignore_index`` at padding.
      advantages: shape ``(B,)`` or ``(B, L)``.
      old_log_probs: the sampling policy's per-token log-probs, shape ``(B, L)``; ``None``
        means the current ones without gradient (one update per batch: the ratio is 1).
      ref_log_probs, beta, epsilon_low, epsilon_high, loss_type, normalizer, reduction: as
        in :func:`~losskit.grpo`.

    Gradients: ``argnums`` 0 (hidden), 1 (weight), 5 (bias).
    """
    head = _head_options(temperature, ignore_index, chunk_size)
    options = dict(
        ref_log_probs=ref_log_probs,
        beta=beta,
        epsilon_low=epsilon_low,
        epsilon_high=epsilon_high,
        loss_type=loss_type,
        normalizer=normalizer,
        reduction=reduction,
    )
    if _grpo_single_pass_applies(hidden, tokens, advantages, old_log_probs, ref_log_probs, options):
        xp = namespace(hidden=hidden, weight=weight, tokens=tokens, bias=bias)

        def single_pass(need: tuple[bool, bool, bool], h: Array, w: Array, b: Array | None):
            return _single_pass_grpo(xp, h, w, tokens, b, advantages, old_log_probs, head, options, need)

        library = library_name(hidden)
        if not wrt:
            others = (tokens, advantages, old_log_probs, *options.values())
            result = run_fast_path("linear_preference", library, single_pass, hidden, weight, bias, others)
            if result is not None:
                return result, {}
        elif library == "numpy":
            need = (0 in wrt, 1 in wrt, bias is not None and 5 in wrt)
            value, gx, gw, gb = single_pass(need, hidden, weight, bias)
            return value, {n: g for n, g in ((0, gx), (1, gw), (5, gb)) if g is not None}
    xp, log_probs, valid, _ = _head(hidden, weight, tokens, bias, head)
    old = stop_gradient(log_probs) if old_log_probs is None else old_log_probs
    options["where"] = valid
    if not wrt:
        return grpo(log_probs, old, advantages, **options), {}
    value, token_grad = value_and_grad(grpo)(log_probs, old, advantages, **options)
    return value, _backward(xp, hidden, weight, tokens, bias, head, token_grad, wrt, 5)
