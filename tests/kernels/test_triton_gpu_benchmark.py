"""benchmarks/gpu.py without a GPU: it says so and exits cleanly, measuring nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu.py"


def test_the_gpu_benchmark_says_no_gpu_is_available_and_exits_0():
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")  # no CUDA device, even on a GPU machine
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "no CUDA device is available; nothing measured" in done.stdout
    assert "ms" not in done.stdout  # no timing is printed, let alone invented
