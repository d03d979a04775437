"""A training run around the algorithm: ``Trainer(cfg).run()`` or ``train(epochs=3, out="runs/quick")``.

algorithm.py says what one stage, epoch and step do. This file makes it a run that survives a long
night: it builds the data, model and optimizer from a ``TrainConfig``, walks the schedule epoch by
epoch, evaluates, and after every epoch writes the checkpoint and one metrics line. It resumes
exactly (same losses as a run never stopped), turns Ctrl-C into a checkpoint at a step boundary,
and stops on a NaN/Inf before writing anything, so the last good checkpoint survives.

What a run writes into ``out`` (default runs/shapes, runs/<dataset> for another built-in dataset, or
runs/<folder name> for an image folder):
    metrics.jsonl    one JSON line per epoch (epoch, stage, image_size, lr, train_loss, train_acc,
                     val_loss, val_acc, seconds, images_per_second, ...); strict JSON, never NaN
    checkpoint.npz   model, optimizer, EMA, batch-iterator position, RNG states, counters; written
                     atomically (temporary file, fsync, rename), so a crash never leaves half a file,
                     and only when every tensor in it is finite, so a diverged run never overwrites
                     the last good one
    curves.png       loss and accuracy against time, stage boundaries and image sizes marked
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import files
from ..data import BatchIterator, ImageFolder, generator_state, make_dataset, set_generator_state
from ..models import create_model
from ..search.arch import read_arch
from ..optim import EMA, SGD, AdamW, CosineWarmup, ExponentialDecayWarmup, RMSProp
from .algorithm import (NonFiniteLoss, StageSettings, evaluate_with_ema, progressive_schedule, stage_of_epoch,
                        train_epoch, train_step)
from .config import (DEFAULT_BATCH_SIZE, DEFAULT_OUT, TrainConfig, fitting_batch_size, output_folder,
                     upgrade_settings)
from .presets import has_own_row
from .plots import plot_curves

CHECKPOINT = "checkpoint.npz"
METRICS = "metrics.jsonl"
CURVES = "curves.png"


class TrainingDiverged(RuntimeError):
    """The loss, a weight or a statistic became NaN or Inf. Nothing more is written: the last good
    checkpoint is left untouched."""


# ------------------------------------------------------------------------------------ building parts
def build_data(cfg: TrainConfig):
    """(train set, val set): the built-in ``cfg.dataset``, or an image folder split by a seeded
    permutation."""
    if cfg.data is None:
        return (make_dataset(cfg.dataset, cfg.train_samples, cfg.max_size, seed=cfg.seed, split="train"),
                make_dataset(cfg.dataset, cfg.val_samples, cfg.eval_size, seed=cfg.seed, split="val"))
    folder = ImageFolder(cfg.data, image_size=cfg.max_size, cache=True)
    order = np.random.default_rng([cfg.seed, 3]).permutation(len(folder))
    n_val = max(1, int(round(cfg.val_fraction * len(folder))))
    if n_val >= len(folder):
        raise ValueError(f"data: {cfg.data} has {len(folder)} images, too few to hold out {n_val} for validation")
    return _Subset(folder, np.sort(order[n_val:])), _Subset(folder, np.sort(order[:n_val]))


class _Subset:
    """Some of an image source's samples, with the same small API (len, num_classes, batch)."""

    def __init__(self, source, indices: np.ndarray):
        self.source = source
        self.indices = indices
        self.num_classes = source.num_classes
        self.labels = np.asarray(source.labels)[indices]

    def __len__(self) -> int:
        return len(self.indices)

    def batch(self, indices, image_size=None):
        return self.source.batch(self.indices[np.asarray(indices)], image_size)


def build_model(cfg: TrainConfig, num_classes: int, drop_rate: float):
    """The network to train: built from the stage table of ``cfg.arch`` (a JSON file, see
    search/arch.py) when one is given, else the named ``cfg.model``; seeded with ``cfg.seed``."""
    if cfg.arch is not None:
        model = read_arch(cfg.arch).build(num_classes, drop_rate=drop_rate, drop_path_rate=cfg.drop_path_rate,
                                          seed=cfg.seed)
        model.name = f"arch {cfg.arch}"
        return model
    return create_model(cfg.model, num_classes=num_classes, drop_rate=drop_rate,
                        drop_path_rate=cfg.drop_path_rate, seed=cfg.seed)


