"""S, the normalised training step time of the reward, measured so that noise does not decide it.

The paper's S is the candidate's training step time; on a shared 2-core machine a single timing
can be off by 2x (another process, a thread pool waking up). So each candidate is timed the way
the benchmarks time contenders (docs/DESIGN.md section 7), against a reference network timed in
the same window:

    compile     ``warmup`` (2) untimed steps of each model first: Numba compiles a kernel on the
                first call with new shapes (seconds), and the optimizer's first step differs
                (momentum buffers are created): neither is the network's speed
    alternate   ``rounds`` rounds; in round r both models take one step, the candidate first in
                even rounds and the reference first in odd ones, so a slow spell hits both
    ratio       per round s_r = t_candidate,r / t_reference,r;  S = median_r s_r
    spread      (max_r s_r - min_r s_r) / S: how far the rounds disagreed (reported, not used)

A step is ``train.algorithm.train_step`` (augment, forward, loss, backward, SGD update) on one
fixed batch of (batch_size, image_size, image_size, 3) random images: what the search's training
does per step, without the data loading. The reference is the backbone (efficientnetv2_tiny's
table) unless the caller passes another one.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np

from ..optim import SGD
from ..train.algorithm import StageSettings, train_step


@dataclass(frozen=True)
class StepTiming:
    """A candidate's step time against the reference's, from alternating rounds."""

    step_time_s: float          # median candidate step (seconds)
    reference_s: float          # median reference step in the same rounds (seconds)
    ratio: float                # S: median over rounds of candidate / reference
    spread: float               # (max - min) / median of the per-round ratios
    rounds: int

    def to_dict(self) -> dict:
        return {"step_time_s": self.step_time_s, "reference_step_time_s": self.reference_s,
                "step_ratio": self.ratio, "step_ratio_spread": self.spread, "timing_rounds": self.rounds}


def _stepper(model, images, labels, seed: int):
    """A function that takes one training step of ``model`` on the fixed batch and returns its seconds."""
    stage = StageSettings(0, (0,), images.shape[1], 0.0, 0.0, 0.0)
    optimizer = SGD(list(model.parameters()), lr=1e-3, momentum=0.9)
    rng = np.random.default_rng(seed)
    model.train()

    def step(clock=time.perf_counter) -> float:
        start = clock()
        train_step(model, optimizer, images, labels, stage, rng, label_smoothing=0.1)
        return clock() - start
    return step


def measure_step_time(model, reference, image_size: int, batch_size: int = 64, rounds: int = 5,
                      warmup: int = 2, seed: int = 0) -> StepTiming:
    """Time ``model`` against ``reference`` (two networks with the same number of classes): see the
    module docstring. Both models' weights change (they take real SGD steps): pass throwaway copies."""
    for name, value, low in (("image_size", image_size, 8), ("batch_size", batch_size, 1), ("rounds", rounds, 1),
                             ("warmup", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"measure_step_time: {name} must be an int >= {low}, got {value!r}")
    rng = np.random.default_rng(seed)
    images = rng.random((batch_size, image_size, image_size, 3), dtype=np.float32)      # (B, S, S, 3)
    labels = rng.integers(0, model.num_classes, batch_size)                            # (B,)
    candidate, ref = _stepper(model, images, labels, seed), _stepper(reference, images, labels, seed)
    for _ in range(warmup):                           # compile (and warm the caches): not timed
        candidate(), ref()
    times, ref_times = [], []
    for r in range(rounds):
        if r % 2 == 0:
            times.append(candidate())
            ref_times.append(ref())
        else:
            ref_times.append(ref())
            times.append(candidate())
    ratios = [t / max(u, 1e-12) for t, u in zip(times, ref_times)]
    s = statistics.median(ratios)
    return StepTiming(statistics.median(times), statistics.median(ref_times), s,
                      (max(ratios) - min(ratios)) / s, rounds)
