"""Train tiny models with the real frameworks and write their logs for the diagnostics tests.

Each run takes a few seconds on a CPU, uses data generated here (seeded) and downloads
nothing.  The logs land in ``tests/diagnostics/data/real/`` (or ``--out``):

- ``lightning_lr_spike/metrics.csv``: Lightning ``CSVLogger``; the learning rate is raised 50x
  for five steps mid-run, so the loss bursts over several steps and decays over tens.
- ``tensorboard_overfit/``: ``torch.utils.tensorboard.SummaryWriter`` with the tags
  ``Loss/train`` and ``Loss/test`` (as PyTorch's TensorBoard tutorial names them); a big
  network on a small, noisy training set overfits.
- ``lightning_still_falling/metrics.csv``: a run stopped while its loss still falls steadily.
- ``lightning_levelled/metrics.csv``: a run that has truly levelled off (learning rate decayed).
- ``lightning_early_blowup/metrics.csv``: a too-high learning rate at the start: the loss
  jumps to about 20x ln K, then the dead network collapses to ln K and stays there.
- ``hf_nan_batch/trainer_state.json``: Hugging Face ``Trainer`` with one sample holding NaN
  features; the Trainer's ``logging_nan_inf_filter`` (on by default) logs 0.0 losses after it.
- ``keras_overfit.csv``: Keras 3 (JAX backend) ``CSVLogger`` of an overfitting run.
- ``lightning_warmup_decay/``, ``lightning_small_batch/``, ``lightning_step_decay/``
  (``metrics.csv``): healthy runs with warm-up then cosine decay, batches of 4 (noisy), and a
  step decay of the learning rate.

Usage: ``python tools/make_diagnostics_logs.py [--out DIR] [--only NAME ...]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "tests" / "diagnostics" / "data" / "real"


# -- data ----------------------------------------------------------------------------------------


def blobs(n, k=10, d=20, noise=1.0, flip=0.1, seed=0):
    """A K-class problem: Gaussian clusters in ``d`` dimensions, a fraction ``flip`` of labels
    replaced at random (so the loss cannot reach 0)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, d, generator=g) * 1.5
    y = torch.randint(0, k, (n,), generator=g)
    x = centres[y] + noise * torch.randn(n, d, generator=g)
    flip_mask = torch.rand(n, generator=g) < flip
    y = torch.where(flip_mask, torch.randint(0, k, (n,), generator=g), y)
    return x, y


def mlp(d, k, width=64, depth=2):
    import torch.nn as nn

    layers, a = [], d
    for _ in range(depth):
        layers += [nn.Linear(a, width), nn.ReLU()]
        a = width
    layers.append(nn.Linear(a, k))
    return nn.Sequential(*layers)


# -- Lightning -------------------------------------------------------------------------------------


def lightning_run(
    out: Path,
    name: str,
    *,
    n_train=2048,
    n_val=512,
    batch=32,
    epochs=10,
    lr=0.05,
    optimizer="sgd",
    schedule=None,
    width=64,
    depth=2,
    noise=1.0,
    flip=0.1,
    seed=0,
    val_every_epoch=True,
    init_scale=None,
    clip=None,
):
    """Train an MLP classifier with Lightning and keep the CSVLogger's metrics.csv."""
    import lightning as L
    import torch
    import torch.nn.functional as F
    from lightning.pytorch.loggers import CSVLogger
    from torch.utils.data import DataLoader, TensorDataset

    L.seed_everything(seed, verbose=False)
    k, d = 10, 20
    x, y = blobs(n_train + n_val, k, d, noise=noise, flip=flip, seed=seed)
    train_dl = DataLoader(TensorDataset(x[:n_train], y[:n_train]), batch_size=batch, shuffle=True)
    val_dl = DataLoader(TensorDataset(x[n_train:], y[n_train:]), batch_size=256)
    steps_per_epoch = math.ceil(n_train / batch)

    class Classifier(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = mlp(d, k, width, depth)
            if init_scale is not None:
                with torch.no_grad():
                    self.net[-1].weight.mul_(init_scale)

        def training_step(self, b, i):
            loss = F.cross_entropy(self.net(b[0]), b[1])
            self.log("train_loss", loss, on_step=True, on_epoch=False)
            return loss

        def validation_step(self, b, i):
            self.log("val_loss", F.cross_entropy(self.net(b[0]), b[1]), on_epoch=True)

        def configure_optimizers(self):
            if optimizer == "adam":
                opt = torch.optim.Adam(self.parameters(), lr=lr)
            else:
                opt = torch.optim.SGD(self.parameters(), lr=lr, momentum=0.9)
            if schedule is None:
                return opt
            factor = schedule(steps_per_epoch * epochs)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    tmp = Path(tempfile.mkdtemp())
    try:
        trainer = L.Trainer(
            max_epochs=epochs,
            logger=CSVLogger(tmp, name="run", version=0),
            log_every_n_steps=1,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
            accelerator="cpu",
            devices=1,
            deterministic=True,
            num_sanity_val_steps=0,
            gradient_clip_val=clip,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.fit(Classifier(), train_dl, val_dl if val_every_epoch else None)
        dest = out / name
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp / "run" / "version_0" / "metrics.csv", dest / "metrics.csv")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def spike_schedule(at, width, factor):
    def make(total):
        return lambda s: factor if at <= s < at + width else 1.0

    return make


def warmup_cosine(warm):
    def make(total):
        return lambda s: (
            (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / (total - warm)))
        )

    return make


