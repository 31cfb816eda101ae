#!/usr/bin/env python
"""Speed and memory of the post-training primitives from hidden states, forward + backward,
float32 on CPU -- one table per case, every row measured in this run, side by side.

Cases (``N`` tokens, hidden size ``D``, vocabulary ``V``):

- ``log_probs``: per-token log-probabilities of a linear head and the gradient of
  ``sum(g * log_probs)`` for a fixed per-token upstream factor ``g`` (as a policy-gradient or
  preference loss gives it), with respect to the hidden states and the head's weight:
  naive PyTorch (logits -> log_softmax -> gather), PyTorch's chunked ``F.linear_cross_entropy``
  with ``reduction="none"`` (log-probs are minus the per-token cross-entropy), losskit NumPy
  (``linear_log_probs`` then ``linear_log_probs_vjp``; and ``value_and_grad`` of the plain sum,
  ``g = 1``, one sweep) and ``losskit.torch.linear_log_probs``;
- ``distillation``: the generalised JSD (beta = 0.5) between a student's and a teacher's head
  from hidden states, mean over tokens, gradient for the student's hidden states and head:
  naive PyTorch (both heads' logits), losskit NumPy, ``losskit.torch``/``losskit`` autograd and
  Liger-Kernel's ``LigerFusedLinearJSDLoss`` (torch.compile'd torch code; runs on CPU when
  ``liger-kernel`` is installed, e.g. ``pip install --no-deps liger-kernel``);
- ``dpo``: DPO over ``2B`` rows of ``L`` tokens (chosen then rejected, the first eighth of
  each row a prompt), the policy's and a frozen reference's heads, gradient for the policy's
  hidden states and head: naive PyTorch (both heads' logits), ``losskit.linear_dpo`` on torch
  and on NumPy (the reference's sequence log-probs by ``linear_log_probs``), and Liger-Kernel's
  ``LigerFusedLinearDPOLoss`` with its reference model.

Method (the same as ``benchmarks/run.py``): every (case, implementation) runs in a fresh
subprocess that builds the inputs, makes one warm-up call, reads VmRSS, resets the peak
(``/proc/self/clear_refs``), makes one call and reads VmHWM -- the difference is the call's
peak extra memory, its outputs (the gradients) included -- and then times ``--repeats``
calls (the median is shown).  Subprocesses use 2 threads everywhere and
``MALLOC_MMAP_THRESHOLD_=131072`` so freed buffers are returned to the system.  Each row shows
its loss value (all rows of a case compute the same number, up to float32 rounding) and its
time and memory as ratios to the case's first (naive) row.

Usage: ``python benchmarks/post_training.py`` (N=8192, D=2048, V=32000 and 128256; a naive
row at V=128256 needs about 13 GiB and minutes), ``--quick`` for tiny sizes,
``--sizes 8192x2048x32000``, ``--only log_probs,distillation``.  Never asserted by the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

THREADS = 2
SIZES = [(8192, 2048, 32000), (8192, 2048, 128256)]
QUICK_SIZES = [(64, 16, 300)]
BETA = 0.5  # the distillation case's JSD mixture weight

# case -> implementation -> builder(inputs) -> (call, state); the first row of a case is the
# baseline its ratios refer to
CASES: dict[str, dict[str, Callable[[dict], tuple]]] = {"log_probs": {}, "distillation": {}, "dpo": {}}
# case -> inputs(n, d, v) -> dict of NumPy arrays
INPUTS: dict[str, Callable[[int, int, int], dict]] = {}


def register(case: str, impl: str, inputs: Callable[[int, int, int], dict] | None = None):
    """Decorator adding the row ``impl`` to ``case`` (the hook for more rows, e.g. the fused
    linear DPO): the decorated ``builder(inputs) -> (call, state)`` returns a ``call()`` doing
    one forward + backward and leaving its outputs in ``state["out"]`` (``state["reset"]``, if
    set, releases gradients kept elsewhere) and the loss value in ``state["value"]``;
    ``inputs(n, d, v)``, given once per case, builds the case's NumPy inputs."""
    if inputs is not None:
        INPUTS[case] = inputs

    def add(builder):
        CASES.setdefault(case, {})[impl] = builder
        return builder

    return add


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(THREADS)
    env["MALLOC_MMAP_THRESHOLD_"] = "131072"
    env["JAX_PLATFORMS"] = "cpu"
    return env


