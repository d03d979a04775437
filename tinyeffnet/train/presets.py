"""The progressive-learning presets: ``TrainConfig(schedule="custom" | "paper" | "released")``.

A preset fills in the sizes and the regularization of a run that the user left as None; any value
given explicitly wins (``TrainConfig(schedule="paper", min_size=32, max_size=48, eval_size=58)``
trains the paper's regularization on small images). The preset's row is chosen by the model:
efficientnetv2_s, _m, _l take the S, M, L rows; every other model (efficientnetv2_tiny, the B
variants, XL, a network read from ``arch``) takes the S row, the smallest of the tables.

custom     this library's own defaults, the README's main job on the built-in 32-48 px images:
           size 32 -> 48, evaluated at 48, dropout 0.05 -> 0.2, RandAugment 0 -> 5, mixup 0 -> 0.1.
           Algorithm 1's interpolation, one mixup weight per batch, a random partner permutation.

paper      EfficientNetV2 (Tan & Le, ICML 2021), Algorithm 1 with Table 6's four stages. Stage i of M:
               S_i   = S_0   + (S_e   - S_0)   * i / (M - 1)      (rounded to the nearest pixel)
               Phi_i = Phi_0 + (Phi_e - Phi_0) * i / (M - 1)      each regularization magnitude
           Table 6 (size, RandAugment magnitude, mixup alpha, dropout rate; first -> last stage):
               EfficientNetV2-S   128 -> 300    5 -> 15    0 -> 0      0.1 -> 0.3
               EfficientNetV2-M   128 -> 380    5 -> 20    0 -> 0.2    0.1 -> 0.4
               EfficientNetV2-L   128 -> 380    5 -> 25    0 -> 0.4    0.1 -> 0.5
           Evaluation about 20% above the last training size: S at 384, M and L at 480.
           So S trains at 128, 185, 243, 300 px. Mixup as in ``custom`` (the paper does not say how
           it pairs the images).

released   What the released code does (github.com/google/automl, efficientnetv2/main.py and
           effnetv2_configs.py), which differs from the paper in four ways:
             * sizes: S_i = int(S_0 + (S_e - S_0) * (i + 1) / M): the first stage is not S_0, and
               int() truncates. With S_0 = 128, S trains at 171, 214, 257, 300 px. (The code's S_0
               is its ImageNet base size, 128; here it is min_size.)
             * RandAugment magnitude np.linspace(5, top, M)[i] and mixup alpha np.linspace(0, top, M)[i]
               (Algorithm 1's interpolation; for M = 1, np.linspace gives the FIRST value)
             * dropout is not scheduled: every stage uses the model's dropout_rate, the last value of
               the ``dropout`` pair (a first value given by the user is ignored)
             * mixup: each image draws its own weight lam ~ Beta(alpha, alpha), taken as
               max(lam, 1 - lam) >= 1/2, and is mixed with the image at the mirrored position of the
               batch (the batch in reversed order, not a random permutation)
           Per model (train size, eval size, dropout, RandAugment top, mixup top), all four stages:
               EfficientNetV2-S   300   384   0.2   10   0
               EfficientNetV2-M   384   480   0.3   15   0.2
               EfficientNetV2-L   384   480   0.4   20   0.5
           NOT reproduced: the released code also applies cutmix with the same alpha as mixup (the
           first half of each batch mixed by mixup, the second half by cutmix). This library has no
           cutmix; with this preset the whole batch is mixed by mixup.

Both published presets train four stages, like the library's default ``stages=4``. Their sizes are
ImageNet's: on the built-in data, give min_size, max_size and eval_size explicitly.
"""
from __future__ import annotations

import numpy as np

from ..data import one_hot

SCHEDULES = ("custom", "paper", "released")

# The TrainConfig fields whose None means "the schedule's value".
SCHEDULED_FIELDS = ("min_size", "max_size", "eval_size", "dropout", "randaug", "mixup")

# How train_step mixes a batch (StageSettings.mixup_rule): see ``released_mixup``.
MIXUP_RULES = {"custom": "permutation", "paper": "permutation", "released": "released"}

CUSTOM = dict(min_size=32, max_size=48, eval_size=48, dropout=(0.05, 0.2), randaug=(0.0, 5.0), mixup=(0.0, 0.1))

