"""``losskit demo``: the whole library in one run.

1. The worked examples from the field's teaching material, computed by losskit: each loss,
   its analytic gradient and what a constant (uniform) guess would score.
2. Two small multi-layer perceptrons trained in pure NumPy, with losskit's losses and analytic
   gradients doing the loss's part of the backward pass (``losskit.value_and_grad``):
   next-character prediction over 27 symbols with cross-entropy, and a 2-D regression with MSE,
   on data generated in :mod:`losskit.demo.data`.
3. ``losskit.diagnose`` on each run's own history (it should find the starting loss close to
   the baseline and nothing wrong), a summary table, and the loss curves as PNGs in a folder.

The demo needs only the core install.  The PNGs need matplotlib (``pip install 'losskit[plot]'``):
whether it is there is checked before training, and without it the demo says so once and does
everything else.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

import losskit

from ..diagnostics import History, Series
from .data import ALPHABET, character_chain, waves

__all__ = ["DemoResult", "TaskResult", "run_demo", "worked_examples"]


# -- worked examples ----------------------------------------------------------------------


def _vec(g: np.ndarray) -> str:
    g = np.asarray(g).reshape(-1)
    if g.size > 4:
        rest = g[1:]
        if np.allclose(rest, rest[0]):
            return f"[{g[0]:.4f}, {rest[0]:.4f} x{rest.size}]"
    return "[" + ", ".join(f"{v:.4f}" for v in g) + "]"


def worked_examples() -> list[dict[str, Any]]:
    """The worked examples, each computed by losskit: the loss, its analytic gradient with
    respect to the prediction, and the loss of a constant guess."""
    rows = []
    pred, target = np.array([2.5, 3.1, 4.8]), np.array([2.0, 3.0, 5.0])
    value, g = losskit.value_and_grad(losskit.mse)(pred, target)
    mean_guess = np.full_like(target, target.mean())
    rows.append(
        {
            "example": "mse([2.5, 3.1, 4.8], [2, 3, 5])",
            "loss": float(value),
            "gradient": _vec(g),
            "guess": float(losskit.mse(mean_guess, target)),
            "guess_text": f"predict the mean {target.mean():.3f}",
        }
    )
    value, g = losskit.value_and_grad(losskit.mse)(np.array([0.7]), np.array([1.0]))
    rows.append(
        {
            "example": "mse([0.7], [1])  = (0.7 - 1)^2",
            "loss": float(value),
            "gradient": _vec(g),
            "guess": float(losskit.mse(np.array([0.5]), np.array([1.0]))),
            "guess_text": "uniform guess 0.5",
        }
    )
    value, g = losskit.value_and_grad(losskit.cross_entropy)(np.zeros(27), np.array(0))
    rows.append(
        {
            "example": "cross_entropy(uniform logits over 27, 0)",
            "loss": float(value),
            "gradient": _vec(g),
            "guess": losskit.baseline_loss("cross_entropy", num_classes=27),
            "guess_text": "uniform over 27 = ln 27",
        }
    )
    value, g = losskit.value_and_grad(losskit.cross_entropy)(np.array([2.0, 1.0, 0.1]), np.array(0))
    rows.append(
        {
            "example": "cross_entropy([2.0, 1.0, 0.1], 0)",
            "loss": float(value),
            "gradient": _vec(g),
            "guess": losskit.baseline_loss("cross_entropy", num_classes=3),
            "guess_text": "uniform over 3 = ln 3",
        }
    )
    return rows


# -- a small MLP in NumPy -----------------------------------------------------------------


class _MLP:
    """tanh hidden layers and a linear output; plain NumPy forward and backward, Adam updates."""

    def __init__(
        self,
        sizes: list[int],
        rng: np.random.Generator,
        *,
        output_scale: float,
        output_bias: Any = 0.0,
        fan_in_scaling: bool = True,
    ):
        self.params: list[np.ndarray] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            w = rng.normal(0.0, 1.0 / math.sqrt(a) if fan_in_scaling else 1.0, size=(a, b))
            if i == len(sizes) - 2:
                # a small output layer makes the first predictions nearly constant, so the first
                # loss is the baseline's (the advice diagnose gives for a bad initialisation)
                w *= output_scale
            self.params += [w, np.zeros(b) + (output_bias if i == len(sizes) - 2 else 0.0)]
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        acts = [x]
        n_layers = len(self.params) // 2
        h = x
        for i in range(n_layers):
            h = h @ self.params[2 * i] + self.params[2 * i + 1]
            if i < n_layers - 1:
                h = np.tanh(h)
            acts.append(h)
        return h, acts

    def backward(self, acts: list[np.ndarray], d_out: np.ndarray) -> list[np.ndarray]:
        grads: list[np.ndarray] = [np.empty(0)] * len(self.params)
        n_layers = len(self.params) // 2
        d = d_out
        for i in reversed(range(n_layers)):
            grads[2 * i] = acts[i].T @ d
            grads[2 * i + 1] = d.sum(axis=0)
            if i > 0:
                d = (d @ self.params[2 * i].T) * (1.0 - acts[i] ** 2)  # through tanh
        return grads

    def adam(self, grads: list[np.ndarray], lr: float, b1: float = 0.9, b2: float = 0.999) -> None:
        self.t += 1
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p -= lr * (m / (1 - b1**self.t)) / (np.sqrt(v / (1 - b2**self.t)) + 1e-8)


def _progress(total: int, desc: str, enabled: bool) -> Any:
    """A tqdm bar when tqdm is installed (stderr), else a plain line per update."""
    if not enabled:
        return _PlainBar(total, desc, None)
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _PlainBar(total, desc, sys.stderr)
    return tqdm(total=total, desc=desc, unit="step", leave=True, file=sys.stderr, mininterval=0.2)


class _PlainBar:
    def __init__(self, total: int, desc: str, stream: TextIO | None) -> None:
        self.total, self.desc, self.stream, self.n, self.last = total, desc, stream, 0, -1

    def update(self, k: int = 1) -> None:
        self.n += k
        pct = int(100 * self.n / max(self.total, 1)) // 10 * 10
        if self.stream is not None and pct != self.last:
            self.last = pct
            print(f"{self.desc}: {pct:3d}% ({self.n}/{self.total} steps)", file=self.stream, flush=True)

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class TaskResult:
    """One trained task: its history, the diagnosis and the numbers of the summary table."""

    name: str
    loss: str
    baseline: float
    log_loss: bool
    start: float
    final_train: float
    final_val: float
    oracle: float
    steps: int
    seconds: float
    history: Any
    findings: list[Any]
    plot: Path | None = None


@dataclass
class DemoResult:
    examples: list[dict[str, Any]]
    tasks: list[TaskResult]
    out_dir: Path
    seconds: float
    naive_start: float = math.nan
    naive_findings: list[Any] = field(default_factory=list)
    plots_skipped: str | None = None  # why no PNGs were written although they were asked for


def _train(
    *,
    name: str,
    model: _MLP,
    features: Callable[[np.ndarray], np.ndarray],
    train: Any,
    val: Any,
    loss_fn: Callable[..., Any],
    epochs: int,
    batch: int,
    lr: float,
    rng: np.random.Generator,
    progress: bool,
) -> tuple[Any, int, float]:

    value_and_grad = losskit.value_and_grad(loss_fn)
    n = train.y.shape[0]
    per_epoch = n // batch  # full batches only: a small last batch is a noisier loss
    steps, epochs_at, losses, val_steps, val_epochs, val_losses = [], [], [], [], [], []
    x_val = features(val.x)
    bar = _progress(epochs * per_epoch, name, progress)
    t0 = time.perf_counter()
    step = 0
    try:
        for epoch in range(epochs):
            order = rng.permutation(n)
            for b in range(per_epoch):
                idx = order[b * batch : (b + 1) * batch]
                out, acts = model.forward(features(train.x[idx]))
                # losskit gives the loss and its analytic gradient with respect to the outputs;
                # the rest of the backward pass is the MLP's own
                value, d_out = value_and_grad(out, train.y[idx])
                # cosine decay to 5% of lr: large steps early, no late jitter
                frac = step / max(epochs * per_epoch - 1, 1)
                model.adam(
                    model.backward(acts, d_out), lr * (0.05 + 0.475 * (1.0 + math.cos(math.pi * frac)))
                )
                steps.append(step)
                epochs_at.append(epoch + b / per_epoch)
                losses.append(float(value))
                step += 1
                bar.update(1)
            out, _ = model.forward(x_val)
            val_losses.append(float(loss_fn(out, val.y)))
            val_steps.append(step - 1)
            val_epochs.append(epoch + 1.0)
            bar.set_postfix_str(f"train {np.mean(losses[-per_epoch:]):.4f}, val {val_losses[-1]:.4f}")
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    history = History(
        Series(np.array(losses), np.array(steps), np.array(epochs_at), name="train_loss"),
        Series(np.array(val_losses), np.array(val_steps), np.array(val_epochs), name="val_loss"),
        format="python",
        columns={"train": "train_loss", "val": "val_loss"},
    )
    return history, step, seconds


def _one_hot_pairs(x: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((x.shape[0], 2 * k))
    rows = np.arange(x.shape[0])
    out[rows, x[:, 0]] = 1.0
    out[rows, k + x[:, 1]] = 1.0
    return out


def run_demo(
    out_dir: str | Path = "losskit-demo",
    *,
    quick: bool = False,
    progress: bool = True,
    seed: int = 0,
    stream: TextIO | None = None,
    plots: bool = True,
) -> DemoResult:
    """Run the demo, print its report to ``stream`` (default stdout) and write the PNGs.

    Args:
      out_dir: folder for the loss-curve PNGs (created if needed).
      quick: a small run (a few seconds) for tests and smoke checks.
      progress: show progress bars (tqdm if installed, plain lines otherwise) on stderr.
      seed: the seed of data, initialisation and batching (same seed, same numbers).
      stream: where the report goes.
      plots: write the PNGs.  They need matplotlib; without it the report says how to install
        it (``pip install 'losskit[plot]'``), ``DemoResult.plots_skipped`` says why, and no file
        is written.
    """
    with _one_blas_thread():
        return _run_demo(out_dir, quick=quick, progress=progress, seed=seed, stream=stream, plots=plots)


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """The demo's matrices are small: a multi-threaded BLAS spends more time coordinating threads
    than multiplying, and on a busy machine its spinning threads slow it down tenfold.
    threadpoolctl is a dependency of the core install for this."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _run_demo(
    out_dir: str | Path, *, quick: bool, progress: bool, seed: int, stream: TextIO | None, plots: bool
) -> DemoResult:

    out = stream or sys.stdout
    t_start = time.perf_counter()
    out_path = Path(out_dir)

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    # what the plots need is checked before minutes of training, not after
    plots_skipped = _plots_missing() if plots else None

    say("losskit demo: losses, analytic gradients and diagnostics on two small NumPy MLPs")
    say()
    examples = worked_examples()
    say("Worked examples (every number computed by losskit):")
    say(
        _table(
            ["example", "loss", "analytic gradient d loss / d input", "constant guess scores"],
            [
                [r["example"], f"{r['loss']:.4f}", r["gradient"], f"{r['guess']:.4f}  ({r['guess_text']})"]
                for r in examples
            ],
        )
    )
    say()

    k = len(ALPHABET)
    sizes = dict(n_train=4_000, n_val=1_000) if quick else dict(n_train=120_000, n_val=20_000)
    chars_train, chars_val, sample = character_chain(**sizes, seed=seed)
    wave_sizes = dict(n_train=800, n_val=200) if quick else dict(n_train=5_000, n_val=1_000)
    waves_train, waves_val = waves(**wave_sizes, seed=seed)
    rng = np.random.default_rng(seed + 100)

    say(
        f"Task 1: next character over {k} symbols ('{ALPHABET[0]}' and a-z), text from a fixed random "
        "Markov chain in losskit.demo.data:"
    )
    say(f"  {sample[:72]}...")
    say(
        f"Task 2: regression y = sin(2 x1) + 0.5 x2^2 - 0.3 x1 x2 + noise (sd 0.1), {wave_sizes['n_train']} "
        "training points."
    )
    say()

    tasks: list[TaskResult] = []
    # -- task 1: cross-entropy -------------------------------------------------------------
    hidden = 64 if quick else 256
    char_model = _MLP([2 * k, hidden, k], rng, output_scale=0.01)
    # what the first loss would be without scaling the output layer down
    naive = _MLP(
        [2 * k, hidden, k], np.random.default_rng(seed + 100), output_scale=1.0, fan_in_scaling=False
    )
    naive_out, _ = naive.forward(_one_hot_pairs(chars_train.x[:512], k))
    naive_start = float(losskit.cross_entropy(naive_out, chars_train.y[:512]))
    naive_findings = losskit.diagnose([naive_start], num_classes=k)

    history, steps, secs = _train(
        name="characters (cross_entropy)",
        model=char_model,
        features=lambda x: _one_hot_pairs(x, k),
        train=chars_train,
        val=chars_val,
        loss_fn=losskit.cross_entropy,
        epochs=4 if quick else 10,
        batch=64 if quick else 128,
        lr=3e-3 if quick else 1e-3,
        rng=rng,
        progress=progress,
    )
    base = losskit.baseline_loss("cross_entropy", num_classes=k)
    tasks.append(
        _result(
            "next character",
            "cross_entropy",
            base,
            True,
            history,
            steps,
            secs,
            chars_val.oracle_loss,
            losskit.diagnose(history, num_classes=k, task="multiclass"),
        )
    )

    # -- task 2: MSE -------------------------------------------------------------------------
    y_mean = float(waves_train.y.mean())
    wave_model = _MLP([2, 64, 64, 1], rng, output_scale=0.01, output_bias=y_mean)
    history, steps, secs = _train(
        name="waves (mse)",
        model=wave_model,
        features=lambda x: x,
        train=waves_train,
        val=waves_val,
        loss_fn=losskit.mse,
        epochs=30 if quick else 150,
        batch=64,
        lr=3e-3,
        rng=rng,
        progress=progress,
    )
    base = losskit.baseline_loss("mse", targets=waves_train.y)
    tasks.append(
        _result(
            "regression",
            "mse",
            base,
            False,
            history,
            steps,
            secs,
            waves_val.oracle_loss,
            losskit.diagnose(history, baseline=base, task="regression"),
        )
    )

    say()
    for task in tasks:
        call = (
            "diagnose(history, num_classes=27)"
            if task.log_loss
            else "diagnose(history, baseline=baseline_loss('mse', targets=y_train))"
        )
        say(f"Diagnosis of the {task.name} run ({call}):")
        for f in task.findings:
            say(f"  [{f.severity}] {f.kind}: {f.message}")
        say()
    say(
        f"For contrast, the same network with unit-variance weights (no 1/sqrt(fan-in) scaling, output layer "
        f"not scaled down) starts at {naive_start:.4f} nats instead of ln 27 = {math.log(k):.4f}; diagnose "
        "says:"
    )
    for f in naive_findings:
        if f.kind == "bad_init":
            say(f"  [{f.severity}] {f.kind}: {f.message}")
    say()

    if plots and plots_skipped is None:
        from ..plotting import plot_history

        try:
            for task, fname in zip(tasks, ("characters-cross-entropy.png", "waves-mse.png")):
                task.plot = plot_history(
                    task.history,
                    task.findings,
                    path=out_path / fname,
                    baseline=task.baseline,
                    unit="nats" if task.log_loss else "",
                    title=f"losskit demo: {task.name} ({task.loss})",
                )
        except ImportError as exc:  # matplotlib found but not importable: keep the run's report
            # losskit.plotting names the extra; the report says why the import failed
            plots_skipped = f"matplotlib cannot be imported ({exc.__context__ or exc})"
            for task in tasks:
                task.plot = None

    say("Summary:")
    rows = []
    for t in tasks:
        rows.append(
            [
                t.name,
                t.loss,
                f"{t.baseline:.4f}",
                f"{t.start:.4f}",
                f"{t.final_train:.4f}",
                f"{t.final_val:.4f}",
                f"{t.oracle:.4f}",
                str(t.steps),
                f"{t.seconds:.1f}s",
                _verdict(t.findings),
            ]
        )
    say(
        _table(
            [
                "task",
                "loss",
                "baseline",
                "start",
                "final train",
                "final val",
                "best possible",
                "steps",
                "time",
                "diagnosis",
            ],
            rows,
        )
    )
    ce = tasks[0]
    say(
        f"  next character, final val: {ce.final_val:.4f} nats = {losskit.to_bits(ce.final_val):.4f} bits "
        "per "
        f"character, perplexity {losskit.perplexity(ce.final_val):.2f} (uniform guess: 27.00; the chain "
        "itself: "
        f"{losskit.perplexity(ce.oracle):.2f})"
    )
    say(
        "  'best possible' is the loss of the process that generated the data (its entropy / noise variance)."
    )
    say()
    total = time.perf_counter() - t_start
    if plots_skipped is not None:
        say(f"Loss curves not plotted: {plots_skipped}; pip install 'losskit[plot]' for the PNGs.")
    elif plots:
        say(f"Loss curves written to {out_path}{'/' if not str(out_path).endswith('/') else ''}:")
        for t in tasks:
            say(f"  {t.plot}")
    say(f"Done in {total:.1f} s.")
    return DemoResult(examples, tasks, out_path, total, naive_start, naive_findings, plots_skipped)


def _plots_missing() -> str | None:
    """Why the PNGs cannot be made (None when matplotlib is there).  Only looks, imports nothing:
    matplotlib is imported by :mod:`losskit.plotting` when the plots are drawn."""
    try:
        found = importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        found = False
    return None if found else "matplotlib is not installed"


def _result(name, loss, base, log_loss, history, steps, secs, oracle, findings) -> TaskResult:
    y = history.train.value
    m = max(1, min(5, y.size // 50))
    return TaskResult(
        name=name,
        loss=loss,
        baseline=float(base),
        log_loss=log_loss,
        start=float(np.median(y[:m])),
        final_train=float(np.mean(y[-max(1, y.size // 20) :])),
        final_val=float(history.val.value[-1]),
        oracle=float(oracle),
        steps=steps,
        seconds=secs,
        history=history,
        findings=findings,
    )


def _verdict(findings: Iterable[Any]) -> str:
    kinds = [f.kind for f in findings]
    bad = [f.kind for f in findings if f.severity in ("error", "warning")]
    if bad:
        return ", ".join(dict.fromkeys(bad))
    return "init ok, healthy" if "init_ok" in kinds else "healthy"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(["  " + line.rstrip(), "  " + sep] + ["  " + b.rstrip() for b in body])
