"""`tinyeffnet bench progressive`: the paper's Table 13 (adaptive regularization), measured on the
built-in data.

Table 13 of the EfficientNetV2 paper (Tan & Le, 2021) trains the same network with progressive
resizing twice, with regularization held constant ("vanilla") and with the regularization growing
with the image size (adaptive), and reports the mean of three runs. This benchmark trains three
variants of the same job (same model, data, epochs and stages), each once per seed:

    adaptive   progressive size + adaptive regularization: the schedule as configured (Algorithm 1,
               or the released code's rules with schedule="released")
    vanilla    progressive size, regularization constant. The paper does not say at which value;
               we hold dropout, RandAugment and mixup at the LAST stage's values (a first stage at
               the final size's regularization: what the adaptive schedule takes away)
    fixed      every epoch at the final size with the final regularization (progressive=False)

For each variant, over the seeds (mean, min, max): the wall seconds until the validation accuracy
first reaches the target (default 90%; None when no epoch reached it, and the count of seeds that
did), the final validation accuracy at eval_size, and the final (EMA) model's accuracy evaluated
also at about 20% above the last training size, round(1.2 * max_size), as the paper evaluates on
ImageNet: the table shows what evaluating above the training size changes. Every variant evaluates
at the same sizes. The Numba kernels are compiled by a short warm-up run (every stage's size, and the
larger evaluation) before the clock starts, so compile time favours none.

Writes progressive.json (settings, every run's metrics rows, the summaries) and progressive.png
(validation accuracy against seconds, one line per variant and seed) into ``out``.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from .. import files
from ..train import DEFAULT_BATCH_SIZE, TrainConfig, Trainer, evaluate_with_ema

TARGET = 0.90
SEEDS = 3
VARIANTS = ("adaptive", "vanilla", "fixed")
LABELS = {
    "adaptive": "progressive size + adaptive regularization",
    "vanilla": "progressive size, regularization fixed at the final values",
    "fixed": "fixed size (final size and regularization)",
}
SHORT = {"adaptive": "progressive + adaptive reg.", "vanilla": "progressive, fixed reg.", "fixed": "fixed size"}


# ------------------------------------------------------------------------------- the three variants
def variant_config(base: TrainConfig, name: str, seed: int, out) -> TrainConfig:
    """The config of one variant (see the module docstring) of ``base``, for one seed, writing to out."""
    if name == "adaptive":
        return dataclasses.replace(base, progressive=True, seed=seed, out=str(out))
    if name == "vanilla":
        last = {field: (getattr(base, field)[1],) * 2 for field in ("dropout", "randaug", "mixup")}
        return dataclasses.replace(base, progressive=True, seed=seed, out=str(out), **last)
    if name == "fixed":
        return dataclasses.replace(base, progressive=False, seed=seed, out=str(out))
    raise ValueError(f"variant must be {', '.join(VARIANTS[:-1])} or {VARIANTS[-1]}, got {name!r}")


def above_size(cfg: TrainConfig) -> int:
    """The larger evaluation size: about 20% above the last training size, round(1.2 * S_e)."""
    return int(round(1.2 * cfg.max_size))


def _time_to(rows: list, target: float):
    """Seconds at the end of the first epoch whose validation accuracy reached ``target``, or None."""
    for row in rows:
        if row["val_acc"] >= target:
            return row["seconds"]
    return None


def _spread(values: list):
    """{"mean", "min", "max"} of the numbers that are not None, or None when there are none."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"mean": sum(values) / len(values), "min": min(values), "max": max(values)}


def summarize(runs: list) -> dict:
    """Mean, min and max over the seeds of each number of a variant's runs. time_to_target_s is
    over the seeds that reached the target (None if none did); ``reached`` counts them."""
    summary = {key: _spread([r[key] for r in runs]) for key in ("final_val_acc", "above_val_acc", "total_s")}
    summary["time_to_target_s"] = _spread([r["time_to_target_s"] for r in runs])
    summary["reached"] = sum(r["time_to_target_s"] is not None for r in runs)
    summary["runs"] = len(runs)
    return summary


# ------------------------------------------------------------------------------------------ the run
def _check_options(seeds, target) -> None:
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be an int >= 1 (how many seeds per variant), got {seeds!r}")
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 < target <= 1:
        raise ValueError(f"target must be a validation accuracy in (0, 1], got {target!r}")


def _warm_up(base: TrainConfig, out: str, log) -> None:
    """Compile every kernel the timed runs use: a short run through every stage, then one
    evaluation at the larger size."""
    log("warm-up (compiles the kernels at every size) ...")
    warm = dataclasses.replace(base, epochs=base.stages, train_samples=base.batch_size or DEFAULT_BATCH_SIZE,
                               val_samples=10, out=os.path.join(out, "warmup"))
    trainer = Trainer(warm, progress=False, log=lambda *a: None)
    trainer.run()
    evaluate_with_ema(trainer.model, trainer.ema, trainer.val_set, above_size(base))


def _one_run(cfg: TrainConfig, target: float, progress: bool, log) -> dict:
    """Train one variant for one seed; its numbers and metrics rows."""
    trainer = Trainer(cfg, progress=progress, log=log)
    rows = trainer.run()
    _, above_acc = evaluate_with_ema(trainer.model, trainer.ema, trainer.val_set, above_size(cfg))
    return {"seed": cfg.seed, "time_to_target_s": _time_to(rows, target), "final_val_acc": rows[-1]["val_acc"],
            "above_val_acc": above_acc, "total_s": rows[-1]["seconds"], "rows": rows}


