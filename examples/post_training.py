"""Post-training a tiny causal language model with losskit: DPO, GRPO and distillation steps.

    python examples/post_training.py [--steps 30] [--seed 0] [--threads 1]

Every loss here starts from the model's last hidden states and its output head, never from the
``(tokens x vocab)`` logits: ``losskit.torch.linear_log_probs`` gives each token's log-probability
chunk by chunk, and the losses on top (``linear_dpo``, ``linear_grpo``, ``linear_distillation``)
send the gradient back to the hidden states and the head through the same chunked sweep.  The
model is a two-layer causal transformer over a 48-token vocabulary; the data are generated:

- the task: after a prompt of random tokens, a good completion continues counting,
  ``t -> (t + 1) mod V``;
- **DPO**: pairs of a counting completion (chosen) and a random one (rejected), the policy
  against a frozen copy of itself (the reference);
- **GRPO**: for each prompt the policy samples a group of completions, each rewarded by the
  fraction of its steps that count; the rewards become group-relative advantages
  (``losskit.group_advantages``) for the clipped policy-gradient loss with a k3 KL penalty;
- **distillation**: a fresh, smaller student learns the DPO-trained model's next-token
  distributions (forward KL between the two heads, from both models' hidden states).

Each phase prints its loss at the first and the last step.  Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import copy

import torch
from torch import nn

import losskit as lk
import losskit.torch as lt

VOCAB, PROMPT, COMPLETION = 48, 4, 6
IGNORE = -100


class TinyLM(nn.Module):
    """Token and position embeddings, causal transformer layers, a final norm and a linear head
    whose weight the losses use directly."""

    def __init__(self, width: int = 32, layers: int = 2, heads: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, width)
        self.position = nn.Embedding(PROMPT + COMPLETION, width)
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.0, batch_first=True)
        self.body = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, VOCAB, bias=False)

    def hidden(self, ids: torch.Tensor) -> torch.Tensor:
        """The last hidden states, shape ``(batch, length, width)``."""
        length = ids.shape[1]
        x = self.embed(ids) + self.position(torch.arange(length))
        causal = nn.Transformer.generate_square_subsequent_mask(length)
        return self.norm(self.body(x, mask=causal, is_causal=True))


def counting(start: torch.Tensor, length: int) -> torch.Tensor:
    """``length`` tokens counting up from ``start + 1`` (mod the vocabulary)."""
    return (start[:, None] + 1 + torch.arange(length)) % VOCAB


def prompts(generator: torch.Generator, batch: int) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, PROMPT), generator=generator)


def targets(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and the tokens they predict: positions before the completion are ignored."""
    inputs, tokens = ids[:, :-1], ids[:, 1:].clone()
    tokens[:, : PROMPT - 1] = IGNORE
    return inputs, tokens


