"""The stage-table file: a network's architecture as JSON, read back into ``Stage`` rows.

``tinyeffnet search`` writes its best network as such a file (``best.json``) and
``tinyeffnet train --arch FILE`` / ``tinyeffnet summary --arch FILE`` build the network it
describes. The format is one JSON object:

    {
      "format": "tinyeffnet-arch",                  optional, refused if it names another format
      "head_channels": 320,                         features of the 1x1 head conv (optional: 1280)
      "stages": [                                   at least one; stage i+1's in_ch = stage i's out_ch
        {"block": "fused",  "repeats": 1, "kernel": 3, "stride": 1, "expand": 1, "in_ch": 16,
         "out_ch": 16, "se": 0},
        {"block": "mbconv", "repeats": 2, "kernel": 5, "stride": 2, "expand": 6, "in_ch": 32,
         "out_ch": 64, "se": 0.25},
        ...
      ],
      ...                                           any other key (the search's accuracy, reward,
    }                                               trial number) is kept for people and ignored

The fields of a stage are those of ``models.Stage`` (block "fused" or "mbconv", repeats, kernel,
stride, expand, in_ch, out_ch, se); a Fused-MBConv stage has no squeeze-excite (se 0).

This module imports only ``models`` and ``files``: the training code reads arch files through it
without depending on the search (it sits at the models' layer, docs/DESIGN.md section 2).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import files
from ..models import EfficientNetV2, Stage

FORMAT = "tinyeffnet-arch"
STAGE_FIELDS = ("block", "repeats", "kernel", "stride", "expand", "in_ch", "out_ch", "se")
DEFAULT_HEAD = 1280


@dataclass(frozen=True)
class Arch:
    """A network's architecture: its stage table and the width of its head conv."""

    stages: tuple
    head_channels: int = DEFAULT_HEAD

    def build(self, num_classes: int, **options) -> EfficientNetV2:
        """The network, freshly initialised: EfficientNetV2(stages, num_classes, head_channels=...)."""
        return EfficientNetV2(self.stages, num_classes, head_channels=self.head_channels, **options)

    def to_dict(self, **extra) -> dict:
        """The JSON object of the format above; ``extra`` keys (accuracy, reward, ...) are added."""
        return {"format": FORMAT, "head_channels": self.head_channels,
                "stages": [stage_to_dict(s) for s in self.stages], **extra}

    def key(self) -> str:
        """A canonical one-line JSON of the architecture alone: equal keys, equal networks."""
        return json.dumps({"head_channels": self.head_channels,
                           "stages": [stage_to_dict(s) for s in self.stages]}, sort_keys=True)


def stage_to_dict(stage: Stage) -> dict:
    """A Stage as a plain dict (ints stay ints; expand and se as written)."""
    row = asdict(stage)
    return {name: row[name] for name in STAGE_FIELDS}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def stage_from_dict(row, where: str) -> Stage:
    """One stage object -> Stage; ValueError naming ``where`` (file and stage) and the bad field."""
    if not isinstance(row, dict):
        raise ValueError(f"{where}: must be an object with the keys {', '.join(STAGE_FIELDS)}, "
                         f"got {type(row).__name__}")
    missing = [k for k in STAGE_FIELDS if k not in row and k != "se"]
    unknown = sorted(set(row) - set(STAGE_FIELDS))
    if missing or unknown:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unknown {', '.join(unknown)}"] if unknown else [])
        raise ValueError(f"{where}: {'; '.join(parts)} (a stage has {', '.join(STAGE_FIELDS)})")
    for name in ("repeats", "kernel", "stride", "in_ch", "out_ch"):
        if not _is_int(row[name]):
            raise ValueError(f"{where}: {name} must be an int >= 1, got {row[name]!r}")
    for name in ("expand", "se"):
        if name in row and not _is_number(row[name]):
            raise ValueError(f"{where}: {name} must be a number, got {row[name]!r}")
    se = row.get("se", 0)
    if not 0 <= se < 1:
        raise ValueError(f"{where}: se must be in [0, 1), got {se!r}")
    try:
        return Stage(row["block"], row["repeats"], row["kernel"], row["stride"], row["expand"],
                     row["in_ch"], row["out_ch"], se)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def arch_from_dict(obj, source: str = "arch") -> Arch:
    """The JSON object of an arch file -> Arch, every field checked; ValueError naming ``source``."""
    if isinstance(obj, list):
        obj = {"stages": obj}                         # a bare list of stages is accepted too
    if not isinstance(obj, dict):
        raise ValueError(f"{source}: must be a JSON object with a 'stages' list, got {type(obj).__name__}")
    if obj.get("format", FORMAT) != FORMAT:
        raise ValueError(f"{source}: format must be {FORMAT!r}, got {obj['format']!r}")
    rows = obj.get("stages")
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"{source}: 'stages' must be a non-empty list of stage objects, got {rows!r}"[:300])
    stages = tuple(stage_from_dict(row, f"{source}: stage {i + 1}") for i, row in enumerate(rows))
    for i in range(1, len(stages)):
        if stages[i].in_ch != stages[i - 1].out_ch:
            raise ValueError(f"{source}: stage {i + 1} has in_ch {stages[i].in_ch} but stage {i} has out_ch "
                             f"{stages[i - 1].out_ch}; they must be equal")
    head = obj.get("head_channels", DEFAULT_HEAD)
    if not _is_int(head) or head < 1:
        raise ValueError(f"{source}: head_channels must be an int >= 1, got {head!r}")
    return Arch(stages, head)


def read_arch(path) -> Arch:
    """Read an arch file. FileNotFoundError if it is missing; ValueError (naming the file) if it is
    not JSON or not a valid stage table."""
    path = Path(path)
    if not path.is_file():
        why = "it is a folder" if path.is_dir() else "it does not exist"
        raise FileNotFoundError(f"arch file {os.fspath(path)} cannot be read: {why}")
    try:
        obj = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"arch file {os.fspath(path)} is not JSON: {error}") from None
    return arch_from_dict(obj, source=f"arch file {os.fspath(path)}")


def write_arch(path, arch: Arch, **extra) -> None:
    """Write ``arch`` (and ``extra`` keys for people) as JSON, atomically (files.write_atomic)."""
    obj = arch.to_dict(**extra)
    lines = [f" {json.dumps(k)}: {json.dumps(v, allow_nan=False)}" for k, v in obj.items() if k != "stages"]
    stages = ",\n".join(f"  {json.dumps(row)}" for row in obj["stages"])
    text = "{\n" + ",\n".join(lines + [f' "stages": [\n{stages}\n ]']) + "\n}\n"      # one line per stage
    files.write_atomic(path, lambda f: f.write(text.encode()))
