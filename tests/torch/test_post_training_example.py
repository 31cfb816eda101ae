"""examples/post_training.py runs: a DPO, a GRPO and a distillation phase on a tiny causal LM,
each loss computed from hidden states with losskit.torch; DPO starts at log 2 (the policy is
its reference) and falls, the distillation KL falls."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "post_training.py"


def test_post_training_example_runs_and_learns():
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--steps", "12", "--seed", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    out = result.stdout
    dpo = re.search(r"DPO\s+loss (\S+) -> (\S+)", out)
    grpo = re.search(r"GRPO\s+mean reward (\S+) -> (\S+)", out)
    distill = re.search(r"distillation\s+KL\s+(\S+) -> (\S+)", out)
    assert dpo and grpo and distill, out
    first, last = float(dpo[1]), float(dpo[2])
    assert abs(first - math.log(2)) < 1e-4 and last < first - 0.05, out
    assert all(0.0 <= float(r) <= 1.0 for r in grpo.groups()), out
    assert float(distill[2]) < float(distill[1]), out
