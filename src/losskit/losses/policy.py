"""Policy-gradient losses for reinforcement learning of language models (PPO, GRPO, DAPO).

- :func:`grpo`: the clipped importance-ratio surrogate per token (PPO, Schulman et al. 2017;
  GRPO, Shao et al. 2024) with asymmetric clipping (DAPO's clip-higher, Yu et al. 2025), an
  optional KL penalty to a reference model by the k3 estimator, and the token normalisations
  in use: per-sequence mean then batch mean (GRPO), mean over every token of the batch (DAPO)
  or a constant (Dr. GRPO, Liu et al. 2025).
- :func:`group_advantages`: group-relative advantages from the rewards of several completions
  per prompt (GRPO), scaled by the group's standard deviation or not (Dr. GRPO).

The inputs are per-token log-probabilities of the sampled tokens, as
:func:`losskit.linear_log_probs` computes them from hidden states without the logits.
"""

from __future__ import annotations

from ..core.backend import Array, cast, compute_dtype, finish, namespace
from ..core.catalog import catalogued
from ..core.gradients import LossResult, loss_function
from ..core.reduction import Reduction
from ..core.validation import (
    check_float_array,
    check_hyperparameter,
    check_int,
    check_mask,
    check_nonempty,
    check_normalizer,
    check_number,
    check_reduction,
    check_same_shape,
)

__all__ = ["grpo", "group_advantages"]

GRPO_LOSS_TYPES = ("grpo", "dapo", "dr_grpo")


def _k3(xp, log_probs: Array, ref_log_probs: Array) -> tuple[Array, Array]:
    r"""Schulman's k3 estimator of :math:`\mathrm{KL}(\pi\,\|\,\pi_{ref})` per sampled token and
    its derivative with respect to :math:`\log\pi`:

    .. math:: k_3 = e^{d} - d - 1,\quad d = \log\pi_{ref} - \log\pi;\qquad
              \partial k_3/\partial\log\pi = 1 - e^{d}.

    ``expm1(d) - d`` keeps the small values exact; where :math:`d = +\infty` (a token the
    policy gives probability 0) the estimate is :math:`+\infty`, not ``inf - inf``.
    """
    d = ref_log_probs - log_probs
    infinite = d == float("inf")
    safe = xp.where(infinite, xp.zeros_like(d), d)  # no inf - inf evaluated, even in a discarded branch
    k3 = xp.where(infinite, d, xp.expm1(safe) - safe)
    return k3, -xp.expm1(d)