def step_decay(every, gamma):
    def make(total):
        return lambda s: gamma ** (s // every)

    return make


def constant_then_decay(frac, floor):
    def make(total):
        return lambda s: (
            1.0 if s < frac * total else max(floor, 1.0 - (s - frac * total) / ((1 - frac) * total))
        )

    return make


def lightning_lr_spike(out):
    # 640 steps; from step 300 the learning rate is 50x for 5 steps
    lightning_run(
        out,
        "lightning_lr_spike",
        n_train=4096,
        batch=64,
        epochs=10,
        lr=0.02,
        flip=0.02,
        schedule=spike_schedule(300, 5, 50.0),
        seed=1,
    )


def lightning_still_falling(out):
    # a small learning rate, stopped while the loss still falls steadily (about 30% more to go)
    lightning_run(
        out, "lightning_still_falling", n_train=4096, batch=128, epochs=12, lr=0.003, flip=0.02, seed=2
    )


def lightning_levelled(out):
    # long enough, with the learning rate decayed over the second half: truly levelled
    lightning_run(
        out,
        "lightning_levelled",
        n_train=4096,
        batch=64,
        epochs=20,
        lr=0.05,
        width=32,
        flip=0.05,
        seed=3,
        schedule=constant_then_decay(0.3, 0.02),
    )


def lightning_early_blowup(out):
    # SGD at lr 1 (momentum 0.9, gradients clipped at norm 10) on a ReLU network: the first
    # steps blow the loss up, then the units die and the network predicts a constant, which
    # scores ln K on balanced classes
    lightning_run(out, "lightning_early_blowup", epochs=4, lr=1.0, clip=10.0, seed=4, width=128)


def lightning_warmup_decay(out):
    lightning_run(out, "lightning_warmup_decay", epochs=10, lr=0.1, seed=5, schedule=warmup_cosine(100))


def lightning_small_batch(out):
    lightning_run(out, "lightning_small_batch", epochs=2, batch=4, n_train=1200, lr=0.01, seed=6)


def lightning_step_decay(out):
    lightning_run(out, "lightning_step_decay", epochs=12, lr=0.05, seed=7, schedule=step_decay(256, 0.2))


# -- TensorBoard via torch.utils.tensorboard ------------------------------------------------------


def tensorboard_overfit(out):
    """Per-epoch ``Loss/train`` and ``Loss/test``: a wide network on 128 noisy samples."""
    import torch
    import torch.nn.functional as F
    from torch.utils.tensorboard import SummaryWriter

    torch.manual_seed(8)
    k, d = 10, 20
    x, y = blobs(128 + 1000, k, d, noise=2.0, flip=0.3, seed=8)
    xt, yt, xs, ys = x[:128], y[:128], x[128:], y[128:]
    net = mlp(d, k, width=512, depth=2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    dest = out / "tensorboard_overfit"
    shutil.rmtree(dest, ignore_errors=True)
    writer = SummaryWriter(log_dir=str(dest))
    g = torch.Generator().manual_seed(8)
    for epoch in range(120):
        net.train()
        perm = torch.randperm(128, generator=g)
        total = 0.0
        for i in range(0, 128, 32):
            idx = perm[i : i + 32]
            loss = F.cross_entropy(net(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
        net.eval()
        with torch.no_grad():
            test = F.cross_entropy(net(xs), ys).item()
        writer.add_scalar("Loss/train", total / 128, epoch)
        writer.add_scalar("Loss/test", test, epoch)
    writer.close()
    for f in dest.iterdir():  # one file with a stable name (the writer names it by host and time)
        f.rename(dest / "events.out.tfevents.0.losskit")


# -- Hugging Face Trainer --------------------------------------------------------------------------


def hf_nan_batch(out):
    """A tiny nn.Module returning its loss, trained by the Trainer; sample 700 of the data holds
    NaN features, so the step that draws it yields a NaN loss and NaN weights from then on."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from transformers import Trainer, TrainingArguments, set_seed

    set_seed(9)
    k, d = 10, 20
    x, y = blobs(1024 + 256, k, d, seed=9)
    x[700] = float("nan")

    class Data(torch.utils.data.Dataset):
        def __init__(self, x, y):
            self.x, self.y = x, y

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            return {"x": self.x[i], "labels": self.y[i]}

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = mlp(d, k, 64, 2)

        def forward(self, x, labels=None):
            logits = self.net(x)
            return {"loss": F.cross_entropy(logits, labels), "logits": logits}

    tmp = Path(tempfile.mkdtemp())
    try:
        args = TrainingArguments(
            output_dir=str(tmp),
            per_device_train_batch_size=16,
            per_device_eval_batch_size=256,
            num_train_epochs=3,
            learning_rate=5e-3,
            logging_steps=5,
            eval_strategy="steps",
            eval_steps=40,
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            seed=9,
            disable_tqdm=True,
        )
        trainer = Trainer(
            model=Model(),
            args=args,
            train_dataset=Data(x[:1024], y[:1024]),
            eval_dataset=Data(x[1024:], y[1024:]),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.train()
        trainer.save_state()
        dest = out / "hf_nan_batch"
        dest.mkdir(parents=True, exist_ok=True)
        state = json.loads((tmp / "trainer_state.json").read_text())
        (dest / "trainer_state.json").write_text(json.dumps(state, indent=2) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- Keras 3 (JAX backend) -------------------------------------------------------------------------


def keras_overfit(out):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras
    import numpy as np

    keras.utils.set_random_seed(10)
    k, d = 10, 20
    x, y = blobs(160 + 1000, k, d, noise=2.0, flip=0.3, seed=10)
    x, y = x.numpy(), y.numpy()
    model = keras.Sequential(
        [
            keras.Input((d,)),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(k),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    out.mkdir(parents=True, exist_ok=True)
    model.fit(
        x[:160],
        y[:160],
        validation_data=(x[160:], y[160:]),
        epochs=60,
        batch_size=32,
        verbose=0,
        callbacks=[keras.callbacks.CSVLogger(str(out / "keras_overfit.csv"))],
    )
    np.asarray(0)


RUNS = {
    "lightning_lr_spike": lightning_lr_spike,
    "tensorboard_overfit": tensorboard_overfit,
    "lightning_still_falling": lightning_still_falling,
    "lightning_levelled": lightning_levelled,
    "lightning_early_blowup": lightning_early_blowup,
    "hf_nan_batch": hf_nan_batch,
    "keras_overfit": keras_overfit,
    "lightning_warmup_decay": lightning_warmup_decay,
    "lightning_small_batch": lightning_small_batch,
    "lightning_step_decay": lightning_step_decay,
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--only", nargs="*", choices=sorted(RUNS), help="runs to make (default: all)")
    args = parser.parse_args(argv)
    for name in args.only or RUNS:
        print(f"{name} ...", flush=True)
        RUNS[name](args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