def sequence_log_probs(model: TinyLM, inputs: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Per-token log-probabilities of ``tokens`` (0 where ignored), from the hidden states:
    ``losskit.torch``'s autograd Function, chunked over tokens, no logits kept."""
    return lt.linear_log_probs(model.hidden(inputs), model.head.weight, tokens, ignore_index=IGNORE)


def dpo_phase(policy: TinyLM, steps: int, generator: torch.Generator) -> list[float]:
    reference = copy.deepcopy(policy).requires_grad_(False)
    optimiser = torch.optim.Adam(policy.parameters(), lr=3e-3)
    history = []
    batch = 16
    for _ in range(steps):
        prompt = prompts(generator, batch)
        chosen = torch.cat([prompt, counting(prompt[:, -1], COMPLETION)], dim=1)
        random = torch.randint(0, VOCAB, (batch, COMPLETION), generator=generator)
        rejected = torch.cat([prompt, random], dim=1)
        inputs, tokens = targets(torch.cat([chosen, rejected]))  # rows: B chosen, then B rejected
        with torch.no_grad():
            reference_sums = sequence_log_probs(reference, inputs, tokens).sum(dim=1)
        loss = lk.linear_dpo(
            policy.hidden(inputs),
            policy.head.weight,
            tokens,
            reference_sums[:batch],
            reference_sums[batch:],
            beta=0.1,
            ignore_index=IGNORE,
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        history.append(loss.item())
    return history


@torch.no_grad()
def sample(model: TinyLM, prompt: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    ids = prompt
    for _ in range(COMPLETION):
        last = model.hidden(ids)[:, -1]
        probs = torch.softmax(model.head(last), dim=-1)
        ids = torch.cat([ids, torch.multinomial(probs, 1, generator=generator)], dim=1)
    return ids


def reward(ids: torch.Tensor) -> torch.Tensor:
    """The fraction of the completion's steps that count up by one."""
    steps = ids[:, PROMPT - 1 :]
    return ((steps[:, 1:] - steps[:, :-1]) % VOCAB == 1).double().mean(dim=1)


def grpo_phase(policy: TinyLM, steps: int, generator: torch.Generator) -> tuple[list[float], list[float]]:
    reference = copy.deepcopy(policy).requires_grad_(False)
    optimiser = torch.optim.Adam(policy.parameters(), lr=3e-3)
    losses, rewards = [], []
    group = 8
    for _ in range(steps):
        prompt = prompts(generator, 4).repeat_interleave(group, dim=0)  # a group per prompt
        ids = sample(policy, prompt, generator)
        r = reward(ids)
        advantages = lk.group_advantages(r, group).float()
        inputs, tokens = targets(ids)
        with torch.no_grad():
            ref_log_probs = sequence_log_probs(reference, inputs, tokens)
        # one update per batch: old_log_probs=None uses the current log-probs, detached
        loss = lk.linear_grpo(
            policy.hidden(inputs),
            policy.head.weight,
            tokens,
            advantages,
            ref_log_probs=ref_log_probs,
            beta=0.04,
            epsilon_high=0.28,
            ignore_index=IGNORE,
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
        rewards.append(r.mean().item())
    return losses, rewards


def distillation_phase(teacher: TinyLM, steps: int, generator: torch.Generator) -> list[float]:
    student = TinyLM(width=16, layers=1)
    teacher = teacher.requires_grad_(False)
    optimiser = torch.optim.Adam(student.parameters(), lr=1e-2)
    history = []
    for _ in range(steps):
        prompt = prompts(generator, 16)
        ids = torch.cat([prompt, counting(prompt[:, -1], COMPLETION)], dim=1)
        inputs, tokens = targets(ids)
        with torch.no_grad():
            teacher_hidden = teacher.hidden(inputs)
        loss = lk.linear_distillation(
            student.hidden(inputs),
            student.head.weight,
            teacher_hidden,
            teacher.head.weight,
            divergence="forward_kl",
            where=tokens != IGNORE,
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        history.append(loss.item())
    return history


def main(argv: list[str] | None = None) -> dict[str, list[float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="steps of each phase (default 30)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (this model is fastest on 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    policy = TinyLM()

    dpo = dpo_phase(policy, args.steps, generator)
    print(f"DPO           loss {dpo[0]:.4f} -> {dpo[-1]:.4f}  (log 2 at the start: policy = reference)")
    grpo, rewards = grpo_phase(policy, args.steps, generator)
    k = max(1, args.steps // 5)  # one batch's reward is noisy: the mean over the first and last k
    first, last = sum(rewards[:k]) / k, sum(rewards[-k:]) / k
    print(f"GRPO          mean reward {first:.3f} -> {last:.3f}  (first and last {k} steps)")
    distill = distillation_phase(policy, args.steps, generator)
    print(f"distillation  KL   {distill[0]:.4f} -> {distill[-1]:.4f}  (student: width 16, one layer)")
    return {"dpo": dpo, "grpo": grpo, "rewards": rewards, "distillation": distill}


if __name__ == "__main__":
    main()
