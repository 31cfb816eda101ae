"""losskit.torch.distributed on real process groups (gloo on 127.0.0.1, world sizes 2 and 4).

One spawn per world size runs every check: each rank builds the same global tensors from a
fixed seed, computes its share with the distributed loss, and compares the loss and every
gradient with the single-process float64 reference (``F.cross_entropy``, ``F.linear``) on the
whole tensors.  The collectives are counted, so the documented numbers are tested too.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import math
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from losskit.torch import distributed as lkd  # noqa: E402

F64 = torch.float64
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _sizes(world: int) -> list[int]:
    """Unequal vocabulary shards: [3, 5] for 2 ranks, [3, 5, 7, 4] for 4."""
    return [3 + (2 * r) % 5 + (r // 2) * 2 for r in range(world)]


def _close(actual, expected, what, rtol=1e-10, atol=1e-12):
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, msg=lambda m: f"{what}: {m}")


class _Counter:
    """Counts the collectives issued through torch.distributed while active."""

    NAMES = (
        "all_reduce",
        "all_gather_single",
        "all_gather_into_tensor",
        "reduce_scatter_single",
        "reduce_scatter_tensor",
        "all_gather",
        "broadcast",
        "all_to_all_single",
    )

    def __init__(self):
        self.calls: list[str] = []

    @contextlib.contextmanager
    def counting(self):
        originals = {n: getattr(dist, n) for n in self.NAMES if hasattr(dist, n)}

        def wrap(name, fn):
            def counted(*args, **kwargs):
                self.calls.append(name)
                return fn(*args, **kwargs)

            return counted

        for n, fn in originals.items():
            setattr(dist, n, wrap(n, fn))
        try:
            yield self
        finally:
            for n, fn in originals.items():
                setattr(dist, n, fn)

    def take(self) -> list[str]:
        out, self.calls = self.calls, []
        return out


def _reference(logits, target, *, eps=0.0, z=0.0, reduction="mean"):
    """Single-process float64 reference: F.cross_entropy plus the z-loss lambda lse^2 per
    counted token, reduced as losskit reduces (mean over the counted tokens)."""
    V = logits.shape[-1]
    flat, t = logits.reshape(-1, V), target.reshape(-1)
    per = F.cross_entropy(flat, t, label_smoothing=eps, reduction="none")
    valid = t != -100
    if z:
        per = per + z * torch.where(valid, torch.logsumexp(flat, dim=-1) ** 2, 0.0)
    if reduction == "none":
        return per.reshape(target.shape)
    return per.sum() / (valid.sum() if reduction == "mean" else 1)


# -- checks run on every rank ------------------------------------------------------------------


def _check_vocab_parallel_cross_entropy(rank, world):
    sizes = _sizes(world)
    V, lo = sum(sizes), sum(sizes[:rank])
    hi = lo + sizes[rank]
    g = _gen(1)
    logits = torch.randn(3, 5, V, generator=g, dtype=F64) * 3
    target = torch.randint(0, V, (3, 5), generator=g)
    target[0, 1] = -100
    target[2, 4] = -100
    target[1, 2], target[1, 3] = V - 1, 0  # first and last class of the whole vocabulary
    upstream = torch.randn(3, 5, generator=g, dtype=F64)
    counter = _Counter()
    configs = [(r, eps, 0.0) for r in ("mean", "sum", "none") for eps in (0.0, 0.1)]
    configs += [("mean", 0.1, 0.05), ("none", 0.0, 0.2)]
    for reduction, eps, z in configs:
        what = f"vocab_parallel_cross_entropy(world={world}, rank={rank}, {reduction}, eps={eps}, z={z})"
        ref_in = logits.clone().requires_grad_()
        ref = _reference(ref_in, target, eps=eps, z=z, reduction=reduction)
        ref.backward(upstream if reduction == "none" else None)
        local = logits[..., lo:hi].clone().requires_grad_()
        with counter.counting():
            out = lkd.vocab_parallel_cross_entropy(
                local, target, label_smoothing=eps, z_loss=z, reduction=reduction
            )
            forward_calls = counter.take()
            out.backward(upstream if reduction == "none" else None)
            backward_calls = counter.take()
        assert forward_calls == ["all_reduce", "all_reduce"], (what, forward_calls)
        assert backward_calls == [], (what, backward_calls)
        _close(out, ref, what + " loss")
        _close(local.grad, ref_in.grad[..., lo:hi], what + " grad")

    # tokens of very different scale: within 600 of each other the exponentials share one shift
    # (2 all-reduces), beyond that each token gets its own (3), and both give the reference's
    # numbers; a block of the vocabulary masked with a large finite negative is such a case
    wide = logits.clone()
    wide[0, 2] += 400.0  # logsumexp 400 above the others
    huge = logits.clone()
    huge[0, 2] *= 1000.0
    huge[1, 4] *= 1e-3
    masked_finite = logits.clone()
    masked_finite[2, 1, : sizes[0]] = -1e4
    for name, x, collectives in (("wide", wide, 2), ("huge", huge, 3), ("-1e4 mask", masked_finite, 3)):
        for reduction, eps, z in (("mean", 0.0, 0.0), ("none", 0.1, 1e-4)):
            what = f"{name} (world={world}, rank={rank}, {reduction}, eps={eps}, z={z})"
            ref_in = x.clone().requires_grad_()
            ref = _reference(ref_in, target, eps=eps, z=z, reduction=reduction)
            ref.backward(upstream if reduction == "none" else None)
            local = x[..., lo:hi].clone().requires_grad_()
            with counter.counting():
                out = lkd.vocab_parallel_cross_entropy(
                    local, target, label_smoothing=eps, z_loss=z, reduction=reduction
                )
                assert counter.take() == ["all_reduce"] * collectives, what
            out.backward(upstream if reduction == "none" else None)
            _close(out, ref, what + " loss", rtol=1e-12, atol=1e-9)
            _close(local.grad, ref_in.grad[..., lo:hi], what + " grad")

    # a token whose logits are -inf over rank 0's whole shard (a masked block of the vocabulary)
    masked = logits.clone()
    masked[2, 0, : sizes[0]] = -math.inf
    t = target.clone()
    t[2, 0] = V - 1
    ref_in = masked.clone().requires_grad_()
    ref = F.cross_entropy(ref_in.reshape(-1, V), t.reshape(-1))
    ref.backward()
    local = masked[..., lo:hi].clone().requires_grad_()
    out = lkd.vocab_parallel_cross_entropy(local, t)
    out.backward()
    _close(out, ref, "masked shard loss")
    _close(local.grad, ref_in.grad[..., lo:hi], "masked shard grad")

    # every token ignored: mean is 0 with a zero gradient (PyTorch gives NaN)
    local = logits[..., lo:hi].clone().requires_grad_()
    out = lkd.vocab_parallel_cross_entropy(local, torch.full_like(target, -100))
    out.backward()
    assert out.item() == 0.0 and torch.count_nonzero(local.grad).item() == 0

    # float32 and bfloat16: computed in float32, results in the input's dtype
    ref_in = logits.clone().requires_grad_()
    F.cross_entropy(ref_in.reshape(-1, V), target.reshape(-1)).backward()
    ref = F.cross_entropy(logits.reshape(-1, V), target.reshape(-1))
    local = logits[..., lo:hi].float().requires_grad_()
    out = lkd.vocab_parallel_cross_entropy(local, target)
    out.backward()
    assert out.dtype == torch.float32 and local.grad.dtype == torch.float32
    _close(out.double(), ref, "float32 loss", rtol=1e-6, atol=1e-6)
    _close(local.grad.double(), ref_in.grad[..., lo:hi], "float32 grad", rtol=1e-5, atol=1e-7)
    low = logits.bfloat16()
    ref_in = low.double().requires_grad_()
    ref = F.cross_entropy(ref_in.reshape(-1, V), target.reshape(-1))
    ref.backward()
    local = low[..., lo:hi].clone().requires_grad_()
    out = lkd.vocab_parallel_cross_entropy(local, target)
    out.backward()
    assert out.dtype == torch.bfloat16 and local.grad.dtype == torch.bfloat16
    _close(out.double(), ref, "bfloat16 loss", rtol=1e-2, atol=1e-2)
    _close(local.grad.double(), ref_in.grad[..., lo:hi], "bfloat16 grad", rtol=2e-2, atol=1e-3)

    # targets that differ between ranks, or fall outside the vocabulary: every rank raises the
    # same ValueError after the same collectives, and the group stays usable afterwards
    local = logits[..., lo:hi]
    different = target.clone()
    if rank == world - 1:
        different[0, 0] = (different[0, 0] + 1) % V
    with pytest.raises(ValueError, match="identical on every rank"):
        lkd.vocab_parallel_cross_entropy(local, different)
    outside = target.clone()
    outside[1, 1] = V
    with pytest.raises(ValueError, match=rf"class index {V} .*outside \[0, {V - 1}\]"):
        lkd.vocab_parallel_cross_entropy(local, outside)
    expected = F.cross_entropy(logits.reshape(-1, V), target.reshape(-1))
    _close(lkd.vocab_parallel_cross_entropy(local, target), expected, "after the errors")


def _check_vocab_parallel_linear_cross_entropy(rank, world):
    sizes = _sizes(world)
    V, lo = sum(sizes), sum(sizes[:rank])
    hi = lo + sizes[rank]
    D = 4
    g = _gen(2)
    x = torch.randn(2, 5, D, generator=g, dtype=F64)
    weight = torch.randn(V, D, generator=g, dtype=F64)
    bias = torch.randn(V, generator=g, dtype=F64)
    target = torch.randint(0, V, (2, 5), generator=g)
    target[1, 0] = -100
    upstream = torch.randn(2, 5, generator=g, dtype=F64)
    counter = _Counter()
    configs = [  # reduction, label smoothing, z-loss, softcap, chunk, bias
        ("mean", 0.0, 0.0, None, 3, True),
        ("sum", 0.1, 0.0, None, 3, False),
        ("none", 0.0, 0.0, None, "auto", True),
        ("none", 0.2, 0.1, 2.0, 4, False),
        ("mean", 0.1, 0.05, None, 1, True),
        ("sum", 0.0, 0.0, 1.5, 3, True),
    ]
    for reduction, eps, z, cap, chunk, with_bias in configs:
        what = (
            f"linear(world={world}, rank={rank}, {reduction}, eps={eps}, z={z}, softcap={cap}, "
            f"chunk={chunk}, bias={with_bias})"
        )
        rx, rw, rb = (t.clone().requires_grad_() for t in (x, weight, bias))
        ref_logits = F.linear(rx, rw, rb if with_bias else None)
        if cap is not None:
            ref_logits = cap * torch.tanh(ref_logits / cap)
        ref = _reference(ref_logits, target, eps=eps, z=z, reduction=reduction)
        ref.backward(upstream if reduction == "none" else None)
        lx = x.clone().requires_grad_()
        lw = weight[lo:hi].clone().requires_grad_()
        lb = bias[lo:hi].clone().requires_grad_() if with_bias else None
        with counter.counting():
            out = lkd.vocab_parallel_linear_cross_entropy(
                lx,
                lw,
                target,
                local_bias=lb,
                label_smoothing=eps,
                z_loss=z,
                softcap=cap,
                reduction=reduction,
                chunk_size=chunk,
            )
            forward_calls = counter.take()
            out.backward(upstream if reduction == "none" else None)
            backward_calls = counter.take()
        assert forward_calls == ["all_reduce", "all_reduce"], (what, forward_calls)
        assert backward_calls == ["all_reduce"], (what, backward_calls)
        _close(out, ref, what + " loss")
        _close(lx.grad, rx.grad, what + " input grad")
        _close(lw.grad, rw.grad[lo:hi], what + " weight grad")
        if with_bias:
            _close(lb.grad, rb.grad[lo:hi], what + " bias grad")
        # the input gradient is not just close but identical on every rank
        gathered = torch.empty(world, lx.grad.numel(), dtype=F64)
        dist.all_gather_single(gathered.reshape(-1), lx.grad.reshape(-1))
        assert all(torch.equal(gathered[0], gathered[r]) for r in range(world)), what

    # one token's logits far larger than the others': each token gets its own shift
    big = x.clone()
    big[0, 3] *= 400.0
    rx, rw = big.clone().requires_grad_(), weight.clone().requires_grad_()
    ref = F.cross_entropy(F.linear(rx, rw).reshape(-1, V), target.reshape(-1))
    ref.backward()
    lx, lw = big.clone().requires_grad_(), weight[lo:hi].clone().requires_grad_()
    with counter.counting():
        out = lkd.vocab_parallel_linear_cross_entropy(lx, lw, target, chunk_size=3)
        assert counter.take() == ["all_reduce"] * 3
    out.backward()
    _close(out, ref, "linear, tokens of different scale: loss", rtol=1e-12, atol=1e-9)
    _close(lx.grad, rx.grad, "linear, tokens of different scale: input grad")
    _close(lw.grad, rw.grad[lo:hi], "linear, tokens of different scale: weight grad")

    # only the weight needs a gradient: no all-reduce of the input's gradient
    lw = weight[lo:hi].clone().requires_grad_()
    with counter.counting():
        out = lkd.vocab_parallel_linear_cross_entropy(x, lw, target)
        out.backward()
        assert counter.take() == ["all_reduce", "all_reduce"]
    # float32 against the float64 reference
    rx, rw = x.clone().requires_grad_(), weight.clone().requires_grad_()
    ref = F.cross_entropy(F.linear(rx, rw).reshape(-1, V), target.reshape(-1))
    ref.backward()
    lx, lw = x.float().requires_grad_(), weight[lo:hi].float().requires_grad_()
    out = lkd.vocab_parallel_linear_cross_entropy(lx, lw, target, chunk_size=4)
    out.backward()
    assert out.dtype == lx.grad.dtype == lw.grad.dtype == torch.float32
    _close(out.double(), ref, "linear float32 loss", rtol=1e-6, atol=1e-6)
    _close(lx.grad.double(), rx.grad, "linear float32 input grad", rtol=1e-5, atol=1e-6)
    _close(lw.grad.double(), rw.grad[lo:hi], "linear float32 weight grad", rtol=1e-5, atol=1e-6)


def _check_gathered_info_nce(rank, world):
    B, D = 3, 5
    g = _gen(3)
    query = torch.randn(world * B, D, generator=g, dtype=F64)
    key = query + 0.5 * torch.randn(world * B, D, generator=g, dtype=F64)
    rows = slice(rank * B, (rank + 1) * B)
    counter = _Counter()
    for normalize in (True, False):
        for local_loss in (True, False):
            for symmetric in (False, True):
                temperature = 0.1 if normalize else 2.0
                what = (
                    f"info_nce(world={world}, rank={rank}, normalize={normalize}, "
                    f"local_loss={local_loss}, symmetric={symmetric})"
                )
                rq, rk = query.clone().requires_grad_(), key.clone().requires_grad_()
                nq = F.normalize(rq, dim=1) if normalize else rq
                nk = F.normalize(rk, dim=1) if normalize else rk
                scores = nq @ nk.T / temperature
                labels = torch.arange(world * B)
                per_query = F.cross_entropy(scores, labels, reduction="none")
                per_key = F.cross_entropy(scores.T, labels, reduction="none")
                per_row = 0.5 * (per_query + per_key) if symmetric else per_query
                global_loss = per_row.mean()
                global_loss.backward()
                lq = query[rows].clone().requires_grad_()
                lk = key[rows].clone().requires_grad_()
                with counter.counting():
                    out = lkd.gathered_info_nce(
                        lq,
                        lk,
                        temperature=temperature,
                        normalize=normalize,
                        local_loss=local_loss,
                        symmetric=symmetric,
                    )
                    forward_calls = counter.take()
                    out.backward()
                    backward_calls = counter.take()
                gathers = 1 if (local_loss and not symmetric) else 2
                assert forward_calls == ["all_gather_single"] * gathers, (what, forward_calls)
                assert backward_calls == ["reduce_scatter_single"] * gathers, (what, backward_calls)
                if local_loss:
                    _close(out, per_row[rows].mean(), what + " local loss")
                    mean = out.detach().clone()
                    dist.all_reduce(mean)
                    _close(mean / world, global_loss, what + " mean of the ranks' losses")
                else:
                    _close(out, global_loss, what + " loss")
                # the scaling: local gradient / world size == the global loss's gradient
                _close(lq.grad / world, rq.grad[rows], what + " query grad / world")
                _close(lk.grad / world, rk.grad[rows], what + " key grad / world")

    # a learnable temperature: the ranks' gradients average to the global one
    rq, rk = query.clone().requires_grad_(), key.clone().requires_grad_()
    rt = torch.tensor(0.2, dtype=F64, requires_grad=True)
    scores = F.normalize(rq, dim=1) @ F.normalize(rk, dim=1).T / rt
    F.cross_entropy(scores, torch.arange(world * B)).backward()
    lt = torch.tensor(0.2, dtype=F64, requires_grad=True)
    lkd.gathered_info_nce(query[rows], key[rows], temperature=lt).backward()
    mean_grad = lt.grad.clone()
    dist.all_reduce(mean_grad)
    _close(mean_grad / world, rt.grad, "temperature grad")


def _check_different_shapes_are_refused(rank, world):
    """Ranks that pass different numbers of tokens (or, to the linear loss, different hidden
    sizes) get the same ValueError on every rank, before any collective whose size depends
    on them (gloo aborts the process on such a mismatch); the group stays usable."""
    sizes = _sizes(world)
    V, lo = sum(sizes), sum(sizes[:rank])
    hi = lo + sizes[rank]
    D = 4
    g = _gen(5)
    logits = torch.randn(3, 5, V, generator=g, dtype=F64)
    target = torch.randint(0, V, (3, 5), generator=g)
    x = torch.randn(3, 5, D + 1, generator=g, dtype=F64)
    weight = torch.randn(V, D + 1, generator=g, dtype=F64)
    tokens = [15 - 2 * r for r in range(world)]  # 15 on rank 0, 13 on rank 1, ...
    n = tokens[rank]
    counts = re.escape(str(tokens))
    local = logits.reshape(15, V)[:n, lo:hi].clone().requires_grad_()
    message = rf"same number of tokens on every rank.* {counts} .*local_logits \({n}, {hi - lo}\)"
    with pytest.raises(ValueError, match=message):
        lkd.vocab_parallel_cross_entropy(local, target.reshape(15)[:n])
    # a short last batch on one rank only, with the shapes' other axes alike
    short = (3, 5) if rank == 0 else (2, 5)
    with pytest.raises(ValueError, match=r"same number of tokens on every rank"):
        lkd.vocab_parallel_cross_entropy(logits[: short[0], :, lo:hi], target[: short[0]])
    lw = weight[lo:hi].clone().requires_grad_()
    with pytest.raises(ValueError, match=rf"same number of tokens on every rank.* {counts}"):
        lkd.vocab_parallel_linear_cross_entropy(x.reshape(15, D + 1)[:n], lw, target.reshape(15)[:n])
    hidden = D + 1 if rank == 0 else D
    with pytest.raises(ValueError, match=r"same hidden size on every rank.* \[5, 4"):
        lkd.vocab_parallel_linear_cross_entropy(x[..., :hidden], weight[lo:hi, :hidden], target)
    # the same calls with agreeing shapes still work, with the reference's numbers
    local = logits[..., lo:hi].clone().requires_grad_()
    ref_in = logits.clone().requires_grad_()
    ref = F.cross_entropy(ref_in.reshape(-1, V), target.reshape(-1))
    ref.backward()
    out = lkd.vocab_parallel_cross_entropy(local, target)
    out.backward()
    _close(out, ref, "after the shape errors")
    _close(local.grad, ref_in.grad[..., lo:hi], "grad after the shape errors")
    out = lkd.vocab_parallel_linear_cross_entropy(x, lw, target)
    _close(out, F.cross_entropy(F.linear(x, weight).reshape(-1, V), target.reshape(-1)), "linear after")


class _TwoTower(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.q = torch.nn.Linear(6, 4, dtype=F64)
        self.k = torch.nn.Linear(5, 4, dtype=F64)

    def forward(self, x, y):
        return self.q(x), self.k(y)


def _check_ddp(rank, world):
    """Under DistributedDataParallel's averaging the parameters' gradients are the global
    loss's: InfoNCE with gathered negatives, and a vocabulary-parallel output layer over a
    data-parallel body (hidden states gathered with gradients)."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    B = 2
    g = _gen(4)
    rows = slice(rank * B, (rank + 1) * B)
    x = torch.randn(world * B, 6, generator=g, dtype=F64)
    y = torch.randn(world * B, 5, generator=g, dtype=F64)
    torch.manual_seed(0)
    reference = _TwoTower()
    model = _TwoTower()
    model.load_state_dict(reference.state_dict())
    ddp = DDP(model)
    q, k = ddp(x[rows], y[rows])
    loss = lkd.gathered_info_nce(q, k, temperature=0.5)
    loss.backward()
    rq, rk = reference(x, y)
    labels = torch.arange(world * B)
    F.cross_entropy(F.normalize(rq, dim=1) @ F.normalize(rk, dim=1).T / 0.5, labels).backward()
    for (name, p), rp in zip(model.named_parameters(), reference.parameters()):
        _close(p.grad, rp.grad, f"DDP info_nce grad of {name} (world={world})")

    sizes = _sizes(world)
    V, lo = sum(sizes), sum(sizes[:rank])
    hi = lo + sizes[rank]
    head = torch.randn(V, 4, generator=g, dtype=F64)
    target = torch.randint(0, V, (world * B,), generator=g)
    torch.manual_seed(1)
    body_ref = torch.nn.Linear(6, 4, dtype=F64)
    body = torch.nn.Linear(6, 4, dtype=F64)
    body.load_state_dict(body_ref.state_dict())
    ddp = DDP(body)
    shard = head[lo:hi].clone().requires_grad_()
    hidden = lkd.all_gather(ddp(x[rows]))
    loss = lkd.vocab_parallel_linear_cross_entropy(hidden, shard, target)
    loss.backward()
    ref_head = head.clone().requires_grad_()
    ref = F.cross_entropy(F.linear(body_ref(x), ref_head), target)
    ref.backward()
    _close(loss, ref, "DDP vocab-parallel loss")
    _close(shard.grad, ref_head.grad[lo:hi], "DDP vocab-parallel head grad")
    for (name, p), rp in zip(body.named_parameters(), body_ref.parameters()):
        _close(p.grad, rp.grad, f"DDP vocab-parallel grad of body {name} (world={world})")


