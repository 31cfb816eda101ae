"""Worked examples of the preference-optimisation losses (merged into :mod:`loss_examples`)."""

from __future__ import annotations

EXAMPLES: dict[str, str] = {
    "dpo": """\
# summed log-probabilities of two pairs' completions, under the policy and the reference
policy_chosen, policy_rejected = np.array([-12.0, -30.0]), np.array([-15.0, -28.0])
ref_chosen, ref_rejected = np.array([-13.0, -29.0]), np.array([-14.0, -29.0])
# margins h = (pi_c - pi_r) - (ref_c - ref_r) = [2, -2]: the policy prefers the first pair's chosen
args = (policy_chosen, policy_rejected, ref_chosen, ref_rejected)
print(lk.dpo(*args, beta=0.1, reduction="none").round(4))  # -log sigmoid(0.1 h)
print(round(float(lk.dpo(*args, beta=0.1)), 4), round(float(np.log(2)), 4))  # the mean; log 2 at h = 0
for loss_type in ("robust", "ipo", "hinge"):
    smoothing = 0.1 if loss_type == "robust" else 0.0
    value = lk.dpo(*args, beta=0.1, loss_type=loss_type, label_smoothing=smoothing, reduction="none")
    print(loss_type, value.round(4))  # ipo: (h - 5)^2, hinge: max(0, 1 - 0.1 h)
# the gradient raises the chosen log-probability and lowers the rejected one
_, (g_chosen, g_rejected) = lk.value_and_grad(lk.dpo, argnums=(0, 1))(*args, beta=0.1)
print(g_chosen.round(4), g_rejected.round(4))
""",
    "simpo": """\
# mean token log-probabilities (no reference model): chosen above rejected by 0.6 nats/token
chosen, rejected = np.array([-0.9, -1.2]), np.array([-1.5, -1.8])
print(lk.simpo(chosen, rejected, beta=2.0, gamma=1.0, reduction="none").round(4))  # -log sigmoid(0.2)
# or sums with the completions' lengths
lengths = np.array([10, 20])
print(lk.simpo(chosen * lengths, rejected * lengths, chosen_lengths=lengths, rejected_lengths=lengths,
               reduction="none").round(4))
""",
    "orpo": """\
chosen, rejected = np.array([-0.3, -1.0]), np.array([-1.2, -0.9])  # mean token log-probabilities
# the chosen NLL (0.3, 1.0) plus 0.1 x the odds-ratio penalty
print(lk.orpo(chosen, rejected, beta=0.1, reduction="none").round(4))
""",
    "cpo": """\
chosen, rejected = np.array([-12.0, -30.0]), np.array([-15.0, -28.0])  # summed log-probabilities
lengths = np.array([6, 15])
# -log sigmoid(0.1 (chosen - rejected)) + the chosen NLL per token
print(lk.cpo(chosen, rejected, beta=0.1, chosen_lengths=lengths, reduction="none").round(4))
""",
    "kto": """\
policy, reference = np.array([-10.0, -12.0, -20.0]), np.array([-11.0, -12.0, -18.0])
desirable = np.array([True, True, False])
# the reference point z from mismatched completions: mean(policy - reference) = 0.5
kl_policy, kl_reference = np.array([-14.0, -9.0]), np.array([-14.5, -9.5])
value = lk.kto(policy, reference, desirable, policy_kl_logps=kl_policy, reference_kl_logps=kl_reference,
               beta=0.5, reduction="none")
print(value.round(4))  # 1 - sigmoid(0.5 (r - z)) for desirable, 1 - sigmoid(0.5 (z - r)) otherwise
""",
}
