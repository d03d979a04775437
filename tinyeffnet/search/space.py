"""The search space of training-aware NAS (EfficientNetV2 paper, section 3.3), on a small backbone.

Per stage the paper searches four things and keeps the backbone's channel widths and strides:

    conv op     block    in {MBConv, Fused-MBConv}
    kernel      k        in {3, 5}
    expansion   e        in {1, 4, 6}
    layers      r        in {1, 2, 3}          (here; the paper's ranges were per stage and larger)

A candidate is one Choice (block, kernel, expand, repeats) per stage of the backbone. The backbone
here is efficientnetv2_tiny's table (models.V2_TINY: five stages, widths 16-24-32-64-80, head 320),
so that a candidate trains in seconds on a CPU. Its stages become ``Stage`` rows with the
backbone's in/out channels and stride; MBConv stages get squeeze-excite with ratio 0.25 (as every
MBConv stage of EfficientNetV2), Fused-MBConv stages none (``Stage`` refuses SE on a fused stage).
Every choice in every stage gives a network that builds: the widths chain because they are the
backbone's, and both blocks accept any kernel, stride and expansion >= 1. The space holds
(2 * 2 * 3 * 3) ** 5 = 36 ** 5, about 60 million networks.

    sample(rng)          every field of every stage drawn uniformly: the paper's random search
    mutate(c, rng)       one field of one stage changed to another value: evolution's step
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..models import V2_TINY, Stage
from .arch import Arch

BLOCKS = ("mbconv", "fused")
KERNELS = (3, 5)
EXPANDS = (1, 4, 6)
REPEATS = (1, 2, 3)
SE_RATIO = 0.25
FIELDS = ("block", "kernel", "expand", "repeats")


@dataclass(frozen=True)
class Choice:
    """What the search decides for one stage."""

    block: str
    kernel: int
    expand: int
    repeats: int


class SearchSpace:
    """Candidates over a backbone's stage table (default: efficientnetv2_tiny's, head 320).

    backbone: Stage rows whose in/out channels and strides every candidate keeps.
    blocks, kernels, expands, repeats: the values each stage may take.
    """

    def __init__(self, backbone=V2_TINY, head_channels: int = 320, blocks=BLOCKS, kernels=KERNELS,
                 expands=EXPANDS, repeats=REPEATS):
        self.backbone = tuple(backbone)
        if not self.backbone or not all(isinstance(s, Stage) for s in self.backbone):
            raise TypeError("SearchSpace: backbone must be a non-empty sequence of models.Stage rows")
        self.head_channels = head_channels
        self.values = {"block": tuple(blocks), "kernel": tuple(kernels), "expand": tuple(expands),
                       "repeats": tuple(repeats)}
        for name, values in self.values.items():
            if not values:
                raise ValueError(f"SearchSpace: {name} needs at least one value")
        bad = [b for b in self.values["block"] if b not in BLOCKS]
        if bad:
            raise ValueError(f"SearchSpace: blocks must be among {BLOCKS}, got {bad[0]!r}")

    @property
    def num_stages(self) -> int:
        return len(self.backbone)

    def size(self) -> int:
        """How many different candidates the space holds."""
        per_stage = 1
        for values in self.values.values():
            per_stage *= len(values)
        return per_stage ** self.num_stages

    def stage_choices(self) -> list:
        """Every Choice one stage can take (the product of the four value lists)."""
        return [Choice(*c) for c in itertools.product(*(self.values[f] for f in FIELDS))]

    def backbone_candidate(self) -> tuple:
        """The backbone itself as a candidate (its own block, kernel, expansion and repeats)."""
        return tuple(Choice(s.block, s.kernel, int(s.expand), s.repeats) for s in self.backbone)

    def sample(self, rng: np.random.Generator) -> tuple:
        """A candidate with every field of every stage drawn uniformly (stage by stage, field by field)."""
        return tuple(Choice(*(self.values[f][int(rng.integers(len(self.values[f])))] for f in FIELDS))
                     for _ in range(self.num_stages))

    def mutate(self, candidate: tuple, rng: np.random.Generator) -> tuple:
        """The candidate with one field of one stage changed to a different value.

        Only fields with more than one value can change; a space where none can is refused."""
        movable = [f for f in FIELDS if len(self.values[f]) > 1]
        if not movable:
            raise ValueError("SearchSpace.mutate: every field has a single value; nothing can change")
        stage = int(rng.integers(self.num_stages))
        field = movable[int(rng.integers(len(movable)))]
        current = getattr(candidate[stage], field)
        others = [v for v in self.values[field] if v != current]
        new = others[int(rng.integers(len(others)))]
        changed = Choice(**{**candidate[stage].__dict__, field: new})
        return candidate[:stage] + (changed,) + candidate[stage + 1:]

    def stages(self, candidate: tuple) -> tuple:
        """The candidate's Stage rows: its choices, with the backbone's widths and strides."""
        if len(candidate) != self.num_stages:
            raise ValueError(f"SearchSpace: a candidate has one choice per stage ({self.num_stages}), "
                             f"got {len(candidate)}")
        return tuple(Stage(c.block, c.repeats, c.kernel, b.stride, c.expand, b.in_ch, b.out_ch,
                           SE_RATIO if c.block == "mbconv" else 0.0)
                     for c, b in zip(candidate, self.backbone))

    def arch(self, candidate: tuple) -> Arch:
        """The candidate as an Arch (stage table + head), ready to build or to write as JSON."""
        return Arch(self.stages(candidate), self.head_channels)

    @staticmethod
    def encode(candidate: tuple) -> list:
        """JSON form: one [block, kernel, expand, repeats] list per stage."""
        return [[c.block, c.kernel, c.expand, c.repeats] for c in candidate]

    def decode(self, rows) -> tuple:
        """``encode``'s inverse, each value checked against the space; ValueError naming the stage."""
        if not isinstance(rows, list) or len(rows) != self.num_stages:
            raise ValueError(f"a candidate must be a list of {self.num_stages} [block, kernel, expand, repeats] "
                             f"rows, got {rows!r}"[:300])
        out = []
        for i, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != len(FIELDS):
                raise ValueError(f"candidate stage {i + 1} must be [block, kernel, expand, repeats], got {row!r}")
            for field, value in zip(FIELDS, row):
                if value not in self.values[field] or isinstance(value, bool):
                    raise ValueError(f"candidate stage {i + 1}: {field} must be one of {self.values[field]}, "
                                     f"got {value!r}")
            out.append(Choice(*row))
        return tuple(out)


def backbone_space() -> SearchSpace:
    """The default space: efficientnetv2_tiny's widths and strides, head 320."""
    return SearchSpace()
