#!/usr/bin/env python
"""Speed and memory of cross-entropy and linear cross-entropy on a CUDA GPU: losskit's Triton
kernels against PyTorch, ``torch.compile``, Liger-Kernel and Cut Cross-Entropy.

Forward + backward of one loss, bfloat16 and float32 inputs:

- fused cross-entropy on N x V logits, N x V = 8192 x 32000 and 8192 x 128256: ``F.cross_entropy``,
  ``torch.compile(F.cross_entropy)``, Liger-Kernel's ``LigerCrossEntropyLoss`` (if installed),
  ``losskit.torch.cross_entropy`` and the same with ``inplace=True``;
- linear cross-entropy with hidden size D = 4096 and the same N and V: ``F.linear`` +
  ``F.cross_entropy``, its ``torch.compile``, PyTorch's ``F.linear_cross_entropy`` (where this
  PyTorch has it), Liger-Kernel's ``LigerFusedLinearCrossEntropyLoss`` and Cut Cross-Entropy's
  ``linear_cross_entropy`` (if installed), and ``losskit.torch.linear_cross_entropy``.

Each row: the median time of ``--repeats`` calls (CUDA events, after ``--warmup`` calls) and
the call's peak extra memory, ``torch.cuda.max_memory_allocated()`` during the call minus the
memory allocated before it (inputs and weights already allocated; gradients and every
temporary counted).  A case that runs out of memory is reported as such.

Without a CUDA device (or without torch) the script says so and exits 0: nothing is measured
or estimated.  Usage: ``python benchmarks/gpu.py [--quick] [--only ce|linear] [--dtypes
bfloat16,float32] [--repeats N] [--json PATH]``; ``--quick`` runs tiny sizes (a smoke test).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

CE_SIZES = [(8192, 32000), (8192, 128256)]
LINEAR_SIZES = [(8192, 4096, 32000), (8192, 4096, 128256)]
QUICK_CE_SIZES = [(256, 1000)]
QUICK_LINEAR_SIZES = [(256, 128, 1000)]


def no_gpu_reason() -> str | None:
    """Why nothing can be measured here, or None when a CUDA device is available."""
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA device is available"
    return None


def measure(step, prepare, repeats: int, warmup: int) -> dict:
    """Median time (ms) and peak extra memory (MiB) of ``step(*prepare())``; ``prepare`` makes
    fresh inputs outside the timed and measured region."""
    import torch

    try:
        for _ in range(warmup):
            step(*prepare())
        torch.cuda.synchronize()
        times = []
        peak = 0
        for _ in range(repeats):
            args = prepare()
            torch.cuda.synchronize()
            before = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step(*args)
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
            peak = max(peak, torch.cuda.max_memory_allocated() - before)
            del args
        return {"ms": statistics.median(times), "peak_mib": peak / 2**20}
    except torch.cuda.OutOfMemoryError:
        return {"error": "out of memory"}
    finally:
        torch.cuda.empty_cache()


def ce_implementations(torch):
    """name -> (step(logits, target), inplace) for the fused cross-entropy rows."""
    import torch.nn.functional as F

    import losskit.torch as lt

    def backward(loss):
        loss.backward()

    compiled = torch.compile(F.cross_entropy)

    impls = {
        "torch F.cross_entropy": (lambda x, t: backward(F.cross_entropy(x, t)), False),
        "torch.compile(F.cross_entropy)": (lambda x, t: backward(compiled(x, t)), False),
        "losskit (Triton)": (lambda x, t: backward(lt.cross_entropy(x, t)), False),
        "losskit (Triton, inplace=True)": (lambda x, t: backward(lt.cross_entropy(x, t, inplace=True)), True),
    }
    try:
        from liger_kernel.transformers import LigerCrossEntropyLoss

        liger = LigerCrossEntropyLoss()
        impls["Liger-Kernel"] = (lambda x, t: backward(liger(x, t)), False)
    except ImportError:
        pass
    return impls


def linear_implementations(torch):
    """name -> step(x, w, t) for the linear cross-entropy rows."""
    import torch.nn.functional as F

    import losskit.torch as lt

    def plain(x, w, t):
        F.cross_entropy(F.linear(x, w), t).backward()

    compiled = torch.compile(lambda x, w, t: F.cross_entropy(F.linear(x, w), t))
    impls = {
        "torch F.linear + F.cross_entropy": plain,
        "torch.compile(linear + cross_entropy)": lambda x, w, t: compiled(x, w, t).backward(),
        "losskit (Triton)": lambda x, w, t: lt.linear_cross_entropy(x, w, t).backward(),
    }
    if hasattr(F, "linear_cross_entropy"):
        impls["torch F.linear_cross_entropy"] = lambda x, w, t: F.linear_cross_entropy(x, w, t).backward()
    try:
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

        liger = LigerFusedLinearCrossEntropyLoss()
        impls["Liger-Kernel"] = lambda x, w, t: liger(w, x, t).backward()
    except ImportError:
        pass
    try:
        from cut_cross_entropy import linear_cross_entropy as cce

        impls["Cut Cross-Entropy"] = lambda x, w, t: cce(x, w, t).backward()
    except ImportError:
        pass
    return impls


def run(args) -> list[dict]:
    import torch

    dtypes = [getattr(torch, d) for d in args.dtypes.split(",")]
    rows = []
    gen = torch.Generator(device="cuda").manual_seed(0)
    if args.only in (None, "ce"):
        impls = ce_implementations(torch)
        for n, v in QUICK_CE_SIZES if args.quick else CE_SIZES:
            for dtype in dtypes:
                source = torch.randn(n, v, device="cuda", dtype=dtype, generator=gen)
                target = torch.randint(0, v, (n,), device="cuda", generator=gen)
                for name, (step, inplace) in impls.items():
                    x = source.clone().requires_grad_()

                    def prepare(x=x, source=source, target=target, inplace=inplace):
                        if inplace:  # the buffer is overwritten: fresh logits for every call
                            return source.clone().requires_grad_(), target
                        x.grad = None
                        return x, target

                    result = measure(step, prepare, args.repeats, args.warmup)
                    rows.append({"loss": "cross_entropy", "N": n, "V": v, "dtype": str(dtype)[6:],
                                 "impl": name, **result})
                    print(_line(rows[-1]), flush=True)
                del source
    if args.only in (None, "linear"):
        impls = linear_implementations(torch)
        for n, d, v in QUICK_LINEAR_SIZES if args.quick else LINEAR_SIZES:
            for dtype in dtypes:
                x = torch.randn(n, d, device="cuda", dtype=dtype, generator=gen).requires_grad_()
                w = (torch.randn(v, d, device="cuda", dtype=dtype, generator=gen) / d**0.5).requires_grad_()
                t = torch.randint(0, v, (n,), device="cuda", generator=gen)
                for name, step in impls.items():

                    def prepare(x=x, w=w, t=t):
                        x.grad = w.grad = None
                        return x, w, t

                    result = measure(step, prepare, args.repeats, args.warmup)
                    rows.append({"loss": "linear_cross_entropy", "N": n, "D": d, "V": v,
                                 "dtype": str(dtype)[6:], "impl": name, **result})
                    print(_line(rows[-1]), flush=True)
                del x, w
    return rows


def _line(row: dict) -> str:
    shape = f"{row['N']}x{row['V']}" if "D" not in row else f"{row['N']}x{row['D']}x{row['V']}"
    result = row.get("error") or f"{row['ms']:9.2f} ms {row['peak_mib']:10.1f} MiB"
    return f"| {row['loss']} | {shape} | {row['dtype']} | {row['impl']} | {result} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--only", choices=["ce", "linear"])
    parser.add_argument("--dtypes", default="bfloat16,float32")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    reason = no_gpu_reason()
    if reason is not None:
        print(f"benchmarks/gpu.py: {reason}; nothing measured.")
        return 0
    import torch

    from losskit.torch import triton as kernels

    state = "available" if kernels.available() else "NOT available (portable path)"
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"losskit's Triton kernels {state}")
    print("| loss | N x (D x) V | dtype | implementation | median time, peak extra memory |")
    print("|---|---|---|---|---|")
    rows = run(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
