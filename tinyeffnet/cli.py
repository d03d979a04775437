"""The `tinyeffnet` command line: gradcheck | bench | summary | train | search | scale.

    tinyeffnet gradcheck                 gradient-check the ops, print a table
    tinyeffnet bench ops [--json]        forward+backward time per op against PyTorch CPU
    tinyeffnet summary NAME | --arch FILE [--image-size N]
    tinyeffnet train [--epochs N --dataset clutter --arch FILE --out DIR --resume --no-progressive ...]
    tinyeffnet search [--trials N --strategy random|evolution --out DIR --resume ...]
    tinyeffnet scale [--base v2-s|v2-tiny|v1-tiny|v1-b0|FILE --phi 0 1 2 3 --rules v1|v2 --out DIR ...]
"""
from __future__ import annotations

import argparse
import json
import math
import sys

from .process import configure_process

# Bad input never shows a traceback: argparse refuses what it can see in one value (a size of 0, a
# negative learning rate) with its usage line and exit code 2, before anything runs; what needs
# several values (min size > max size, an unknown model) is refused by the code it reaches, whose
# TypeError / ValueError the command prints as one line "error: ..." on stderr, also exit code 2.
# Nothing is written in either case.


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int >= {low}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be an int >= {low}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type for counts and sizes: an int >= 1."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type for seeds: an int >= 0."""
    return _int_at_least(text, 0)


def _finite_float(text: str, positive: bool) -> float:
    words = "a number > 0" if positive else "a number >= 0"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {words}, got {text!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise argparse.ArgumentTypeError(f"must be {words}, got {text}")
    return value


def positive_float(text: str) -> float:
    """argparse type for learning rates: a finite number > 0."""
    return _finite_float(text, positive=True)


def non_negative_float(text: str) -> float:
    """argparse type for weight decay: a finite number >= 0."""
    return _finite_float(text, positive=False)


def _peer_list(text: str) -> tuple:
    """argparse type for --peers: a comma-separated list of PyTorch contenders."""
    from .bench.train_step import PEERS

    peers = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [peer for peer in peers if peer not in PEERS]
    if unknown or not peers:
        raise argparse.ArgumentTypeError(f"must be one or more of {', '.join(PEERS)} (comma-separated), got {text!r}")
    return peers


def _error(err: BaseException) -> int:
    """Print a refused input as one line "error: ..." on stderr; return the exit code 2."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    print(f"error: {'; '.join(lines) or type(err).__name__}", file=sys.stderr)
    return 2


def _cmd_gradcheck(args) -> int:
    from . import selfcheck

    return 0 if selfcheck.run(samples=args.samples) else 1


def _cmd_bench(args) -> int:
    if args.what == "ops":
        from .bench import ops as bench_ops

        summary = bench_ops.run(rounds=args.rounds or 3, repeats=args.repeats,
                                progress=lambda msg: print(msg, file=sys.stderr))
        print(json.dumps(summary, indent=1) if args.json else bench_ops.format_table(summary))
        return 0
    if args.what == "train-step":
        from .bench import train_step

        results = train_step.run(sizes=tuple(args.sizes), batch=args.batch, rounds=args.rounds or 3,
                                 progress=lambda msg: print(msg, file=sys.stderr), model=args.model,
                                 peers=args.peers, isa=args.isa)
        print(json.dumps(results, indent=1) if args.json else train_step.format_table(results))
        return 0
    if args.what == "profile":
        from .bench import train_step

        size = args.sizes[0]
        result = train_step.profile(size=size, batch=args.batch, model=args.model)
        print(json.dumps(result, indent=1) if args.json else train_step.format_profile(result, size, args.batch))
        return 0
    if args.what == "progressive":
        from .bench import progressive

        out = args.out or "runs/bench_progressive"
        try:  # TrainConfig and run() check every value (a target above 1, ...)
            results = progressive.run(out=out, dataset=args.dataset or "shapes", epochs=args.epochs,
                                      seeds=3 if args.seeds is None else args.seeds,
                                      target=args.target, train_samples=args.train_samples,
                                      val_samples=args.val_samples, schedule=args.schedule)
        except (ValueError, TypeError) as err:
            return _error(err)
        print(json.dumps(results, indent=1) if args.json else progressive.format_table(results))
        print(f"wrote {out}/progressive.json and progressive.png")
        return 0
    if args.what == "scaling":
        from .bench import scaling

        return scaling.bench_command(args)
    if args.what == "claims":
        return _bench_claims(args)
    if args.what == "train-vs-torch":
        from .bench import train_vs_torch

        try:  # run() refuses a peer it has no job for (torch-compile) and other bad values
            results = train_vs_torch.run(rounds=args.rounds or 1, target=args.target, epochs=args.epochs,
                                         peers=args.peers, isa=args.isa, train_samples=args.train_samples,
                                         val_samples=args.val_samples,
                                         progress=lambda msg: print(msg, file=sys.stderr))
        except (ValueError, TypeError) as err:
            return _error(err)
        print(json.dumps(results, indent=1) if args.json else train_vs_torch.format_table(results))
        return 0
    if args.what == "gpu":
        from .bench import gpu

        return gpu.run(out=args.out, rehearsal=args.rehearse)
    raise SystemExit(f"unknown benchmark {args.what!r}")


def _bench_claims(args) -> int:
    """The paper's design claims measured: the ablation from a V1-like tiny network, then B4 against V2-S."""
    from pathlib import Path

    from .bench import claims
    from .files import write_atomic

    def say(message):
        print(message, file=sys.stderr)

    out = Path(args.out or "runs/bench_claims")
    ablation = claims.run_ablation(rounds=args.rounds or 5, budget_s=args.budget, progress=say)   # 32 px, batch 32
    versus = claims.run_v1_vs_v2(size=128, batch=8, rounds=args.rounds or 3, ablation=ablation, progress=say)
    print(claims.format_ablation(ablation))
    print()
    print(claims.format_v1_vs_v2(versus))
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"ablation": ablation, "v1_vs_v2": versus}, indent=1)
    write_atomic(out / "claims.json", lambda f: f.write(text.encode()))
    print(f"wrote {out / 'claims.json'}")
    return 0


