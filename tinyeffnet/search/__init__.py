"""tinyeffnet.search: training-aware architecture search (EfficientNetV2 paper, section 3.3).

The paper searched, per stage, the conv op (MBConv or Fused-MBConv), the kernel (3x3, 5x5), the
expansion ratio (1, 4, 6) and the number of layers, keeping the backbone's channel widths; it
sampled up to 1000 networks at random, trained each for about 10 epochs at a reduced image size,
and ranked them by the reward

    reward = A * S**w * P**v          w = -0.07, v = -0.05

(A accuracy, S normalised training step time, P normalised parameter count). This package does the
same at laptop scale, on a built-in dataset, read in this order:

    space.py        the search space: sample a valid stage table, mutate one choice
    reward.py       the reward formula and what S and P are normalised by
    timing.py       S: the median training step after compilation, alternating with the reference
    strategies.py   random sampling (the paper) and regularised evolution (Real et al. 2019)
    run.py          the loop: trials.jsonl (append-only, resumable), best.json, pareto.png
    arch.py         the stage-table file (best.json) that ``tinyeffnet train --arch`` reads

    >>> from tinyeffnet.search import search
    >>> best = search(out="runs/search", trials=8, epochs_per_trial=2)

Nothing but the command line imports this package, and the training code reads arch files through
arch.py alone, so ``tinyeffnet.search`` loads its parts on first use (PEP 562 ``__getattr__``).
"""
import importlib

# The reward is imported at once: its submodule has the function's name, and importing the submodule
# (run.py does) would otherwise put the module where ``tinyeffnet.search.reward`` should be the
# function. reward.py imports only math, so this costs nothing.
from .reward import mnas_cost as mnas_cost, reward as reward

# name -> the submodule that defines it, imported on first use
_LAZY = {
    "Arch": "arch", "read_arch": "arch", "write_arch": "arch", "arch_from_dict": "arch",
    "SearchSpace": "space", "backbone_space": "space",
    "StepTiming": "timing", "measure_step_time": "timing",
    "RandomSearch": "strategies", "RegularizedEvolution": "strategies", "make_strategy": "strategies",
    "search": "run", "SearchConfig": "run", "read_trials": "run", "plot_pareto": "run",
}

__all__ = sorted([*_LAZY, "reward", "mnas_cost"])


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'tinyeffnet.search' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value
