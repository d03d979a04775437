"""`tinyeffnet bench progressive`: the paper's claim, measured on the built-in data.

Trains the README's default model twice with the same epochs, data and seed:
    progressive   image size and regularization grow over the stages (Algorithm 1)
    fixed         every epoch at the final size with the final regularization (the baseline)
and reports, for each, the wall time until the validation accuracy first reaches the target (90%),
the final validation accuracy, and the total time. Both runs evaluate at the same size. The Numba
kernels are compiled (a short warm-up run) before the clock starts, so compile time favours neither.
Writes progressive.json and progressive.png (validation accuracy against time, both runs) into --out.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from ..train import DEFAULT_BATCH_SIZE, TrainConfig, Trainer

TARGET = 0.90


def _time_to(rows: list, target: float):
    for row in rows:
        if row["val_acc"] >= target:
            return row["seconds"]
    return None


def run(out: str = "runs/bench_progressive", epochs: int | None = None, progress: bool = True, log=print,
        **overrides) -> dict:
    base = TrainConfig(**overrides)
    if epochs is not None:
        base = dataclasses.replace(base, epochs=epochs)
    log("warm-up (compiles the kernels at every size) ...")
    warm = dataclasses.replace(base, epochs=base.stages, train_samples=base.batch_size or DEFAULT_BATCH_SIZE,
                               val_samples=10, out=os.path.join(out, "warmup"))
    Trainer(warm, progress=False, log=lambda *a: None).run()
    results = {}
    for name, progressive in (("progressive", True), ("fixed", False)):
        cfg = dataclasses.replace(base, progressive=progressive, out=os.path.join(out, name))
        log(f"training: {name} ...")
        rows = Trainer(cfg, progress=progress, log=log).run()
        results[name] = {
            "time_to_target_s": _time_to(rows, TARGET), "final_val_acc": rows[-1]["val_acc"],
            "total_s": rows[-1]["seconds"], "rows": rows,
        }
    results["target"] = TARGET
    Path(out).mkdir(parents=True, exist_ok=True)
    Path(out, "progressive.json").write_text(json.dumps(results, indent=1))
    plot(results, Path(out, "progressive.png"))
    return results


def format_table(results: dict) -> str:
    target = results["target"]
    time_to = f"time to {target:.0%} val acc"
    head = f"{'schedule':<14} {time_to:>22} {'final val acc':>14} {'total time':>11}"
    lines = [head, "-" * len(head)]
    for name in ("progressive", "fixed"):
        r = results[name]
        reach = "not reached" if r["time_to_target_s"] is None else f"{r['time_to_target_s']:.0f} s"
        lines.append(f"{name:<14} {reach:>22} {r['final_val_acc']:>14.3f} {r['total_s']:>10.0f}s")
    return "\n".join(lines)


def plot(results: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, style in (("progressive", "o-"), ("fixed", "s--")):
        rows = results[name]["rows"]
        ax.plot([r["seconds"] for r in rows], [r["val_acc"] for r in rows], style, label=name)
    ax.axhline(results["target"], color="gray", lw=0.8, ls=":")
    ax.set_xlabel("training time (s)")
    ax.set_ylabel("validation accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("progressive learning vs fixed size (built-in shapes, efficientnetv2_tiny)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
