"""Training with progressive learning (EfficientNetV2 paper, section 4 and Algorithm 1).

Progressive learning trains in M stages. Stage i (i = 0 .. M-1) uses image size S_i and
regularization Phi_i (dropout rate, RandAugment magnitude, mixup alpha), both interpolated linearly
from the first stage's values (S_0, Phi_0) to the last stage's (S_e, Phi_e):

    S_i   = S_0   + (S_e   - S_0)   * i / (M - 1)
    Phi_i = Phi_0 + (Phi_e - Phi_0) * i / (M - 1)

Small images train fast but need little regularization; large images need more. The weights carry
over from stage to stage; evaluation always uses the final (eval) size. ``progressive=False`` trains
every epoch at S_e with Phi_e: the fixed-size baseline the paper compares against.

What a run writes into ``out``:
    metrics.jsonl    one JSON line per epoch (epoch, stage, image_size, lr, train_loss, train_acc,
                     val_loss, val_acc, seconds, images_per_second, ...)
    checkpoint.npz   model, optimizer, EMA, batch-iterator position, RNG states, counters; written
                     atomically (temporary file, fsync, rename), so a crash never leaves half a file
    curves.png       loss and accuracy against time, stage boundaries and image sizes marked
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import ops
from .data import (BatchIterator, ImageFolder, ShapesDataset, generator_state, horizontal_flip,
                   mixup_apply, mixup_params, rand_augment, set_generator_state)
from .models import create_model
from .optim import EMA, SGD, AdamW, CosineWarmup, ExponentialDecayWarmup, RMSProp, set_lr

CHECKPOINT = "checkpoint.npz"
METRICS = "metrics.jsonl"
CURVES = "curves.png"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or Inf. The last good checkpoint is left untouched."""


