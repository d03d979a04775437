"""Which candidate to try next: random sampling (the paper) or regularised evolution.

A strategy proposes trial i's candidate from i, the finished trials before it (oldest first, each
with its candidate and reward) and a generator seeded with (seed, i). Nothing else goes in, so a
search stopped after k trials and resumed from its trials.jsonl proposes exactly what an
uninterrupted one would have.

Random search (EfficientNetV2, section 3.3: up to 1000 networks sampled at random):

    candidate_i = sample(space)

Regularised evolution (Real et al., "Regularized Evolution for Image Classifier Architecture
Search", AAAI 2019): a population of the P most recent trials (the oldest is removed as each new
one joins: "aging", which is the regularisation) and tournaments of T:

    i < P:      candidate_i = sample(space)                        the initial population
    i >= P:     population  = the last P trials
                contenders  = T of them, drawn without replacement
                parent      = the contender with the highest reward
                candidate_i = mutate(parent)                       one field of one stage changed

Both start with trial 0 = the backbone itself, so that every search reports the reference point
(S = P = 1, reward = its accuracy) next to the candidates.
"""
from __future__ import annotations

import numpy as np


class RandomSearch:
    """Trial 0 the backbone, every later trial a uniform sample of the space."""

    name = "random"

    def __init__(self, space):
        self.space = space

    def propose(self, index: int, history: list, rng: np.random.Generator) -> tuple:
        """history: the finished trials before ``index`` as dicts with "candidate" and "reward"."""
        if index == 0:
            return self.space.backbone_candidate()
        return self.space.sample(rng)


class RegularizedEvolution:
    """Aging evolution: population ``population``, tournaments of ``sample_size`` (see the module doc)."""

    name = "evolution"

    def __init__(self, space, population: int = 8, sample_size: int = 3):
        for name, value, low in (("population", population, 2), ("sample_size", sample_size, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"RegularizedEvolution: {name} must be an int >= {low}, got {value!r}")
        if sample_size > population:
            raise ValueError(f"RegularizedEvolution: sample_size ({sample_size}) must be <= population ({population})")
        self.space = space
        self.population = population
        self.sample_size = sample_size

    def propose(self, index: int, history: list, rng: np.random.Generator) -> tuple:
        if index == 0:
            return self.space.backbone_candidate()
        if index < self.population:
            return self.space.sample(rng)
        alive = history[-self.population:]                               # the oldest has aged out
        picks = rng.choice(len(alive), size=self.sample_size, replace=False)
        parent = max((alive[int(k)] for k in picks), key=lambda trial: trial["reward"])
        return self.space.mutate(parent["candidate"], rng)


STRATEGIES = ("random", "evolution")


def make_strategy(name: str, space, population: int = 8, sample_size: int = 3):
    """The strategy called ``name`` ("random" or "evolution") over ``space``."""
    if name == "random":
        return RandomSearch(space)
    if name == "evolution":
        return RegularizedEvolution(space, population, sample_size)
    raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