def build_optimizer(cfg: TrainConfig, model):
    params = list(model.parameters())
    if cfg.optimizer == "adamw":
        return AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "rmsprop":
        return RMSProp(params, lr=cfg.lr, rho=0.9, momentum=0.9, eps=1e-3, weight_decay=cfg.weight_decay)
    return SGD(params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)


def build_lr_schedule(cfg: TrainConfig):
    """lr as a function of the fractional epoch t."""
    if cfg.lr_schedule == "cosine":
        return CosineWarmup(cfg.lr, total=cfg.epochs, warmup=min(cfg.warmup_epochs, cfg.epochs / 2))
    return ExponentialDecayWarmup(cfg.lr, warmup=min(cfg.warmup_epochs, cfg.epochs / 2), rate=0.97, every=2.4)


# ------------------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path, arrays: dict) -> None:
    """Write ``arrays`` to ``path`` atomically (``files.save_npz_atomic``): a temporary file in the
    same folder, flushed and fsynced, then renamed over the old one. A crash or SIGKILL at any
    moment leaves either the old or the new checkpoint, never a torn one."""
    files.save_npz_atomic(path, arrays)


def load_checkpoint(path: Path) -> dict:
    """Every array of a checkpoint written by ``save_checkpoint`` (``files.read_npz``: no pickles).

    FileNotFoundError if it does not exist; ``files.BadFileError`` (a ValueError), one line naming
    the file and the problem, if it is empty, truncated, bit-flipped or not an .npz file.
    """
    return files.read_npz(path, what="checkpoint")


def non_finite_entry(arrays: dict):
    """(name, number of NaN/Inf values, size) of the first float array that is not finite
    everywhere, or None when all are. This is the check before every checkpoint save."""
    for name, value in arrays.items():
        value = np.asarray(value)
        if np.issubdtype(value.dtype, np.inexact):
            bad = value.size - int(np.count_nonzero(np.isfinite(value)))
            if bad:
                return name, bad, value.size
    return None


def _prefixed(prefix: str, state: dict) -> dict:
    return {f"{prefix}.{k}": np.asarray(v) for k, v in state.items()}


def _unprefixed(prefix: str, arrays: dict) -> dict:
    cut = len(prefix) + 1
    return {k[cut:]: v for k, v in arrays.items() if k.startswith(prefix + ".")}


def _one_line(error: BaseException) -> str:
    """An exception's message on one line (some state_dict errors list one problem per line)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


# ------------------------------------------------------------------------------------------ trainer
@dataclass
class _Counters:
    """Progress that a checkpoint must carry besides the model and optimizer."""

    epoch: int = 0              # epochs finished = the index (from 0) of the epoch being trained
    global_step: int = 0        # steps finished = the number (from 1) of the last step taken
    seconds: float = 0.0        # training + evaluation wall time so far (over all resumes)
    loss_sum: float = 0.0       # the running epoch's sums (a mid-epoch Ctrl-C checkpoint keeps them)
    correct: int = 0
    seen: int = 0
    epoch_seconds: float = 0.0

    def state_dict(self) -> dict:
        return {k: np.array(v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_state(cls, state: dict) -> "_Counters":
        kinds = {f.name: f.type for f in dataclasses.fields(cls)}
        return cls(**{k: (int(v) if kinds[k] == "int" else float(v)) for k, v in state.items()})


def _interactive() -> bool:
    """True where a progress bar redraws in place: a terminal, or a Jupyter notebook. In a log file
    (stdout/stderr redirected, CI, nohup) every redraw would be one more line."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    if shell is not None and hasattr(shell, "kernel"):
        return True
    stream = sys.stderr                                  # where tqdm draws
    return stream is not None and hasattr(stream, "isatty") and stream.isatty()


