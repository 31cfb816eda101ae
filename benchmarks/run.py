#!/usr/bin/env python
"""Speed and memory of cross-entropy and linear cross-entropy, losskit against PyTorch and
JAX/Optax, forward + backward, float32 -- one table, every row measured in this run.

Every (case, implementation) runs in a fresh subprocess that
  1. builds the inputs and makes one warm-up call,
  2. reads VmRSS, writes 5 to /proc/self/clear_refs (resetting the peak), makes one call and
     reads VmHWM: the difference is the call's peak extra memory (its outputs included),
  3. makes the remaining warm-up calls and then ``--repeats`` timed calls; the median is shown.
Subprocesses run with MALLOC_MMAP_THRESHOLD_=131072 (freed buffers go back to the system, so
they show up in the peak) and 2 threads for every library: torch.set_num_threads(2),
OMP/OpenBLAS/MKL limits through the environment and threadpoolctl, losskit's fused kernels
at 2 threads, and JAX's CPU client on the machine's 2 cores.

The memory-bandwidth floor of a cross-entropy case is the time to read the logits once and
write the gradient once at the bandwidth of a 2-thread copy measured in the same run.

Usage: ``python benchmarks/run.py`` (``make bench``); ``--quick`` for tiny sizes (a smoke
test), ``--only ce|linear``, ``--repeats N``.  Timings are never asserted by the test suite.
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

THREADS = 2
CE_SIZES = [(4096, 1000), (8192, 32000), (2048, 128256)]
LINEAR_SIZES = [(8192, 1024, 32000), (8192, 2048, 32000), (8192, 1024, 128256), (8192, 2048, 128256)]
QUICK_CE_SIZES = [(64, 500)]
QUICK_LINEAR_SIZES = [(64, 16, 300)]

CE_IMPLS = [
    "losskit numpy",
    "losskit numpy inplace",
    "losskit numpy reused out",
    "losskit numpy no cache",
    "losskit numba",
    "losskit numba inplace",
    "losskit torch Function",
    "losskit torch Function no cache",
    "lk.cross_entropy(torch) autograd",
    "F.cross_entropy + autograd",
    "jax/optax jit value_and_grad",
]
LINEAR_IMPLS = [
    "losskit numpy",
    "losskit torch Function",
    "F.cross_entropy(F.linear) naive",
    "F.linear_cross_entropy default",
    "F.linear_cross_entropy chunked",
]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(THREADS)
    env["MALLOC_MMAP_THRESHOLD_"] = "131072"
    env["JAX_PLATFORMS"] = "cpu"
    env.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=true")
    return env


# -- inside a worker subprocess ----------------------------------------------------------------


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _limit_threads() -> None:
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(THREADS)
    except ImportError:  # the environment variables already set the limits
        pass
    from losskit import kernels

    kernels.set_num_threads(THREADS)


def _ce_inputs(n: int, v: int) -> dict:
    import numpy as np

    rng = np.random.default_rng(0)
    return {"x": rng.standard_normal((n, v), dtype=np.float32), "t": rng.integers(0, v, n)}


def _ce_call(impl: str, inputs: dict):
    """Return (call, state): call() does one forward+backward on (n, v) float32 logits and
    leaves its outputs in state["out"]; state["reset"]() releases them."""
    import numpy as np

    x_np, t_np = inputs["x"], inputs["t"]
    state: dict = {}
    if impl.endswith("no cache"):  # every call's gradient in freshly faulted-in pages
        from losskit.kernels import set_buffer_cache

        set_buffer_cache(0)
    if impl.startswith(("losskit numpy", "losskit numba")):
        from losskit.kernels import fused_cross_entropy

        inplace = impl.endswith("inplace")
        kernel = impl.split()[1]
        if inplace:  # it overwrites its logits: a copy of its own
            x_np = np.array(x_np)
        # one gradient buffer kept across calls, as a training loop would (touched at warm-up)
        out = np.empty_like(x_np) if impl.endswith("reused out") else None

        def call():
            state["out"] = fused_cross_entropy(x_np, t_np, inplace=inplace, out=out, kernel=kernel)

        return call, state
    if impl.startswith("jax"):
        import jax
        import jax.numpy as jnp
        import optax

        x, t = jnp.asarray(x_np), jnp.asarray(t_np)
        ce = optax.losses.softmax_cross_entropy_with_integer_labels
        f = jax.jit(jax.value_and_grad(lambda a, b: ce(a, b).mean()))

        def call():
            state["out"] = jax.block_until_ready(f(x, t))

        return call, state
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(THREADS)
    x = torch.from_numpy(x_np).requires_grad_()
    t = torch.from_numpy(t_np)
    if impl.startswith("losskit torch Function"):
        import losskit.torch as lt

        loss_fn = lt.cross_entropy
    elif impl.startswith("lk.cross_entropy"):
        import losskit as lk

        loss_fn = lk.cross_entropy
    else:
        loss_fn = F.cross_entropy

    def call():
        loss = loss_fn(x, t)
        loss.backward()
        state["out"] = (loss.detach(), x.grad)

    state["reset"] = lambda: setattr(x, "grad", None)
    return call, state


def _linear_inputs(n: int, d: int, v: int) -> dict:
    import numpy as np

    rng = np.random.default_rng(0)
    x = (rng.standard_normal((n, d), dtype=np.float32) * 0.5).astype(np.float32)
    w = (rng.standard_normal((v, d), dtype=np.float32) * (1.0 / np.sqrt(d))).astype(np.float32)
    return {"x": x, "w": w, "t": rng.integers(0, v, n)}


def _linear_call(impl: str, inputs: dict):
    x_np, w_np, t_np = inputs["x"], inputs["w"], inputs["t"]
    state: dict = {}
    if impl == "losskit numpy":
        import losskit as lk

        vg = lk.value_and_grad(lk.linear_cross_entropy, argnums=(0, 1))

        def call():
            state["out"] = vg(x_np, w_np, t_np)

        return call, state
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(THREADS)
    x = torch.from_numpy(x_np).requires_grad_()
    w = torch.from_numpy(w_np).requires_grad_()
    t = torch.from_numpy(t_np)
    if impl.startswith("losskit torch Function"):
        import losskit.torch as lt

        def loss_fn():
            return lt.linear_cross_entropy(x, w, t)
    elif impl.endswith("naive"):

        def loss_fn():
            return F.cross_entropy(F.linear(x, w), t)
    elif impl.endswith("default"):

        def loss_fn():
            return F.linear_cross_entropy(x, w, t)
    else:
        options = torch.nn.LinearCrossEntropyOptions()

        def loss_fn():
            return F.linear_cross_entropy(x, w, t, options=options)

    def call():
        loss = loss_fn()
        loss.backward()
        state["out"] = (loss.detach(), x.grad, w.grad)

    def reset():
        x.grad = w.grad = None

    state["reset"] = reset
    return call, state


def _bandwidth(gib: float = 1.0) -> dict:
    """GB/s of a 2-thread copy between two touched buffers (read + write counted)."""
    import numpy as np

    from losskit.kernels.threads import run_row_blocks

    rows = int(gib * (1 << 30) / 4 / 4096)
    src = np.ones((rows, 4096), dtype=np.float32)
    dst = np.zeros_like(src)
    block = 256

    def copy(lo, hi, _):
        np.copyto(dst[lo:hi], src[lo:hi])

    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        run_row_blocks(rows, block, copy, threads=THREADS)
        times.append(time.perf_counter() - t0)
    return {"gbps": 2 * src.nbytes / min(times) / 1e9}


def _build(kind: str, impls: list[str], size: list[int]) -> dict:
    inputs = _ce_inputs(*size) if kind == "ce" else _linear_inputs(*size)
    build = _ce_call if kind == "ce" else _linear_call
    return {impl: build(impl, inputs) for impl in impls}


def _release(state: dict) -> None:
    state.pop("out", None)
    reset = state.get("reset")
    if reset is not None:
        reset()


def worker(spec: dict) -> dict:
    """One implementation of one case, in this fresh process: a warm-up call; an emptied
    gradient-buffer cache, VmRSS, reset of the peak, one call, VmHWM (the peak extra memory);
    the remaining warm-up calls (which refill the cache, as a training loop does); then
    ``repeats`` timed calls, outputs released between calls outside the timed region."""
    _limit_threads()
    if spec["kind"] == "bandwidth":
        return _bandwidth(spec.get("gib", 1.0))
    ((call, state),) = _build(spec["kind"], [spec["impl"]], spec["size"]).values()
    call()  # warm-up: compilation, first-touch of persistent buffers
    _release(state)  # the measured call's outputs count as extra memory
    from losskit.kernels import clear_buffer_cache

    clear_buffer_cache()  # a cached gradient would hide the call's working set from the peak
    rss = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    call()
    peak = max(_status("VmHWM") - rss, 0)
    _release(state)
    for _ in range(spec["warmup"] - 1):
        call()
        _release(state)
    times = []
    for _ in range(spec["repeats"]):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
        _release(state)
    return {"peak": peak, "times": times}


# -- the driver --------------------------------------------------------------------------------


def run_worker(spec: dict, timeout: float) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if out.returncode != 0:
        lines = (out.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": lines[:200]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(kind, impls, size, warmup, repeats, rounds, timeout, raw) -> dict:
    """Each implementation in fresh processes, ``rounds`` times, visiting the implementations
    forwards then backwards so that drifts in machine load hit all of them alike; the time is
    the median of every timed call, the peak memory the smallest seen (a fresh process each)."""
    results: dict[str, dict] = {impl: {"times": [], "peaks": []} for impl in impls}
    for k in range(rounds):
        for impl in impls if k % 2 == 0 else impls[::-1]:
            if "error" in results[impl]:
                continue
            spec = {"kind": kind, "impl": impl, "size": size, "warmup": warmup, "repeats": repeats}
            r = run_worker(spec, timeout)
            if "error" in r:
                results[impl]["error"] = r["error"]
                continue
            results[impl]["times"] += r["times"]
            results[impl]["peaks"].append(r["peak"])
    for impl, r in results.items():
        r["loadavg"] = os.getloadavg()[0]
        if "error" not in r:
            r["time"] = statistics.median(r["times"])
            r["peak"] = min(r["peaks"])
        raw.append({"kind": kind, "size": size, "impl": impl, **r})
        print(f"  {kind} {size} {impl}: {r}", file=sys.stderr, flush=True)
    return results


def row(case, impl, r, base, logits, floor) -> tuple:
    if "error" in r:
        return (case, impl, r["error"], "", "", "", "")
    return (
        case,
        impl,
        fmt_time(r["time"]),
        f"{r['time'] / base:.2f}x" if base else "",
        "" if floor is None else f"{r['time'] / floor:.1f}x",
        f"{r['peak'] / 2**20:.1f}",
        f"{r['peak'] / logits:.2f}x",
    )


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
    import numpy as np

    versions = [f"numpy {np.__version__}"]
    for mod in ("torch", "jax", "optax", "numba"):
        try:
            versions.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            pass
    try:
        from threadpoolctl import threadpool_info

        blas = [f"{i['internal_api']} {i.get('architecture') or ''}".strip() for i in threadpool_info()]
    except ImportError:
        blas = []
    from losskit import kernels

    auto_numba = os.environ.get("LOSSKIT_FUSED_KERNEL") == "numba" and kernels.numba_available()
    installed = "installed" if kernels.numba_available() else "not installed"
    kernel = f"{'numba' if auto_numba else 'numpy'} (numba {installed})"
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB; Python {platform.python_version()}; "
        + ", ".join(versions)
        + (f"; numpy BLAS: {', '.join(blas)}" if blas else "")
        + f"; losskit fused kernel for kernel='auto': {kernel}; {THREADS} threads everywhere; "
        + f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}"
    )


def fmt_time(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s < 10 else f"{s:.2f} s"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--only", choices=["ce", "linear"], help="run one table part")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per process (default 3)")
    parser.add_argument("--rounds", type=int, default=None, help="fresh processes per row (CE 3, linear 1)")
    parser.add_argument("--linear-sizes", default=None, help="e.g. 8192x1024x32000,8192x2048x32000")
    parser.add_argument("--json", default=None, help="also write the raw results to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0

    ce_sizes = QUICK_CE_SIZES if args.quick else CE_SIZES
    lin_sizes = QUICK_LINEAR_SIZES if args.quick else LINEAR_SIZES
    if args.linear_sizes:
        lin_sizes = [tuple(int(p) for p in s.split("x")) for s in args.linear_sizes.split(",")]
    ce_repeats = args.repeats or (2 if args.quick else 3)
    # a call at V=128256 takes 15-90 s: one timed call each (after the warm-up and memory calls)
    lin_repeats = args.repeats
    rounds = args.rounds or (1 if args.quick else 3)
    lin_rounds = args.rounds or 1
    timeout = 120 if args.quick else 3600

    from losskit import kernels

    print(f"Machine: {machine()}", flush=True)
    bw = run_worker({"kind": "bandwidth", "gib": 0.05 if args.quick else 1.0}, timeout)
    gbps = bw.get("gbps", float("nan"))
    print(f"2-thread copy bandwidth: {gbps:.1f} GB/s", flush=True)
    rows: list[tuple] = []
    raw: list[dict] = []

    if args.only in (None, "ce"):
        impls = [i for i in CE_IMPLS if "numba" not in i or kernels.numba_available()]
        for n, v in ce_sizes:
            logits = n * v * 4
            floor = 2 * logits / (gbps * 1e9)
            results = measure("ce", impls, [n, v], 2, ce_repeats, rounds, timeout, raw)
            base = results["F.cross_entropy + autograd"].get("time")
            for impl, r in results.items():
                rows.append(row(f"CE {n}x{v}", impl, r, base, logits, floor))
    if args.only in (None, "linear"):
        for n, d, v in lin_sizes:
            reps = lin_repeats or (2 if args.quick else 3 if v <= 32000 else 1)
            results = measure("linear", LINEAR_IMPLS, [n, d, v], 1, reps, lin_rounds, timeout, raw)
            base = results["F.cross_entropy(F.linear) naive"].get("time")
            for impl, r in results.items():
                rows.append(row(f"linear CE N={n} D={d} V={v}", impl, r, base, n * v * 4, None))

    header = ("case", "implementation", "time (median)", "vs PyTorch", "vs floor", "peak extra (MiB)",
              "peak extra / logits")  # fmt: skip
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for cells in rows:
        print("| " + " | ".join(str(c) for c in cells) + " |")
    print()
    loads = [r["loadavg"] for r in raw if "loadavg" in r]
    if loads:
        print(f"1-minute load average while measuring: {min(loads):.1f} to {max(loads):.1f} (2 cores).")
    print(
        "vs PyTorch: time / PyTorch's (F.cross_entropy + autograd for CE; the naive "
        "F.cross_entropy(F.linear(...)) for linear CE). vs floor: time / (read logits once + "
        f"write gradient once at {gbps:.1f} GB/s). peak extra: VmHWM - VmRSS around one call "
        "in a fresh process, outputs included."
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "bandwidth_gbps": gbps, "results": raw}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
