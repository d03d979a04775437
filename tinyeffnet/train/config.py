"""The settings of a training run: ``TrainConfig``, every field checked when the config is made, and
what its "choose for me" Nones resolve to (``output_folder``, ``fitting_batch_size``; the sizes and
regularization that the progressive preset fills in are in presets.py).

The checks name the argument, what it must be and what it got, so that a typo on the command line
or in a notebook fails at once with one clear line instead of deep inside the first training step.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import DATASETS
from ..models import list_models
from . import presets

DEFAULT_BATCH_SIZE = 64          # what batch_size=None means when the training set is large enough
DEFAULT_OUT = "runs/shapes"      # what out=None means for the built-in data (runs/<dataset> for others)
LR_SCHEDULES = ("cosine", "exponential")


# ----------------------------------------------------------------------------------- configuration
@dataclass
class TrainConfig:
    """Every setting of a run, each checked when the config is made. The defaults are the README's
    main job: efficientnetv2_tiny on the built-in shapes dataset, batches of 64, four progressive
    stages from 32 to 48 px, evaluated at 48 px, the last training size, written to runs/shapes.
    (On ImageNet the paper evaluates about 20% above the last training size; on these small images
    we kept the two equal: an early stage evaluated at twice its training size lost most of its
    accuracy in our runs.)

    Two more settings may be left as None, meaning "choose for me" (besides the schedule's six, below):
        batch_size=None   64, or, for a training set of fewer than 64 images, the largest power of
                          two that fits (every batch is a full one). A number is used as given, and
                          one larger than the training set is an error.
        out=None          runs/<dataset> for the built-in data (runs/shapes for the default),
                          runs/<folder name> for an image folder, so that a run on other data never
                          overwrites the main job's results.

    ``schedule`` chooses the progressive-learning preset (presets.py): "custom" (the default, this
    library's values above), "paper" (Algorithm 1 with the paper's Table 6) or "released" (the rules
    and values of the released code). Six fields left as None take the preset's value: min_size,
    max_size, eval_size, dropout, randaug, mixup; a value given explicitly wins, so
    ``TrainConfig(schedule="paper", min_size=32, max_size=48, eval_size=58)`` trains the paper's
    regularization on small images. After construction the config holds the resolved values (what
    to_json() and a checkpoint record). Hence ``dataclasses.replace(cfg, schedule="paper")`` keeps
    the values cfg resolved; pass the fields to re-resolve as None (``presets.SCHEDULED_FIELDS``).
    ``lr_schedule`` is the learning-rate schedule (named ``schedule`` up to 0.4.0; such checkpoints
    still resume, see ``upgrade_settings``).

    ``dataset`` names a built-in dataset (``data.DATASETS``: "shapes", "clutter"); it is used when
    ``data`` is None, and naming another than "shapes" together with an image folder is an error.
    ``arch`` is a stage-table JSON file (the format ``tinyeffnet search`` writes as best.json,
    see search/arch.py): the network is built from it instead of ``model``.
    """

    model: str = "efficientnetv2_tiny"
    arch: str | None = None              # None: build ``model``; else a stage-table JSON file
    dataset: str = "shapes"              # built-in data: a name in data.DATASETS
    data: str | None = None              # None: the built-in ``dataset``; else an image folder
    train_samples: int = 8000            # built-in data only
    val_samples: int = 1000
    val_fraction: float = 0.1            # image folder: share of images held out for validation
    epochs: int = 12
    batch_size: int | None = None        # None: DEFAULT_BATCH_SIZE, or what fits a small training set
    optimizer: str = "adamw"             # adamw | rmsprop (the paper's TF flavour) | sgd
    lr: float = 4e-3
    weight_decay: float = 0.05           # AdamW's decoupled decay (rmsprop/sgd: L2, use ~1e-5)
    lr_schedule: str = "cosine"          # cosine | exponential (the paper: 0.97 every 2.4 epochs)
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    drop_path_rate: float = 0.1
    ema_decay: float = 0.995             # 0 disables the EMA; evaluation uses the EMA weights
    progressive: bool = True
    schedule: str = "custom"             # progressive preset: custom | paper | released (presets.py)
    stages: int = 4
    # None below: the schedule's value (custom: 32, 48, 48, (0.05, 0.2), (0.0, 5.0), (0.0, 0.1)).
    min_size: int | None = None          # S_0
    max_size: int | None = None          # S_e, the last training size
    eval_size: int | None = None         # validation size (the paper's ImageNet runs: ~20% above S_e)
    dropout: tuple | None = None         # (first stage, last stage)
    randaug: tuple | None = None         # RandAugment magnitude on the 0..30 scale
    mixup: tuple | None = None           # mixup alpha (0 = off)
    seed: int = 0
    out: str | None = None               # None: DEFAULT_OUT, or runs/<data folder name>

    def __post_init__(self):
        """Check every field, naming the argument, what it must be and what it got; store plain
        Python types (np.int64 -> int, lists -> tuples) so that the config is always JSON."""
        self.model = _check_model(self.model)
        self.arch = _check_file("arch", self.arch)
        self.dataset = _check_choice("dataset", self.dataset, tuple(sorted(DATASETS)))
        self.data = _check_folder("data", self.data)
        if self.data is not None and self.dataset != "shapes":
            raise ValueError(f"dataset and data are exclusive: data={self.data!r} is an image folder, "
                             f"so dataset={self.dataset!r} (a built-in dataset) would be ignored; pass one")
        for name in ("train_samples", "val_samples", "epochs", "stages"):
            setattr(self, name, _check_int(name, getattr(self, name), 1))
        self.batch_size = _check_int("batch_size", self.batch_size, 1, none_means="choose one that fits")
        self.schedule = _check_schedule(self.schedule)
        from_preset = self._resolve_schedule()
        self.min_size = _check_int("min_size", self.min_size, 8)
        try:
            self.max_size = _check_int("max_size", self.max_size, self.min_size, minimum_name="min_size")
        except ValueError as error:
            if "min_size" not in from_preset:
                raise
            raise ValueError(f"{error}; min_size={self.min_size} is the {self.schedule} schedule's first size: "
                             f"give min_size too") from None
        self.eval_size = _check_int("eval_size", self.eval_size, 8)
        self.seed = _check_int("seed", self.seed, 0)
        self.optimizer = _check_choice("optimizer", self.optimizer, ("adamw", "rmsprop", "sgd"))
        self.lr_schedule = _check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
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

    def _resolve_schedule(self) -> tuple:
        """Fill each of presets.SCHEDULED_FIELDS left as None with the schedule's value for this
        model; return the names filled. (Checked afterwards like any value.)"""
        values = presets.preset_values(self.schedule, self.model, self.arch)
        filled = tuple(name for name in presets.SCHEDULED_FIELDS if getattr(self, name) is None)
        for name in filled:
            setattr(self, name, values[name])
        return filled

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


def _check_schedule(value) -> str:
    """One of presets.SCHEDULES; the 0.4.0 learning-rate names get a pointer to lr_schedule."""
    if value in LR_SCHEDULES:
        raise ValueError(f"schedule must be {', '.join(presets.SCHEDULES[:-1])} or {presets.SCHEDULES[-1]}, "
                         f"got {value!r}: the learning-rate schedule is lr_schedule={value!r} (renamed in 0.5.0)")
    return _check_choice("schedule", value, presets.SCHEDULES)


def _check_model(name) -> str:
    """A model name create_model knows (torchvision's efficientnet_v2_s spelling accepted)."""
    known = list_models()
    spelled = name.lower().replace("efficientnet_v2_", "efficientnetv2_") if isinstance(name, str) else None
    if spelled not in known:
        raise ValueError(f"model must be one of {', '.join(known)}, got {name!r}")
    return name


def _check_path(name: str, value, kind: str = "folder"):
    """None, or a str / os.PathLike, returned as a str (so that the config stays JSON)."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)) or os.fspath(value) == "":
        raise ValueError(f"{name} must be a {kind} path (str) or None, got {value!r}")
    return os.fspath(value)


def _check_file(name: str, value):
    """None, or the path of an existing file."""
    value = _check_path(name, value, kind="file")
    if value is not None and not os.path.isfile(value):
        why = "it is a folder" if os.path.isdir(value) else "it does not exist"
        raise ValueError(f"{name} must be an existing stage-table JSON file, got {value!r}: {why}")
    return value


def _check_folder(name: str, value):
    """None, or the path of an existing folder."""
    value = _check_path(name, value)
    if value is not None and not os.path.isdir(value):
        why = "it is not a folder" if os.path.exists(value) else "it does not exist"
        raise ValueError(f"{name} must be an existing folder with one subfolder per class, got {value!r}: {why}")
    return value


# ------------------------------------------------------------- what the config's Nones resolve to
def output_folder(cfg: TrainConfig) -> Path:
    """Where a run writes: ``cfg.out``, or when it is None runs/shapes (the default built-in data),
    runs/<dataset> (another built-in dataset) or runs/<folder name> (an image folder), so that other
    runs never overwrite the main job's."""
    if cfg.out is not None:
        return Path(cfg.out)
    if cfg.data is None:
        return Path(DEFAULT_OUT) if cfg.dataset == "shapes" else Path("runs") / cfg.dataset
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


# ----------------------------------------------------------------- settings of older checkpoints

def upgrade_settings(saved: dict) -> dict:
    """The settings a checkpoint recorded (its 'config' entry), in today's field names; a new dict.

    Up to 0.4.0, ``schedule`` named the learning-rate schedule ("cosine" | "exponential"); it is now
    ``lr_schedule``, and ``schedule`` names the progressive preset. Such a checkpoint was made before
    the presets existed, so with today's "custom" (the default a missing setting stands for)."""
    saved = dict(saved)
    if "lr_schedule" not in saved and saved.get("schedule") in LR_SCHEDULES:
        saved["lr_schedule"] = saved.pop("schedule")
    return saved
