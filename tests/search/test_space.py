"""The search space: only valid networks, every choice reachable, mutation changes one thing."""
import itertools

import numpy as np
import pytest

from tinyeffnet.models import V2_TINY, EfficientNetV2, Stage
from tinyeffnet.search.space import BLOCKS, EXPANDS, FIELDS, KERNELS, REPEATS, Choice, SearchSpace


def test_the_space_keeps_the_backbone_widths_and_strides():
    space = SearchSpace()
    assert space.num_stages == len(V2_TINY) == 5
    assert space.size() == (len(BLOCKS) * len(KERNELS) * len(EXPANDS) * len(REPEATS)) ** 5 == 36 ** 5
    assert space.stages(space.backbone_candidate()) == V2_TINY             # the backbone is in the space
    assert len(space.stage_choices()) == 36


def test_samples_are_valid_networks_and_reach_every_choice():
    space = SearchSpace()
    rng = np.random.default_rng(0)
    seen = {(stage, field): set() for stage in range(5) for field in FIELDS}
    for n in range(300):
        candidate = space.sample(rng)
        stages = space.stages(candidate)
        for i, (stage, backbone) in enumerate(zip(stages, V2_TINY)):
            assert isinstance(stage, Stage)
            assert (stage.in_ch, stage.out_ch, stage.stride) == (backbone.in_ch, backbone.out_ch, backbone.stride)
            assert stage.se == (0.25 if stage.block == "mbconv" else 0.0)   # Stage refuses SE on fused
            for field in FIELDS:
                seen[(i, field)].add(getattr(candidate[i], field))
        if n < 3:                                                          # and they build and run
            model = EfficientNetV2(stages, num_classes=4, head_channels=space.head_channels).eval()
            assert model(np.zeros((1, 16, 16, 3), np.float32)).shape == (1, 4)
    values = {"block": set(BLOCKS), "kernel": set(KERNELS), "expand": set(EXPANDS), "repeats": set(REPEATS)}
    for (stage, field), found in seen.items():
        assert found == values[field], (stage, field, found)


def test_the_choice_product_holds_every_combination_and_each_is_a_valid_stage():
    space = SearchSpace()
    combos = {(c.block, c.kernel, c.expand, c.repeats) for c in space.stage_choices()}
    assert combos == set(itertools.product(BLOCKS, KERNELS, EXPANDS, REPEATS))
    for choice in space.stage_choices():                                  # in every stage position
        for i in range(5):
            candidate = space.backbone_candidate()[:i] + (choice,) + space.backbone_candidate()[i + 1:]
            space.stages(candidate)


def test_mutation_changes_exactly_one_field_of_one_stage():
    space = SearchSpace()
    rng = np.random.default_rng(1)
    parent = space.sample(rng)
    changed_fields = set()
    for _ in range(200):
        child = space.mutate(parent, rng)
        diffs = [(i, f) for i in range(5) for f in FIELDS if getattr(child[i], f) != getattr(parent[i], f)]
        assert len(diffs) == 1
        changed_fields.add(diffs[0][1])
    assert changed_fields == set(FIELDS)
    with pytest.raises(ValueError, match="nothing can change"):
        SearchSpace(blocks=("fused",), kernels=(3,), expands=(4,), repeats=(1,)).mutate(parent, rng)


def test_encode_decode_round_trip_and_bad_candidates():
    space = SearchSpace()
    candidate = space.sample(np.random.default_rng(2))
    assert space.decode(space.encode(candidate)) == candidate
    with pytest.raises(ValueError, match="a candidate must be a list of 5"):
        space.decode([["fused", 3, 4, 1]])
    bad = space.encode(candidate)
    bad[2][1] = 7
    with pytest.raises(ValueError, match=r"candidate stage 3: kernel must be one of \(3, 5\), got 7"):
        space.decode(bad)
    with pytest.raises(ValueError, match="one choice per stage"):
        space.stages((Choice("fused", 3, 1, 1),))
    with pytest.raises(ValueError, match="blocks must be among"):
        SearchSpace(blocks=("conv",))