# ----------------------------------------------------------------------------------- configuration
@dataclass
class TrainConfig:
    """Every setting of a run. The defaults are the README's main job: efficientnetv2_tiny on the
    built-in shapes dataset, four progressive stages from 32 to 48 px, evaluated at 48 px, the last
    training size. (On ImageNet the paper evaluates about 20% above the last training size; on these
    small images we kept the two equal: an early stage evaluated at twice its training size lost
    most of its accuracy in our runs.)"""

    model: str = "efficientnetv2_tiny"
    data: str | None = None              # None: the built-in ShapesDataset; else an image folder
    train_samples: int = 8000            # built-in data only
    val_samples: int = 1000
    val_fraction: float = 0.1            # image folder: share of images held out for validation
    epochs: int = 12
    batch_size: int = 64
    optimizer: str = "adamw"             # adamw | rmsprop (the paper's TF flavour) | sgd
    lr: float = 4e-3
    weight_decay: float = 0.05           # AdamW's decoupled decay (rmsprop/sgd: L2, use ~1e-5)
    schedule: str = "cosine"             # cosine | exponential (the paper: 0.97 every 2.4 epochs)
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    drop_path_rate: float = 0.1
    ema_decay: float = 0.995             # 0 disables the EMA; evaluation uses the EMA weights
    progressive: bool = True
    stages: int = 4
    min_size: int = 32                   # S_0
    max_size: int = 48                   # S_e, the last training size
    eval_size: int = 48                  # validation size (the paper's ImageNet runs: ~20% above S_e)
    dropout: tuple = (0.05, 0.2)         # (first stage, last stage)
    randaug: tuple = (0.0, 5.0)          # RandAugment magnitude on the 0..30 scale
    mixup: tuple = (0.0, 0.1)            # mixup alpha (0 = off)
    seed: int = 0
    out: str = "runs/shapes"

    def __post_init__(self):
        for name in ("train_samples", "val_samples", "epochs", "batch_size", "stages", "min_size",
                     "max_size", "eval_size"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.min_size < 8 or self.max_size < self.min_size:
            raise ValueError(f"need 8 <= min_size <= max_size, got min_size={self.min_size}, max_size={self.max_size}")
        if self.optimizer not in ("adamw", "rmsprop", "sgd"):
            raise ValueError(f"optimizer must be adamw, rmsprop or sgd, got {self.optimizer!r}")
        if self.schedule not in ("cosine", "exponential"):
            raise ValueError(f"schedule must be cosine or exponential, got {self.schedule!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"lr must be a number > 0, got {self.lr!r}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        self.dropout, self.randaug, self.mixup = (tuple(float(v) for v in pair)
                                                  for pair in (self.dropout, self.randaug, self.mixup))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


@dataclass(frozen=True)
class StageSettings:
    """What one progressive stage trains with."""

    index: int
    epochs: tuple          # the epoch numbers of this stage
    image_size: int
    dropout: float
    randaug: float
    mixup: float


def progressive_schedule(cfg: TrainConfig) -> list:
    """The stages of Algorithm 1: sizes and regularization interpolated linearly over M stages.

    Epochs are split as evenly as possible (earlier stages get one fewer when they don't divide).
    With ``progressive=False`` there is one stage at the final size and regularization.
    """
    if not cfg.progressive:
        return [StageSettings(0, tuple(range(cfg.epochs)), cfg.max_size, cfg.dropout[1], cfg.randaug[1], cfg.mixup[1])]
    m = min(cfg.stages, cfg.epochs)
    counts = [cfg.epochs // m + (1 if i >= m - cfg.epochs % m else 0) for i in range(m)]
    stages, first = [], 0
    for i, count in enumerate(counts):
        frac = i / (m - 1) if m > 1 else 1.0

        def lerp(pair):
            return pair[0] + (pair[1] - pair[0]) * frac

        size = int(round(lerp((cfg.min_size, cfg.max_size))))
        stages.append(StageSettings(i, tuple(range(first, first + count)), size,
                                    lerp(cfg.dropout), lerp(cfg.randaug), lerp(cfg.mixup)))
        first += count
    return stages


def stage_of_epoch(stages: list, epoch: int) -> StageSettings:
    for stage in stages:
        if epoch in stage.epochs:
            return stage
    raise ValueError(f"epoch {epoch} is outside the schedule ({sum(len(s.epochs) for s in stages)} epochs)")


# ------------------------------------------------------------------------------------ building parts
def build_data(cfg: TrainConfig):
    """(train set, val set): the built-in shapes, or an image folder split by a seeded permutation."""
    if cfg.data is None:
        return (ShapesDataset(cfg.train_samples, cfg.max_size, seed=cfg.seed, split="train"),
                ShapesDataset(cfg.val_samples, cfg.eval_size, seed=cfg.seed, split="val"))
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


def build_optimizer(cfg: TrainConfig, model):
    params = list(model.parameters())
    if cfg.optimizer == "adamw":
        return AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "rmsprop":
        return RMSProp(params, lr=cfg.lr, rho=0.9, momentum=0.9, eps=1e-3, weight_decay=cfg.weight_decay)
    return SGD(params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)


def build_lr_schedule(cfg: TrainConfig):
    """lr as a function of the fractional epoch t."""
    if cfg.schedule == "cosine":
        return CosineWarmup(cfg.lr, total=cfg.epochs, warmup=min(cfg.warmup_epochs, cfg.epochs / 2))
    return ExponentialDecayWarmup(cfg.lr, warmup=min(cfg.warmup_epochs, cfg.epochs / 2), rate=0.97, every=2.4)


def normalize(images: np.ndarray) -> np.ndarray:
    """[0, 1] -> [-1, 1] (mean = std = 0.5, as the TF EfficientNetV2 checkpoints expect)."""
    return (images - np.float32(0.5)) / np.float32(0.5)


def augment(images: np.ndarray, stage: StageSettings, rng: np.random.Generator) -> np.ndarray:
    """Flip and RandAugment (2 layers) at the stage's magnitude. images (N, S, S, 3) in [0, 1]."""
    images = horizontal_flip(images, rng)
    if stage.randaug > 0:
        images = rand_augment(images, rng, num_layers=2, magnitude=stage.randaug)
    return images


# ------------------------------------------------------------------------------------------ the loss
def mixed_loss(logits, labels, lam: float, perm, label_smoothing: float):
    """Cross-entropy against the mixed target lam*y + (1-lam)*y[perm] (mixup).

    Cross-entropy is linear in the target distribution, so the loss and its gradient are the
    lam-weighted sums of the two ordinary losses. perm None means no mixup.
    """
    loss, dlogits = ops.softmax_cross_entropy(logits, labels, label_smoothing)
    if perm is None or lam >= 1.0:
        return float(loss), dlogits
    loss2, dlogits2 = ops.softmax_cross_entropy(logits, labels[perm], label_smoothing)
    lam_t = logits.dtype.type(lam)
    return float(lam * loss + (1 - lam) * loss2), lam_t * dlogits + (1 - lam_t) * dlogits2


def evaluate(model, dataset, image_size: int, batch_size: int = 250) -> tuple:
    """(mean loss, accuracy) of the model in eval mode over the whole dataset at ``image_size``."""
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    for start in range(0, len(dataset), batch_size):
        indices = np.arange(start, min(start + batch_size, len(dataset)))
        images, labels = dataset.batch(indices, image_size)
        logits = model(normalize(images))
        loss, _ = ops.softmax_cross_entropy(logits, labels)
        total_loss += float(loss) * len(indices)
        correct += int(np.sum(np.argmax(logits, axis=1) == labels))
    model.train(was_training)
    return total_loss / len(dataset), correct / len(dataset)


# ------------------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path, arrays: dict) -> None:
    """Write ``arrays`` to ``path`` atomically: a temporary file in the same folder, flushed and
    fsynced, then renamed over the old one. A crash at any moment leaves either the old or the new
    checkpoint, never a torn one."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint written by ``save_checkpoint`` (no pickles: allow_pickle=False)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint to resume from: {path} does not exist")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _prefixed(prefix: str, state: dict) -> dict:
    return {f"{prefix}.{k}": np.asarray(v) for k, v in state.items()}


def _unprefixed(prefix: str, arrays: dict) -> dict:
    cut = len(prefix) + 1
    return {k[cut:]: v for k, v in arrays.items() if k.startswith(prefix + ".")}


# ------------------------------------------------------------------------------------------ trainer
@dataclass
class _Counters:
    """Progress that a checkpoint must carry besides the model and optimizer."""

    epoch: int = 0              # the epoch being trained (the iterator's position says where in it)
    global_step: int = 0
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


class Trainer:
    """One training run: ``Trainer(cfg).run()``. See the module docstring."""

    def __init__(self, cfg: TrainConfig, progress: bool = True, log=print):
        self.cfg = cfg
        self.log = log
        self.progress = progress
        self.out = Path(cfg.out)
        self.stages = progressive_schedule(cfg)
        self.train_set, self.val_set = build_data(cfg)
        first = self.stages[0]
        self.model = create_model(cfg.model, num_classes=self.train_set.num_classes, drop_rate=first.dropout,
                                  drop_path_rate=cfg.drop_path_rate, seed=cfg.seed)
        # A zero classifier predicts the uniform distribution, so training starts at loss ln(K)
        # (cs231n's first sanity check). torchvision's init, uniform(+-1/sqrt(K)), is tuned for K = 1000:
        # with K = 10 its initial logits are large and the first loss is ~3.3 instead of 2.3.
        self.model.classifier.weight.data[...] = 0
        self.optimizer = build_optimizer(cfg, self.model)
        self.lr_at = build_lr_schedule(cfg)
        self.ema = EMA(self.model, cfg.ema_decay, warmup=True) if cfg.ema_decay > 0 else None
        self.batches = BatchIterator(len(self.train_set), cfg.batch_size, shuffle=True, drop_last=True, seed=cfg.seed)
        self.aug_rng = np.random.default_rng([cfg.seed, 1])
        self.model_rng = np.random.default_rng([cfg.seed, 2])
        self.model.set_rng(self.model_rng)
        self.counters = _Counters()
        self._stop = None

    # ---------------------------------------------------------------- state
    def state_arrays(self) -> dict:
        arrays = {"config": np.array(self.cfg.to_json())}
        arrays.update(_prefixed("model", self.model.state_dict()))
        arrays.update(_prefixed("optim", self.optimizer.state_dict()))
        if self.ema is not None:
            arrays.update(_prefixed("ema", self.ema.state_dict()))
        arrays.update(_prefixed("iter", self.batches.state_dict()))
        arrays.update(_prefixed("rng_aug", generator_state(self.aug_rng)))
        arrays.update(_prefixed("rng_model", generator_state(self.model_rng)))
        arrays.update(_prefixed("counters", self.counters.state_dict()))
        return arrays

    def load_state_arrays(self, arrays: dict) -> None:
        saved = json.loads(str(arrays["config"]))
        mine = json.loads(self.cfg.to_json())
        differ = sorted(k for k in mine if k not in ("out", "epochs") and saved.get(k) != mine[k])
        if differ:
            raise ValueError("cannot resume: the checkpoint was made with different settings: "
                             + ", ".join(f"{k}={saved.get(k)!r} (now {mine[k]!r})" for k in differ))
        self.model.load_state_dict(_unprefixed("model", arrays))
        self.optimizer.load_state_dict(_unprefixed("optim", arrays))
        if self.ema is not None:
            self.ema.load_state_dict(_unprefixed("ema", arrays))
        self.batches.load_state_dict(_unprefixed("iter", arrays))
        set_generator_state(self.aug_rng, _unprefixed("rng_aug", arrays))
        set_generator_state(self.model_rng, _unprefixed("rng_model", arrays))
        self.counters = _Counters.from_state(_unprefixed("counters", arrays))

    def save(self) -> None:
        save_checkpoint(self.out / CHECKPOINT, self.state_arrays())

    def resume(self) -> None:
        self.load_state_arrays(load_checkpoint(self.out / CHECKPOINT))
        self._truncate_metrics(self.counters.epoch)
        self.log(f"resumed from {self.out / CHECKPOINT}: epoch {self.counters.epoch}, step {self.counters.global_step}")

    def _truncate_metrics(self, epochs_done: int) -> None:
        """Keep the metrics lines of finished epochs only (a crash may have written one more)."""
        path = self.out / METRICS
        if path.exists():
            lines = [line for line in path.read_text().splitlines() if line.strip()]
            kept = [line for line in lines if json.loads(line)["epoch"] < epochs_done]
            path.write_text("".join(line + "\n" for line in kept))

    # ---------------------------------------------------------------- the loop
    def train_step(self, indices, stage: StageSettings) -> tuple:
        """One optimizer step on a batch. Returns (loss, number correct)."""
        cfg = self.cfg
        images, labels = self.train_set.batch(indices, stage.image_size)       # (B, S, S, 3), (B,)
        images = augment(images, stage, self.aug_rng)
        lam, perm = 1.0, None
        if stage.mixup > 0:
            lam, perm = mixup_params(len(labels), stage.mixup, self.aug_rng)
            images = mixup_apply(images, labels, self.train_set.num_classes, lam, perm)[0]
        t = self.counters.epoch + self.batches.position / (len(self.batches) * cfg.batch_size)
        set_lr(self.optimizer, self.lr_at(t))
        logits = self.model(normalize(images))                                  # (B, classes)
        loss, dlogits = mixed_loss(logits, labels, lam, perm, cfg.label_smoothing)
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"loss became {loss} at step {self.counters.global_step} (stage {stage.index}, epoch "
                f"{self.counters.epoch}); stopped. The last good checkpoint {self.out / CHECKPOINT} is kept.")
        self.model.zero_grad()
        self.model.backward(dlogits)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update()
        self.counters.global_step += 1
        # With mixup the image is mostly image[perm] when lam < 0.5: score against its main label.
        main_labels = labels if perm is None or lam >= 0.5 else labels[perm]
        return loss, int(np.sum(np.argmax(logits, axis=1) == main_labels))

    def run_epoch(self, stage: StageSettings, bar) -> dict:
        c = self.counters
        self.model.dropout.p = stage.dropout
        start = time.perf_counter() - c.epoch_seconds
        for indices in self.batches:
            loss, correct = self.train_step(indices, stage)
            c.loss_sum += loss * len(indices)
            c.correct += correct
            c.seen += len(indices)
            c.epoch_seconds = time.perf_counter() - start
            self._stop.check()              # a Ctrl-C during the step stops here, at a clean boundary
            if bar is not None:
                bar.update(1)
                bar.set_postfix(stage=stage.index, size=stage.image_size, loss=f"{c.loss_sum / c.seen:.3f}",
                                acc=f"{c.correct / c.seen:.3f}", img_s=f"{c.seen / c.epoch_seconds:.0f}")
        train_seconds = c.epoch_seconds
        eval_start = time.perf_counter()
        if self.ema is not None:
            with self.ema.applied():
                val_loss, val_acc = evaluate(self.model, self.val_set, self.cfg.eval_size)
        else:
            val_loss, val_acc = evaluate(self.model, self.val_set, self.cfg.eval_size)
        c.seconds += train_seconds + (time.perf_counter() - eval_start)
        row = {
            "epoch": c.epoch, "stage": stage.index, "image_size": stage.image_size,
            "lr": self.lr_at(c.epoch + 1 - 1e-9), "train_loss": c.loss_sum / c.seen, "train_acc": c.correct / c.seen,
            "val_loss": val_loss, "val_acc": val_acc, "seconds": c.seconds,
            "images_per_second": c.seen / train_seconds, "dropout": stage.dropout, "randaug": stage.randaug,
            "mixup": stage.mixup, "step": c.global_step,
        }
        c.epoch += 1
        c.loss_sum, c.correct, c.seen, c.epoch_seconds = 0.0, 0, 0, 0.0
        return row

    def run(self, resume: bool = False, until_epoch: int | None = None) -> list:
        """Train every remaining epoch (or until ``until_epoch`` epochs are done, to continue later
        with ``resume=True``); return the metrics rows of this run's epochs.

        Ctrl-C (SIGINT) is deferred to the end of the current step: the step finishes, a checkpoint
        of that exact point is saved, and KeyboardInterrupt is raised; ``--resume`` continues from
        there. A second Ctrl-C stops at once without saving (the last checkpoint stays valid).
        """
        self.out.mkdir(parents=True, exist_ok=True)
        if resume:
            self.resume()
        else:
            (self.out / METRICS).unlink(missing_ok=True)
            self.save()             # a run killed in its first epoch can still be resumed
        rows = []
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(self.batches) * self.cfg.epochs, unit="step", dynamic_ncols=True,
                       initial=self.counters.epoch * len(self.batches) + self.batches.position // self.cfg.batch_size)
        try:
            with _deferred_interrupts() as stop:
                self._stop = stop
                last = self.cfg.epochs if until_epoch is None else min(until_epoch, self.cfg.epochs)
                while self.counters.epoch < last:
                    stage = stage_of_epoch(self.stages, self.counters.epoch)
                    if bar is not None:
                        bar.set_description(f"stage {stage.index + 1}/{len(self.stages)} "
                                            f"epoch {self.counters.epoch + 1}/{self.cfg.epochs}")
                    row = self.run_epoch(stage, bar)
                    with open(self.out / METRICS, "a") as f:
                        f.write(json.dumps(row) + "\n")
                    self.save()
                    rows.append(row)
                    message = (f"epoch {row['epoch'] + 1:>3} stage {row['stage'] + 1} size {row['image_size']:>3}: "
                               f"train loss {row['train_loss']:.3f} acc {row['train_acc']:.3f} | val loss "
                               f"{row['val_loss']:.3f} acc {row['val_acc']:.3f} | {row['seconds']:.0f} s, "
                               f"{row['images_per_second']:.0f} img/s")
                    (bar.write if bar is not None else self.log)(message)
        except _StopRequested:
            self.save()
            self.log(f"\ninterrupted: saved {self.out / CHECKPOINT} (epoch {self.counters.epoch}, step "
                     f"{self.counters.global_step}); continue with --resume")
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


# ----------------------------------------------------------------------------------------- plotting
def read_metrics(path) -> list:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_curves(metrics_path, png_path, title: str | None = None) -> None:
    """Loss and accuracy against time; stage boundaries as dashed lines labelled with the image size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_path)
    if not rows:
        return
    t = [r["seconds"] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot(t, [r["train_loss"] for r in rows], "o-", label="train")
    ax_loss.plot(t, [r["val_loss"] for r in rows], "o-", label="val")
    ax_acc.plot(t, [r["train_acc"] for r in rows], "o-", label="train")
    ax_acc.plot(t, [r["val_acc"] for r in rows], "o-", label="val")
    for ax in (ax_loss, ax_acc):
        previous = None
        for i, r in enumerate(rows):
            if r["stage"] != previous:
                start = 0.0 if i == 0 else rows[i - 1]["seconds"]
                ax.axvline(start, color="gray", ls="--", lw=0.8)
                ax.text(start, 1.0, f" {r['image_size']}px", transform=ax.get_xaxis_transform(),
                        va="top", fontsize=8, color="gray")
                previous = r["stage"]
        ax.set_xlabel("seconds")
        ax.legend()
        ax.grid(alpha=0.3)
    ax_loss.set_ylabel("loss")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(0, 1)
    fig.suptitle(title or f"training curves ({Path(metrics_path).parent.name})")
    fig.tight_layout()
    tmp = Path(png_path).with_name(Path(png_path).name + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, png_path)


def train(cfg: TrainConfig | None = None, resume: bool = False, progress: bool = True, log=print,
          until_epoch: int | None = None, **overrides) -> list:
    """Run a training job: ``train(epochs=3, out="runs/quick")``. Returns the metrics rows.

    until_epoch: stop once that many epochs are done (continue later with resume=True).
    """
    cfg = dataclasses.replace(cfg, **overrides) if cfg is not None else TrainConfig(**overrides)
    return Trainer(cfg, progress=progress, log=log).run(resume=resume, until_epoch=until_epoch)