@catalogued(
    family="policy",
    input_space="log-probabilities",
    formula="-min(rho A, clip(rho, 1 - eps_low, 1 + eps_high) A) + beta k3, rho = exp(logp - old_logp)",
)
@loss_function
def grpo(
    log_probs: Array,
    old_log_probs: Array,
    advantages: Array,
    *,
    ref_log_probs: Array | None = None,
    beta: float | Array = 0.0,
    epsilon_low: float = 0.2,
    epsilon_high: float | None = None,
    loss_type: str = "grpo",
    normalizer: float | Array | None = None,
    reduction: Reduction = "mean",
    where: Array | None = None,
    wrt: frozenset[int] = frozenset(),
) -> LossResult:
    r"""The clipped policy-gradient surrogate of PPO and GRPO, per generated token.

    With the importance ratio :math:`\rho_t = \exp(\log\pi(o_t) - \log\pi_{old}(o_t))` and the
    advantage :math:`A` (one per sequence, or one per token),

    .. math::
        \ell_t = -\min\big(\rho_t A,\ \mathrm{clip}(\rho_t, 1-\epsilon_{low}, 1+\epsilon_{high})\,A\big)
                 + \beta\,\big(e^{d_t} - d_t - 1\big),\qquad d_t = \log\pi_{ref}(o_t) - \log\pi(o_t),

    the second term being the k3 estimate of :math:`\mathrm{KL}(\pi\,\|\,\pi_{ref})` (GRPO,
    Shao et al. 2024, eqs. 3–4).  The token losses of the counted tokens (``where``, the
    completion mask) are then combined by ``loss_type`` (with ``reduction="mean"``):

    - ``"grpo"``: the mean over each sequence's tokens, then the mean over sequences (GRPO); a
      sequence with no counted token adds 0 and still counts in the batch (TRL's rule);
    - ``"dapo"``: the sum over every counted token divided by their number (DAPO's token-level
      loss, Yu et al. 2025; TRL's ``"bnpo"``), or by ``normalizer`` when given (TRL's
      ``"dapo"`` passes the token count of the whole accumulated batch);
    - ``"dr_grpo"``: the sum divided by a constant, ``normalizer`` or by default the number of
      sequences times the padded length (Dr. GRPO, Liu et al. 2025).

    ``reduction="sum"`` gives the plain sum over counted tokens and ``"none"`` the per-token
    losses (0 where not counted).

    Gradients: with respect to ``log_probs`` (``argnums=0``), :math:`-\rho_t A` where the
    unclipped term is the minimum and 0 where the clipped one is (it is then constant), plus
    :math:`\beta(1 - e^{d_t})`; with respect to ``old_log_probs`` (1), :math:`+\rho_t A` where
    unclipped; with respect to ``advantages`` (2), :math:`-\rho_t` or :math:`-\mathrm{clip}(\rho_t)`,
    summed over a sequence's tokens for per-sequence advantages.

    Args:
      log_probs: :math:`\log\pi(o_t)` of the sampled tokens under the policy being trained,
        shape ``(..., T)`` (sequences along the leading axes, tokens along the last).
      old_log_probs: the same under the policy that sampled them, same shape (with one update
        per batch: ``log_probs`` detached, and the ratio is 1).
      advantages: shape ``(...)`` (one per sequence, as GRPO's group advantages) or
        ``(..., T)`` (one per token, as PPO's GAE).
      ref_log_probs: the reference model's log-probabilities, same shape; needed when
        ``beta > 0``.
      beta: :math:`\beta \ge 0`, the KL coefficient (default 0, as in DAPO and Dr. GRPO; GRPO
        used 0.04).
      epsilon_low, epsilon_high: the clipping range (default 0.2 and ``epsilon_low``; DAPO
        uses 0.2 and 0.28).
      loss_type: ``"grpo"`` (default), ``"dapo"`` or ``"dr_grpo"``.
      normalizer: the divisor for ``"dapo"`` and ``"dr_grpo"`` (a number or 0-d array > 0).
      reduction: ``"mean"`` (default: as ``loss_type`` says), ``"sum"``, ``"none"``.
      where: optional boolean mask of the counted tokens (the completion mask), broadcasting
        to ``log_probs``' shape.

    Equivalent: TRL's ``GRPOTrainer`` loss with ``loss_type`` ``"grpo"``, ``"bnpo"`` /
    ``"dapo"``, ``"dr_grpo"`` and token-level importance sampling (same numbers).
    """
    xp = namespace(
        log_probs=log_probs,
        old_log_probs=old_log_probs,
        advantages=advantages,
        ref_log_probs=ref_log_probs,
        where=where,
    )
    check_float_array(xp, log_probs, "log_probs")
    if log_probs.ndim == 0:
        raise ValueError("log_probs must have a token axis (the last); got a 0-d array")
    check_nonempty(log_probs, "log_probs")
    check_float_array(xp, old_log_probs, "old_log_probs")
    check_same_shape(log_probs, old_log_probs, "log_probs", "old_log_probs")
    check_float_array(xp, advantages, "advantages")
    shape = tuple(log_probs.shape)
    per_sequence = tuple(advantages.shape) == shape[:-1]
    if not per_sequence and tuple(advantages.shape) != shape:
        raise ValueError(
            f"advantages must have shape {shape[:-1]} (one per sequence) or {shape} (one per token); "
            f"got {tuple(advantages.shape)}"
        )
    if not isinstance(loss_type, str) or loss_type not in GRPO_LOSS_TYPES:
        raise ValueError(
            f"loss_type must be one of {', '.join(map(repr, GRPO_LOSS_TYPES))}; got {loss_type!r}"
        )
    check_reduction(reduction)
    if normalizer is not None:
        if loss_type == "grpo":
            raise ValueError(
                "normalizer applies to loss_type 'dapo' and 'dr_grpo'; 'grpo' averages per sequence"
            )
        check_normalizer(normalizer)
    epsilon_low = check_number(epsilon_low, "epsilon_low", low=0.0, high=1.0)
    epsilon_high = (
        epsilon_low if epsilon_high is None else check_number(epsilon_high, "epsilon_high", low=0.0)
    )
    beta = check_hyperparameter(beta, "beta", like=log_probs, low=0.0)
    kl_needed = not (isinstance(beta, float) and beta == 0.0)
    if ref_log_probs is not None:
        check_float_array(xp, ref_log_probs, "ref_log_probs")
        check_same_shape(log_probs, ref_log_probs, "log_probs", "ref_log_probs")
    elif kl_needed:
        raise ValueError("ref_log_probs is needed for the KL term when beta > 0")
    check_mask(xp, where, shape, "log_probs")

    arrays = [log_probs, old_log_probs, advantages] + ([ref_log_probs] if kl_needed else [])
    out_dtype = xp.result_type(*(a.dtype for a in arrays))
    dtype = compute_dtype(xp, out_dtype)
    logp, old = cast(xp, log_probs, dtype), cast(xp, old_log_probs, dtype)
    adv = cast(xp, advantages, dtype)
    if per_sequence:
        adv = xp.expand_dims(adv, axis=-1)
    ratio = xp.exp(logp - old)
    clipped = xp.clip(ratio, 1.0 - epsilon_low, 1.0 + epsilon_high)
    plain, capped = ratio * adv, clipped * adv
    # the unclipped term is the minimum (ties included: there the clipped ratio equals the ratio)
    unclipped = ~(capped < plain)
    value = -xp.where(unclipped, plain, capped)
    d_logp = xp.where(unclipped, -plain, xp.zeros_like(plain))
    if kl_needed:
        k3, d_k3 = _k3(xp, logp, cast(xp, ref_log_probs, dtype))
        value = value + beta * k3
    # per-token scale: d(reduced)/d(token loss), 0 where the token does not count
    mask = None if where is None else xp.broadcast_to(where, shape)
    one = xp.ones(shape, dtype=dtype)
    counted = one if mask is None else xp.where(mask, one, xp.zeros_like(one))
    if reduction == "none" or reduction == "sum":
        scale = counted
    elif loss_type == "grpo":
        sequences = 1
        for n in shape[:-1]:
            sequences *= n
        per_row = xp.sum(counted, axis=-1, keepdims=True)
        scale = counted / (xp.maximum(per_row, xp.ones_like(per_row)) * float(sequences))
    elif normalizer is not None:
        scale = counted / (
            normalizer if isinstance(normalizer, (int, float)) else xp.astype(normalizer, dtype)
        )
    elif loss_type == "dapo":
        total = xp.sum(counted)
        scale = counted / xp.maximum(total, xp.ones_like(total))
    else:  # dr_grpo: sequences x padded length, a constant
        size = 1
        for n in shape:
            size *= n
        scale = counted / float(size)
    masked = value if mask is None else xp.where(mask, value, xp.zeros_like(value))
    result = masked * scale if reduction == "none" else xp.sum(masked * scale)
    zero = xp.zeros_like(value)

    def scaled(g: Array) -> Array:  # a token that does not count passes no gradient, not even NaN
        return g * scale if mask is None else xp.where(mask, g * scale, zero)

    grads = {}
    if 0 in wrt:
        grads[0] = scaled(d_logp + beta * d_k3 if kl_needed else d_logp)
    if 1 in wrt:
        grads[1] = scaled(-d_logp)
    if 2 in wrt:
        g = scaled(-xp.where(unclipped, ratio, clipped))
        grads[2] = xp.sum(g, axis=-1) if per_sequence else g
    return finish(xp, out_dtype, result, grads)


