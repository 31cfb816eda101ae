"""Policy-gradient losses: GRPO against TRL's own loss code (float64), group advantages against
TRL's formula, nothing counted gives 0 with a zero gradient, bad input is refused naming the
argument.  Values and gradients against the papers' formulas, finite differences and every
backend come from the case table (tests/support/cases/policy.py)."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import numpy as np
import pytest

import losskit as lk

torch = pytest.importorskip("torch")


class _Accelerator:
    device = torch.device("cpu")
    num_processes = 1
    sync_gradients = True

    @staticmethod
    def gather(x):
        return x

    gather_for_metrics = gather

    @staticmethod
    def reduce(x, reduction="sum"):
        return x


def _trl_grpo(logp, old, adv, ref, mask, *, loss_type, beta, epsilon_low, epsilon_high, num_items=None):
    """TRL's GRPOTrainer._compute_loss, called unbound with a stand-in trainer (evaluation mode:
    no gradient-accumulation scaling) whose per-token log-probabilities are ``logp``."""
    from trl.trainer.grpo_trainer import GRPOTrainer

    leaf = torch.from_numpy(logp).requires_grad_(True)
    trainer = SimpleNamespace(
        model=SimpleNamespace(training=False),
        accelerator=_Accelerator(),
        args=SimpleNamespace(use_bias_correction_kl=False, delta=None),
        _get_per_token_logps_and_entropies=lambda *a, **k: (leaf, torch.zeros_like(leaf), None),
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _entropy_bonus_enabled=False,
        aux_loss_enabled=False,
        top_entropy_quantile=1.0,
        off_policy_mask_threshold=None,
        importance_sampling_level="token",
        loss_type=loss_type,
        beta=beta,
        epsilon_low=epsilon_low,
        epsilon_high=epsilon_high,
        use_vllm=False,
        max_completion_length=logp.shape[1],
        current_gradient_accumulation_steps=1,
    )
    inputs = {
        "prompt_ids": torch.zeros((logp.shape[0], 1), dtype=torch.int64),
        "prompt_mask": torch.ones((logp.shape[0], 1), dtype=torch.int64),
        "completion_ids": torch.zeros(logp.shape, dtype=torch.int64),
        "completion_mask": torch.from_numpy(mask.astype(np.int64)),
        "advantages": torch.from_numpy(adv),
        "old_per_token_logps": torch.from_numpy(old),
        "ref_per_token_logps": torch.from_numpy(ref),
    }
    if num_items is not None:
        inputs["num_items_in_batch"] = torch.tensor(float(num_items), dtype=torch.float64)
    loss = GRPOTrainer._compute_loss(trainer, None, inputs)
    (grad,) = torch.autograd.grad(loss, leaf)
    return loss.item(), grad.numpy()


def _rollout(rng, shape=(6, 5)):
    logp = -rng.uniform(0.05, 4.0, size=shape)
    old = logp + rng.uniform(-0.5, 0.5, size=shape)
    ref = logp + rng.normal(scale=0.5, size=shape)
    adv = lk.group_advantages(rng.normal(size=shape[0]), 3)
    mask = np.arange(shape[1]) < rng.integers(1, shape[1] + 1, size=shape[0])[:, None]
    return logp, old, adv, ref, mask


@pytest.mark.parametrize(
    "trl_type,ours,beta,eps_high",
    [
        ("grpo", "grpo", 0.04, 0.2),
        ("grpo", "grpo", 0.0, 0.28),
        ("bnpo", "dapo", 0.04, 0.28),
        ("dapo", "dapo", 0.0, 0.28),
        ("dr_grpo", "dr_grpo", 0.1, 0.2),
    ],
)
def test_grpo_matches_trl(rng, trl_type, ours, beta, eps_high):
    pytest.importorskip("trl")
    logp, old, adv, ref, mask = _rollout(rng)
    num_items = int(mask.sum()) + 7 if trl_type == "dapo" else None  # tokens of the accumulated batch
    trl_value, trl_grad = _trl_grpo(
        logp, old, adv, ref, mask, loss_type=trl_type, beta=beta, epsilon_low=0.2, epsilon_high=eps_high,
        num_items=num_items,
    )  # fmt: skip
    options = dict(ref_log_probs=ref, beta=beta, epsilon_high=eps_high, loss_type=ours, where=mask)
    if num_items is not None:
        options["normalizer"] = float(num_items)
    value, grad = lk.value_and_grad(lk.grpo)(logp, old, adv, **options)
    np.testing.assert_allclose(value, trl_value, rtol=1e-12)
    np.testing.assert_allclose(grad, trl_grad, rtol=1e-10, atol=1e-15)


def test_first_step_of_a_batch_is_the_plain_policy_gradient(rng):
    # old = current (detached): the ratio is 1, the loss -mean(A) and the gradient -A / |o_i| / G
    logp, _, adv, _, mask = _rollout(rng)
    value, grad = lk.value_and_grad(lk.grpo)(logp, logp, adv, where=mask)
    lengths = mask.sum(axis=1)
    np.testing.assert_allclose(value, -np.mean(adv), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        grad, np.where(mask, -adv[:, None] / lengths[:, None] / len(adv), 0.0), rtol=1e-12
    )


def test_group_advantages_match_trl_formula(rng):
    rewards = rng.normal(size=12)
    groups = torch.from_numpy(rewards).view(-1, 4)
    mean = groups.mean(dim=1).repeat_interleave(4)
    std = groups.std(dim=1).repeat_interleave(4)  # unbiased, as TRL's nanstd
    expected = ((torch.from_numpy(rewards) - mean) / (std + 1e-4)).numpy()
    np.testing.assert_allclose(lk.group_advantages(rewards, 4), expected, rtol=1e-12)
    np.testing.assert_allclose(
        lk.group_advantages(rewards, 4, scale=False), (torch.from_numpy(rewards) - mean).numpy()
    )
    batch_std = torch.from_numpy(rewards).std()
    by_batch = ((torch.from_numpy(rewards) - mean) / (batch_std + 1e-4)).numpy()
    np.testing.assert_allclose(lk.group_advantages(rewards, 4, scale="batch"), by_batch, rtol=1e-12)
    # equal rewards in a group: 0, not NaN; a group of one: 0
    assert np.all(lk.group_advantages(np.ones(6), 3) == 0)
    assert np.all(lk.group_advantages(rewards, 1) == 0)
    # every backend
    for t in (torch.from_numpy(rewards),):
        np.testing.assert_allclose(lk.group_advantages(t, 4).numpy(), expected, rtol=1e-12)
    import jax
    import jax.numpy as jnp

    out = jax.jit(lambda r: lk.group_advantages(r, 4))(jnp.asarray(rewards))
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-12)


@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo"])
@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_nothing_counted_gives_zero_with_zero_gradient(rng, backend, loss_type):
    from tests.support.backends import BY_NAME

    convert = BY_NAME[backend]
    logp, old, adv, ref, _ = _rollout(rng)
    options = dict(ref_log_probs=ref, beta=0.04, loss_type=loss_type, where=np.zeros(logp.shape, dtype=bool))
    b_args, b_kwargs = convert.args((logp, old, adv), options)
    value, grads = lk.value_and_grad(lk.grpo, argnums=(0, 1, 2))(*b_args, **b_kwargs)
    assert float(convert.back(value)) == 0.0
    for g in grads:
        assert np.all(convert.back(g) == 0.0)
    if backend == "torch":
        leaf = b_args[0].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(lk.grpo(leaf, *b_args[1:], **b_kwargs), leaf)
        assert torch.all(g == 0)
    if backend == "jax":
        import jax

        g = jax.jit(jax.grad(lambda x: lk.grpo(x, *b_args[1:], **b_kwargs)))(b_args[0])
        assert np.all(np.asarray(g) == 0)


def test_k3_kl_is_exact_near_zero_and_infinite_at_zero_probability():
    logp = np.array([[-1.0, -1.0, -np.inf]])
    ref = np.array([[-1.0, -1.0 + 1e-9, -2.0]])
    zero_adv = np.zeros(1)
    per_token = lk.grpo(
        logp, np.full_like(logp, -1.0), zero_adv, ref_log_probs=ref, beta=1.0, reduction="none"
    )
    assert per_token[0, 0] == 0.0
    np.testing.assert_allclose(per_token[0, 1], 0.5e-18, rtol=1e-6)  # d^2 / 2: exp(d) - d - 1 would give 0
    assert np.isposinf(per_token[0, 2])


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda a, s: lk.grpo(a, a[:, :2], s), "old_log_probs must have the same shape"),
        (lambda a, s: lk.grpo(a, a, s[:2]), r"advantages must have shape \(3,\) \(one per sequence\)"),
        (lambda a, s: lk.grpo(a, a, s.astype(np.int64)), "advantages must be a real floating"),
        (lambda a, s: lk.grpo(a, a, s, beta=0.1), "ref_log_probs is needed"),
        (
            lambda a, s: lk.grpo(a, a, s, ref_log_probs=a[:1], beta=0.1),
            "ref_log_probs must have the same shape",
        ),
        (lambda a, s: lk.grpo(a, a, s, loss_type="bnpo"), "loss_type must be one of"),
        (lambda a, s: lk.grpo(a, a, s, normalizer=10.0), "normalizer applies"),
        (lambda a, s: lk.grpo(a, a, s, loss_type="dapo", normalizer=0.0), "normalizer must be"),
        (lambda a, s: lk.grpo(a, a, s, epsilon_low=1.5), "epsilon_low must be in"),
        (lambda a, s: lk.grpo(a, a, s, epsilon_high=-0.1), "epsilon_high must be in"),
        (lambda a, s: lk.grpo(a, a, s, where=np.ones(3, dtype=bool)), "where"),
        (
            lambda a, s: lk.grpo(np.asarray(a[0, 0]), np.asarray(a[0, 0]), s),
            "log_probs must have a token axis",
        ),
        (lambda a, s: lk.group_advantages(s, 2), "group_size must be >= 1 and divide"),
        (lambda a, s: lk.group_advantages(a, 3), "rewards must be 1-d"),
        (lambda a, s: lk.group_advantages(s, 3, scale="std"), "scale must be"),
        (lambda a, s: lk.group_advantages(s, 3, eps=0.0), "eps must be in"),
    ],
)
def test_bad_input_is_refused_naming_the_argument(call, match):
    a, s = -np.linspace(0.1, 2.0, 12).reshape(3, 4), np.array([1.0, -0.5, 0.2])
    with pytest.raises((ValueError, TypeError), match=match):
        call(a, s)
