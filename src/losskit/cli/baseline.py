"""``losskit baseline``: the loss of the best constant guess, with its units."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import positive_int, print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "baseline",
        help="the loss a constant guess scores (ln K for K classes, ...)",
        description="The loss of the best constant guess before any learning: what a well-initialised "
        "network's first loss should be close to. Log-losses are shown in nats, bits and perplexity.",
        epilog="examples:\n  losskit baseline --loss cross_entropy --classes 27\n"
        "  losskit baseline --loss bce --priors 0.1\n  losskit baseline --loss mse --targets y.npy",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--loss", default="cross_entropy", help="loss name or alias (default: cross_entropy)")
    p.add_argument("--classes", type=positive_int, metavar="K", help="number of classes")
    p.add_argument(
        "--priors", metavar="P1,P2,...", help="class frequencies (summing to 1), or positive rate(s) for bce"
    )
    p.add_argument(
        "--targets", type=Path, metavar="FILE", help="targets as .npy or a text/CSV file of numbers"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def _load_targets(path: Path):
    import numpy as np

    from .common import CommandError

    if not path.is_file():
        raise CommandError(f"no such file: {path}")
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        data = np.loadtxt(path, delimiter="," if path.suffix == ".csv" else None, ndmin=1)
    except (ValueError, OSError) as exc:
        raise CommandError(f"cannot read targets from {path}: {exc}") from None
    if np.all(data == np.round(data)) and data.ndim == 1:
        return data.astype(np.int64)  # whole numbers: class indices
    return data


def run(args: argparse.Namespace) -> int:
    from ..diagnostics import baseline_report, perplexity, to_bits
    from .common import CommandError, check_loss_name

    priors = None
    if args.priors is not None:
        try:
            priors = [float(v) for v in args.priors.split(",") if v.strip()]
        except ValueError:
            raise CommandError(f"--priors must be comma-separated numbers; got {args.priors!r}") from None
    loss = check_loss_name(args.loss)
    targets = _load_targets(args.targets) if args.targets is not None else None
    try:
        b = baseline_report(loss, num_classes=args.classes, targets=targets, priors=priors)
    except (ValueError, TypeError, KeyError) as exc:
        raise CommandError(str(exc).strip("'\"")) from None
    if args.json:
        out = {"loss": b.loss, "baseline": b.value, "guess": b.guess, "unit": "nats" if b.log_loss else None}
        if b.log_loss:
            out.update(bits=to_bits(b.value), perplexity=perplexity(b.value))
        print_json(out)
        return 0
    if b.log_loss:
        print(f"{b.value:.4f} nats ({to_bits(b.value):.4f} bits, perplexity {perplexity(b.value):.2f})")
    else:
        print(f"{b.value:.4f}")
    print(f"  {b.loss}, constant guess: {b.guess}")
    return 0
