"""Sphinx extension: the site's pictures, drawn at build time into ``generated/figures/``.

- ``benchmark-*.png``: bars from the first table of ``benchmarks/RESULTS.md`` (the numbers are
  read from that file, so the picture follows it);
- ``history-*.png`` and ``loss-*.png``: :mod:`losskit.plotting` on synthetic training logs and
  on losses, for the diagnostics guide.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from losskit import diagnose
from losskit.plotting import plot_history, plot_loss

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"


def _seconds(text: str) -> float:
    value, unit = text.split()
    return float(value) * {"ms": 1e-3, "s": 1.0}[unit]


def benchmark_rows(path: Path = RESULTS) -> list[tuple[str, str, float, float]]:
    """(case, implementation, median seconds, peak extra MiB) of the first table of RESULTS.md."""
    rows: list[tuple[str, str, float, float]] = []
    in_table = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("| case | implementation |"):
            in_table = True
            continue
        if in_table:
            if not line.startswith("|"):
                if rows:
                    break
                continue
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set(cells[0]) <= {"-"}:
                continue
            rows.append((cells[0], cells[1], _seconds(cells[2]), float(cells[5])))
    if not rows:
        raise RuntimeError(f"no benchmark table found in {path}")
    return rows


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _bars(rows, case: str, path: Path, *, time_unit: str = "ms") -> None:
    picked = [r for r in rows if r[0] == case]
    if not picked:
        raise RuntimeError(f"benchmarks/RESULTS.md has no rows for {case!r}")
    names = [r[1] for r in picked]
    scale = 1e3 if time_unit == "ms" else 1.0
    times = [r[2] * scale for r in picked]
    memory = [r[3] for r in picked]
    colours = ["#1f77b4" if n.startswith("losskit") or n.startswith("lk.") else "#7f7f7f" for n in names]
    fig = _figure(11, 0.45 * len(names) + 1.6)
    left, right = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(names))
    left.barh(y, times, color=colours)
    left.set_yticks(y, names)
    left.invert_yaxis()
    left.set_xlabel(f"forward + backward, median ({time_unit})")
    right.barh(y, memory, color=colours)
    right.set_xlabel("peak extra memory (MiB)")
    for ax in (left, right):
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"{case}, float32, 2 CPU threads (benchmarks/RESULTS.md)")
    fig.tight_layout()
    fig.savefig(path)


def _histories() -> dict[str, dict[str, list[float]]]:
    rng = np.random.default_rng(0)
    steps = np.arange(200)
    healthy = np.log(10) * np.exp(-steps / 40) + 0.35 + 0.02 * rng.normal(size=200)
    overfit_train = 2.3 * np.exp(-steps / 30) + 0.1 + 0.01 * rng.normal(size=200)
    overfit_val = 2.3 * np.exp(-steps / 30) + 0.25 + 0.000025 * (steps - 60).clip(0) ** 2
    spiky = np.log(10) * np.exp(-steps / 50) + 0.4 + 0.02 * rng.normal(size=200)
    spiky[[70, 130]] += [2.5, 3.0]
    return {
        "healthy": {"loss": healthy.tolist()},
        "overfitting": {"loss": overfit_train.tolist(), "val_loss": overfit_val.tolist()},
        "spikes": {"loss": spiky.tolist()},
    }


def generate(app) -> None:
    out = Path(app.srcdir) / "generated" / "figures"
    out.mkdir(parents=True, exist_ok=True)
    rows = benchmark_rows()
    _bars(rows, "CE 8192x32000", out / "benchmark-cross-entropy.png")
    linear = [r for r in rows if r[0].startswith("linear CE")]
    _bars(linear, linear[-1][0], out / "benchmark-linear-cross-entropy.png", time_unit="s")
    for name, history in _histories().items():
        findings = diagnose(history, num_classes=10)
        plot_history(
            history, findings, path=out / f"history-{name}.png", baseline=float(np.log(10)), unit="nats"
        )
    for loss in ("huber", "binary_cross_entropy_with_logits"):
        plot_loss(loss, path=out / f"loss-{loss}.png")


def setup(app):
    app.connect("builder-inited", generate)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
