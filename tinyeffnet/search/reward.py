"""The search's reward: accuracy traded against training step time and size (MnasNet's form).

    reward = A * S**w * P**v            w = -0.07, v = -0.05 (the EfficientNetV2 paper)

    A   validation accuracy of the briefly trained candidate, in [0, 1]
    S   the candidate's training step time divided by the reference's (here: the backbone,
        efficientnetv2_tiny's table, timed in the same run, alternating with the candidate; timing.py)
    P   the candidate's parameter count divided by the backbone's (same number of classes)

What an exponent means: multiplying S by a factor f multiplies the reward by f**w, so it costs the
fraction 1 - f**w of the reward. For w = -0.07 a network twice as slow to train loses
1 - 2**-0.07 = 4.7% of its reward (MnasNet's calibration: it must be 4.7% more accurate to tie);
for v = -0.05 twice the parameters cost 1 - 2**-0.05 = 3.4%. Normalising S and P by a reference
multiplies every reward by the same constant, so the ranking of candidates does not depend on the
reference; it only makes the numbers readable (the backbone scores about its accuracy: P = 1, and
its S is 1 up to the noise of timing it against a copy of itself).
"""
from __future__ import annotations

import math

W_DEFAULT = -0.07      # exponent of the normalised step time S
V_DEFAULT = -0.05      # exponent of the normalised parameter count P


def _finite(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"reward: {name} must be a finite number, got {value!r}")
    return float(value)


def reward(accuracy: float, step_ratio: float, param_ratio: float, w: float = W_DEFAULT,
           v: float = V_DEFAULT) -> float:
    """A * S**w * P**v. accuracy in [0, 1]; step_ratio S and param_ratio P > 0; w, v finite."""
    a = _finite("accuracy", accuracy)
    s = _finite("step_ratio", step_ratio)
    p = _finite("param_ratio", param_ratio)
    w, v = _finite("w", w), _finite("v", v)
    if not 0 <= a <= 1:
        raise ValueError(f"reward: accuracy must be in [0, 1], got {accuracy!r}")
    if s <= 0 or p <= 0:
        raise ValueError(f"reward: step_ratio and param_ratio must be > 0, got {step_ratio!r} and {param_ratio!r}")
    return a * s ** w * p ** v


def mnas_cost(factor: float, exponent: float = W_DEFAULT) -> float:
    """The fraction of reward lost when S (or P) is multiplied by ``factor``: 1 - factor**exponent.
    mnas_cost(2, -0.07) = 0.047: twice the step time costs 4.7% of the reward."""
    factor, exponent = _finite("factor", factor), _finite("exponent", exponent)
    if factor <= 0:
        raise ValueError(f"mnas_cost: factor must be > 0, got {factor!r}")
    return 1.0 - factor ** exponent