def run(out: str = "runs/bench_progressive", dataset: str = "shapes", epochs: int | None = None,
        train_samples: int | None = None, val_samples: int | None = None, seeds: int = SEEDS,
        target: float = TARGET, progress: bool = True, log=print, **overrides) -> dict:
    """Train the three variants, ``seeds`` times each (seeds seed, seed + 1, ...); write
    progressive.json and progressive.png into ``out``; return the results (the JSON's content).

    epochs, train_samples, val_samples: None keeps TrainConfig's default; ``overrides`` are any
    other TrainConfig fields (schedule="paper", min_size=16, ...), shared by every variant.
    """
    _check_options(seeds, target)
    given = {k: v for k, v in dict(epochs=epochs, train_samples=train_samples, val_samples=val_samples).items()
             if v is not None}
    base = TrainConfig(dataset=dataset, **given, **overrides)
    _warm_up(base, out, log)
    seed_list = [base.seed + k for k in range(seeds)]
    results = {
        "dataset": base.dataset, "model": base.arch or base.model, "schedule": base.schedule, "epochs": base.epochs,
        "stages": base.stages, "train_samples": base.train_samples, "val_samples": base.val_samples,
        "seeds": seed_list, "target": float(target), "min_size": base.min_size, "max_size": base.max_size,
        "eval_size": base.eval_size, "above_size": above_size(base), "variants": {},
    }
    for name in VARIANTS:
        runs = []
        for seed in seed_list:
            cfg = variant_config(base, name, seed, Path(out, name, f"seed{seed}"))
            log(f"training: {name} ({LABELS[name]}), seed {seed} ...")
            runs.append(_one_run(cfg, target, progress, log))
        results["variants"][name] = {
            "label": LABELS[name], "progressive": cfg.progressive, "dropout": list(cfg.dropout),
            "randaug": list(cfg.randaug), "mixup": list(cfg.mixup), "summary": summarize(runs), "runs": runs,
        }
    Path(out).mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=1, allow_nan=False)
    files.write_atomic(Path(out, "progressive.json"), lambda f: f.write(text.encode()))
    plot(results, Path(out, "progressive.png"))
    return results


# ---------------------------------------------------------------------------------------- reports
def _cell(spread, digits: int, unit: str = "") -> str:
    """'0.991 [0.990, 0.993]': mean [min, max], or a dash for None."""
    if spread is None:
        return "-"
    return f"{spread['mean']:.{digits}f}{unit} [{spread['min']:.{digits}f}, {spread['max']:.{digits}f}]"


def format_table(results: dict) -> str:
    """The results as a Markdown table: one row per variant, mean [min, max] over the seeds."""
    target, eval_size, above = results["target"], results["eval_size"], results["above_size"]
    head = ["variant", f"reached {target:.0%}", f"seconds to {target:.0%} val acc", f"val acc @ {eval_size} px",
            f"val acc @ {above} px", "total seconds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for name in VARIANTS:
        variant = results["variants"][name]
        s = variant["summary"]
        cells = [variant["label"], f"{s['reached']}/{s['runs']}", _cell(s["time_to_target_s"], 0),
                 _cell(s["final_val_acc"], 3), _cell(s["above_val_acc"], 3), _cell(s["total_s"], 0)]
        lines.append("| " + " | ".join(cells) + " |")
    seeds = ", ".join(str(seed) for seed in results["seeds"])
    lines.append("")
    lines.append(f"mean [min, max] over seeds {seeds}; seconds to the target over the seeds that reached it. "
                 f"{results['model']} on {results['dataset']}, schedule {results['schedule']}, "
                 f"{results['epochs']} epochs, {results['stages']} stages, sizes {results['min_size']} -> "
                 f"{results['max_size']} px; {above} px = round(1.2 x {results['max_size']}).")
    return "\n".join(lines)


def plot(results: dict, path) -> None:
    """progressive.png: validation accuracy (at eval_size) against training seconds, one line per
    variant (a colour) and seed (a marker)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"adaptive": "tab:blue", "vanilla": "tab:orange", "fixed": "tab:green"}
    markers = "os^vDP*X"
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for name in VARIANTS:
        for k, one in enumerate(results["variants"][name]["runs"]):
            rows = one["rows"]
            ax.plot([r["seconds"] for r in rows], [r["val_acc"] for r in rows], marker=markers[k % len(markers)],
                    color=colors[name], ls="-" if name != "fixed" else "--", lw=1.2, ms=4, alpha=0.85,
                    label=f"{SHORT[name]}, seed {one['seed']}")
    ax.axhline(results["target"], color="gray", lw=0.8, ls=":", label=f"target {results['target']:.0%}")
    ax.set_xlabel("training time (s)")
    ax.set_ylabel(f"validation accuracy at {results['eval_size']} px")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)   # beside the curves
    ax.set_title(f"Table 13 on {results['dataset']}: {results['model']}, schedule {results['schedule']}, "
                 f"{len(results['seeds'])} seeds", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

