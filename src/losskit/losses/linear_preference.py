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

and :func:`~losskit.linear_log_probs_vjp` turns these into the gradients for the hidden states,
the weight and the bias in one more chunked sweep (the logits recomputed block by block).
torch tensors that autograd differentiates and JAX arrays under ``jax.grad`` take the same
route through ``linear_log_probs``'s autograd Function / ``custom_vjp``;
:func:`losskit.value_and_grad` (``argnums`` 0 hidden, 1 weight, and the bias's position) gives
it for any array library.

Layout, as in TRL and Liger-Kernel: ``hidden`` has shape ``(2B, L, D)`` for ``B`` pairs, the
chosen completions in rows ``0 .. B-1`` and the rejected ones in rows ``B .. 2B-1``; ``tokens``
``(2B, L)`` holds the token each position predicts (labels already shifted), with
``ignore_index`` on the prompt and the padding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core.backend import Array, Namespace, namespace, stop_gradient
from ..core.gradients import LossResult, loss_function, value_and_grad
from ..core.validation import check_int
from .log_probs import linear_log_probs, linear_log_probs_vjp
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
    reduction: str = "mean",
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
    reduction: str = "mean",
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
    reduction: str = "mean",
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
    reduction: str = "mean",
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
    reduction: str = "mean",
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
    reduction: str = "mean",
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
    xp, log_probs, valid, _ = _head(hidden, weight, tokens, bias, head)
    old = stop_gradient(log_probs) if old_log_probs is None else old_log_probs
    options = dict(
        ref_log_probs=ref_log_probs,
        beta=beta,
        epsilon_low=epsilon_low,
        epsilon_high=epsilon_high,
        loss_type=loss_type,
        normalizer=normalizer,
        reduction=reduction,
        where=valid,
    )
    if not wrt:
        return grpo(log_probs, old, advantages, **options), {}
    value, token_grad = value_and_grad(grpo)(log_probs, old, advantages, **options)
    return value, _backward(xp, hidden, weight, tokens, bias, head, token_grad, wrt, 5)
