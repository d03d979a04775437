"""Training with progressive learning (EfficientNetV2 paper, section 4 and Algorithm 1).

Progressive learning trains in M stages. Stage i (i = 0 .. M-1) uses image size S_i and
regularization Phi_i (dropout rate, RandAugment magnitude, mixup alpha), both interpolated linearly
from the first stage's values (S_0, Phi_0) to the last stage's (S_e, Phi_e):

    S_i   = S_0   + (S_e   - S_0)   * i / (M - 1)
    Phi_i = Phi_0 + (Phi_e - Phi_0) * i / (M - 1)

Small images train fast but need little regularization; large images need more. The weights carry
over from stage to stage; evaluation always uses the final (eval) size. ``progressive=False`` trains
every epoch at S_e with Phi_e: the fixed-size baseline the paper compares against.

Numbering: everything a person reads counts from 1, as people count: messages, the progress bar,
errors and metrics.jsonl say "stage 1/4", "epoch 1/12", "step 1". In code, ``StageSettings.index``
is the formula's i (0 .. M-1) and ``StageSettings.epochs`` holds Python epoch indices (from 0);
``StageSettings.number`` is index + 1.

What a run writes into ``out`` (default runs/shapes, or runs/<folder name> for an image folder):
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
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import files, ops
from .data import (BatchIterator, ImageFolder, ShapesDataset, generator_state, horizontal_flip,
                   mixup_apply, mixup_params, rand_augment, set_generator_state)
from .models import create_model, list_models
from .optim import EMA, SGD, AdamW, CosineWarmup, ExponentialDecayWarmup, RMSProp, set_lr

CHECKPOINT = "checkpoint.npz"
METRICS = "metrics.jsonl"
CURVES = "curves.png"


DEFAULT_BATCH_SIZE = 64          # what batch_size=None means when the training set is large enough
DEFAULT_OUT = "runs/shapes"      # what out=None means for the built-in data


class TrainingDiverged(RuntimeError):
    """The loss, a weight or a statistic became NaN or Inf. Nothing more is written: the last good
    checkpoint is left untouched."""


# ----------------------------------------------------------------------------------- configuration
@dataclass
class TrainConfig:
    """Every setting of a run, each checked when the config is made. The defaults are the README's
    main job: efficientnetv2_tiny on the built-in shapes dataset, batches of 64, four progressive
    stages from 32 to 48 px, evaluated at 48 px, the last training size, written to runs/shapes.
    (On ImageNet the paper evaluates about 20% above the last training size; on these small images
    we kept the two equal: an early stage evaluated at twice its training size lost most of its
    accuracy in our runs.)

    Two settings may be left as None, meaning "choose for me":
        batch_size=None   64, or, for a training set of fewer than 64 images, the largest power of
                          two that fits (every batch is a full one). A number is used as given, and
                          one larger than the training set is an error.
        out=None          runs/shapes for the built-in data, runs/<folder name> for an image folder,
                          so that a run on your own images never overwrites the main job's results.
    """

    model: str = "efficientnetv2_tiny"
    data: str | None = None              # None: the built-in ShapesDataset; else an image folder
    train_samples: int = 8000            # built-in data only
    val_samples: int = 1000
    val_fraction: float = 0.1            # image folder: share of images held out for validation
    epochs: int = 12
    batch_size: int | None = None        # None: DEFAULT_BATCH_SIZE, or what fits a small training set
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
    out: str | None = None               # None: DEFAULT_OUT, or runs/<data folder name>

    def __post_init__(self):
        """Check every field, naming the argument, what it must be and what it got; store plain
        Python types (np.int64 -> int, lists -> tuples) so that the config is always JSON."""
        self.model = _check_model(self.model)
        self.data = _check_folder("data", self.data)
        for name in ("train_samples", "val_samples", "epochs", "stages"):
            setattr(self, name, _check_int(name, getattr(self, name), 1))
        self.batch_size = _check_int("batch_size", self.batch_size, 1, none_means="choose one that fits")
        self.min_size = _check_int("min_size", self.min_size, 8)
        self.max_size = _check_int("max_size", self.max_size, self.min_size, minimum_name="min_size")
        self.eval_size = _check_int("eval_size", self.eval_size, 8)
        self.seed = _check_int("seed", self.seed, 0)
        self.optimizer = _check_choice("optimizer", self.optimizer, ("adamw", "rmsprop", "sgd"))
        self.schedule = _check_choice("schedule", self.schedule, ("cosine", "exponential"))
        self.lr = _check_number("lr", self.lr, 0, math.inf, low_open=True)
        self.weight_decay = _check_number("weight_decay", self.weight_decay, 0, math.inf)
        self.warmup_epochs = _check_number("warmup_epochs", self.warmup_epochs, 0, math.inf)
        self.label_smoothing = _check_number("label_smoothing", self.label_smoothing, 0, 1, high_open=True)
        self.drop_path_rate = _check_number("drop_path_rate", self.drop_path_rate, 0, 1, high_open=True)
        self.ema_decay = _check_number("ema_decay", self.ema_decay, 0, 1, high_open=True)
        self.val_fraction = _check_number("val_fraction", self.val_fraction, 0, 1, low_open=True, high_open=True)
        self.dropout = _check_pair("dropout", self.dropout, 0, 1, high_open=True)
        self.randaug = _check_pair("randaug", self.randaug, 0, 30)
        self.mixup = _check_pair("mixup", self.mixup, 0, math.inf)
        if not isinstance(self.progressive, (bool, np.bool_)):
            raise ValueError(f"progressive must be True or False, got {self.progressive!r}")
        self.progressive = bool(self.progressive)
        self.out = _check_path("out", self.out)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


# ------------------------------------------------------------ checks behind TrainConfig.__post_init__
def _is_bool(value) -> bool:
    return isinstance(value, (bool, np.bool_))


def _check_int(name: str, value, minimum: int, minimum_name: str | None = None,
               none_means: str | None = None):
    """value as an int >= minimum (bools refused: True is not a batch size). None is accepted only
    when ``none_means`` says what it means."""
    if value is None and none_means is not None:
        return None
    if _is_bool(value) or not isinstance(value, (int, np.integer)) or value < minimum:
        bound = f"{minimum_name} ({minimum})" if minimum_name else str(minimum)
        alternative = f" or None ({none_means})" if none_means else ""
        raise ValueError(f"{name} must be an int >= {bound}{alternative}, got {value!r}")
    return int(value)


def _interval(low, high, low_open: bool, high_open: bool) -> str:
    """'in [0, 1)', '> 0', '>= 0': the readable form of an interval."""
    if high == math.inf:
        return f"> {low:g}" if low_open else f">= {low:g}"
    return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def _check_number(name: str, value, low, high, low_open: bool = False, high_open: bool = False) -> float:
    """value as a float, finite (NaN and Inf refused) and inside the interval."""
    ok = (not _is_bool(value) and isinstance(value, (int, float, np.integer, np.floating))
          and math.isfinite(value)
          and (value > low if low_open else value >= low)
          and (value < high if high_open else value <= high))
    if not ok:
        raise ValueError(f"{name} must be a finite number {_interval(low, high, low_open, high_open)}, got {value!r}")
    return float(value)


def _check_pair(name: str, value, low, high, high_open: bool = False) -> tuple:
    """A (first stage, last stage) pair of numbers, each checked like ``_check_number``."""
    if isinstance(value, np.ndarray):
        value = tuple(value.tolist())
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} must be a pair (first stage, last stage) of numbers "
                         f"{_interval(low, high, False, high_open)}, got {value!r}")
    return tuple(_check_number(f"{name}[{i}]", v, low, high, high_open=high_open) for i, v in enumerate(value))


def _check_choice(name: str, value, choices: tuple) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be {', '.join(choices[:-1])} or {choices[-1]}, got {value!r}")
    return value


def _check_model(name) -> str:
    """A model name create_model knows (torchvision's efficientnet_v2_s spelling accepted)."""
    known = list_models()
    spelled = name.lower().replace("efficientnet_v2_", "efficientnetv2_") if isinstance(name, str) else None
    if spelled not in known:
        raise ValueError(f"model must be one of {', '.join(known)}, got {name!r}")
    return name


def _check_path(name: str, value):
    """None, or a str / os.PathLike, returned as a str (so that the config stays JSON)."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)) or os.fspath(value) == "":
        raise ValueError(f"{name} must be a folder path (str) or None, got {value!r}")
    return os.fspath(value)


def _check_folder(name: str, value):
    """None, or the path of an existing folder."""
    value = _check_path(name, value)
    if value is not None and not os.path.isdir(value):
        why = "it is not a folder" if os.path.exists(value) else "it does not exist"
        raise ValueError(f"{name} must be an existing folder with one subfolder per class, got {value!r}: {why}")
    return value


def output_folder(cfg: TrainConfig) -> Path:
    """Where a run writes: ``cfg.out``, or when it is None runs/shapes (built-in data) or
    runs/<folder name> (an image folder), so that --data runs never overwrite the main job's."""
    if cfg.out is not None:
        return Path(cfg.out)
    if cfg.data is None:
        return Path(DEFAULT_OUT)
    return Path("runs") / Path(cfg.data).resolve().name


def fitting_batch_size(requested: int | None, num_train: int) -> int:
    """The batch size a run uses. Every batch is a full one (drop_last), so it must not exceed the
    training set. None: DEFAULT_BATCH_SIZE, or the largest power of two <= num_train if that is
    smaller. A requested size larger than the training set is an error saying what to do."""
    if requested is None:
        return min(DEFAULT_BATCH_SIZE, 2 ** int(math.log2(num_train)))
    if requested > num_train:
        raise ValueError(f"batch_size must be <= the number of training images ({num_train}), got {requested}: "
                         f"every batch is a full one, so none would fit. Pass a smaller batch size, or leave "
                         f"it unset to use one that fits")
    return requested


@dataclass(frozen=True)
class StageSettings:
    """What one progressive stage trains with."""

    index: int             # i in the formula, 0 .. M-1
    epochs: tuple          # the epochs of this stage, as Python indices (from 0)
    image_size: int
    dropout: float
    randaug: float
    mixup: float

    @property
    def number(self) -> int:
        """The stage as people count it (1 .. M): what messages and metrics.jsonl say."""
        return self.index + 1


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
    """The stage that trains epoch index ``epoch`` (from 0)."""
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
        self.stages = progressive_schedule(cfg)
        self.train_set, self.val_set = build_data(cfg)
        self.batch_size = fitting_batch_size(cfg.batch_size, len(self.train_set))
        if cfg.batch_size is None and self.batch_size != DEFAULT_BATCH_SIZE:
            log(f"batch size {self.batch_size}: the training set has {len(self.train_set)} images, too few "
                f"for the default {DEFAULT_BATCH_SIZE} (every batch is a full one); pass batch_size to choose")
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
        self.batches = BatchIterator(len(self.train_set), self.batch_size, shuffle=True, drop_last=True, seed=cfg.seed)
        self.aug_rng = np.random.default_rng([cfg.seed, 1])
        self.model_rng = np.random.default_rng([cfg.seed, 2])
        self.model.set_rng(self.model_rng)
        self.counters = _Counters()
        self._stop = None
        self._first_step = True

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
        """The config as a checkpoint records it: with the batch size and folder actually used."""
        return {**json.loads(self.cfg.to_json()), "batch_size": self.batch_size, "out": str(self.out)}

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
        mine = self.settings()
        differ = sorted(k for k in mine if k not in ("out", "epochs") and saved.get(k) != mine[k])
        if differ:
            raise ValueError(f"cannot resume from {source}: it was made with different settings: "
                             + ", ".join(f"{k}={saved.get(k)!r} (now {mine[k]!r})" for k in differ))
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
        """One optimizer step on a batch. Returns (loss, number correct)."""
        cfg = self.cfg
        images, labels = self.train_set.batch(indices, stage.image_size)       # (B, S, S, 3), (B,)
        images = augment(images, stage, self.aug_rng)
        lam, perm = 1.0, None
        if stage.mixup > 0:
            lam, perm = mixup_params(len(labels), stage.mixup, self.aug_rng)
            images = mixup_apply(images, labels, self.train_set.num_classes, lam, perm)[0]
        t = self.counters.epoch + self.batches.position / (len(self.batches) * self.batch_size)
        set_lr(self.optimizer, self.lr_at(t))
        logits = self.model(normalize(images))                                  # (B, classes)
        loss, dlogits = mixed_loss(logits, labels, lam, perm, cfg.label_smoothing)
        if not math.isfinite(loss):
            raise self._diverged(f"loss became {loss} at {self._where(self.counters.global_step + 1)}")
        self.model.zero_grad()
        self.model.backward(dlogits)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update()
        self.counters.global_step += 1
        # With mixup the image is mostly image[perm] when lam < 0.5: score against its main label.
        main_labels = labels if perm is None or lam >= 0.5 else labels[perm]
        return loss, int(np.sum(np.argmax(logits, axis=1) == main_labels))

    def _first_train_step(self, indices, stage: StageSettings, bar) -> tuple:
        """The first step of a run, announced: Numba compiles the kernels on first use (20-60 s
        the first time, then cached on disk), which would otherwise look like a hang, or make the
        bar promise an hours-long ETA."""
        self._say("compiling the Numba kernels for the first step (20-60 s the first time; "
                  "cached for later runs) ...", bar)
        start = time.perf_counter()
        result = self.train_step(indices, stage)
        self._say(f"first step done in {time.perf_counter() - start:.1f} s", bar)
        if bar is not None:
            bar.unpause()                   # leave the compile time out of the bar's rate and ETA
        self._first_step = False
        return result

    def run_epoch(self, stage: StageSettings, bar) -> dict:
        """Train the rest of the current epoch, evaluate, and return its metrics row."""
        c = self.counters
        self.model.dropout.p = stage.dropout
        start = time.perf_counter() - c.epoch_seconds
        for indices in self.batches:
            if self._first_step:
                loss, correct = self._first_train_step(indices, stage, bar)
            else:
                loss, correct = self.train_step(indices, stage)
            c.loss_sum += loss * len(indices)
            c.correct += correct
            c.seen += len(indices)
            c.epoch_seconds = time.perf_counter() - start
            self._stop.check()              # a Ctrl-C during the step stops here, at a clean boundary
            if bar is not None:
                bar.update(1)
                bar.set_postfix(stage=stage.number, size=stage.image_size, loss=f"{c.loss_sum / c.seen:.3f}",
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
