"""Training with progressive learning (EfficientNetV2 paper, section 4 and Algorithm 1).

Progressive learning trains in M stages. Stage i (i = 0 .. M-1) uses image size S_i and
regularization Phi_i (dropout rate, RandAugment magnitude, mixup alpha), both interpolated linearly
from the first stage's values (S_0, Phi_0) to the last stage's (S_e, Phi_e):

    S_i   = S_0   + (S_e   - S_0)   * i / (M - 1)
    Phi_i = Phi_0 + (Phi_e - Phi_0) * i / (M - 1)

Small images train fast but need little regularization; large images need more. The weights carry
over from stage to stage; evaluation always uses the final (eval) size. ``progressive=False`` trains
every epoch at S_e with Phi_e: the fixed-size baseline the paper compares against.

``TrainConfig.schedule`` picks the values and the rule (presets.py): "custom" and "paper" follow the
formulas above; "released" follows the released code (sizes int(S_0 + (S_e - S_0) (i + 1) / M),
constant dropout, each image mixed with its mirror in the batch). ``StageSettings.mixup_rule``
carries the mixup rule to ``train_step``.

Algorithm 1, and the function of this file that does each line:

    for i in 0 .. M-1:                                   progressive_schedule -> StageSettings
        S_i, Phi_i = interpolate(...)
        for each epoch of stage i:                       train_epoch (dropout = Phi_i's rate)
            for each batch at size S_i:                  train_step
                flip + RandAugment(Phi_i)                  augment
                mixup(Phi_i)                               mix (mixup_params / mixup_apply)
                forward, loss, backward, step, EMA         update_step (CPU or GPU)
            evaluate at the eval size (EMA weights)      evaluate_with_ema / evaluate

Numbering: everything a person reads counts from 1, as people count: messages, the progress bar,
errors and metrics.jsonl say "stage 1/4", "epoch 1/12", "step 1". In code, ``StageSettings.index``
is the formula's i (0 .. M-1) and ``StageSettings.epochs`` holds Python epoch indices (from 0);
``StageSettings.number`` is index + 1.

This file is the algorithm only: no files, no signals, no progress bar. The whole loop, without
them (runner.py's ``Trainer.run`` walks the same loop and adds checkpoints, exact resume,
metrics.jsonl, the lr schedule and Ctrl-C handling around it):

    def step(indices, stage):                                 # load the batch at S_i, one step
        images, labels = train_set.batch(indices, stage.image_size)
        return train_step(model, optimizer, images, labels, stage, rng, label_smoothing=0.1)

    for stage in progressive_schedule(cfg):
        for epoch in stage.epochs:
            train_epoch(model, batches, stage, step)
            print(stage.number, epoch + 1, evaluate(model, val_set, cfg.eval_size))
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import backend, ops
from ..data import horizontal_flip, mixup_apply, mixup_params, rand_augment
from ..models import EfficientNetV2
from ..optim import set_lr
from .config import TrainConfig
from .presets import MIXUP_RULES, released_mixup, released_stage


# ------------------------------------------------------------------------------------ the schedule
@dataclass(frozen=True)
class StageSettings:
    """What one progressive stage trains with."""

    index: int             # i in the formula, 0 .. M-1
    epochs: tuple          # the epochs of this stage, as Python indices (from 0)
    image_size: int
    dropout: float
    randaug: float
    mixup: float
    mixup_rule: str = "permutation"   # permutation: one lam, random partners; released: see presets.py

    def __post_init__(self):
        if self.mixup_rule not in ("permutation", "released"):
            raise ValueError(f"mixup_rule must be permutation or released, got {self.mixup_rule!r}")

    @property
    def number(self) -> int:
        """The stage as people count it (1 .. M): what messages and metrics.jsonl say."""
        return self.index + 1


def progressive_schedule(cfg: TrainConfig) -> list:
    """The stages of Algorithm 1: sizes and regularization interpolated linearly over M stages.

    Epochs are split as evenly as possible (earlier stages get one fewer when they don't divide).
    With ``progressive=False`` there is one stage at the final size and regularization.
    cfg: a TrainConfig, or anything with its fields; one without ``schedule`` (the exercise's
    config) is "custom". schedule="released" takes that preset's rules (``_stage_values``).
    """
    schedule = getattr(cfg, "schedule", "custom")
    rule = MIXUP_RULES[schedule]
    if not cfg.progressive:
        return [StageSettings(0, tuple(range(cfg.epochs)), cfg.max_size, cfg.dropout[1], cfg.randaug[1],
                              cfg.mixup[1], rule)]
    m = min(cfg.stages, cfg.epochs)
    counts = [cfg.epochs // m + (1 if i >= m - cfg.epochs % m else 0) for i in range(m)]
    stages, first = [], 0
    for i, count in enumerate(counts):
        size, dropout, randaug, mixup = _stage_values(cfg, schedule, i, m)
        stages.append(StageSettings(i, tuple(range(first, first + count)), size, dropout, randaug, mixup, rule))
        first += count
    return stages


def _stage_values(cfg, schedule: str, i: int, m: int) -> tuple:
    """(S_i, dropout_i, randaug_i, mixup_i) of stage i of m: the formulas above, or the released
    code's rules for schedule="released" (presets.released_stage)."""
    if schedule == "released":
        return released_stage(cfg, i, m)
    frac = i / (m - 1) if m > 1 else 1.0                     # i / (M - 1)
    size = int(round(_lerp((cfg.min_size, cfg.max_size), frac)))
    return size, _lerp(cfg.dropout, frac), _lerp(cfg.randaug, frac), _lerp(cfg.mixup, frac)


def _lerp(pair: tuple, frac: float) -> float:
    """first + (last - first) * frac: the S_i and Phi_i formulas above, for a (first, last) pair."""
    return pair[0] + (pair[1] - pair[0]) * frac


def stage_of_epoch(stages: list, epoch: int) -> StageSettings:
    """The stage that trains epoch index ``epoch`` (from 0)."""
    for stage in stages:
        if epoch in stage.epochs:
            return stage
    raise ValueError(f"epoch {epoch} is outside the schedule ({sum(len(s.epochs) for s in stages)} epochs)")


# ------------------------------------------------------------------------ inputs and the loss
def normalize(images: np.ndarray) -> np.ndarray:
    """[0, 1] -> [-1, 1] (mean = std = 0.5, as the TF EfficientNetV2 checkpoints expect)."""
    return (images - np.float32(0.5)) / np.float32(0.5)


def augment(images: np.ndarray, stage: StageSettings, rng: np.random.Generator) -> np.ndarray:
    """Flip and RandAugment (2 layers) at the stage's magnitude. images (N, S, S, 3) in [0, 1]."""
    images = horizontal_flip(images, rng)
    if stage.randaug > 0:
        images = rand_augment(images, rng, num_layers=2, magnitude=stage.randaug)
    return images


# ------------------------------------------------------------------------------------ one step
class NonFiniteLoss(FloatingPointError):
    """The loss of a step was NaN or Inf. Raised before the backward pass, so the weights are
    untouched: one step on a NaN gradient would make every weight NaN."""

    def __init__(self, loss: float):
        super().__init__(f"loss became {loss}")
        self.loss = loss


def train_step(model, optimizer, images, labels, stage: StageSettings, rng: np.random.Generator, *,
               label_smoothing: float, lr: float | None = None, ema=None) -> tuple:
    """One optimizer step of the stage on one batch. Returns (loss, number correct) as Python numbers.

    images (B, S_i, S_i, 3) in [0, 1] at the stage's size, labels (B,) ints, both on the host (the
    data pipeline is NumPy); the model may live on the CPU or on the GPU (``model.to("cuda")``):
    ``update_step`` moves the batch to it. ``rng`` draws the augmentation and mixup; ``lr`` (None:
    keep the optimizer's) is the schedule's value for this step; ``ema`` (or None) is updated after
    the step. NonFiniteLoss if the loss is NaN or Inf. The step knows nothing of epochs,
    checkpoints or counters: the caller keeps those.
    """
    # 1. Regularization Phi_i: flip + RandAugment, then mixup by the stage's rule.
    images = augment(images, stage, rng)                                      # (B, S, S, 3)
    targets, main_labels = labels, labels                                     # (B,) class indices
    if stage.mixup > 0:
        images, targets, main_labels = mix(images, labels, model.num_classes, stage, rng)   # targets (B, K)
    if lr is not None:
        set_lr(optimizer, lr)
    # 2. Forward, loss, backward, update, EMA: on whichever device holds the model.
    loss, logits = update_step(model, optimizer, normalize(images), targets, label_smoothing, ema=ema)
    predicted = np.argmax(backend.to_host(logits), axis=1)                    # (B,)
    return float(backend.to_host(loss)), int(np.sum(predicted == main_labels))


def mix(images, labels, num_classes: int, stage: StageSettings, rng: np.random.Generator) -> tuple:
    """Mixup at the stage's alpha by the stage's rule. Returns (images, targets (B, K), main labels
    (B,)): the label of what each mixed image mostly is, which the training accuracy scores.

        permutation   lam ~ Beta(alpha, alpha), one per batch; x~ = lam x + (1 - lam) x[perm] with a
                      random permutation; the main label is y[perm] where lam < 1/2
        released      one lam >= 1/2 per image, the partner the batch reversed
                      (presets.released_mixup); the main label is always the image's own
    """
    if stage.mixup_rule == "released":
        images, targets, _ = released_mixup(images, labels, num_classes, stage.mixup, rng)
        return images, targets, labels
    lam, perm = mixup_params(len(labels), stage.mixup, rng)
    images, targets = mixup_apply(images, labels, num_classes, lam, perm)
    return images, targets, labels if lam >= 0.5 else labels[perm]


def update_step(model, optimizer, x, targets, label_smoothing: float = 0.0, *, ema=None,
                check_finite: bool = True) -> tuple:
    """Forward, loss, backward, optimizer step and EMA on one prepared batch, on the model's device.

        logits = model(x);  L, dL/dlogits = softmax_cross_entropy(logits, targets, ls)
        (L NaN or Inf: NonFiniteLoss, nothing updated);  clear grads;  model.backward;  optimizer.step

    x: (B, S, S, 3) normalized images, numpy or already on the model's device (a numpy batch is cast
    to the model's dtype and moved there); targets: (B,) class indices, or (B, K) probabilities
    (mixup: lam onehot(y) + (1 - lam) onehot(y[perm]); cross-entropy is linear in the target, so this
    is the lam-weighted sum of the two losses). The same code runs on every device: the loss and
    the model's layers ask ``backend.ops_for`` for the tier. Returns (loss, logits): a 0-d value
    and (B, K), both on the model's device. ``check_finite`` reads the loss (one scalar: on a GPU,
    the step's only wait for the device); False skips the check and keeps the step asynchronous.
    """
    tier = backend.ops_for(_weights(model))                                  # the tier holding the model
    x = _on_model_device(model, x)                                           # (B, S, S, 3)
    logits = model(x)                                                        # (B, K)
    loss, dlogits = tier.softmax_cross_entropy(logits, _on_model_dtype(model, targets), label_smoothing)
    if check_finite and not math.isfinite(float(backend.to_host(loss))):     # before any weight moves
        raise NonFiniteLoss(float(backend.to_host(loss)))
    model.zero_grad()                                # gradients accumulate: clear them first
    _backward_without_input_gradient(model, dlogits)
    optimizer.step()
    if ema is not None:
        ema.update()
    return loss, logits


def _backward_without_input_gradient(model, dlogits) -> None:
    """model.backward, skipping the gradient of the images where the model can (EfficientNetV2's
    ``input_gradient=False``); any other Module's plain backward."""
    if isinstance(model, EfficientNetV2):
        model.backward(dlogits, input_gradient=False)
    else:
        model.backward(dlogits)


def _weights(model):
    """One weight array of the model: it tells the device and dtype that every parameter shares."""
    return next(iter(model.parameters())).data


def _on_model_dtype(model, a):
    """A float array (images, probability targets) in the model's dtype; integer labels unchanged."""
    dtype = _weights(model).dtype
    if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.dtype != dtype:
        return a.astype(dtype)
    return a


def _on_model_device(model, x):
    """The batch on the device of the model's weights (a numpy batch cast to their dtype first)."""
    on_host = isinstance(_weights(model), np.ndarray)
    x = _on_model_dtype(model, x)
    return backend.to_host(x) if on_host else backend.to_device(x)


# ------------------------------------------------------------------------------- the loop
def train_epoch(model, batches, stage: StageSettings, step, after_step=None) -> None:
    """Train one epoch of a stage: Algorithm 1's inner loop.

    batches: iterable of index arrays (B,), one per batch (a BatchIterator: shuffled, full
    batches; one resumed mid-epoch yields only the rest). step(indices, stage) -> (loss, correct)
    loads the batch at the stage's size and takes one ``train_step``. after_step(n, loss, correct),
    if given, is called after every step: the runner counts, times and reports there.
    """
    model.dropout.p = stage.dropout                       # Phi_i: the dropout rate before the classifier
    for indices in batches:
        loss, correct = step(indices, stage)
        if after_step is not None:
            after_step(len(indices), loss, correct)


def evaluate(model, dataset, image_size: int, batch_size: int = 250) -> tuple:
    """(mean loss, accuracy) of the model in eval mode over the whole dataset at ``image_size``."""
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    for start in range(0, len(dataset), batch_size):
        indices = np.arange(start, min(start + batch_size, len(dataset)))
        images, labels = dataset.batch(indices, image_size)                   # (b, S, S, 3), (b,)
        logits = model(normalize(images))                                     # (b, classes)
        loss, _ = ops.softmax_cross_entropy(logits, labels)
        total_loss += float(loss) * len(indices)
        correct += int(np.sum(np.argmax(logits, axis=1) == labels))
    model.train(was_training)
    return total_loss / len(dataset), correct / len(dataset)


def evaluate_with_ema(model, ema, dataset, image_size: int) -> tuple:
    """``evaluate`` with the EMA weights when there is an EMA (they generalize better than the
    last step's weights), with the model's own weights otherwise."""
    if ema is None:
        return evaluate(model, dataset, image_size)
    with ema.applied():
        return evaluate(model, dataset, image_size)