class Trainer:
    """One training run: ``Trainer(cfg).run()``. See the module docstring.

    progress: show a tqdm bar (only where it can redraw in place: a terminal or a notebook; in a
    log file the per-epoch lines are the progress report). log: where messages go (default print).
    Attributes worth knowing: ``out`` (the folder written to) and ``batch_size`` (the one used);
    both resolve the config's None ("choose for me", see TrainConfig).
    """

    def __init__(self, cfg: TrainConfig, progress: bool = True, log=print):
        self.cfg = cfg
        self.log = log
        self.progress = progress
        self.out = output_folder(cfg)
        if cfg.out is None and cfg.data is not None:
            log(f"writing to {self.out}/ (out not given; runs on the built-in data use {DEFAULT_OUT}/)")
        if cfg.schedule != "custom" and not has_own_row(cfg.model, cfg.arch):
            log(f"schedule {cfg.schedule}: {cfg.arch or cfg.model} has no row of its own in the {cfg.schedule} "
                f"tables (efficientnetv2_s, _m, _l); the values not given explicitly are EfficientNetV2-S's")
        self.stages = progressive_schedule(cfg)
        self.train_set, self.val_set = build_data(cfg)
        self.batch_size = fitting_batch_size(cfg.batch_size, len(self.train_set))
        if cfg.batch_size is None and self.batch_size != DEFAULT_BATCH_SIZE:
            log(f"batch size {self.batch_size}: the training set has {len(self.train_set)} images, too few "
                f"for the default {DEFAULT_BATCH_SIZE} (every batch is a full one); pass batch_size to choose")
        first = self.stages[0]
        self.arch_table = read_arch(cfg.arch).key() if cfg.arch is not None else None
        self.model = build_model(cfg, self.train_set.num_classes, first.dropout)
        # A zero classifier predicts the uniform distribution, so training starts at loss ln(K)
        # (cs231n's first sanity check). torchvision's init, uniform(+-1/sqrt(K)), is tuned for K = 1000:
        # with K = 10 its initial logits are large and the first loss is ~3.3 instead of 2.3.
        self.model.classifier.weight.data[...] = 0
        self.optimizer = build_optimizer(cfg, self.model)
        self.lr_at = build_lr_schedule(cfg)
        self.ema = EMA(self.model, cfg.ema_decay, warmup=True) if cfg.ema_decay > 0 else None
        self.batches = BatchIterator(len(self.train_set), self.batch_size, shuffle=True, drop_last=True, seed=cfg.seed)
        self.aug_rng = np.random.default_rng([cfg.seed, 1])
        self.model_rng = np.random.default_rng([cfg.seed, 2])
        self.model.set_rng(self.model_rng)
        self.counters = _Counters()
        self._stop = None
        self._first_step = True
        self.first_step_seconds = None      # the first step's exact time (compile + step), once taken

    # ---------------------------------------------------------------- where we are, for messages
    def _epoch_number(self) -> int:
        """The epoch (counted from 1) of the last step taken, or of the next one at the start."""
        c = self.counters
        between_epochs = self.batches.position == 0 and c.epoch > 0
        return c.epoch if between_epochs else c.epoch + 1

    def _where(self, step: int) -> str:
        """'step 25 (stage 2/4, epoch 5/12)': counted from 1, like every message and metrics.jsonl."""
        epoch = self._epoch_number()
        stage = stage_of_epoch(self.stages, min(epoch, self.cfg.epochs) - 1)
        return f"step {step} (stage {stage.number}/{len(self.stages)}, epoch {epoch}/{self.cfg.epochs})"

    def _diverged(self, what: str) -> TrainingDiverged:
        return TrainingDiverged(f"{what}; stopped without saving. The last good checkpoint "
                                f"{self.out / CHECKPOINT} is kept.")

    # ---------------------------------------------------------------- state
    def settings(self) -> dict:
        """The config as a checkpoint records it: with the batch size and folder actually used,
        and the stage table read from ``cfg.arch`` (None without one), so that a resume with
        another architecture is refused even when the file's path is the same."""
        settings = {**json.loads(self.cfg.to_json()), "batch_size": self.batch_size, "out": str(self.out)}
        if self.arch_table is not None:
            settings["arch_table"] = self.arch_table
        return settings

    def state_arrays(self) -> dict:
        arrays = {"config": np.array(json.dumps(self.settings(), sort_keys=True))}
        arrays.update(_prefixed("model", self.model.state_dict()))
        arrays.update(_prefixed("optim", self.optimizer.state_dict()))
        if self.ema is not None:
            arrays.update(_prefixed("ema", self.ema.state_dict()))
        arrays.update(_prefixed("iter", self.batches.state_dict()))
        arrays.update(_prefixed("rng_aug", generator_state(self.aug_rng)))
        arrays.update(_prefixed("rng_model", generator_state(self.model_rng)))
        arrays.update(_prefixed("counters", self.counters.state_dict()))
        return arrays

    def checked_state(self) -> dict:
        """``state_arrays()``, after checking that every weight, BatchNorm running statistic,
        optimizer buffer and EMA average in it is finite; TrainingDiverged naming the first tensor
        that is not (nothing is saved then, so the last good checkpoint survives)."""
        arrays = self.state_arrays()
        bad = non_finite_entry(arrays)
        if bad is not None:
            name, count, size = bad
            raise self._diverged(f"{name} became non-finite ({count} of {size} values NaN or Inf) by "
                                 f"{self._where(self.counters.global_step)}")
        return arrays

    def load_state_arrays(self, arrays: dict, source="checkpoint") -> None:
        """Restore a run from ``state_arrays()``. ValueError, one line naming ``source``, if they
        are not a training checkpoint, were made with other settings or another model, or hold
        NaN/Inf."""
        self._check_loadable(arrays, source)
        try:
            self.model.load_state_dict(_unprefixed("model", arrays))
            self.optimizer.load_state_dict(_unprefixed("optim", arrays))
            if self.ema is not None:
                self.ema.load_state_dict(_unprefixed("ema", arrays))
            self.batches.load_state_dict(_unprefixed("iter", arrays))
            set_generator_state(self.aug_rng, _unprefixed("rng_aug", arrays))
            set_generator_state(self.model_rng, _unprefixed("rng_model", arrays))
            counters = _Counters.from_state(_unprefixed("counters", arrays))
        except (KeyError, ValueError, TypeError, IndexError) as error:
            raise ValueError(f"cannot resume from {source}: its arrays do not fit this run "
                             f"({type(error).__name__}: {_one_line(error)})") from None
        self.counters = counters

    def _check_loadable(self, arrays: dict, source) -> None:
        """The checks that need no loading: a config entry, the same settings, finite values."""
        if "config" not in arrays:
            raise ValueError(f"cannot resume from {source}: it is not a tinyeffnet training checkpoint "
                             f"(no 'config' entry; found {len(arrays)} arrays)")
        try:
            saved = json.loads(str(arrays["config"]))
        except ValueError:
            raise ValueError(f"cannot resume from {source}: its 'config' entry is not JSON") from None
        if not isinstance(saved, dict):
            raise ValueError(f"cannot resume from {source}: its 'config' entry is not a JSON object")
        saved = upgrade_settings(saved)          # 0.4.0's "schedule" (the lr's) is now lr_schedule
        mine = self.settings()
        # The arch file's path may change (a moved file); its stage table (arch_table) may not. A
        # setting missing from an older checkpoint was made with that setting's default (the default
        # config's resolved value: a preset field's None stands for "custom"'s value).
        defaults = json.loads(TrainConfig().to_json())
        saved = {**{k: v for k, v in defaults.items() if k not in saved}, **saved}
        keys = set(mine) | ({"arch_table"} if "arch_table" in saved else set())
        differ = sorted(k for k in keys if k not in ("out", "epochs", "arch") and saved.get(k) != mine.get(k))
        if differ:
            raise ValueError(f"cannot resume from {source}: it was made with different settings: "
                             + ", ".join(f"{k}={saved.get(k)!r} (now {mine.get(k)!r})" for k in differ))
        bad = non_finite_entry(arrays)
        if bad is not None:
            raise ValueError(f"cannot resume from {source}: {bad[0]} holds {bad[1]} NaN or Inf values "
                             f"(it was saved after the run diverged)")

    def save(self, arrays: dict | None = None) -> None:
        """Save the checkpoint (``checked_state()`` unless given): never a non-finite one."""
        save_checkpoint(self.out / CHECKPOINT, self.checked_state() if arrays is None else arrays)

    def resume(self) -> None:
        """Continue from out/checkpoint.npz. Any problem raises before the folder is touched: a
        damaged file (BadFileError), another model's or other settings' checkpoint (ValueError)."""
        path = self.out / CHECKPOINT
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint to resume from: {path} does not exist")
        self.load_state_arrays(load_checkpoint(path), source=path)
        self._truncate_metrics(self.counters.epoch)
        self.log(f"resumed from {path}: {self.counters.epoch} of {self.cfg.epochs} epochs done, "
                 f"step {self.counters.global_step}")

    def _truncate_metrics(self, epochs_done: int) -> None:
        """Keep the metrics lines of finished epochs only: a crash may have written one more, or
        half a line (a SIGKILL during the write), which is dropped too."""
        path = self.out / METRICS
        if not path.exists():
            return
        kept = []
        for line in path.read_text().splitlines():
            try:
                if json.loads(line)["epoch"] <= epochs_done:        # epochs count from 1
                    kept.append(line)
            except (ValueError, KeyError, TypeError):
                pass
        text = "".join(line + "\n" for line in kept)
        if text != path.read_text():
            files.write_atomic(path, lambda f: f.write(text.encode()))

    def append_metrics(self, row: dict) -> None:
        """Append one line to metrics.jsonl. A NaN/Inf in the row (an evaluation that diverged)
        raises TrainingDiverged instead; allow_nan=False makes sure NaN (not JSON) never reaches
        the file."""
        bad = [key for key, value in row.items() if isinstance(value, float) and not math.isfinite(value)]
        if bad:
            raise self._diverged(f"{bad[0]} became {row[bad[0]]} in the evaluation after "
                                 f"{self._where(self.counters.global_step)}")
        line = json.dumps(row, allow_nan=False)
        with open(self.out / METRICS, "a") as f:
            f.write(line + "\n")

    # ---------------------------------------------------------------- the loop
    def train_step(self, indices, stage: StageSettings) -> tuple:
        """One optimizer step on a batch. Returns (loss, number correct).

        Loads the batch at the stage's size, takes the lr of this point of the run (t: fractional
        epochs done), and hands both to ``algorithm.train_step``; then counts the step. A NaN/Inf
        loss raises TrainingDiverged naming the step, before any weight changed."""
        images, labels = self.train_set.batch(indices, stage.image_size)       # (B, S, S, 3), (B,)
        t = self.counters.epoch + self.batches.position / (len(self.batches) * self.batch_size)
        try:
            result = train_step(self.model, self.optimizer, images, labels, stage, self.aug_rng,
                                label_smoothing=self.cfg.label_smoothing, lr=self.lr_at(t), ema=self.ema)
        except NonFiniteLoss as error:
            raise self._diverged(f"loss became {error.loss} at {self._where(self.counters.global_step + 1)}") from None
        self.counters.global_step += 1
        return result

    def _first_train_step(self, indices, stage: StageSettings, bar) -> tuple:
        """The first step of a run, announced: Numba compiles the kernels on first use (20-60 s
        the first time, then cached on disk), which would otherwise look like a hang, or make the
        bar promise an hours-long ETA."""
        self._say("compiling the Numba kernels for the first step (20-60 s the first time; "
                  "cached for later runs) ...", bar)
        start = time.perf_counter()
        result = self.train_step(indices, stage)
        self.first_step_seconds = time.perf_counter() - start
        self._say(f"first step done in {self.first_step_seconds:.1f} s", bar)
        if bar is not None:
            bar.unpause()                   # leave the compile time out of the bar's rate and ETA
        self._first_step = False
        return result

    def run_epoch(self, stage: StageSettings, bar) -> dict:
        """Train the rest of the current epoch, evaluate, and return its metrics row.

        ``algorithm.train_epoch`` does the steps; this adds what a run keeps per step: the running
        sums and time (in the counters, so a mid-epoch checkpoint carries them), the Ctrl-C check
        and the progress bar."""
        c = self.counters
        start = time.perf_counter() - c.epoch_seconds

        def step(indices, this_stage):
            if self._first_step:
                return self._first_train_step(indices, this_stage, bar)
            return self.train_step(indices, this_stage)

        def after_step(n: int, loss: float, correct: int) -> None:
            c.loss_sum += loss * n
            c.correct += correct
            c.seen += n
            c.epoch_seconds = time.perf_counter() - start
            self._stop.check()              # a Ctrl-C during the step stops here, at a clean boundary
            if bar is not None:
                bar.update(1)
                bar.set_postfix(stage=stage.number, size=stage.image_size, loss=f"{c.loss_sum / c.seen:.3f}",
                                acc=f"{c.correct / c.seen:.3f}", img_s=f"{c.seen / c.epoch_seconds:.0f}")

        train_epoch(self.model, self.batches, stage, step, after_step)
        train_seconds = c.epoch_seconds
        eval_start = time.perf_counter()
        val_loss, val_acc = evaluate_with_ema(self.model, self.ema, self.val_set, self.cfg.eval_size)
        c.seconds += train_seconds + (time.perf_counter() - eval_start)
        row = {
            "epoch": c.epoch + 1, "stage": stage.number, "image_size": stage.image_size,
            "lr": self.lr_at(c.epoch + 1 - 1e-9), "train_loss": c.loss_sum / c.seen, "train_acc": c.correct / c.seen,
            "val_loss": val_loss, "val_acc": val_acc, "seconds": c.seconds,
            "images_per_second": c.seen / train_seconds, "dropout": stage.dropout, "randaug": stage.randaug,
            "mixup": stage.mixup, "step": c.global_step,
        }
        c.epoch += 1
        c.loss_sum, c.correct, c.seen, c.epoch_seconds = 0.0, 0, 0, 0.0
        return row

    def _say(self, message: str, bar=None) -> None:
        """A message that does not tear the progress bar (tqdm.write while a bar is shown)."""
        (bar.write if bar is not None else self.log)(message)

    def _epoch_line(self, row: dict) -> str:
        return (f"epoch {row['epoch']:>3}/{self.cfg.epochs} stage {row['stage']}/{len(self.stages)} "
                f"size {row['image_size']:>3}: train loss {row['train_loss']:.3f} acc {row['train_acc']:.3f} "
                f"| val loss {row['val_loss']:.3f} acc {row['val_acc']:.3f} | {row['seconds']:.0f} s, "
                f"{row['images_per_second']:.0f} img/s")

    def _progress_bar(self):
        """A tqdm bar over all steps of the run, or None (not asked for, or not interactive)."""
        if not (self.progress and _interactive()):
            return None
        from tqdm.auto import tqdm

        done = self.counters.epoch * len(self.batches) + self.batches.position // self.batch_size
        return tqdm(total=len(self.batches) * self.cfg.epochs, unit="step", dynamic_ncols=True, initial=done)

    def run(self, resume: bool = False, until_epoch: int | None = None) -> list:
        """Train every remaining epoch (or until ``until_epoch`` epochs are done, to continue later
        with ``resume=True``); return the metrics rows of this run's epochs.

        Ctrl-C (SIGINT) is deferred to the end of the current step: the step finishes, a checkpoint
        of that exact point is saved, and KeyboardInterrupt is raised; ``--resume`` continues from
        there. A second Ctrl-C stops at once without saving (the last checkpoint stays valid).
        A NaN/Inf loss, weight, statistic or validation loss raises TrainingDiverged before
        anything is written, so the last good checkpoint and metrics.jsonl stay as they were.
        """
        if resume:
            self.resume()
        else:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / METRICS).unlink(missing_ok=True)
            self.save()             # a run killed in its first epoch can still be resumed
        rows = []
        bar = self._progress_bar()
        self._first_step = True
        try:
            with _deferred_interrupts() as stop:
                self._stop = stop
                last = self.cfg.epochs if until_epoch is None else min(until_epoch, self.cfg.epochs)
                while self.counters.epoch < last:
                    stage = stage_of_epoch(self.stages, self.counters.epoch)
                    if bar is not None:
                        bar.set_description(f"stage {stage.number}/{len(self.stages)} "
                                            f"epoch {self.counters.epoch + 1}/{self.cfg.epochs}")
                    row = self.run_epoch(stage, bar)      # train one epoch, then evaluate
                    state = self.checked_state()          # NaN/Inf anywhere: TrainingDiverged, nothing written
                    self.append_metrics(row)              # NaN/Inf validation loss: the same
                    self.save(state)
                    rows.append(row)
                    self._say(self._epoch_line(row), bar)
        except _StopRequested:
            self.save()
            self.log(f"\ninterrupted: saved {self.out / CHECKPOINT} (epoch {self._epoch_number()}/"
                     f"{self.cfg.epochs}, after step {self.counters.global_step}); continue with --resume")
            raise KeyboardInterrupt from None
        finally:
            if bar is not None:
                bar.close()
        plot_curves(self.out / METRICS, self.out / CURVES)
        return rows


class _StopRequested(Exception):
    """Raised between steps after a Ctrl-C, so that the checkpoint is taken at a step boundary."""


class _deferred_interrupts:
    """Context manager: SIGINT sets a flag (checked after every step) instead of interrupting."""

    def __enter__(self):
        import signal
        import threading

        self.requested = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.requested:                  # second Ctrl-C: stop now, no save
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        if self.requested:
            raise _StopRequested

    def __exit__(self, *exc):
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def train(cfg: TrainConfig | None = None, resume: bool = False, progress: bool = True, log=print,
          until_epoch: int | None = None, **overrides) -> list:
    """Run a training job: ``train(epochs=3, out="runs/quick")``. Returns the metrics rows.

    until_epoch: stop once that many epochs are done (continue later with resume=True).
    """
    cfg = dataclasses.replace(cfg, **overrides) if cfg is not None else TrainConfig(**overrides)
    return Trainer(cfg, progress=progress, log=log).run(resume=resume, until_epoch=until_epoch)
