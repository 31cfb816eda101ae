"""Train a small next-token model with DistributedDataParallel and a vocabulary-parallel output layer.

    torchrun --nproc-per-node 2 examples/ddp_vocab_parallel.py [--steps 300]

The body (an embedding and an MLP) is replicated on every rank and trained data-parallel under
``DistributedDataParallel``: each rank draws its own batch.  The output layer, a
``vocab x hidden`` matrix, is split by rows: each rank holds and updates only its shard of the
vocabulary.  One step:

1. each rank runs its batch through the body;
2. the hidden states of every rank are gathered with ``losskit.torch.distributed.all_gather``,
   which carries gradients back to the rank that produced them;
3. ``vocab_parallel_linear_cross_entropy`` computes the loss of the whole global batch from the
   gathered hidden states and the local shard, chunk by chunk, without ever holding the logits;
   every rank gets the same loss (2 all-reduces of per-token statistics);
4. backward: each rank gets its head shard's exact gradient, the input gradient (summed over
   ranks by 1 all-reduce) flows back through the gather, and DDP averages the body's gradients.

The result is exactly the gradient of single-process training on the global batch.  The task:
token ``t`` is followed by ``perm[t]`` with probability 0.9 and by a uniformly random token
otherwise, so the loss falls from ``ln(vocab)`` towards the entropy of that rule.
"""

from __future__ import annotations

import argparse
import gc
import math
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from losskit.torch.distributed import all_gather, vocab_parallel_linear_cross_entropy

STAY = 0.9  # probability that the next token follows the rule


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--vocab", type=int, default=512)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--batch", type=int, default=256, help="tokens per rank per step")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=50)
    return p.parse_args()


class Body(torch.nn.Module):
    def __init__(self, vocab: int, hidden: int):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, hidden)
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(hidden, 2 * hidden), torch.nn.GELU(), torch.nn.Linear(2 * hidden, hidden)
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens)
        return h + self.mlp(h)


def shard_bounds(vocab: int, rank: int, world: int) -> tuple[int, int]:
    """Contiguous, nearly equal blocks of the vocabulary in rank order."""
    base, extra = divmod(vocab, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def batch(perm: torch.Tensor, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    vocab = perm.numel()
    tokens = torch.randint(0, vocab, (n,), generator=generator)
    noise = torch.randint(0, vocab, (n,), generator=generator)
    follow = torch.rand(n, generator=generator) < STAY
    return tokens, torch.where(follow, perm[tokens], noise)


def entropy_floor(vocab: int) -> float:
    """The lowest expected loss: the entropy of the next token under the rule."""
    p_rule = STAY + (1 - STAY) / vocab
    p_other = (1 - STAY) / vocab
    return -(p_rule * math.log(p_rule) + (vocab - 1) * p_other * math.log(p_other))


def main() -> None:
    args = parse_args()
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    # the gather and the loss get their own group, so their collectives never interleave with
    # the all-reduces DDP issues from its gradient hooks
    vocab_group = dist.new_group(list(range(world)))

    torch.manual_seed(args.seed)  # same body and same full head on every rank
    body = Body(args.vocab, args.hidden)
    head = torch.randn(args.vocab, args.hidden) / math.sqrt(args.hidden)
    start, stop = shard_bounds(args.vocab, rank, world)
    # a real model would initialise only its shard; slicing the full matrix keeps the run
    # identical to a single-process one
    head_shard = torch.nn.Parameter(head[start:stop].clone())
    del head
    model = DistributedDataParallel(body)
    optimizer = torch.optim.Adam([*model.parameters(), head_shard], lr=args.lr)

    perm = torch.randperm(args.vocab, generator=torch.Generator().manual_seed(args.seed + 1))
    data = torch.Generator().manual_seed(args.seed + 1000 + rank)  # each rank its own batches
    if rank == 0:
        print(
            f"{world} ranks, vocabulary {args.vocab} split as "
            f"{[b - a for a, b in (shard_bounds(args.vocab, r, world) for r in range(world))]}; "
            f"start loss ~ ln({args.vocab}) = {math.log(args.vocab):.3f}, "
            f"best possible {entropy_floor(args.vocab):.3f}",
            flush=True,
        )
    window: list[float] = []
    for step in range(1, args.steps + 1):
        tokens, next_tokens = batch(perm, args.batch, data)
        targets = torch.empty(world * args.batch, dtype=next_tokens.dtype)
        dist.all_gather_single(targets, next_tokens)  # no gradient needed for the labels
        hidden = all_gather(model(tokens), group=vocab_group)
        loss = vocab_parallel_linear_cross_entropy(hidden, head_shard, targets, group=vocab_group)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        window.append(loss.item())
        if rank == 0 and (step % args.log_every == 0 or step in (1, args.steps)):
            # one batch's loss is noisy (the random 10% cost ~ln(vocab) each): show the mean
            print(
                f"step {step:5d}  loss {sum(window) / len(window):.4f} "
                f"(mean of the last {len(window)} steps)",
                flush=True,
            )
            window.clear()
    # every rank's last collective must finish before any rank tears the group down: without
    # this, gloo can abort a rank that exits while its peer's work is still in flight
    dist.barrier()
    # the DDP module (in reference cycles) holds the process group: left to the interpreter's
    # exit, gloo's threads are torn down with it and abort the process, so free it now
    del model, optimizer, loss
    gc.collect()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
