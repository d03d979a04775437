"""The search loop: propose, train briefly, time, score, record; resumable; best.json and pareto.png.

For trial i = 0 .. trials-1 (people read "trial i+1"):

    candidate  = strategy.propose(i, finished trials, rng(seed, i))           strategies.py
    accuracy   = train the candidate with the ordinary training code          train.Trainer
                 (epochs_per_trial epochs at image_size px on ``dataset``,
                 fixed size, no RandAugment or mixup, seed ``seed``)
    S          = its step time / the backbone's, alternating rounds          timing.py
    P          = its parameters / the backbone's
    reward     = A * S**w * P**v                                              reward.py
    append one line to trials.jsonl

What a search writes into ``out`` (default runs/search):

    search.json          the settings (a resume with other settings is refused) and the machine
    trials.jsonl         one JSON object per finished trial, append-only: trial, seed, strategy,
                         candidate, stages, head_channels, params, param_ratio, step_time_s,
                         reference_step_time_s, step_ratio, step_ratio_spread, timing_rounds,
                         accuracy, val_loss, train_seconds, reward, w, v
    trials/NNNN/         each trial's arch.json, metrics.jsonl and curves.png (its checkpoint
                         is deleted when the trial is done)
    best.json            the highest-reward trial's stage table: ``tinyeffnet train --arch``
    pareto.png           accuracy against S, marker area by parameters, the Pareto front marked

Resume (``resume=True``, ``tinyeffnet search --resume``): the finished trials are read back from
trials.jsonl (a torn last line, from a kill during the write, is dropped) and the loop continues at
the first unfinished trial, which restarts from scratch. Trial i's candidate depends only on the
seed, i and the recorded trials before it, and its training only on the seed and the candidate, so
a resumed search reaches the result of an uninterrupted one (its step timings are measured again,
so they differ by the machine's noise; the accuracies do not). A larger ``trials`` on resume extends
a finished search.

The cost of a trial, and the defaults (24 trials, 3 epochs of 2,000 images at 32 px, 500 validation
images, batches of 64): a trial sees 6,000 training images. Measured on a 2-core Intel Xeon
(AVX-512) shared with other jobs (load average 5 on 2 cores; the search got about one core): three
default trials took 214 s in all, 71 s a trial (training and evaluation 40-98 s, then the timing),
so the default 24 trials take about 28 minutes there. On an idle machine efficientnetv2_tiny trains
at about 470 images/s at 32 px (the first epoch of the default training job), which puts a trial
near 20-25 s and the default search near 10 minutes. Raise --trials when the machine is yours.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import files
from ..data import DATASETS
from ..train.config import TrainConfig, _check_choice, _check_int, _check_number, _check_path
from ..train.runner import CHECKPOINT, Trainer, _interactive
from .arch import Arch, stage_to_dict, write_arch
from .reward import V_DEFAULT, W_DEFAULT, reward
from .space import SearchSpace
from .strategies import STRATEGIES, make_strategy
from .timing import StepTiming, measure_step_time

TRIALS = "trials.jsonl"
SETTINGS = "search.json"
BEST = "best.json"
PARETO = "pareto.png"


@dataclass
class SearchConfig:
    """Every setting of a search, each checked when the config is made (see the module docstring)."""

    trials: int = 24                     # ~28 min on a busy 2-core machine (module docstring)
    epochs_per_trial: int = 3
    image_size: int = 32                 # reduced size (the paper: trained ~10 epochs at reduced size)
    strategy: str = "random"             # random (the paper) | evolution
    dataset: str = "clutter"             # a built-in dataset (data.DATASETS)
    train_samples: int = 2000
    val_samples: int = 500
    batch_size: int = 64
    seed: int = 0
    w: float = W_DEFAULT                 # exponent of S
    v: float = V_DEFAULT                 # exponent of P
    timing_rounds: int = 5
    population: int = 8                  # evolution only
    sample_size: int = 3                 # evolution only
    out: str = "runs/search"

    def __post_init__(self):
        for name, low in (("trials", 1), ("epochs_per_trial", 1), ("train_samples", 1), ("val_samples", 1),
                          ("batch_size", 1), ("timing_rounds", 1), ("population", 2), ("sample_size", 1)):
            setattr(self, name, _check_int(name, getattr(self, name), low))
        self.seed = _check_int("seed", self.seed, 0)
        self.image_size = _check_int("image_size", self.image_size, 16)
        self.strategy = _check_choice("strategy", self.strategy, STRATEGIES)
        self.dataset = _check_choice("dataset", self.dataset, tuple(sorted(DATASETS)))
        self.w = _check_number("w", self.w, -10, 10)
        self.v = _check_number("v", self.v, -10, 10)
        if self.batch_size > self.train_samples:
            raise ValueError(f"batch_size ({self.batch_size}) must be <= train_samples ({self.train_samples})")
        if self.sample_size > self.population:
            raise ValueError(f"sample_size ({self.sample_size}) must be <= population ({self.population})")
        self.out = _check_path("out", self.out)

    def settings(self) -> dict:
        """What a resume must agree on: everything but how many trials and where."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("trials", "out")}


