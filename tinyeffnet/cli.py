"""The `tinyeffnet` command line: gradcheck | bench | summary | train.

    tinyeffnet gradcheck                 gradient-check every op, print a table
    tinyeffnet bench ops [--json]        forward+backward time per op against PyTorch CPU
    tinyeffnet summary NAME [--image-size N]
"""
from __future__ import annotations

import argparse
import json
import sys


def _cmd_gradcheck(args) -> int:
    from . import selfcheck

    return 0 if selfcheck.run(samples=args.samples) else 1


def _cmd_bench(args) -> int:
    if args.what == "ops":
        from .bench import ops as bench_ops

        summary = bench_ops.run(rounds=args.rounds, repeats=args.repeats,
                                progress=lambda msg: print(msg, file=sys.stderr))
        print(json.dumps(summary, indent=1) if args.json else bench_ops.format_table(summary))
        return 0
    raise SystemExit(f"unknown benchmark {args.what!r}")


def _cmd_summary(args) -> int:
    from . import analysis

    print(analysis.summary(args.name, image_size=args.image_size))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinyeffnet", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("gradcheck", help="gradient-check every op (float64, finite differences)")
    p.add_argument("--samples", type=int, default=40, help="entries checked per gradient (default 40)")
    p.set_defaults(func=_cmd_gradcheck)

    p = sub.add_parser("bench", help="benchmarks against PyTorch (each contender in its own process)")
    p.add_argument("what", choices=["ops"], help="ops: forward+backward per op at EfficientNetV2-S shapes")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds per contender (default 3)")
    p.add_argument("--repeats", type=int, default=20, help="timed calls per op per round (default 20)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("summary", help="per-stage table: shapes, params, multiply-adds, memory")
    p.add_argument("name", help="model name, e.g. efficientnetv2_s")
    p.add_argument("--image-size", type=int, default=224)
    p.set_defaults(func=_cmd_summary)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
