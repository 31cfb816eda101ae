#!/usr/bin/env python
"""Speed and memory of ``read_log`` and ``diagnose`` on long per-step logs (10^4 to 10^7 points).

For each size a plain CSV (``step,train_loss,val_loss``; a validation value every 1000 rows, the
other cells empty) of a noisy decaying loss with a few spikes is written to a temporary folder,
then, each in a fresh subprocess so that sizes do not share memory:

1. ``read_log`` and ``diagnose`` are timed, and the peak resident memory of the process
   (``ru_maxrss``: the interpreter, NumPy and the log included) is read;
2. ``losskit diagnose LOG --classes 10`` runs end to end, timed from outside, its peak resident
   memory read with ``RUSAGE_CHILDREN``;
3. the former running medians, a median of each window of an ``(n, w)`` strided view, are timed
   where they fit in memory (up to 10^5 points): the centred median over 101 points and the
   plateau test's block medians over ``0.05 n`` points, the two that made ``diagnose`` scale
   badly.  Larger sizes are skipped; the table gives the size of the copy they would make.

Usage: ``python benchmarks/diagnostics.py`` (part of ``make bench``); ``--quick`` for 10^4 and
10^5 points only; ``--sizes 1e4,1e6`` to choose.  Timings are never asserted by the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = [10**4, 10**5, 10**6, 10**7]
QUICK_SIZES = [10**4, 10**5]
OLD_MAX = 10**5  # the former medians are run up to this size
VAL_EVERY = 1000


def write_csv(path: Path, n: int, seed: int = 0) -> None:
    """A per-step log of ``n`` rows, written in blocks (never the whole log in memory)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    spikes = set(rng.choice(np.arange(10, n - 10), size=min(20, max(1, n // 20000)), replace=False).tolist())
    block = 100_000
    with open(path, "w") as fh:
        fh.write("step,train_loss,val_loss\n")
        for lo in range(0, n, block):
            t = np.arange(lo, min(n, lo + block))
            y = (0.3 + 2.0 * np.exp(-t / (n / 8))) * np.exp(0.05 * rng.standard_normal(t.size))
            for i in spikes.intersection(range(lo, lo + t.size)):
                y[i - lo] *= 4.0
            lines = []
            for i, v in zip(t.tolist(), y.tolist()):
                val = f"{v * 1.1:.6g}" if i % VAL_EVERY == VAL_EVERY - 1 else ""
                lines.append(f"{i},{v:.6g},{val}\n")
            fh.write("".join(lines))


def _maxrss_mib(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # kilobytes on Linux


def child_new(path: str) -> dict:
    from losskit.diagnostics import diagnose, read_log

    t0 = time.perf_counter()
    history = read_log(path)
    t1 = time.perf_counter()
    findings = diagnose(history, num_classes=10)
    t2 = time.perf_counter()
    return {
        "read_s": t1 - t0,
        "diagnose_s": t2 - t1,
        "peak_mib": _maxrss_mib(),
        "points": len(history.train),
        "kinds": sorted({f.kind for f in findings}),
    }


def child_old(n: int) -> dict:
    """The former medians on ``n`` points: centred over 101, and blocks over 0.05 n."""
    import numpy as np

    y = np.random.default_rng(0).standard_normal(n)
    base = _maxrss_mib()
    t0 = time.perf_counter()
    h = 50
    padded = np.concatenate([np.full(h, np.nan), y, np.full(h, np.nan)])
    np.nanmedian(np.lib.stride_tricks.sliding_window_view(padded, 2 * h + 1), axis=1)
    t1 = time.perf_counter()
    m = max(3, int(np.ceil(0.15 * n)) // 3)
    np.median(np.lib.stride_tricks.sliding_window_view(y, m), axis=1)
    t2 = time.perf_counter()
    return {"centred_s": t1 - t0, "blocks_s": t2 - t1, "peak_mib": _maxrss_mib(), "base_mib": base}


def _run_child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": tail}
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_cli(path: Path) -> dict:
    """``losskit diagnose`` end to end in a subprocess: wall time and its peak memory."""
    code = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "cmd = [sys.executable, '-m', 'losskit.cli', 'diagnose', sys.argv[1], '--classes', '10']\n"
        "r = subprocess.run(cmd, stdout=subprocess.DEVNULL)\n"
        "dt = time.perf_counter() - t\n"
        "print(r.returncode, dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    rc, wall, peak = out.stdout.split()
    return {"rc": int(rc), "wall_s": float(wall), "peak_mib": float(peak)}


def _old_copy_gib(n: int) -> float:
    m = max(3, -(-15 * n // 100) // 3)
    return max(n * 101, (n - m + 1) * m) * 8 / 2**30


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10^4 and 10^5 points only")
    parser.add_argument("--sizes", help="comma-separated numbers of points, e.g. 1e4,1e6")
    parser.add_argument("--no-cli", action="store_true", help="skip the end-to-end CLI runs")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "ARG"), help=argparse.SUPPRESS)
    args = parser.parse_known_args(argv)[0]  # `make bench ARGS=...` passes run.py's options too
    if args.child:
        kind, arg = args.child
        print(json.dumps(child_new(arg) if kind == "new" else child_old(int(arg))))
        return
    sizes = QUICK_SIZES if args.quick else SIZES
    if args.sizes:
        sizes = [int(float(s)) for s in args.sizes.split(",")]

    print(f"# losskit diagnostics at scale -- {cpu_model()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}")
    print()
    print("| points | CSV | read_log | diagnose | peak RSS (read + diagnose) | `losskit diagnose` CLI "
          "| former medians (101-point + 0.05n blocks) | former peak RSS |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = Path(tmp) / f"log_{n}.csv"
            write_csv(path, n)
            mb = path.stat().st_size / 1e6
            new = _run_child(["--child", "new", str(path)])
            if "error" in new:
                row_new = f"error: {new['error']} | | "
            else:
                row_new = f"{new['read_s']:.3f} s | {new['diagnose_s']:.3f} s | {new['peak_mib']:.0f} MiB"
            if args.no_cli:
                cli = "skipped"
            else:
                c = run_cli(path)
                cli = f"{c['wall_s']:.2f} s, {c['peak_mib']:.0f} MiB"
                if c["rc"] not in (0, 1):
                    cli += f" (exit {c['rc']})"
            if n <= OLD_MAX:
                old = _run_child(["--child", "old", str(n)])
                if "error" in old:
                    row_old = f"{old['error']} | "
                else:
                    row_old = (
                        f"{old['centred_s']:.3f} s + {old['blocks_s']:.3f} s | {old['peak_mib']:.0f} MiB"
                    )
            else:
                row_old = f"skipped (a {_old_copy_gib(n):,.0f} GiB copy) | -"
            print(f"| {n:,} | {mb:.1f} MB | {row_new} | {cli} | {row_old} |", flush=True)
            path.unlink()


if __name__ == "__main__":
    main()