# --------------------------------------------------------------------------------- trials.jsonl
def read_trials(path) -> list:
    """The finished trials of a trials.jsonl, in order. Reading stops at the first line that is not
    a whole JSON object numbered as expected (a torn last line from a kill during the write)."""
    path = Path(path)
    if not path.is_file():
        return []
    trials = []
    for line in path.read_bytes().split(b"\n"):
        try:
            row = json.loads(line)
        except ValueError:
            break
        if not isinstance(row, dict) or row.get("trial") != len(trials) + 1:
            break
        trials.append(row)
    return trials


def _rewrite_trials(path: Path, trials: list) -> None:
    """Replace trials.jsonl by exactly ``trials`` (atomically): drops a torn tail before appending."""
    text = "".join(json.dumps(t, allow_nan=False) + "\n" for t in trials)
    if not path.exists() or path.read_text(errors="replace") != text:
        files.write_atomic(path, lambda f: f.write(text.encode()))


def _append_trial(path: Path, row: dict) -> None:
    """Append one line with a single write, then fsync: a kill leaves the line whole or torn, and
    read_trials drops a torn one."""
    data = (json.dumps(row, allow_nan=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------------- one trial
def default_timer(cfg: SearchConfig, num_classes: int):
    """timer(arch, reference) -> StepTiming: fresh copies of both networks, alternating rounds."""
    def timer(arch: Arch, reference: Arch) -> StepTiming:
        return measure_step_time(arch.build(num_classes, seed=cfg.seed), reference.build(num_classes, seed=cfg.seed),
                                 cfg.image_size, batch_size=cfg.batch_size, rounds=cfg.timing_rounds,
                                 seed=cfg.seed)
    return timer


def train_trial(cfg: SearchConfig, arch_path: Path, folder: Path) -> dict:
    """Train one candidate with the ordinary training code; its last metrics row."""
    tc = TrainConfig(arch=str(arch_path), dataset=cfg.dataset, train_samples=cfg.train_samples,
                     val_samples=cfg.val_samples, epochs=cfg.epochs_per_trial, batch_size=cfg.batch_size,
                     progressive=False, min_size=cfg.image_size, max_size=cfg.image_size,
                     eval_size=cfg.image_size, randaug=(0.0, 0.0), mixup=(0.0, 0.0),
                     warmup_epochs=min(1.0, cfg.epochs_per_trial / 4), seed=cfg.seed, out=str(folder))
    rows = Trainer(tc, progress=False, log=lambda *a, **k: None).run()
    (folder / CHECKPOINT).unlink(missing_ok=True)
    return rows[-1]


def run_trial(cfg: SearchConfig, index: int, candidate: tuple, space: SearchSpace, timer, reference_params: int,
              num_classes: int) -> dict:
    """Train, time and score candidate ``index``: its trials.jsonl row."""
    out = Path(cfg.out)
    arch = space.arch(candidate)
    folder = out / "trials" / f"{index + 1:04d}"
    if folder.exists():
        shutil.rmtree(folder)                      # an unfinished trial from a killed search: start over
    folder.mkdir(parents=True)
    write_arch(folder / "arch.json", arch, trial=index + 1)
    start = time.perf_counter()
    row = train_trial(cfg, folder / "arch.json", folder)
    train_seconds = time.perf_counter() - start
    timing = timer(arch, space.arch(space.backbone_candidate()))
    params = arch.build(num_classes, seed=cfg.seed).num_parameters()
    record = {
        "trial": index + 1, "seed": cfg.seed, "strategy": cfg.strategy,
        "candidate": space.encode(candidate), "stages": [stage_to_dict(s) for s in arch.stages],
        "head_channels": arch.head_channels, "params": int(params), "param_ratio": params / reference_params,
        **timing.to_dict(), "accuracy": float(row["val_acc"]), "val_loss": float(row["val_loss"]),
        "train_seconds": train_seconds, "w": cfg.w, "v": cfg.v,
    }
    record["reward"] = reward(record["accuracy"], record["step_ratio"], record["param_ratio"], cfg.w, cfg.v)
    return record


# ------------------------------------------------------------------------------------- the loop
class SearchStopped(Exception):
    """Raised by ``search(stop_after=k)`` after k trials are recorded: a kill at a known point."""


def _start(cfg: SearchConfig, out: Path, resume: bool) -> list:
    """Prepare ``out``; the trials already finished (none unless resuming)."""
    from ..machine import describe

    settings = {**cfg.settings(), "machine": describe()}
    if resume:
        if not (out / SETTINGS).is_file():
            raise FileNotFoundError(f"no search to resume: {out / SETTINGS} does not exist")
        saved = json.loads((out / SETTINGS).read_text())
        differ = sorted(k for k in cfg.settings() if saved.get(k) != settings[k])
        if differ:
            raise ValueError(f"cannot resume the search in {out}: it was made with different settings: "
                             + ", ".join(f"{k}={saved.get(k)!r} (now {settings[k]!r})" for k in differ))
        trials = read_trials(out / TRIALS)
        _rewrite_trials(out / TRIALS, trials)
        return trials
    out.mkdir(parents=True, exist_ok=True)
    (out / TRIALS).unlink(missing_ok=True)
    text = json.dumps(settings, indent=1) + "\n"
    files.write_atomic(out / SETTINGS, lambda f: f.write(text.encode()))
    return []


def _history(trials: list, space: SearchSpace) -> list:
    """What strategies see of the finished trials: candidate (decoded) and reward."""
    return [{"candidate": space.decode(t["candidate"]), "reward": t["reward"]} for t in trials]


def search(cfg: SearchConfig | None = None, resume: bool = False, progress: bool = True, log=print, timer=None,
           stop_after: int | None = None, **overrides) -> dict:
    """Run (or resume) a search; returns {"best": its row, "trials": every row, "out": the folder}.

    timer: timer(arch, reference_arch) -> StepTiming (default: timing.measure_step_time on fresh
    networks); tests pass a deterministic one. stop_after: raise SearchStopped once that many
    trials are recorded (a controlled kill, to test resume)."""
    cfg = dataclasses.replace(cfg, **overrides) if cfg is not None else SearchConfig(**overrides)
    out = Path(cfg.out)
    space = SearchSpace()
    strategy = make_strategy(cfg.strategy, space, cfg.population, cfg.sample_size)
    num_classes = DATASETS[cfg.dataset].num_classes
    timer = timer or default_timer(cfg, num_classes)
    reference_params = space.arch(space.backbone_candidate()).build(num_classes).num_parameters()
    trials = _start(cfg, out, resume)
    if trials:
        log(f"resuming the search in {out}: {len(trials)} of {cfg.trials} trials done")
    bar = _bar(progress, cfg.trials, len(trials))
    try:
        for index in range(len(trials), cfg.trials):
            if stop_after is not None and index >= stop_after:
                raise SearchStopped(f"stopped after {index} trials (stop_after)")
            candidate = strategy.propose(index, _history(trials, space), np.random.default_rng([cfg.seed, 7, index]))
            row = run_trial(cfg, index, candidate, space, timer, reference_params, num_classes)
            _append_trial(out / TRIALS, row)
            trials.append(row)
            message = _trial_line(row, cfg.trials, max(trials, key=lambda t: t["reward"]))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(best=f"{max(t['reward'] for t in trials):.3f}")
                bar.write(message)
            else:
                log(message)
    finally:
        if bar is not None:
            bar.close()
    trials = trials[: cfg.trials]
    best = max(trials, key=lambda t: t["reward"])
    write_best(out / BEST, best, cfg)
    plot_pareto(trials, out / PARETO, title=f"{cfg.strategy} search on {cfg.dataset}, {len(trials)} trials")
    return {"best": best, "trials": trials, "out": str(out)}


def _bar(progress: bool, total: int, done: int):
    """A tqdm bar over the trials, only where it redraws in place (as the training's bar)."""
    if not (progress and _interactive()):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, unit="trial", dynamic_ncols=True, desc="search")


def _trial_line(row: dict, total: int, best: dict) -> str:
    return (f"trial {row['trial']:>3}/{total}: acc {row['accuracy']:.3f}  S {row['step_ratio']:.2f} "
            f"(spread {row['step_ratio_spread']:.2f})  P {row['param_ratio']:.2f}  reward {row['reward']:.4f}  "
            f"| best {best['reward']:.4f} (trial {best['trial']}) | {row['train_seconds']:.0f} s")


def write_best(path: Path, best: dict, cfg: SearchConfig) -> None:
    """best.json: the best trial's stage table, with its numbers for people (see arch.py's format)."""
    from ..models import Stage

    arch = Arch(tuple(Stage(**s) for s in best["stages"]), best["head_channels"])
    write_arch(path, arch, trial=best["trial"], accuracy=best["accuracy"], reward=best["reward"],
               step_ratio=best["step_ratio"], params=best["params"], dataset=cfg.dataset,
               image_size=cfg.image_size, epochs_per_trial=cfg.epochs_per_trial, seed=cfg.seed)


# ------------------------------------------------------------------------------------ pareto.png
def pareto_front(trials: list) -> list:
    """The trials no other trial beats on both counts (lower S and higher accuracy), by S."""
    front, best_acc = [], -1.0
    for t in sorted(trials, key=lambda t: (t["step_ratio"], -t["accuracy"])):
        if t["accuracy"] > best_acc:
            front.append(t)
            best_acc = t["accuracy"]
    return front


def plot_pareto(trials: list, png_path, title: str = "search") -> None:
    """Accuracy against S (marker area by parameters), the Pareto front as a line, the best reward
    starred and the backbone (trial 1) ringed. matplotlib's Figure directly, never pyplot (see
    train/plots.py), written atomically."""
    from matplotlib.figure import Figure

    if not trials:
        return
    s = np.array([t["step_ratio"] for t in trials])
    a = np.array([t["accuracy"] for t in trials])
    p = np.array([t["params"] for t in trials], dtype=float)
    fig = Figure(figsize=(7, 5))
    ax = fig.subplots()
    ax.scatter(s, a, s=20 + 180 * p / p.max(), alpha=0.5, label="trials (area: parameters)")
    front = pareto_front(trials)
    ax.plot([t["step_ratio"] for t in front], [t["accuracy"] for t in front], "k--", lw=1, label="Pareto front")
    best = max(trials, key=lambda t: t["reward"])
    ax.scatter([best["step_ratio"]], [best["accuracy"]], marker="*", s=250, color="tab:red",
               label=f"best reward (trial {best['trial']})")
    first = trials[0]
    ax.scatter([first["step_ratio"]], [first["accuracy"]], s=120, facecolors="none", edgecolors="k",
               label="backbone (trial 1)")
    ax.set_xlabel("S: training step time / backbone's")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    files.write_atomic(png_path, lambda f: fig.savefig(f, dpi=100, format="png"))   # fsync, then rename