def _cmd_train(args) -> int:
    from .train import TrainConfig, TrainingDiverged, Trainer

    defaults = TrainConfig()
    try:  # TrainConfig checks every value and their relations (min size <= max size, ...)
        cfg = TrainConfig(
            model=args.model, arch=args.arch, dataset=args.dataset, data=args.data, epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr if args.lr is not None else defaults.lr, optimizer=args.optimizer,
            stages=args.stages, progressive=not args.no_progressive, out=args.out, seed=args.seed,
            train_samples=args.train_samples, val_samples=args.val_samples, schedule=args.schedule,
            lr_schedule=args.lr_schedule, min_size=args.min_size, max_size=args.max_size, eval_size=args.eval_size,
            weight_decay=args.weight_decay if args.weight_decay is not None else (
                defaults.weight_decay if args.optimizer == "adamw" else 1e-5),
        )
    except (ValueError, TypeError) as err:
        return _error(err)
    try:
        trainer = Trainer(cfg, progress=not args.no_progress_bar)
        rows = trainer.run(resume=args.resume)
    except KeyboardInterrupt:
        return 130
    except TrainingDiverged as err:
        return _error(err)
    except (FileNotFoundError, NotADirectoryError, ValueError, OSError) as err:
        return _error(err)
    if rows:
        last = rows[-1]
        print(f"done: val accuracy {last['val_acc']:.3f} at {cfg.eval_size} px after {last['seconds']:.0f} s; "
              f"wrote {trainer.out}/metrics.jsonl, checkpoint.npz, curves.png")
    return 0


