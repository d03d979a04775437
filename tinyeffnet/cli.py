"""The `tinyeffnet` command line: gradcheck | bench | summary | train.

    tinyeffnet gradcheck                 gradient-check every op, print a table
    tinyeffnet bench ops [--json]        forward+backward time per op against PyTorch CPU
    tinyeffnet summary NAME [--image-size N]
    tinyeffnet train [--epochs N --out DIR --resume --no-progressive ...]
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
    if args.what == "train-step":
        from .bench import train_step

        results = train_step.run(sizes=tuple(args.sizes), batch=args.batch, rounds=args.rounds,
                                 progress=lambda msg: print(msg, file=sys.stderr))
        print(json.dumps(results, indent=1) if args.json else train_step.format_table(results))
        return 0
    if args.what == "profile":
        from .bench import train_step

        size = args.sizes[0]
        result = train_step.profile(size=size, batch=args.batch)
        print(json.dumps(result, indent=1) if args.json else train_step.format_profile(result, size, args.batch))
        return 0
    if args.what == "progressive":
        from .bench import progressive

        results = progressive.run(out=args.out, epochs=args.epochs)
        print(progressive.format_table(results))
        print(f"wrote {args.out}/progressive.json and progressive.png")
        return 0
    if args.what == "gpu":
        from .bench import gpu

        return gpu.run()
    raise SystemExit(f"unknown benchmark {args.what!r}")


def _cmd_train(args) -> int:
    from .train import TrainConfig, TrainingDiverged, Trainer

    defaults = TrainConfig()
    cfg = TrainConfig(
        model=args.model, data=args.data, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr if args.lr is not None else defaults.lr, optimizer=args.optimizer,
        stages=args.stages, progressive=not args.no_progressive, out=args.out, seed=args.seed,
        train_samples=args.train_samples, val_samples=args.val_samples, min_size=args.min_size,
        max_size=args.max_size, eval_size=args.eval_size,
        weight_decay=args.weight_decay if args.weight_decay is not None else (
            defaults.weight_decay if args.optimizer == "adamw" else 1e-5),
    )
    try:
        trainer = Trainer(cfg, progress=not args.no_progress_bar)
        rows = trainer.run(resume=args.resume)
    except KeyboardInterrupt:
        return 130
    except TrainingDiverged as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (FileNotFoundError, NotADirectoryError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if rows:
        last = rows[-1]
        print(f"done: val accuracy {last['val_acc']:.3f} at {cfg.eval_size} px after {last['seconds']:.0f} s; "
              f"wrote {cfg.out}/metrics.jsonl, checkpoint.npz, curves.png")
    return 0


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
    p.add_argument("what", choices=["ops", "train-step", "profile", "progressive", "gpu"],
                   help="ops: forward+backward per op at EfficientNetV2-S shapes (CPU); "
                        "train-step: EfficientNetV2-S training step, cold/warm start, peak memory vs PyTorch; "
                        "profile: time per op family in one training step; "
                        "progressive: default training with and without progressive learning; "
                        "gpu: every CUDA check and timing on a real GPU, in one command")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds per contender (default 3)")
    p.add_argument("--repeats", type=int, default=20, help="ops: timed calls per op per round (default 20)")
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 224], help="train-step/profile: image sizes")
    p.add_argument("--batch", type=int, default=8, help="train-step/profile: batch size (default 8)")
    p.add_argument("--out", default="runs/bench_progressive", help="progressive: output folder")
    p.add_argument("--epochs", type=int, default=None, help="progressive: epochs (default: the train default)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=_cmd_bench)

    from .train import TrainConfig

    d = TrainConfig()
    p = sub.add_parser("train", help="train with progressive learning (default: the built-in shapes dataset)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default=d.model, help="model name (see tinyeffnet.models.list_models())")
    p.add_argument("--data", default=None, help="image folder (one subfolder per class); default: built-in shapes")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=None, help=f"peak learning rate (default {d.lr} for adamw)")
    p.add_argument("--optimizer", choices=["adamw", "rmsprop", "sgd"], default=d.optimizer)
    p.add_argument("--weight-decay", type=float, default=None, help="default 0.05 for adamw, 1e-5 otherwise")
    p.add_argument("--stages", type=int, default=d.stages, help="progressive stages M")
    p.add_argument("--no-progressive", action="store_true", help="fixed size and regularization (baseline)")
    p.add_argument("--min-size", type=int, default=d.min_size, help="first stage image size")
    p.add_argument("--max-size", type=int, default=d.max_size, help="last stage image size")
    p.add_argument("--eval-size", type=int, default=d.eval_size, help="validation image size")
    p.add_argument("--train-samples", type=int, default=d.train_samples, help="built-in data: training images")
    p.add_argument("--val-samples", type=int, default=d.val_samples, help="built-in data: validation images")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", default=d.out, help="output folder (metrics.jsonl, checkpoint.npz, curves.png)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    p.add_argument("--no-progress-bar", action="store_true")
    p.set_defaults(func=_cmd_train)

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
