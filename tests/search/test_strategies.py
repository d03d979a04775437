"""Random search and regularised evolution: deterministic by (seed, trial), evolution's rules."""
import numpy as np
import pytest

from tinyeffnet.search.space import FIELDS, SearchSpace
from tinyeffnet.search.strategies import MAX_REDRAWS, RandomSearch, RegularizedEvolution, make_strategy, untried


def _history(space, rewards, seed=0):
    return [{"candidate": space.sample(np.random.default_rng([seed, i])), "reward": r} for i, r in enumerate(rewards)]


def test_both_start_with_the_backbone_then_sample():
    space = SearchSpace()
    for strategy in (RandomSearch(space), RegularizedEvolution(space, population=4, sample_size=2)):
        assert strategy.propose(0, [], np.random.default_rng(0)) == space.backbone_candidate()
        a = strategy.propose(1, _history(space, [0.5]), np.random.default_rng([3, 1]))
        b = strategy.propose(1, _history(space, [0.5]), np.random.default_rng([3, 1]))
        assert a == b                                                      # a function of (seed, i, history)


def test_evolution_mutates_the_tournament_winner_among_the_youngest():
    space = SearchSpace()
    evo = RegularizedEvolution(space, population=4, sample_size=4)         # tournament = whole population
    history = _history(space, [0.99, 0.1, 0.2, 0.6, 0.3])                 # trial 0 (0.99) has aged out
    child = evo.propose(5, history, np.random.default_rng(0))
    parent = history[3]["candidate"]                                       # best of the last 4
    diffs = [(i, f) for i in range(5) for f in FIELDS if getattr(child[i], f) != getattr(parent[i], f)]
    assert len(diffs) == 1
    # With tournaments of 1 the parent is a random member of the population: any of the last four.
    evo1 = RegularizedEvolution(space, population=4, sample_size=1)
    parents = set()
    for seed in range(40):
        child = evo1.propose(5, history, np.random.default_rng(seed))
        close = [k for k in range(1, 5) if sum(child[i] != history[k]["candidate"][i] for i in range(5)) <= 1]
        parents.update(close)
    assert parents == {1, 2, 3, 4}


def test_no_candidate_is_proposed_twice():
    space = SearchSpace()
    evo = RegularizedEvolution(space, population=2, sample_size=2)
    history = [{"candidate": space.backbone_candidate(), "reward": 0.9},
               {"candidate": space.sample(np.random.default_rng(1)), "reward": 0.1}]
    for index in range(2, 40):                    # a long run of mutations of the youngest trials
        child = evo.propose(index, history, np.random.default_rng([0, index]))
        assert child not in [trial["candidate"] for trial in history]
        history.append({"candidate": child, "reward": 0.0})     # weak children: the parent stays the best
    seen = [trial["candidate"] for trial in history]
    assert len(set(seen)) == len(seen)
    random = RandomSearch(space)
    assert random.propose(5, history, np.random.default_rng(3)) not in seen


def test_untried_redraws_then_gives_up():
    draws = iter([1, 2, 3, 4])
    assert untried(lambda: (next(draws),), [{"candidate": (1,)}, {"candidate": (2,)}]) == (3,)
    calls = []
    assert untried(lambda: calls.append(0) or (7,), [{"candidate": (7,)}]) == (7,)   # nothing new: kept
    assert len(calls) == 1 + MAX_REDRAWS


def test_bad_strategy_settings():
    space = SearchSpace()
    with pytest.raises(ValueError, match="strategy must be one of random, evolution, got 'grid'"):
        make_strategy("grid", space)
    with pytest.raises(ValueError, match="sample_size .5. must be <= population .4."):
        RegularizedEvolution(space, population=4, sample_size=5)
    with pytest.raises(ValueError, match="population must be an int >= 2"):
        RegularizedEvolution(space, population=1, sample_size=1)
