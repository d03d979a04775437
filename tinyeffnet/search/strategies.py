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
(P = 1, and S = 1 up to the timing noise: it is timed against a copy of itself; reward about
its accuracy) next to the candidates.

No candidate is trained twice. A trial's training is deterministic (the data, the initialisation
and the augmentation come from the search's seed), so a repeated candidate would only repeat its
accuracy and spend a trial of a small budget. Evolution makes repeats often: mutating the same
strong parent walks back to a candidate already tried (before this rule, the two default
evolution searches repeated 2 and 3 of their 24 trials). So a proposal that is already in the
history is drawn again, from the same generator, up to ``MAX_REDRAWS`` times (then kept: a tiny
space may have nothing new left):

    candidate = draw();  while candidate in tried and redraws < MAX_REDRAWS: candidate = draw()

The generator is still seeded with (seed, i) and the history is the same after a resume, so a
resumed search proposes exactly what an uninterrupted one would have.
"""
from __future__ import annotations

import numpy as np

MAX_REDRAWS = 50


def untried(draw, history: list) -> tuple:
    """``draw()``'s candidate, drawn again while it is one of the history's (see the module doc)."""
    tried = {tuple(trial["candidate"]) for trial in history}
    candidate = draw()
    for _ in range(MAX_REDRAWS):
        if tuple(candidate) not in tried:
            break
        candidate = draw()
    return candidate


class RandomSearch:
    """Trial 0 the backbone, every later trial a uniform sample of the space."""

    name = "random"

    def __init__(self, space):
        self.space = space

    def propose(self, index: int, history: list, rng: np.random.Generator) -> tuple:
        """history: the finished trials before ``index`` as dicts with "candidate" and "reward"."""
        if index == 0:
            return self.space.backbone_candidate()
        return untried(lambda: self.space.sample(rng), history)


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
            return untried(lambda: self.space.sample(rng), history)
        alive = history[-self.population:]                               # the oldest has aged out
        picks = rng.choice(len(alive), size=self.sample_size, replace=False)
        parent = max((alive[int(k)] for k in picks), key=lambda trial: trial["reward"])
        return untried(lambda: self.space.mutate(parent["candidate"], rng), history)


STRATEGIES = ("random", "evolution")


def make_strategy(name: str, space, population: int = 8, sample_size: int = 3):
    """The strategy called ``name`` ("random" or "evolution") over ``space``."""
    if name == "random":
        return RandomSearch(space)
    if name == "evolution":
        return RegularizedEvolution(space, population, sample_size)
    raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