def _cmd_summary(args) -> int:
    from . import analysis

    if (args.name is None) == (args.arch is None):
        return _error(ValueError("summary needs a model NAME or --arch FILE (one of them, not both)"))
    try:  # an unknown name, a bad arch file, or an image too small for the network
        if args.arch is not None:
            from .search.arch import read_arch

            model = read_arch(args.arch).build(args.num_classes)
            table = analysis.summary(model, image_size=args.image_size)
        else:
            table = analysis.summary(args.name, image_size=args.image_size)
    except (FileNotFoundError, ValueError, TypeError) as err:
        return _error(err)
    print(table)
    return 0


def _cmd_search(args) -> int:
    from .search.run import BEST, PARETO, TRIALS, SearchConfig, search
    from .train import TrainingDiverged

    try:  # SearchConfig checks every value
        cfg = SearchConfig(trials=args.trials, epochs_per_trial=args.epochs_per_trial, image_size=args.image_size,
                           strategy=args.strategy, dataset=args.dataset, train_samples=args.train_samples,
                           val_samples=args.val_samples, seed=args.seed, w=args.w, v=args.v, out=args.out,
                           population=args.population, sample_size=args.sample_size)
    except (ValueError, TypeError) as err:
        return _error(err)
    try:
        result = search(cfg, resume=args.resume, progress=not args.no_progress_bar)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the finished trials are in {cfg.out}/{TRIALS}; continue with --resume",
              file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, OSError, TrainingDiverged) as err:
        return _error(err)
    best = result["best"]
    print(f"done: best reward {best['reward']:.4f} (trial {best['trial']}: accuracy {best['accuracy']:.3f}, "
          f"S {best['step_ratio']:.2f}, {best['params']:,} params); wrote {cfg.out}/{TRIALS}, {BEST}, {PARETO}. "
          f"Train it: tinyeffnet train --arch {cfg.out}/{BEST} --dataset {cfg.dataset}")
    return 0


