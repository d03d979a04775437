"""`tinyeffnet scale` and `tinyeffnet bench scaling`: a family from a base table, and its measured curve.

EfficientNet grows a base network with one coefficient phi (models/scaling.py has the rule):

    depth  alpha ** phi     width  beta ** phi     image size  gamma ** phi    (1.2, 1.1, 1.15)

and EfficientNetV2 (Tan & Le, ICML 2021, section 4) scales its S up "with similar compound scaling"
and two restrictions: (1) the image size stops at 480, (2) extra layers go to the late stages
(5 and 6 of its Table 4). ``compound_scale(..., rules="v2")`` applies both; this module fixes their
amounts for any base table (``scale_family``), writes a family as arch files (``tinyeffnet scale``),
and trains two families on the built-in task (``tinyeffnet bench scaling``).

V2's restrictions for any base (what ``scale_family`` uses when an option is not given)
-----------------------------------------------------------------------------------------
    max image size   the base size x 480/384 (``max_image_size_for``). The paper caps S, which
                     evaluates at 384, at 480: 1.25 x the base. That ratio is what carries over to a
                     base at another size: V2-S 384 -> 480 (the paper's own number), the tiny bases at
                     32 -> 40, B0 at 224 -> 280. At 32 px with gamma 1.15 it first bites at phi = 2
                     (42 -> 40).
    late stages      stages 5 and 6 (the paper's example) when the table has them, else its last two
                     stages (``late_stages_for``): S's 5 and 6 are its last two, so V2_TINY's are 4
                     and 5, its two MBConv stages.
    late depth       the paper gives no amount. ``official_late_depth()`` reads one from the official
                     tables, taking S -> M as one step: the blocks of stages 5 and later grow 24 -> 37
                     (x1.54), those of stages 1-4 16 -> 20 (x1.25), so the late stages grow
                     1.54 / 1.25 = 1.233 times faster than the rest (``LATE_DEPTH``). The late stages
                     then get ceil(r * (alpha * 1.233) ** phi) blocks instead of ceil(r * alpha ** phi).
                     It is a reading of two published tables, not the paper's rule (M also gains a
                     7th stage, which no formula gives).

`tinyeffnet scale` (``add_scale_arguments`` / ``scale_command``)
-----------------------------------------------------------------
``--base`` v1-b0 | v2-tiny | v1-tiny | v2-s | FILE (a stage-table JSON, as ``tinyeffnet search`` writes),
``--phi`` the coefficients, ``--rules`` v1 | v2 and V2's three options; prints
``describe_family``'s table and, with ``--out DIR``, writes DIR/phi=<phi>.json per member: an arch
file (search/arch.py) for ``tinyeffnet train --arch`` and ``tinyeffnet summary --arch``, with the
member's image size, phi, width and depth kept in it for people.

`tinyeffnet bench scaling` (``run`` / ``format_table``)
-------------------------------------------------------
Two families from tiny bases, on the built-in task:

    v2   V2_TINY with rules "v2": V2 rounding, image size capped at 40, stages 4-5 deeper
         (late depth 1.233, see above)
    v1   the V1-like tiny baseline of ``bench claims`` (claims.BASELINE: MBConv6, SE, 5x5 kernels,
         a last stride-1 stage) with rules "v1": EfficientNet's plain compound rule, V1 rounding

both from 32 px and head 320 (efficientnetv2_tiny's). Every member (phi 0, 1, 2 by default) is
trained for the same number of epochs at its own image size, as ``bench claims`` trains a table
(``claims.train_config``: one fixed size, no progressive learning, no RandAugment or mixup, AdamW,
batch 32), for each seed (data and init), each run in a process of its own. The runs interleave:
for every (seed, phi) both families run back to back, and which goes first alternates, so a slow
spell of a shared machine falls on both. Per member:

    params       count_parameters, with the dataset's classes
    step ms      one training step at the member's size: the training seconds of the run (from the
                 runner's images per second) less the first step, over the steps less one
    train s      the runner's clock at the end (training + the validation passes), less the first
                 step, which loads (or compiles) the Numba kernels: as ``bench claims``
    accuracy     the final validation accuracy (EMA weights): mean, min and max over the seeds

Writes scaling.json (everything, each run's curve too) and scaling.png (accuracy against training
seconds, one curve per family, points labelled by phi, error bars the seed range) into ``out``.

Default cost. Measured on the 2-core machine while other jobs ran on it (load 1.5-5.5), with
``nice``: a training step at batch 32 took 35-40 ms at phi 0 (32 px), about 90-120 ms at phi 1
(37 px) and 120-170 ms at phi 2 (40-42 px) in the quietest samples, 3-5x that when loaded. The
default run is 2 families x 3 members x 2 seeds = 12 runs of ``EPOCHS`` = 8 epochs of
``TRAIN_SAMPLES`` = 2000 images (62 steps) with 500 validation images: from the quiet step times
about 8 x 67 x 0.57 s = 5 min per seed (the six members' steps together take 0.57 s; 67 counts the
validation pass as 5 steps), plus about 2.5 s per process to start and load the kernels: about 11
minutes on an otherwise idle machine. On clutter 8 such epochs bring V2_TINY to about 48% (a 70 s
trial, load 5.5; chance is 6%), far from saturation, so a larger member has room to show a gain;
on shapes the members would all sit near its ceiling.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..cli import _error, positive_int
from ..models import V1_BASE, V2_M, V2_S, V2_TINY
from ..models.scaling import RULES, compound_family, describe_family
from ..ops._checks import check_int, check_number
from . import claims
from .workers import print_result, run_worker

# ------------------------------------------------------------------------------------ the bases
V2_S_SIZE, V2_MAX_SIZE = 384, 480     # EfficientNetV2-S's eval size, and the paper's cap


@dataclass(frozen=True)
class Base:
    """A base network: its stage table, head conv channels, image size, and what it is."""

    stages: tuple
    head: int
    image_size: int
    about: str


BASES = {
    "v1-b0": Base(V1_BASE, 1280, 224, "EfficientNet-B0 (V1), 224 px"),
    "v2-tiny": Base(V2_TINY, claims.HEAD, 32, "efficientnetv2_tiny's table (V2_TINY), 32 px"),
    "v1-tiny": Base(claims.BASELINE, claims.HEAD, 32, "the V1-like tiny baseline of bench claims, 32 px"),
    "v2-s": Base(V2_S, 1280, V2_S_SIZE, "EfficientNetV2-S, 384 px (its eval size)"),
}
FILE_SIZE = 224     # a base read from a stage-table file without an "image_size" key


def load_base(name_or_file) -> Base:
    """A key of BASES, or a stage-table JSON file (search/arch.py's format); the file's optional
    "image_size" key (what ``tinyeffnet scale --out`` writes) is its base size, else 224."""
    from ..search.arch import read_arch

    if not isinstance(name_or_file, (str, os.PathLike)):
        raise TypeError(f"base must be one of {', '.join(BASES)} or a stage-table JSON file, got {name_or_file!r}")
    if name_or_file in BASES:
        return BASES[name_or_file]
    if not Path(name_or_file).exists():
        raise FileNotFoundError(f"base must be one of {', '.join(BASES)} or a stage-table JSON file; "
                                f"{os.fspath(name_or_file)!r} is neither (no such file)")
    arch = read_arch(name_or_file)
    size = json.loads(Path(name_or_file).read_text()).get("image_size", FILE_SIZE)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"arch file {os.fspath(name_or_file)}: image_size must be an int >= 1, got {size!r}")
    return Base(arch.stages, arch.head_channels, size, f"the stage table of {os.fspath(name_or_file)}")


# ------------------------------------------------------------------------- V2's restrictions
def max_image_size_for(base_size: int) -> int:
    """V2's image-size cap for a base at ``base_size``: round(base_size * 480 / 384), the paper's
    ratio for S (384 -> 480); 32 -> 40, 224 -> 280."""
    return int(round(check_int("base_size", base_size, op="max_image_size_for") * V2_MAX_SIZE / V2_S_SIZE))


def late_stages_for(count: int) -> tuple:
    """V2's late stages of a table with ``count`` stages (counted from 1): (5, 6), the paper's, if it
    has six or more, else its last two (S's 5 and 6 are its last two); (1,) for one stage."""
    count = check_int("count", count, op="late_stages_for")
    return (5, 6) if count >= 6 else tuple(range(max(1, count - 1), count + 1))


def official_late_depth() -> float:
    """How much faster the late stages grow from EfficientNetV2-S to M than the early ones:

        (blocks in stages 5.. of M / of S) / (blocks in stages 1-4 of M / of S) = (37/24) / (20/16)
    """
    def blocks(stages, late: bool) -> int:
        return sum(s.repeats for number, s in enumerate(stages, start=1) if (number >= 5) == late)

    return (blocks(V2_M, True) / blocks(V2_S, True)) / (blocks(V2_M, False) / blocks(V2_S, False))


LATE_DEPTH = official_late_depth()   # 1.2333...


def check_phis(phis, where: str) -> tuple:
    """A non-empty sequence of distinct finite numbers, as a tuple of floats."""
    if isinstance(phis, (str, bytes)) or not hasattr(phis, "__iter__"):
        raise TypeError(f"{where}: phis must be a list of numbers, got {phis!r}")
    values = tuple(check_number("phi", phi, op=where) for phi in phis)
    if not values or len(set(values)) != len(values):
        raise ValueError(f"{where}: phis must be one or more distinct numbers, got {list(phis)!r}")
    return values


def scale_family(base: Base, phis, rules: str = "v2", *, image_size: int | None = None,
                 max_image_size: int | None = None, late_stages=None, late_depth: float | None = None) -> list:
    """compound_scale(base, phi) for each phi, with V2's restrictions resolved for ``rules="v2"``:

        image_size       the base size (None: the base's own)
        max_image_size   None: max_image_size_for(image_size)
        late_stages      None: late_stages_for(number of stages)
        late_depth       None: LATE_DEPTH (1.233; 1 adds no extra depth)

    With ``rules="v1"`` (EfficientNet's plain rule) the three V2 options must stay None.
    """
    where = "scale"
    if not isinstance(base, Base):
        raise TypeError(f"{where}: base must be a Base (see load_base), got {type(base).__name__}")
    if rules not in RULES:
        raise ValueError(f"{where}: rules must be one of {', '.join(map(repr, RULES))}, got {rules!r}")
    phis = check_phis(phis, where)
    size = base.image_size if image_size is None else check_int("image_size", image_size, op=where)
    options = dict(base_size=size, head=base.head, rules=rules)
    if rules == "v1":
        given = [name for name, value in (("max_image_size", max_image_size), ("late_stages", late_stages),
                                          ("late_depth", late_depth)) if value is not None]
        if given:
            raise ValueError(f"{where}: rules \"v1\" (EfficientNet's plain compound rule) takes none of "
                             f"EfficientNetV2's restrictions, got {', '.join(given)}; use rules \"v2\"")
        return compound_family(base.stages, phis, **options)
    options["max_image_size"] = max_image_size_for(size) if max_image_size is None else check_int(
        "max_image_size", max_image_size, op=where)
    options["late_stages"] = late_stages_for(len(base.stages)) if late_stages is None else late_stages
    options["late_depth"] = LATE_DEPTH if late_depth is None else late_depth
    return compound_family(base.stages, phis, **options)


def restrictions(base: Base, rules: str, *, image_size=None, max_image_size=None, late_stages=None,
                 late_depth=None) -> dict:
    """The V2 options ``scale_family`` will use, resolved (empty for rules "v1"): for the record."""
    if rules != "v2":
        return {}
    size = base.image_size if image_size is None else image_size
    return {"max_image_size": max_image_size_for(size) if max_image_size is None else max_image_size,
            "late_stages": list(late_stages_for(len(base.stages)) if late_stages is None else late_stages),
            "late_depth": LATE_DEPTH if late_depth is None else late_depth}


# ------------------------------------------------------------------------------ arch files
def member_file(phi: float) -> str:
    """The file name of a member: "phi=1.json", "phi=0.5.json", "phi=-1.json"."""
    return f"phi={phi:g}.json"


def write_family(out, members, base_name: str, rules: str) -> list:
    """Write each member as an arch file OUT/phi=<phi>.json (atomically); return the paths. The
    member's image size, phi, width, depth and rounding are kept in the file for people and for
    ``load_base``; ``tinyeffnet train --arch`` reads the stages and the head."""
    from ..search.arch import Arch, write_arch

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"out must be a folder, but {os.fspath(out)} is a file")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for m in members:
        path = out / member_file(m.phi)
        write_arch(path, Arch(m.stages, m.head), name=m.name, base=str(base_name), rules=rules, phi=m.phi,
                   width=m.width, depth=m.depth, image_size=m.image_size, rounding=m.rounding)
        paths.append(path)
    return paths


# ------------------------------------------------------------------------- tinyeffnet scale
def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _late_depth(text: str) -> float:
    value = _finite_float(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a number >= 1 (1: no extra depth), got {text}")
    return value


def add_scale_arguments(parser) -> None:
    """The flags of ``tinyeffnet scale`` on ``parser`` (and ``scale_command`` as its function)."""
    parser.add_argument("--base", default="v2-s", metavar="{" + ",".join(BASES) + "} or FILE",
                        help="the base network: " + "; ".join(f"{k}: {b.about}" for k, b in BASES.items())
                        + "; or a stage-table JSON file (tinyeffnet search's best.json, a scale --out file)")
    parser.add_argument("--phi", type=_finite_float, nargs="+", default=[0.0, 1.0, 2.0, 3.0],
                        help="compound coefficients, one member each: depth 1.2**phi, width 1.1**phi, "
                             "image size 1.15**phi")
    parser.add_argument("--rules", choices=RULES, default="v2",
                        help="v1: EfficientNet's plain compound rule (V1 rounding); v2: EfficientNetV2's "
                             "restrictions (V2 rounding, image-size cap, deeper late stages)")
    parser.add_argument("--image-size", type=positive_int, default=None,
                        help="the base's image size in pixels (None: the base's own; a file's "
                             f"\"image_size\" key, else {FILE_SIZE})")
    parser.add_argument("--max-image-size", type=positive_int, default=None,
                        help="v2: the largest image size (None: the base size x 480/384, the paper's "
                             "480 for V2-S at 384)")
    parser.add_argument("--late-stages", type=positive_int, nargs="+", default=None,
                        help="v2: the stages (counted from 1) that get extra depth (None: 5 and 6, the "
                             "paper's, or the last two of a shorter table)")
    parser.add_argument("--late-depth", type=_late_depth, default=None,
                        help=f"v2: the late stages grow with (1.2 x this) ** phi (None: {LATE_DEPTH:.3f}, "
                             "read from V2-S -> M; 1: no extra depth)")
    parser.add_argument("--num-classes", type=positive_int, default=1000, help="classifier outputs (params)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="write DIR/phi=<phi>.json per member, for tinyeffnet train/summary --arch")
    parser.set_defaults(func=scale_command)


def scale_command(args) -> int:
    """``tinyeffnet scale``: print the family's table; with --out write its arch files. Bad input:
    one line "error: ..." on stderr, exit code 2, nothing written."""
    options = dict(image_size=args.image_size, max_image_size=args.max_image_size,
                   late_stages=args.late_stages, late_depth=args.late_depth)
    try:
        base = load_base(args.base)
        members = scale_family(base, args.phi, args.rules, **options)
        table = describe_family(members, num_classes=args.num_classes, channels=True)
        v2 = restrictions(base, args.rules, **options)
        if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
            raise NotADirectoryError(f"--out must be a folder, but {args.out} is a file")
    except (FileNotFoundError, NotADirectoryError, ValueError, TypeError) as err:
        return _error(err)
    how = (f"V2's restrictions: image size <= {v2['max_image_size']}, stages "
           f"{', '.join(map(str, v2['late_stages']))} deepened by (1.2 x {v2['late_depth']:.3f}) ** phi"
           if v2 else "EfficientNet's plain compound rule")
    print(f"{args.base} ({base.about}), rules {args.rules}: {how}; params with {args.num_classes} classes")
    print(table)
    if args.out is not None:
        try:
            paths = write_family(args.out, members, args.base, args.rules)
        except OSError as err:
            return _error(err)
        size = members[-1].image_size
        print(f"wrote {len(paths)} arch files to {args.out}; train one at its own size: tinyeffnet train "
              f"--arch {paths[-1]} --no-progressive --min-size {size} --max-size {size} --eval-size {size}")
    return 0


# ------------------------------------------------------------------ tinyeffnet bench scaling
FAMILIES = {   # name: (base, rules, label)
    "v2": ("v2-tiny", "v2", "V2-style: V2_TINY, rules v2"),
    "v1": ("v1-tiny", "v1", "V1-style: V1-like tiny baseline, rules v1"),
}
OUT = "runs/bench_scaling"
DATASET = "clutter"
EPOCHS = 8
TRAIN_SAMPLES = 2000
VAL_SAMPLES = 500
PHIS = (0, 1, 2)
SEEDS = (0, 1)
BATCH = 32          # bench claims' tiny batch
BASE_SIZE = 32      # efficientnetv2_tiny's training size


def bench_families(phis=PHIS, base_size: int = BASE_SIZE) -> dict:
    """{family: [ScaledNetwork per phi]} for the two families of the module docstring."""
    return {name: scale_family(BASES[base], phis, rules, image_size=base_size)
            for name, (base, rules, _) in FAMILIES.items()}


def summarise_run(rows: list, first_step_s: float, batch: int, wall_s: float) -> dict:
    """A run's metrics rows -> its curve (seconds less the first step) and its numbers:

        train_s   the last row's seconds less the first step (training + validation passes)
        step_s    (sum over epochs of steps * batch / images_per_second  - first step) / (steps - 1)
                  (None for a run of one step)
    """
    curve = [{"epoch": r["epoch"], "seconds": r["seconds"] - first_step_s, "val_acc": r["val_acc"],
              "train_loss": r["train_loss"]} for r in rows]
    steps, previous, training = rows[-1]["step"], 0, 0.0
    for r in rows:
        training += (r["step"] - previous) * batch / r["images_per_second"]
        previous = r["step"]
    step_s = (training - first_step_s) / (steps - 1) if steps > 1 else None
    return {"curve": curve, "first_step_s": first_step_s, "wall_s": wall_s, "steps": steps,
            "train_s": curve[-1]["seconds"], "step_s": step_s, "final_acc": rows[-1]["val_acc"]}


def train_member(payload: dict) -> dict:
    """One training run in this process: payload {"arch": an arch-file object, "config": the keyword
    arguments of claims.train_config but the paths}; the arch is written to a temporary file and
    trained by ``train.Trainer``. Returns ``summarise_run``'s dict."""
    from ..search.arch import arch_from_dict, write_arch
    from ..train import Trainer

    with tempfile.TemporaryDirectory(prefix="tinyeffnet-scaling-") as folder:
        arch_path = os.path.join(folder, "arch.json")
        write_arch(arch_path, arch_from_dict(payload["arch"], "bench scaling payload"))
        cfg = claims.train_config(arch_path, os.path.join(folder, "run"), **payload["config"])
        start = time.perf_counter()
        trainer = Trainer(cfg, progress=False, log=lambda message: None)
        rows = trainer.run()
        wall = time.perf_counter() - start
    return summarise_run(rows, trainer.first_step_seconds or 0.0, trainer.batch_size, wall)


def _spawn(payload: dict) -> dict:
    """``train_member(payload)`` in a process of its own (python -m tinyeffnet.bench.scaling)."""
    return run_worker(["-m", "tinyeffnet.bench.scaling", "--payload", json.dumps(payload)],
                      "bench scaling: the training worker")


def run_order(families, phis, seeds) -> list:
    """[(family, phi index, seed)] in running order: seed by seed, phi by phi, every family back to
    back, the families' order rotating by one at each (seed, phi), so no family always runs first."""
    names = list(families)
    order, turn = [], 0
    for seed in seeds:
        for j in range(len(phis)):
            shift = turn % len(names)
            order += [(name, j, seed) for name in names[shift:] + names[:shift]]
            turn += 1
    return order


def _check_run_options(dataset, epochs, train_samples, val_samples, phis, seeds, batch, base_size, out) -> tuple:
    from ..data import DATASETS

    where = "bench scaling"
    if dataset not in DATASETS:
        raise ValueError(f"{where}: dataset must be one of {', '.join(sorted(DATASETS))}, got {dataset!r}")
    check_int("epochs", epochs, op=where)
    check_int("batch", batch, op=where)
    check_int("train_samples", train_samples, batch, op=where)    # at least one whole batch
    check_int("val_samples", val_samples, op=where)
    check_int("base_size", base_size, 8, op=where)
    phis = check_phis(phis, where)
    seeds = tuple(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"{where}: seeds must be one or more distinct ints >= 0, got {list(seeds)!r}")
    for seed in seeds:
        check_int("seed", seed, 0, op=where)
    if Path(out).exists() and not Path(out).is_dir():
        raise NotADirectoryError(f"{where}: out must be a folder, but {os.fspath(out)} is a file")
    return phis, seeds


def run(out: str = OUT, dataset: str = DATASET, epochs: int = EPOCHS, train_samples: int = TRAIN_SAMPLES,
        val_samples: int = VAL_SAMPLES, phis=PHIS, seeds=SEEDS, batch: int = BATCH, base_size: int = BASE_SIZE,
        isolate: bool = True, progress=print) -> dict:
    """Train both families (module docstring), write OUT/scaling.json and OUT/scaling.png, and return
    the result. ``isolate=False`` trains in this process (quicker to start, for tests; the timings are
    then less clean). Every option is checked before anything is trained."""
    from ..data import DATASETS
    from .timing import machine_line
    from ..search.arch import Arch

    phis, seeds = _check_run_options(dataset, epochs, train_samples, val_samples, phis, seeds, batch,
                                     base_size, out)
    families = bench_families(phis, base_size)
    classes = DATASETS[dataset].num_classes
    config = dict(image_size=None, train_samples=train_samples, val_samples=val_samples, batch=batch,
                  dataset=dataset, epochs=epochs)
    order = run_order(families, phis, seeds)
    runs = {(name, j): [] for name, j, _ in order}
    for k, (name, j, seed) in enumerate(order, start=1):
        member = families[name][j]
        progress(f"[{k}/{len(order)}] train {name} {member.name} ({member.image_size} px), seed {seed}, "
                 f"{epochs} epoch(s) ...")
        payload = {"arch": Arch(member.stages, member.head).to_dict(),
                   "config": {**config, "image_size": member.image_size, "seed": seed}}
        result = _spawn(payload) if isolate else train_member(payload)
        runs[(name, j)].append({"seed": seed, **result})
    result = {"bench": "scaling", "machine": machine_line(), "dataset": dataset, "epochs": epochs,
              "train_samples": train_samples, "val_samples": val_samples, "batch": batch, "base_size": base_size,
              "phis": list(phis), "seeds": list(seeds), "isolated": isolate,
              "order": [{"family": name, "phi": phis[j], "seed": seed} for name, j, seed in order],
              "families": {}}
    for name, (base, rules, label) in FAMILIES.items():
        result["families"][name] = {
            "label": label, "base": base, "rules": rules,
            "restrictions": restrictions(BASES[base], rules, image_size=base_size),
            "members": [_member_result(m, runs[(name, j)], classes) for j, m in enumerate(families[name])]}
    write_results(result, out)
    return result


def _member_result(member, runs: list, classes: int) -> dict:
    steps = [r["step_s"] * 1e3 for r in runs if r["step_s"] is not None]
    return {"name": member.name, "phi": member.phi, "width": member.width, "depth": member.depth,
            "image_size": member.image_size, "repeats": [s.repeats for s in member.stages],
            "channels": [s.out_ch for s in member.stages], "head": member.head,
            "params": member.num_parameters(classes), "runs": runs,
            "accuracy": claims._spread([r["final_acc"] for r in runs]),
            "train_s": claims._spread([r["train_s"] for r in runs]),
            "step_ms": claims._spread(steps) if steps else None}


def write_results(result: dict, out) -> None:
    """OUT/scaling.json and OUT/scaling.png, each written atomically."""
    from ..files import write_atomic

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=1, allow_nan=False)
    write_atomic(out / "scaling.json", lambda f: f.write(text.encode()))
    figure = plot(result)
    write_atomic(out / "scaling.png", lambda f: figure.savefig(f, format="png", dpi=100))


def _mean_and_range(spreads: list) -> tuple:
    """[spread] -> (means, [below, above]): matplotlib's asymmetric error bars from min to max."""
    means = [s["mean"] for s in spreads]
    return means, [[m - s["min"] for m, s in zip(means, spreads)], [s["max"] - m for m, s in zip(means, spreads)]]


def plot(result: dict):
    """Final validation accuracy against training seconds, one curve per family: the seeds' mean,
    error bars from their min to their max (both axes), each point labelled with its phi."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.subplots()
    for family, style in zip(result["families"].values(), ("o-", "s--")):
        members = family["members"]
        x, xerr = _mean_and_range([m["train_s"] for m in members])
        y, yerr = _mean_and_range([m["accuracy"] for m in members])
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt=style, capsize=3, label=family["label"])
        for j, (xi, yi, m) in enumerate(zip(x, y, members)):      # labels alternate below / above
            ax.annotate(f"phi={m['phi']:g}\n{m['params'] / 1e6:.2f}M, {m['image_size']}px", (xi, yi),
                        textcoords="offset points", xytext=(6, -18) if j % 2 == 0 else (-6, 8),
                        ha="left" if j % 2 == 0 else "right", fontsize=7)
    ax.set_xlabel("training seconds (runner's clock, first step excluded)")
    ax.set_ylabel("final validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"compound scaling on {result['dataset']}: {result['epochs']} epochs per member, "
                 f"{len(result['seeds'])} seed(s)", fontsize=10)
    fig.tight_layout()
    return fig


def format_table(result: dict) -> str:
    """The result as Markdown: one row per member of each family."""
    lines = [f"**Compound scaling on {result['dataset']}**: every member {result['epochs']} epoch(s) at its own "
             f"image size (base {result['base_size']} px), {result['train_samples']} train / "
             f"{result['val_samples']} val images, batch {result['batch']}, seeds "
             f"{', '.join(map(str, result['seeds']))}; on {result['machine']}", "",
             "| family | phi | params | image px | repeats | step ms, median (min-max) | "
             "train s, mean (min-max) | val acc, mean (min-max) |",
             "|---|---|---|---|---|---|---|---|"]
    for family in result["families"].values():
        for m in family["members"]:
            s, t, a = m["step_ms"], m["train_s"], m["accuracy"]
            step = f"{s['median']:.0f} ({s['min']:.0f}-{s['max']:.0f})" if s else "-"
            lines.append(f"| {family['label']} | {m['phi']:g} | {m['params'] / 1e3:.0f} K | {m['image_size']} | "
                         f"{'/'.join(map(str, m['repeats']))} | {step} | {t['mean']:.0f} ({t['min']:.0f}-"
                         f"{t['max']:.0f}) | {a['mean']:.1%} ({a['min']:.1%}-{a['max']:.1%}) |")
    v2 = result["families"].get("v2", {}).get("restrictions")
    if v2:
        lines += ["", f"V2's restrictions at this size: image size <= {v2['max_image_size']} px (base x 480/384), "
                      f"stages {', '.join(map(str, v2['late_stages']))} deepened by (1.2 x "
                      f"{v2['late_depth']:.3f}) ** phi. Train s: training and validation passes, first step "
                      "(kernel loading) excluded. On a shared machine a timing is a sample: read its range."]
    return "\n".join(lines)


def add_bench_arguments(parser) -> None:
    """The flag only ``bench scaling`` reads, on the ``bench`` parser (it shares --dataset, --epochs,
    --train-samples, --val-samples, --seeds and --out with the other benchmarks; None there means
    this module's defaults)."""
    parser.add_argument("--phis", type=_finite_float, nargs="+", default=list(PHIS),
                        help="scaling: the compound coefficients trained, one member each")


def bench_command(args) -> int:
    """``tinyeffnet bench scaling``: train, print the table, say where the files are. Bad options:
    one line "error: ..." on stderr, exit code 2, nothing trained."""
    out = args.out or OUT
    try:
        seeds = list(SEEDS) if args.seeds is None else list(range(args.seeds))
        result = run(out=out, dataset=args.dataset or DATASET, epochs=args.epochs or EPOCHS,
                     train_samples=args.train_samples or TRAIN_SAMPLES, val_samples=args.val_samples or VAL_SAMPLES,
                     phis=args.phis, seeds=seeds,
                     progress=lambda message: print(message, file=sys.stderr))
    except (ValueError, TypeError, NotADirectoryError) as err:
        return _error(err)
    print(format_table(result))
    print(f"wrote {out}/scaling.json and scaling.png")
    return 0


def _main(argv=None) -> None:
    """The training worker: ``python -m tinyeffnet.bench.scaling --payload JSON`` prints one result line."""
    parser = argparse.ArgumentParser(prog="python -m tinyeffnet.bench.scaling")
    parser.add_argument("--payload", required=True, help="JSON: train_member's argument")
    args = parser.parse_args(argv)
    print_result(train_member(json.loads(args.payload)))


if __name__ == "__main__":
    _main()