# -- inputs and rows ------------------------------------------------------------------------------


def _log_probs_inputs(n: int, d: int, v: int) -> dict:
    import numpy as np

    rng = np.random.default_rng(0)
    return {
        "x": (rng.standard_normal((n, d), dtype=np.float32) * 0.5).astype(np.float32),
        "w": (rng.standard_normal((v, d), dtype=np.float32) / np.sqrt(d)).astype(np.float32),
        "t": rng.integers(0, v, n),
        "g": rng.standard_normal(n).astype(np.float32),
    }


def _distillation_inputs(n: int, d: int, v: int) -> dict:
    import numpy as np

    rng = np.random.default_rng(1)
    f32 = np.float32
    return {
        "xs": (rng.standard_normal((n, d), dtype=f32) * 0.5).astype(f32),
        "ws": (rng.standard_normal((v, d), dtype=f32) / np.sqrt(d)).astype(f32),
        "xt": (rng.standard_normal((n, d), dtype=f32) * 0.5).astype(f32),
        "wt": (rng.standard_normal((v, d), dtype=f32) / np.sqrt(d)).astype(f32),
        "t": rng.integers(0, v, n),
    }


def _torch():
    import torch

    torch.set_num_threads(THREADS)
    return torch


def _torch_rows(state: dict, loss_fn, tensors) -> Callable[[], None]:
    def call():
        loss = loss_fn()
        loss.backward()
        state["value"] = float(loss.detach())
        state["out"] = tuple(a.grad for a in tensors)

    def reset():
        for a in tensors:
            a.grad = None

    state["reset"] = reset
    return call


@register("log_probs", "naive torch: linear -> log_softmax -> gather", _log_probs_inputs)
def _lp_naive(inputs):
    torch = _torch()
    import torch.nn.functional as F

    x, w = (torch.from_numpy(inputs[k]).requires_grad_() for k in ("x", "w"))
    t, g = torch.from_numpy(inputs["t"]), torch.from_numpy(inputs["g"])
    state: dict = {}

    def loss():
        lp = torch.log_softmax(F.linear(x, w), -1).gather(-1, t[:, None])[:, 0]
        return (lp * g).sum()

    return _torch_rows(state, loss, (x, w)), state


@register("log_probs", "torch F.linear_cross_entropy chunked, reduction='none'")
def _lp_torch_chunked(inputs):
    torch = _torch()
    import torch.nn.functional as F

    x, w = (torch.from_numpy(inputs[k]).requires_grad_() for k in ("x", "w"))
    t, g = torch.from_numpy(inputs["t"]), torch.from_numpy(inputs["g"])
    options = torch.nn.LinearCrossEntropyOptions()
    state: dict = {}

    def loss():
        lp = -F.linear_cross_entropy(x, w, t, reduction="none", options=options)
        return (lp * g).sum()

    return _torch_rows(state, loss, (x, w)), state


@register("log_probs", "losskit numpy: linear_log_probs + linear_log_probs_vjp")
def _lp_numpy(inputs):
    import losskit as lk

    x, w, t, g = inputs["x"], inputs["w"], inputs["t"], inputs["g"]
    state: dict = {}

    def call():
        lp = lk.linear_log_probs(x, w, t)
        state["value"] = float((lp * g).sum(dtype="float64"))
        state["out"] = lk.linear_log_probs_vjp(x, w, t, grad_log_probs=g)

    return call, state


@register("log_probs", "losskit numpy: value_and_grad of sum (g = 1, one sweep)")
def _lp_numpy_sum(inputs):
    import losskit as lk

    x, w, t = inputs["x"], inputs["w"], inputs["t"]
    vg = lk.value_and_grad(lk.linear_log_probs, argnums=(0, 1))
    state: dict = {}

    def call():
        lp, grads = vg(x, w, t)
        state["value"] = float(lp.sum(dtype="float64"))
        state["out"] = grads

    return call, state


@register("log_probs", "losskit.torch.linear_log_probs (autograd Function)")
def _lp_losskit_torch(inputs):
    torch = _torch()
    import losskit.torch as lt

    x, w = (torch.from_numpy(inputs[k]).requires_grad_() for k in ("x", "w"))
    t, g = torch.from_numpy(inputs["t"]), torch.from_numpy(inputs["g"])
    state: dict = {}
    return _torch_rows(state, lambda: (lt.linear_log_probs(x, w, t) * g).sum(), (x, w)), state