CHECKS = (
    _check_vocab_parallel_cross_entropy,
    _check_vocab_parallel_linear_cross_entropy,
    _check_different_shapes_are_refused,
    _check_gathered_info_nce,
    _check_ddp,
)


def _worker(rank, world, port, checks=CHECKS):
    torch.set_num_threads(1)  # 2 cores shared by up to 4 ranks
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=60),  # a rank stuck in a collective fails, not hangs
    )
    try:
        for check in checks:
            check(rank, world)
        dist.barrier()
    finally:
        # objects in reference cycles (a DDP module, autograd graphs) can hold the process group;
        # freed only at interpreter exit, gloo's threads then abort the process (SIGABRT)
        gc.collect()
        dist.destroy_process_group()


@pytest.mark.parametrize("world", [2, 4])
def test_distributed_losses_match_single_process(world):
    mp.spawn(_worker, args=(world, _free_port()), nprocs=world, join=True)


def test_different_token_counts_raise_on_every_rank():
    checks = (_check_different_shapes_are_refused,)
    mp.spawn(_worker, args=(2, _free_port(), checks), nprocs=2, join=True)


# -- single-process checks (no process group needed) -------------------------------------------


def test_argument_errors_name_the_argument():
    logits = torch.zeros(4, 3)
    target = torch.zeros(4, dtype=torch.long)
    with pytest.raises(TypeError, match="target must hold integer class indices"):
        lkd.vocab_parallel_cross_entropy(logits, target.float())
    with pytest.raises(ValueError, match=r"target must have local_logits' shape .* got \(3,\)"):
        lkd.vocab_parallel_cross_entropy(logits, target[:3])
    with pytest.raises(ValueError, match="reduction must be one of"):
        lkd.vocab_parallel_cross_entropy(logits, target, reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        lkd.vocab_parallel_cross_entropy(logits, target, label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"local_weight must have shape \(V_local, 2\)"):
        lkd.vocab_parallel_linear_cross_entropy(torch.zeros(4, 2), torch.zeros(3, 5), target)
    with pytest.raises(ValueError, match=r"local_bias must have shape \(3,\)"):
        lkd.vocab_parallel_linear_cross_entropy(
            torch.zeros(4, 2), torch.zeros(3, 2), target, local_bias=torch.zeros(4)
        )
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        lkd.vocab_parallel_linear_cross_entropy(torch.zeros(4, 2), torch.zeros(3, 2), target, chunk_size=0)
    with pytest.raises(ValueError, match=r"key must have the shape of query \(4, 3\)"):
        lkd.gathered_info_nce(logits, torch.zeros(4, 2))
    with pytest.raises(ValueError, match="temperature must be in"):
        lkd.gathered_info_nce(logits, logits, temperature=0.0)


def test_needs_an_initialised_process_group():
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="init_process_group"):
        lkd.vocab_parallel_cross_entropy(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(RuntimeError, match="init_process_group"):
        lkd.gathered_info_nce(torch.ones(4, 3), torch.ones(4, 3))


def test_ddp_example_runs_under_torchrun(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT / "src"))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(_free_port()),
        str(ROOT / "examples" / "ddp_vocab_parallel.py"),
        "--steps",
        "40",
        "--log-every",
        "20",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    losses = [float(v) for v in re.findall(r"step\s+\d+\s+loss (\S+)", proc.stdout)]
    assert len(losses) == 3, proc.stdout  # steps 1, 20 and 40, printed by rank 0 only
    assert losses[-1] < losses[0] - 1.0, proc.stdout  # it learns