def _cmd_export(args) -> int:
    """Write trained weights for PyTorch (torchvision or timm .pth) or as .safetensors; see
    interop.export. Any bad input: one line "error: ..." on stderr, exit code 2, nothing written."""
    from . import interop

    try:
        done = interop.export(args.model, args.weights, args.format, args.out,
                              keys=getattr(args, "keys", None), ema=not args.no_ema)
    except (FileNotFoundError, ImportError, ValueError, TypeError, OSError) as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        print(f"error: {'; '.join(lines) or type(err).__name__}", file=sys.stderr)
        return 2
    print(f"wrote {done['out']}: {done['model']} ({done['num_classes']} classes) under {done['keys']} "
          f"keys, from {done['source']}")
    if done["format"] == "torchvision":
        print(f"load it: tv.load_state_dict(torch.load({done['out']!r}, weights_only=True)), with "
              f"tv = tinyeffnet.interop.torchvision_model(tinyeffnet.create_model({done['model']!r}, "
              f"num_classes={done['num_classes']}), copy_weights=False) (or torchvision's own builder)")
    elif done["format"] == "timm":
        print(f"load it: timm.create_model(NAME, num_classes={done['num_classes']}, bn_eps={done['bn_eps']:g})"
              f".load_state_dict(torch.load({done['out']!r}, weights_only=True))")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    defaults_shown = argparse.ArgumentDefaultsHelpFormatter  # every --help lists each flag's default
    parser = argparse.ArgumentParser(prog="tinyeffnet", description=__doc__.split("\n")[0],
                                     formatter_class=defaults_shown)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("gradcheck", help="gradient-check the ops (float64, finite differences)",
                       formatter_class=defaults_shown)
    p.add_argument("--samples", type=positive_int, default=40, help="entries checked per gradient")
    p.set_defaults(func=_cmd_gradcheck)

    p = sub.add_parser("bench", help="benchmarks against PyTorch (each contender in its own process)",
                       formatter_class=defaults_shown)
    p.add_argument("what", choices=["ops", "train-step", "profile", "train-vs-torch", "progressive", "scaling",
                                     "claims", "gpu"],
                   help="ops: forward+backward per op at EfficientNetV2-S shapes (CPU); "
                        "train-step: a training step (default EfficientNetV2-S) against PyTorch NCHW, "
                        "channels_last and torch.compile, cold/warm start, peak memory; "
                        "profile: time per op family in one training step; "
                        "train-vs-torch: time to accuracy of the main job against PyTorch doing the same job; "
                        "progressive: the paper's Table 13, progressive learning with adaptive or fixed "
                        "regularization and fixed-size training, over seeds; "
                        "scaling: compound-scaled V2-style and V1-style tiny families, accuracy against "
                        "training time; "
                        "claims: the paper's four design choices as an ablation, and EfficientNet-B4 against V2-S; "
                        "gpu: every CUDA check and timing on a real GPU, in one command")
    p.add_argument("--rounds", type=positive_int, default=None,
                   help="alternating rounds per contender (default 3; train-vs-torch 1, a whole training each)")
    p.add_argument("--target", type=positive_float, default=0.9,
                   help="train-vs-torch/progressive: validation accuracy to time")
    p.add_argument("--repeats", type=positive_int, default=20, help="ops: timed calls per op per round")
    p.add_argument("--sizes", type=positive_int, nargs="+", default=[128, 224],
                   help="train-step/profile: image sizes (profile uses the first)")
    p.add_argument("--batch", type=positive_int, default=8, help="train-step/profile: batch size")
    p.add_argument("--model", default="efficientnetv2_s",
                   help="train-step/profile: the network (efficientnetv2_tiny: the main job's, 10 classes)")
    p.add_argument("--peers", default="torch,torch-cl", type=_peer_list,
                   help="train-step/train-vs-torch: comma-separated PyTorch contenders among torch (NCHW), "
                        "torch-cl (channels_last), torch-compile (train-step only)")
    p.add_argument("--isa", choices=["native", "avx2"], default="native",
                   help="train-step/train-vs-torch: avx2 forces the AVX2 code paths in numpy, OpenBLAS, Numba "
                        "and torch for every contender")
    p.add_argument("--out", default=None,
                   help="progressive/scaling/claims/gpu: output folder (default runs/bench_<what>)")
    p.add_argument("--budget", type=positive_float, default=60.0, help="claims: training seconds per run")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="progressive/train-vs-torch: epochs (None: the train default); "
                        "scaling: epochs per member (None: 8)")
    p.add_argument("--seeds", type=positive_int, default=None,
                   help="progressive/scaling: runs (seeds 0, 1, ...) per variant or member (None: 3 for "
                        "progressive, 2 for scaling)")
    from .data import DATASETS as BUILT_IN

    p.add_argument("--dataset", choices=sorted(BUILT_IN), default=None,
                   help="progressive/scaling: built-in dataset (None: shapes for progressive, clutter for scaling)")
    p.add_argument("--train-samples", type=positive_int, default=None,
                   help="progressive/scaling/train-vs-torch: training images (None: the train default; scaling 2000)")
    p.add_argument("--val-samples", type=positive_int, default=None,
                   help="progressive/scaling/train-vs-torch: validation images (None: the train default; scaling 500)")
    from .train.presets import SCHEDULES

    p.add_argument("--schedule", choices=SCHEDULES, default="custom",
                   help="progressive: the preset every variant starts from (train --schedule)")
    from .bench.scaling import add_bench_arguments as add_scaling_arguments

    add_scaling_arguments(p)                                        # --phis
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--rehearse", action="store_true",
                   help="gpu: run every section in the CUDA simulator at tiny sizes (NUMBA_ENABLE_CUDASIM=1), "
                        "to catch mistakes before a real GPU run")
    p.set_defaults(func=_cmd_bench)

    from .data import DATASETS
    from .train import SCHEDULES, TrainConfig, preset_values

    d = TrainConfig()
    custom = preset_values("custom", d.model)
    p = sub.add_parser("train", help="train with progressive learning (default: the built-in shapes dataset)",
                       formatter_class=defaults_shown)
    p.add_argument("--model", default=d.model, help="model name (see tinyeffnet.models.list_models())")
    p.add_argument("--arch", default=None, metavar="FILE",
                   help="stage-table JSON (what tinyeffnet search writes as best.json): train that network "
                        "instead of --model")
    p.add_argument("--dataset", choices=sorted(DATASETS), default=d.dataset,
                   help="built-in dataset (shapes: easy, 10 classes; clutter: hard, 16 classes)")
    p.add_argument("--data", default=None, help="image folder (one subfolder per class); None: the built-in "
                                                "--dataset")
    p.add_argument("--epochs", type=positive_int, default=d.epochs, help="training epochs")
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size,
                   help="images per training step (None: 64, or what fits a smaller training set)")
    p.add_argument("--lr", type=positive_float, default=None,
                   help=f"peak learning rate (None: {d.lr} for adamw, the default optimizer)")
    p.add_argument("--optimizer", choices=["adamw", "rmsprop", "sgd"], default=d.optimizer, help="optimizer")
    p.add_argument("--weight-decay", type=non_negative_float, default=None,
                   help=f"weight decay (None: {d.weight_decay} for adamw, 1e-5 otherwise)")
    p.add_argument("--lr-schedule", choices=["cosine", "exponential"], default=d.lr_schedule,
                   help="learning-rate schedule after the warmup (exponential: the paper's 0.97 every 2.4 epochs)")
    p.add_argument("--schedule", choices=list(SCHEDULES), default=d.schedule,
                   help="progressive preset for the sizes and regularization not given: custom (this library's, "
                        "32 -> 48 px, eval 48), paper (Table 6 and Algorithm 1: S 128 -> 300 px, eval 384), "
                        "released (the released code's rules: S 171, 214, 257, 300 px, eval 384); M and L "
                        "models take their own rows, other models the S row")
    p.add_argument("--stages", type=positive_int, default=d.stages, help="progressive stages M")
    p.add_argument("--no-progressive", action="store_true", help="fixed size and regularization (baseline)")
    p.add_argument("--min-size", type=positive_int, default=None,
                   help=f"first stage image size (None: the schedule's; custom: {custom['min_size']})")
    p.add_argument("--max-size", type=positive_int, default=None,
                   help=f"last stage image size (None: the schedule's; custom: {custom['max_size']})")
    p.add_argument("--eval-size", type=positive_int, default=None,
                   help=f"validation image size (None: the schedule's; custom: {custom['eval_size']})")
    p.add_argument("--train-samples", type=positive_int, default=d.train_samples, help="built-in data: training images")
    p.add_argument("--val-samples", type=positive_int, default=d.val_samples, help="built-in data: validation images")
    p.add_argument("--seed", type=non_negative_int, default=d.seed, help="seed of the data, init and augmentation")
    p.add_argument("--out", default=d.out, help="output folder (metrics.jsonl, checkpoint.npz, curves.png); "
                                                "None: runs/<dataset>, or runs/<data folder name>")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    p.add_argument("--no-progress-bar", action="store_true", help="no progress bar (log lines only)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("summary", help="per-stage table: shapes, params, multiply-adds, memory",
                       formatter_class=defaults_shown)
    p.add_argument("name", nargs="?", default=None,
                   help="model name, e.g. efficientnetv2_s (see tinyeffnet.models.list_models()); or use --arch")
    p.add_argument("--arch", default=None, metavar="FILE",
                   help="stage-table JSON (tinyeffnet search's best.json) instead of a model name")
    p.add_argument("--num-classes", type=positive_int, default=1000, help="--arch: classifier outputs")
    p.add_argument("--image-size", type=positive_int, default=224, help="input image side in pixels")
    p.set_defaults(func=_cmd_summary)

    from .bench.scaling import add_scale_arguments

    p = sub.add_parser("scale", help="derive a family from a base table by compound scaling (V1's rule or "
                                     "V2's restrictions); optionally write one arch file per member",
                       formatter_class=defaults_shown)
    add_scale_arguments(p)                                          # sets func=scale_command

    from .search.reward import V_DEFAULT, W_DEFAULT
    from .search.run import SearchConfig
    from .search.strategies import STRATEGIES

    sd = SearchConfig()
    p = sub.add_parser("search", help="training-aware architecture search (reward A * S**w * P**v)",
                       formatter_class=defaults_shown)
    p.add_argument("--trials", type=positive_int, default=sd.trials, help="networks to train and score")
    p.add_argument("--epochs-per-trial", type=positive_int, default=sd.epochs_per_trial,
                   help="training epochs per network")
    p.add_argument("--image-size", type=positive_int, default=sd.image_size, help="training and validation size")
    p.add_argument("--strategy", choices=STRATEGIES, default=sd.strategy,
                   help="random: the paper's random sampling; evolution: regularised (aging) evolution")
    p.add_argument("--population", type=positive_int, default=sd.population,
                   help="evolution: the population (the most recent trials)")
    p.add_argument("--sample-size", type=positive_int, default=sd.sample_size, help="evolution: tournament size")
    p.add_argument("--dataset", choices=sorted(DATASETS), default=sd.dataset, help="built-in dataset")
    p.add_argument("--train-samples", type=positive_int, default=sd.train_samples, help="training images per trial")
    p.add_argument("--val-samples", type=positive_int, default=sd.val_samples, help="validation images per trial")
    p.add_argument("--seed", type=non_negative_int, default=sd.seed, help="seed of the proposals, data and init")
    p.add_argument("--w", type=float, default=W_DEFAULT, help="exponent of the normalised step time S")
    p.add_argument("--v", type=float, default=V_DEFAULT, help="exponent of the normalised parameter count P")
    p.add_argument("--out", default=sd.out, help="output folder (search.json, trials.jsonl, best.json, pareto.png)")
    p.add_argument("--resume", action="store_true", help="continue the search in OUT from its trials.jsonl")
    p.add_argument("--no-progress-bar", action="store_true", help="no progress bar (one line per trial)")
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser("export", help="write trained weights for PyTorch (torchvision, timm) or .safetensors",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       description="Read a training checkpoint (or a save_npz / .safetensors / .pth weights "
                                   "file), build MODEL with as many classes as its classifier has, load the "
                                   "weights strictly and write them in another format. Checkpoints give "
                                   "their EMA weights (what validation measured) unless --no-ema.")
    p.add_argument("model", metavar="MODEL",
                   help="model name (see tinyeffnet.models.list_models()), e.g. efficientnetv2_tiny")
    p.add_argument("--weights", required=True, default=argparse.SUPPRESS,
                   help="training checkpoint (runs/shapes/checkpoint.npz) or weights file "
                        "(.npz, .safetensors, .pth)")
    p.add_argument("--format", required=True, default=argparse.SUPPRESS, metavar="{torchvision,timm,safetensors}",
                   help="torchvision or timm: a .pth state_dict of torch tensors for "
                        "torch.load(weights_only=True); safetensors: a .safetensors file")
    p.add_argument("--out", required=True, default=argparse.SUPPRESS, help="the file to write (atomically)")
    p.add_argument("--keys", default=argparse.SUPPRESS, metavar="{torchvision,timm,tinyeffnet}",
                   help="safetensors only: whose key names and layouts to use (default: torchvision)")
    p.add_argument("--no-ema", action="store_true",
                   help="checkpoints: the raw training weights instead of their EMA (e.g. to continue training)")
    p.set_defaults(func=_cmd_export)

    from .exercises.command import add_parser as add_exercise_parser   # tinyeffnet exercise list|start|check|grade

    add_exercise_parser(sub)
    return parser


def main(argv=None) -> int:
    """Run one command; return its exit code: 0 done, 2 bad input (nothing run, nothing written),
    1 a check that ran and failed (gradcheck), 130 interrupted. argparse itself ends --help and
    --version with SystemExit(0) and a usage error with SystemExit(2), as every argparse program.

    Thread-pool settings first (tinyeffnet.configure_process), before the parser imports numpy."""
    configure_process()
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
