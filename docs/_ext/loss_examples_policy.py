"""Worked examples of the policy-gradient losses (merged into :mod:`loss_examples`)."""

from __future__ import annotations

EXAMPLES: dict[str, str] = {
    "grpo": """\
rewards = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])  # two prompts, three completions each
advantages = lk.group_advantages(rewards, group_size=3)
print(advantages.round(4))  # the second group's equal rewards teach nothing
rng = np.random.default_rng(0)
log_probs = -rng.uniform(0.1, 2.0, size=(6, 4))  # per-token log-probabilities of the samples
mask = np.arange(4) < np.array([4, 2, 3, 4, 1, 4])[:, None]  # completion lengths
# one update per batch: old = current, the ratio is 1 and the loss is -mean(A) = 0
print(round(float(lk.grpo(log_probs, log_probs, advantages, where=mask)), 4) + 0.0)
old = log_probs + rng.uniform(-0.5, 0.5, size=(6, 4))  # a later step: some ratios get clipped
ref = log_probs + 0.1
for loss_type in ("grpo", "dapo", "dr_grpo"):
    value = lk.grpo(log_probs, old, advantages, ref_log_probs=ref, beta=0.04, epsilon_high=0.28,
                    loss_type=loss_type, where=mask)
    print(loss_type, round(float(value), 4))
""",
}