# Table 6 of the paper: the first and the last stage's values; the evaluation sizes the paper gives
# (about 20% above the last training size).
PAPER = {
    "S": dict(min_size=128, max_size=300, eval_size=384, dropout=(0.1, 0.3), randaug=(5.0, 15.0), mixup=(0.0, 0.0)),
    "M": dict(min_size=128, max_size=380, eval_size=480, dropout=(0.1, 0.4), randaug=(5.0, 20.0), mixup=(0.0, 0.2)),
    "L": dict(min_size=128, max_size=380, eval_size=480, dropout=(0.1, 0.5), randaug=(5.0, 25.0), mixup=(0.0, 0.4)),
}

# effnetv2_configs.py: (train size, eval size, dropout, RandAugment top, mixup top); main.py starts
# sizes at 128, RandAugment at 5 and mixup at 0, and keeps dropout constant.
RELEASED_TABLE = {"S": (300, 384, 0.2, 10.0, 0.0), "M": (384, 480, 0.3, 15.0, 0.2), "L": (384, 480, 0.4, 20.0, 0.5)}
RELEASED = {row: dict(min_size=128, max_size=train, eval_size=evaluate, dropout=(dropout, dropout),
                      randaug=(5.0, randaug), mixup=(0.0, mixup))
            for row, (train, evaluate, dropout, randaug, mixup) in RELEASED_TABLE.items()}

ROWS = {"efficientnetv2_s": "S", "efficientnetv2_m": "M", "efficientnetv2_l": "L"}


def preset_row(model: str, arch: str | None = None) -> str:
    """"S", "M" or "L": the row of the tables a model takes. efficientnetv2_s/m/l (or torchvision's
    efficientnet_v2_s spelling) take their own; any other model, or a network read from ``arch``,
    the S row."""
    if arch is not None or not isinstance(model, str):
        return "S"
    return ROWS.get(model.lower().replace("efficientnet_v2_", "efficientnetv2_"), "S")


def has_own_row(model: str, arch: str | None = None) -> bool:
    """Whether the model has a row of its own in the tables (False: it borrows the S row)."""
    return arch is None and isinstance(model, str) and \
        model.lower().replace("efficientnet_v2_", "efficientnetv2_") in ROWS


def preset_values(schedule: str, model: str, arch: str | None = None) -> dict:
    """The values of SCHEDULED_FIELDS that ``schedule`` gives ``model``: a new dict."""
    if schedule == "custom":
        return dict(CUSTOM)
    table = {"paper": PAPER, "released": RELEASED}[schedule]
    return dict(table[preset_row(model, arch)])


# ------------------------------------------------------------------------------ the released rules
def released_stage(cfg, i: int, m: int) -> tuple:
    """(image size, dropout, RandAugment magnitude, mixup alpha) of stage i (0 .. m-1) of m, by the
    released code's rules (see the module docstring):

        S_i = int(S_0 + (S_e - S_0) * (i + 1) / m)        dropout_i = dropout[1]
        randaug_i = linspace(randaug[0], randaug[1], m)[i]  mixup_i = linspace(mixup[0], mixup[1], m)[i]
    """
    ratio = (i + 1) / m                                   # main.py: float(stage + 1) / total_stages
    size = int(cfg.min_size + (cfg.max_size - cfg.min_size) * ratio)
    randaug = float(np.linspace(cfg.randaug[0], cfg.randaug[1], m)[i])
    mixup = float(np.linspace(cfg.mixup[0], cfg.mixup[1], m)[i])
    return size, float(cfg.dropout[1]), randaug, mixup


def released_mixup(images: np.ndarray, labels: np.ndarray, num_classes: int, alpha: float,
                   rng: np.random.Generator) -> tuple:
    """Mixup as the released code does it. images (B, S, S, C), labels (B,) ints. Returns
    (mixed images (B, S, S, C), targets (B, K), lam (B,)):

        lam_b = max(l_b, 1 - l_b),  l_b ~ Beta(alpha, alpha), one per image (so lam_b >= 1/2)
        x~_b  = lam_b x_b + (1 - lam_b) x_{B-1-b}          the batch in reversed order
        t_b   = lam_b onehot(y_b) + (1 - lam_b) onehot(y_{B-1-b})

    Each image keeps at least half of itself, so its main label is always its own.
    """
    lam = rng.beta(alpha, alpha, size=len(labels))
    lam = np.maximum(lam, 1.0 - lam)                                         # (B,) in [1/2, 1]
    w = lam.astype(images.dtype)
    mixed = w[:, None, None, None] * images + (1 - w)[:, None, None, None] * images[::-1]
    targets = one_hot(labels, num_classes, images.dtype)                    # (B, K)
    targets = w[:, None] * targets + (1 - w)[:, None] * targets[::-1]
    return mixed, targets, lam
