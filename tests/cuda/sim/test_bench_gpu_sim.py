"""The GPU benchmark's own machinery, in the simulator: counting launches and copies, and the
rehearsal of ``tinyeffnet bench gpu`` (every section, tiny or dry, its report written).

Run with the rest of tests/cuda/sim (``NUMBA_ENABLE_CUDASIM=1``; see conftest.py). On a real GPU
(``tinyeffnet bench gpu`` runs this folder there) the rehearsal must refuse to run: it is for the
simulator.
"""
import json

import numpy as np
from numba import config

import tinyeffnet.cuda as tc
from tinyeffnet.bench import gpu
from tinyeffnet.cuda._runtime import counting
from tinyeffnet.models.config import Stage
from tinyeffnet.models.efficientnetv2 import EfficientNetV2
from tinyeffnet.train import update_step

STAGES = [Stage("fused", 2, 3, 1, 1, 4, 4), Stage("mbconv", 1, 3, 2, 2, 4, 8, 0.25)]


def _model(drop_path_rate=0.5):
    return EfficientNetV2(STAGES, num_classes=3, head_channels=8, drop_rate=0.5, drop_path_rate=drop_path_rate,
                          dtype=np.float32, seed=1).to("cuda").train()


def _step_counts(dry: bool, drop_path_rate=0.5) -> dict:
    model = _model(drop_path_rate)
    model.set_rng(np.random.default_rng(4))
    x = tc.to_device(np.random.default_rng(0).standard_normal((2, 8, 8, 3)).astype(np.float32))
    with counting(dry=dry) as counts:
        update_step(model, tc.SGD(model.parameters(), lr=0.1, momentum=0.9), x, np.array([0, 2]), 0.1,
                    check_finite=False)
    return counts.as_dict()


def test_counting_sees_each_launch_and_each_copy():
    a = tc.to_device(np.ones(7, np.float32))
    with counting() as counts:
        total = tc.add(a, a)                     # one kernel
        host = tc.to_host(total)                 # one device -> host copy
        tc.to_device(host)                       # one host -> device copy
    assert counts.total_launches == 1 and counts.to_host == 1 and counts.to_device == 1
    assert np.array_equal(host, 2 * np.ones(7))
    with counting(dry=True) as dry:
        tc.add(a, a)
    assert dry.total_launches == 1


def test_a_dry_count_equals_the_real_count_of_a_training_step():
    real, dry = _step_counts(dry=False), _step_counts(dry=True)
    assert real == dry
    assert real["launches"] > 100
    assert real["to_host"] == 0                   # no host round trip inside a step
    # host -> device: the labels once, and each stochastic layer's coins (drawn on the host)
    model = _model()
    coins = sum(1 for m in model.modules() if getattr(m, "stochastic", False) and getattr(m, "p", 0) > 0)
    assert coins >= 2 and real["to_device"] == 1 + coins
    assert _step_counts(dry=True, drop_path_rate=0.0)["to_device"] == 1 + 1   # the labels, the dropout's coins


def test_the_rehearsal_runs_every_section_and_writes_its_report(tmp_path):
    code = gpu.run(tests=False, out=tmp_path, rehearsal=True, progress=lambda message: None)
    if not config.ENABLE_CUDASIM:             # on a real GPU (bench gpu runs this folder there): it refuses
        assert code == 2 and not (tmp_path / "gpu.json").exists()
        return
    report = json.loads((tmp_path / "gpu.json").read_text())
    assert list(report["sections"]) == list(gpu.SECTIONS)
    failed = {name: entry.get("error") for name, entry in report["sections"].items() if not entry["ok"]}
    assert failed == {} and code == 0
    launches = report["sections"]["launches"]["data"]
    assert launches["launches"] > 1000 and launches["to_host"] == 0     # EfficientNetV2-S, one step
    assert "| launches | yes |" in (tmp_path / "gpu.md").read_text()