def _jsd_naive(torch, s, tl):
    """The generalised JSD(beta) of GKD from full logits, mean over tokens (TRL's formula)."""
    import math

    lq, lp = torch.log_softmax(s, -1), torch.log_softmax(tl, -1)
    lm = torch.logsumexp(torch.stack([lp + math.log(BETA), lq + math.log(1 - BETA)]), 0)
    kl_p = (lp.exp() * (lp - lm)).sum(-1)
    kl_q = (lq.exp() * (lq - lm)).sum(-1)
    return (BETA * kl_p + (1 - BETA) * kl_q).mean()


@register("distillation", "naive torch: both heads' logits", _distillation_inputs)
def _ds_naive(inputs):
    torch = _torch()
    import torch.nn.functional as F

    xs, ws = (torch.from_numpy(inputs[k]).requires_grad_() for k in ("xs", "ws"))
    xt, wt = (torch.from_numpy(inputs[k]) for k in ("xt", "wt"))
    state: dict = {}

    def loss():
        with torch.no_grad():
            tl = F.linear(xt, wt)
        return _jsd_naive(torch, F.linear(xs, ws), tl)

    return _torch_rows(state, loss, (xs, ws)), state


@register("distillation", "losskit numpy: value_and_grad(linear_distillation)")
def _ds_numpy(inputs):
    import losskit as lk

    vg = lk.value_and_grad(lk.linear_distillation, argnums=(0, 1))
    state: dict = {}

    def call():
        value, grads = vg(inputs["xs"], inputs["ws"], inputs["xt"], inputs["wt"], divergence="jsd", beta=BETA)
        state["value"] = float(value)
        state["out"] = grads

    return call, state


@register("distillation", "losskit linear_distillation on torch (autograd Function)")
def _ds_losskit_torch(inputs):
    torch = _torch()
    import losskit as lk

    xs, ws = (torch.from_numpy(inputs[k]).requires_grad_() for k in ("xs", "ws"))
    xt, wt = (torch.from_numpy(inputs[k]) for k in ("xt", "wt"))
    state: dict = {}

    def loss():
        return lk.linear_distillation(xs, ws, xt, wt, divergence="jsd", beta=BETA)

    return _torch_rows(state, loss, (xs, ws)), state


@register("distillation", "Liger LigerFusedLinearJSDLoss (torch.compile, CPU)")
def _ds_liger(inputs):
    torch = _torch()
    from liger_kernel.chunked_loss import LigerFusedLinearJSDLoss  # ImportError: not installed

    xs, ws = (torch.from_numpy(inputs[k]).requires_grad_() for k in ("xs", "ws"))
    xt, wt = (torch.from_numpy(inputs[k]) for k in ("xt", "wt"))
    t = torch.from_numpy(inputs["t"])
    jsd = LigerFusedLinearJSDLoss(weight_hard_loss=0.0, weight_soft_loss=1.0, beta=BETA, temperature=1.0)
    state: dict = {}
    return _torch_rows(state, lambda: jsd(xs, ws, xt, wt, t), (xs, ws)), state


# -- fused linear DPO: policy and reference heads, chosen and rejected completions ---------------

DPO_BETA = 0.1


