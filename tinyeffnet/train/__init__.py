"""Training with progressive learning (EfficientNetV2 paper, section 4 and Algorithm 1).

Read algorithm.py first: it is the whole training algorithm in one sitting, with no files, signals
or progress bar in the way. The other files are what turns it into a run you can leave overnight.

    algorithm.py   the paper's Algorithm 1: the stage schedule (S_i, Phi_i interpolated linearly
                   over M stages), normalize, augment, one step of Algorithm 1
                   (``train_step``) around the device-neutral ``update_step`` (CPU or GPU),
                   ``train_epoch`` and ``evaluate``
    config.py      ``TrainConfig``: every setting of a run, each checked when the config is made
    presets.py     the progressive presets (``schedule`` custom | paper | released): the paper's
                   Table 6, the released code's values and rules (sizes, mixup)
    runner.py      ``Trainer`` and ``train()``: builds data, model and optimizer, walks the schedule,
                   checkpoints (atomic, never non-finite), exact resume, metrics.jsonl, Ctrl-C,
                   the progress bar; ``TrainingDiverged``
    plots.py       ``read_metrics`` and ``plot_curves`` (curves.png)

Imports go one way: algorithm imports config and presets; runner imports algorithm, config, presets
and plots; config imports presets; presets and plots import nothing from this package. Everything
is importable from here, as from the single module this package once was:
``from tinyeffnet.train import train``.
"""
from .algorithm import (NonFiniteLoss, StageSettings, augment, evaluate, evaluate_with_ema, mix, normalize,
                        progressive_schedule, stage_of_epoch, train_epoch, train_step, update_step)
from .config import (DEFAULT_BATCH_SIZE, DEFAULT_OUT, TrainConfig, fitting_batch_size, output_folder,
                     upgrade_settings)
from .presets import SCHEDULED_FIELDS, SCHEDULES, preset_values, released_mixup
from .plots import plot_curves, read_metrics
from .runner import (CHECKPOINT, CURVES, METRICS, Trainer, TrainingDiverged, build_data, build_lr_schedule,
                     build_optimizer, load_checkpoint, non_finite_entry, save_checkpoint, train)

# Private helpers, importable here as they were from the single module (for tests and old code).
from .config import (_check_choice, _check_folder, _check_int, _check_model, _check_number,  # noqa: F401
                     _check_pair, _check_path, _interval, _is_bool)
from .runner import (_Counters, _deferred_interrupts, _interactive, _one_line, _prefixed,  # noqa: F401
                     _StopRequested, _Subset, _unprefixed)

__all__ = [
    # algorithm.py
    "StageSettings", "progressive_schedule", "stage_of_epoch", "normalize", "augment",
    "NonFiniteLoss", "train_step", "mix", "update_step", "train_epoch", "evaluate", "evaluate_with_ema",
    # config.py
    "TrainConfig", "DEFAULT_BATCH_SIZE", "DEFAULT_OUT", "output_folder", "fitting_batch_size", "upgrade_settings",
    # presets.py
    "SCHEDULES", "SCHEDULED_FIELDS", "preset_values", "released_mixup",
    # runner.py
    "Trainer", "train", "TrainingDiverged", "CHECKPOINT", "METRICS", "CURVES", "save_checkpoint",
    "load_checkpoint", "non_finite_entry", "build_data", "build_optimizer", "build_lr_schedule",
    # plots.py
    "read_metrics", "plot_curves",
]
