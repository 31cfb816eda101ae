"""``losskit units``: a log-loss in nats, bits and perplexity."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "units",
        help="convert a log-loss between nats, bits and perplexity",
        description="Convert a mean log-loss (e.g. a cross-entropy) between nats (what frameworks compute), "
        "bits and perplexity; with --tokens and --characters, also bits per character.",
        epilog="examples:\n  losskit units 3.2958\n  losskit units 4.75 --from bits\n"
        "  losskit units 27 --from perplexity\n  losskit units 2.1 --tokens 1000 --characters 4200",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("value", type=float, help="the number to convert")
    p.add_argument(
        "--from",
        dest="unit",
        choices=("nats", "bits", "perplexity"),
        default="nats",
        help="what VALUE is (default: nats)",
    )
    p.add_argument("--tokens", type=float, help="tokens the loss was averaged over (for bits per character)")
    p.add_argument("--characters", type=float, help="characters those tokens spell (for bits per character)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..diagnostics import bits_per_character, convert
    from .common import CommandError, print_json

    try:
        out = convert(args.value, args.unit)
        if (args.tokens is None) != (args.characters is None):
            raise ValueError("--tokens and --characters go together")
        if args.tokens is not None:
            out["bits_per_character"] = bits_per_character(
                out["nats"], tokens=args.tokens, characters=args.characters
            )
    except (ValueError, TypeError) as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        print_json(out)
        return 0
    line = f"{out['nats']:.4f} nats = {out['bits']:.4f} bits = perplexity {out['perplexity']:.2f}"
    if "bits_per_character" in out:
        line += f" ({out['bits_per_character']:.4f} bits per character)"
    print(line)
    return 0