def group_advantages(
    rewards: Array,
    group_size: int,
    *,
    scale: bool | str = True,
    eps: float = 1e-4,
) -> Array:
    r"""Group-relative advantages (GRPO, Shao et al. 2024, section 4.1.2): each completion's
    reward against the other completions of the same prompt,

    .. math:: A_i = \frac{r_i - \mathrm{mean}(r_{g(i)})}{\mathrm{std}(r_{g(i)}) + \varepsilon}.

    Args:
      rewards: shape ``(num_prompts * group_size,)``, the ``group_size`` completions of each
        prompt next to one another (TRL's layout).
      group_size: completions per prompt :math:`G \ge 1`.
      scale: ``True`` or ``"group"`` (default) divide by each group's standard deviation,
        ``"batch"`` by the whole batch's (Hu et al.'s REINFORCE++ choice, TRL's
        ``scale_rewards="batch"``), ``False`` or ``"none"`` not at all (Dr. GRPO: the division
        biases the update towards prompts whose rewards barely vary).  The standard deviation
        is the unbiased one (divisor :math:`n - 1`), as ``torch.std`` and TRL; it is 0 for a
        group of one.
      eps: :math:`\varepsilon > 0` (default ``1e-4``, TRL's), keeps groups of equal rewards at 0.

    Returns:
      the advantages, shape and array type of ``rewards`` (constants: no gradient flows from
      them into a loss's ``advantages`` beyond what the caller's framework tracks).
    """
    xp = namespace(rewards=rewards)
    check_float_array(xp, rewards, "rewards")
    if rewards.ndim != 1:
        raise ValueError(f"rewards must be 1-d (num_prompts * group_size,); got shape {tuple(rewards.shape)}")
    check_nonempty(rewards, "rewards")
    group_size = check_int(group_size, "group_size")
    n = rewards.shape[0]
    if group_size < 1 or n % group_size != 0:
        raise ValueError(f"group_size must be >= 1 and divide the number of rewards {n}; got {group_size}")
    mode = ("group" if scale else "none") if isinstance(scale, bool) else scale
    if mode not in ("group", "batch", "none"):
        raise ValueError(f"scale must be True, False, 'group', 'batch' or 'none'; got {scale!r}")
    eps = check_number(eps, "eps", low=0.0, low_inclusive=False)
    dtype = compute_dtype(xp, rewards.dtype)
    r = cast(xp, rewards, dtype)
    grouped = xp.reshape(r, (n // group_size, group_size))
    centred = grouped - xp.mean(grouped, axis=-1, keepdims=True)
    if mode == "group":
        std = (
            xp.std(grouped, axis=-1, keepdims=True, correction=1)
            if group_size > 1
            else xp.zeros_like(centred)
        )
        centred = centred / (std + eps)
    elif mode == "batch":
        std = xp.std(r, correction=1) if n > 1 else xp.zeros((), dtype=dtype)
        centred = centred / (std + eps)
    return cast(xp, xp.reshape(centred, (n,)), rewards.dtype)