def _dpo_inputs(n: int, d: int, v: int) -> dict:
    """``n`` tokens as ``2B`` rows of ``L`` (B chosen then B rejected completions), the first
    eighth of each row a prompt (ignored); policy and reference hidden states and heads."""
    import numpy as np

    rng = np.random.default_rng(2)
    f32 = np.float32
    length = min(1024, max(1, n // 2))
    rows = max(2, 2 * (n // (2 * length)))
    t = rng.integers(0, v, (rows, length))
    t[:, : length // 8] = -100
    return {
        "x": (rng.standard_normal((rows, length, d), dtype=f32) * 0.5).astype(f32),
        "w": (rng.standard_normal((v, d), dtype=f32) / np.sqrt(d)).astype(f32),
        "xr": (rng.standard_normal((rows, length, d), dtype=f32) * 0.5).astype(f32),
        "wr": (rng.standard_normal((v, d), dtype=f32) / np.sqrt(d)).astype(f32),
        "t": t,
    }


def _dpo_tensors(inputs):
    """The DPO case's torch tensors on the inputs' memory: the policy's hidden states and head
    (requiring gradients), the reference's, the tokens, and B (chosen rows first, then B
    rejected)."""
    torch = _torch()
    x, w = (torch.from_numpy(inputs[k]).requires_grad_() for k in ("x", "w"))
    xr, wr = (torch.from_numpy(inputs[k]) for k in ("xr", "wr"))
    t = torch.from_numpy(inputs["t"])
    return torch, x, w, xr, wr, t, t.shape[0] // 2


@register("dpo", "naive torch DPO: logits -> log_softmax -> gather, policy and reference", _dpo_inputs)
def _dpo_naive(inputs):
    import torch.nn.functional as F

    torch, x, w, xr, wr, t, half = _dpo_tensors(inputs)
    valid = t != -100
    safe = torch.where(valid, t, 0)[..., None]
    state: dict = {}

    def sequence_log_probs(h, weight):
        lp = torch.log_softmax(F.linear(h, weight), -1).gather(-1, safe)[..., 0]
        return torch.where(valid, lp, torch.zeros_like(lp)).sum(-1)

    def loss():
        with torch.no_grad():
            ref = sequence_log_probs(xr, wr)
        policy = sequence_log_probs(x, w)
        h = (policy[:half] - policy[half:]) - (ref[:half] - ref[half:])
        return -F.logsigmoid(DPO_BETA * h).mean()

    return _torch_rows(state, loss, (x, w)), state


@register("dpo", "losskit linear_dpo on torch (one sweep; reference: linear_log_probs, no grad)")
def _dpo_losskit_torch(inputs):
    import losskit as lk

    torch, x, w, xr, wr, t, half = _dpo_tensors(inputs)
    state: dict = {}

    def loss():
        with torch.no_grad():
            ref = lk.linear_log_probs(xr, wr, t).sum(-1)
        return lk.linear_dpo(x, w, t, ref[:half], ref[half:], beta=DPO_BETA)

    return _torch_rows(state, loss, (x, w)), state


@register("dpo", "losskit torch composition: linear_log_probs -> sums -> dpo (two sweeps)")
def _dpo_losskit_torch_composed(inputs):
    import losskit as lk
    import losskit.torch as lkt

    torch, x, w, xr, wr, t, half = _dpo_tensors(inputs)
    state: dict = {}

    def loss():
        with torch.no_grad():
            ref = lk.linear_log_probs(xr, wr, t).sum(-1)
        policy = lkt.linear_log_probs(x, w, t).sum(-1)  # the backward recomputes the logits
        return lk.dpo(policy[:half], policy[half:], ref[:half], ref[half:], beta=DPO_BETA)

    return _torch_rows(state, loss, (x, w)), state


@register("dpo", "losskit numpy: value_and_grad(linear_dpo), reference by linear_log_probs")
def _dpo_numpy(inputs):
    import losskit as lk

    x, w, xr, wr, t = (inputs[k] for k in ("x", "w", "xr", "wr", "t"))
    half = t.shape[0] // 2
    vg = lk.value_and_grad(lk.linear_dpo, argnums=(0, 1))
    state: dict = {}

    def call():
        ref = lk.linear_log_probs(xr, wr, t).sum(-1)
        value, grads = vg(x, w, t, ref[:half], ref[half:], beta=DPO_BETA)
        state["value"] = float(value)
        state["out"] = grads

    return call, state


@register("dpo", "Liger LigerFusedLinearDPOLoss (torch.compile, CPU)")
def _dpo_liger(inputs):
    from liger_kernel.chunked_loss import LigerFusedLinearDPOLoss  # ImportError: not installed

    _, x, w, xr, wr, t, _ = _dpo_tensors(inputs)
    dpo = LigerFusedLinearDPOLoss(beta=DPO_BETA, use_ref_model=True)
    state: dict = {}
    return _torch_rows(state, lambda: dpo(w, x, t, None, xr, wr)[0], (x, w)), state


# -- inside a worker subprocess ----------------------------------------------------------------


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _release(state: dict) -> None:
    state.pop("out", None)
    reset = state.get("reset")
    if reset is not None:
        reset()


def worker(spec: dict) -> dict:
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(THREADS)
    except ImportError:
        pass
    from losskit import kernels

    kernels.set_num_threads(THREADS)
    inputs = INPUTS[spec["case"]](*spec["size"])
    try:
        call, state = CASES[spec["case"]][spec["impl"]](inputs)
    except ImportError as error:
        return {"error": f"not available: {error}"}
    for _ in range(spec.get("warmup", 1)):  # compilation, first touch
        call()
        _release(state)
    kernels.clear_buffer_cache()
    rss = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    call()
    peak = max(_status("VmHWM") - rss, 0)
    value = state.get("value")
    grad_bytes = sum(int(getattr(g, "nbytes", 0) or 0) for g in state.get("out") or () if g is not None)
    _release(state)
    times = []
    for _ in range(spec["repeats"]):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
        _release(state)
    return {"peak": peak, "times": times, "value": value, "grad_bytes": grad_bytes}


# -- the driver --------------------------------------------------------------------------------


def run_worker(spec: dict, timeout: float) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if out.returncode != 0:
        return {"error": ((out.stderr.strip().splitlines() or ["?"])[-1])[:200]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def fmt_time(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s < 10 else f"{s:.2f} s"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = []
    for mod in ("numpy", "torch", "liger_kernel"):
        try:
            module = __import__(mod)
            versions.append(f"{mod} {getattr(module, '__version__', '(installed)')}")
        except ImportError:
            versions.append(f"{mod} not installed")
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB; Python {platform.python_version()}; " + ", ".join(
        versions
    )


def table(case: str, size: tuple, results: dict[str, dict]) -> list[str]:
    n, d, v = size
    lines = [
        f"### {case}: N={n}, D={d}, V={v}, float32, forward + backward, {THREADS} threads",
        "",
        "| implementation | time | vs row 1 | peak extra MiB | vs row 1 | of it gradients MiB | loss |",
        "|---|---|---|---|---|---|---|",
    ]
    base = next(iter(results.values()))
    for impl, r in results.items():
        if "error" in r:
            lines.append(f"| {impl} | {r['error']} | | | | | |")
            continue
        t_ratio = f"{r['time'] / base['time']:.2f}x" if "time" in base else ""
        m_ratio = f"{r['peak'] / base['peak']:.3f}x" if base.get("peak") else ""
        value = "" if r.get("value") is None else f"{r['value']:.6g}"
        lines.append(
            f"| {impl} | {fmt_time(r['time'])} | {t_ratio} | {r['peak'] / 2**20:.0f} | {m_ratio} | "
            f"{r['grad_bytes'] / 2**20:.0f} | {value} |"
        )
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--sizes", default=None, help="e.g. 8192x2048x32000,8192x2048x128256")
    parser.add_argument("--only", default=None, help="comma-separated cases (default: all)")
    parser.add_argument(
        "--impls", default=None, help="only the rows whose name contains one of these (comma-separated)"
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per row (default 2, quick 3)")
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed calls before the memory call (default 1)"
    )
    parser.add_argument("--row-timeout", type=float, default=None, help="seconds per row (default 3600)")
    parser.add_argument("--json", default=None, help="also write the raw results to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    sizes = QUICK_SIZES if args.quick else SIZES
    if args.sizes:
        sizes = [tuple(int(p) for p in s.split("x")) for s in args.sizes.split(",")]
    cases = args.only.split(",") if args.only else list(CASES)
    repeats = args.repeats or (3 if args.quick else 2)
    timeout = args.row_timeout or (120 if args.quick else 3600)
    print(f"Machine: {machine()}\n", flush=True)
    raw = []
    for size in sizes:
        for case in cases:
            impls = CASES.get(case, {})
            if not impls:
                print(f"### {case}: no rows registered in this run\n", flush=True)
                continue
            if args.impls:
                impls = [i for i in impls if any(k in i for k in args.impls.split(","))]
            results = {}
            for impl in impls:
                spec = {
                    "case": case,
                    "impl": impl,
                    "size": list(size),
                    "repeats": repeats,
                    "warmup": args.warmup,
                }
                r = run_worker(spec, timeout)
                if "times" in r:
                    r["time"] = statistics.median(r["times"])
                results[impl] = r
                raw.append({**spec, **r})
                print(f"  {case} {size} {impl}: {r}", file=sys.stderr, flush=True)
            print("\n".join(table(case, size, results)) + "\n", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(raw, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
