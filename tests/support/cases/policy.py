"""Cases for the policy-gradient losses against the GRPO / DAPO / Dr. GRPO formulas written here
in NumPy (TRL's own loss code is compared in tests/losses/test_policy.py)."""

from __future__ import annotations

import numpy as np

import losskit as lk

from . import Case


def grpo_reference(args, kwargs, reduction):
    logp, old, adv = args
    eps_low = kwargs.get("epsilon_low", 0.2)
    eps_high = kwargs.get("epsilon_high") or eps_low
    beta = kwargs.get("beta", 0.0)
    loss_type = kwargs.get("loss_type", "grpo")
    if adv.shape != logp.shape:
        adv = adv[..., None]
    ratio = np.exp(logp - old)  # PPO's importance ratio, per token
    surrogate = np.minimum(ratio * adv, np.clip(ratio, 1 - eps_low, 1 + eps_high) * adv)
    loss = -surrogate
    if beta:
        d = kwargs["ref_log_probs"] - logp  # Schulman's k3 estimator of KL(pi || ref)
        loss = loss + beta * (np.exp(d) - d - 1)
    mask = kwargs.get("where")
    mask = np.ones(logp.shape) if mask is None else np.broadcast_to(mask, logp.shape).astype(np.float64)
    loss = loss * mask
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if loss_type == "grpo":  # Shao et al. 2024, eq. 3: 1/G sum_i 1/|o_i| sum_t
        per_sequence = loss.sum(-1) / np.maximum(mask.sum(-1), 1.0)
        return per_sequence.mean()
    if kwargs.get("normalizer") is not None:
        return loss.sum() / kwargs["normalizer"]
    if loss_type == "dapo":  # Yu et al. 2025, eq. 8: 1 / sum_i |o_i| sum_i sum_t
        return loss.sum() / max(mask.sum(), 1.0)
    return loss.sum() / logp.size  # Dr. GRPO: a constant, sequences x padded length


def _grpo_args(shape=(4, 5), per_token=False, kl=False, masked=False, **options):
    def make(rng):
        logp = -rng.uniform(0.05, 4.0, size=shape)
        # ratios from about 0.6 to 1.6: some tokens are clipped, on both sides
        old = logp + rng.uniform(-0.5, 0.5, size=shape)
        adv = rng.normal(size=shape if per_token else shape[:-1])
        kwargs = dict(options)
        if kl:
            kwargs["ref_log_probs"] = logp + rng.normal(scale=0.5, size=shape)
            kwargs.setdefault("beta", 0.04)
        if masked:
            where = rng.uniform(size=shape) < 0.7
            where[..., 0] = True
            where[-1] = False  # a sequence with no counted token
            kwargs["where"] = where
        return (logp, old, adv), kwargs

    return make


CASES = [
    Case(
        id="grpo",
        fn=lk.grpo,
        make_args=_grpo_args(),
        numpy_reference=grpo_reference,
        grad_argnums=(0, 1, 2),
        nonnegative=False,
    ),
    Case(
        id="grpo-kl-where",
        fn=lk.grpo,
        make_args=_grpo_args(kl=True, masked=True),
        numpy_reference=grpo_reference,
        grad_argnums=(0, 1, 2),
        nonnegative=False,
    ),
    Case(
        id="grpo-dapo-clip-higher",
        fn=lk.grpo,
        make_args=_grpo_args(masked=True, loss_type="dapo", epsilon_high=0.28),
        numpy_reference=grpo_reference,
        grad_argnums=(0, 1, 2),
        nonnegative=False,
    ),
    Case(
        id="grpo-dapo-normalizer-per-token-advantages",
        fn=lk.grpo,
        make_args=_grpo_args(per_token=True, kl=True, loss_type="dapo", normalizer=37.0),
        numpy_reference=grpo_reference,
        grad_argnums=(0, 1, 2),
        nonnegative=False,
    ),
    Case(
        id="grpo-dr-grpo",
        fn=lk.grpo,
        make_args=_grpo_args(shape=(2, 3, 4), kl=True, masked=True, loss_type="dr_grpo"),
        numpy_reference=grpo_reference,
        grad_argnums=(0, 1, 2),
        nonnegative=False,
    ),
]
