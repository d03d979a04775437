"""The reward A * S**w * P**v, checked against values computed by hand from the formula."""
import math

import pytest

from tinyeffnet.search.reward import V_DEFAULT, W_DEFAULT, mnas_cost, reward


def test_the_paper_exponents_are_the_defaults():
    assert (W_DEFAULT, V_DEFAULT) == (-0.07, -0.05)


def test_reward_is_accuracy_times_the_two_powers():
    # 0.9 * 1.5**-0.07 * 0.5**-0.05, by exp and log: 0.9 * exp(-0.07 ln 1.5 - 0.05 ln 0.5)
    expected = 0.9 * math.exp(-0.07 * math.log(1.5) - 0.05 * math.log(0.5))
    assert reward(0.9, 1.5, 0.5) == pytest.approx(expected, rel=1e-12)
    assert reward(0.9, 1.5, 0.5) == pytest.approx(0.9 * 0.972 * 1.0353, rel=1e-3)   # the same, rounded by hand
    assert reward(0.8, 1.0, 1.0) == 0.8                                              # the reference scores its accuracy
    assert reward(0.8, 2.0, 1.0, w=0.0, v=0.0) == 0.8


def test_mnasnet_twice_the_step_time_costs_about_4_7_percent():
    # MnasNet's calibration of w = -0.07: a 2x slower network must be ~4.7% more accurate to tie.
    assert mnas_cost(2.0, -0.07) == pytest.approx(0.047, abs=5e-4)
    assert 1 - reward(0.7, 2.0, 1.0) / reward(0.7, 1.0, 1.0) == pytest.approx(0.047, abs=5e-4)
    assert mnas_cost(2.0, -0.05) == pytest.approx(0.034, abs=5e-4)                  # 2x the parameters, v = -0.05
    assert mnas_cost(1.0) == 0.0 and mnas_cost(0.5) < 0                             # faster: a gain


def test_the_normalisation_does_not_change_the_ranking():
    # Dividing every S by another reference multiplies every reward by the same constant.
    candidates = [(0.70, 1.0, 1.0), (0.72, 1.6, 1.3), (0.69, 0.7, 0.8)]
    ranked = sorted(range(3), key=lambda i: reward(*candidates[i]))
    for scale in (0.25, 3.0):
        rescaled = [(a, s * scale, p * scale) for a, s, p in candidates]
        assert sorted(range(3), key=lambda i: reward(*rescaled[i])) == ranked
        ratios = {round(reward(*r) / reward(*c), 12) for r, c in zip(rescaled, candidates)}
        assert len(ratios) == 1


@pytest.mark.parametrize("args, message", [
    ((1.5, 1.0, 1.0), r"accuracy must be in \[0, 1\], got 1.5"),
    ((0.5, 0.0, 1.0), "step_ratio and param_ratio must be > 0"),
    ((0.5, 1.0, -2.0), "step_ratio and param_ratio must be > 0"),
    ((float("nan"), 1.0, 1.0), "accuracy must be a finite number, got nan"),
    ((True, 1.0, 1.0), "accuracy must be a finite number, got True"),
    ((0.5, "fast", 1.0), "step_ratio must be a finite number"),
])
def test_bad_input_names_the_argument(args, message):
    with pytest.raises(ValueError, match=f"reward: {message}"):
        reward(*args)
    with pytest.raises(ValueError, match="w must be a finite number"):
        reward(0.5, 1.0, 1.0, w=math.inf)
    with pytest.raises(ValueError, match="mnas_cost: factor must be > 0"):
        mnas_cost(0.0)


def test_the_package_exports_the_reward_function_not_its_module():
    import subprocess
    import sys

    # a fresh interpreter: the order of imports is what broke it (run.py loads the submodule first)
    code = ("from tinyeffnet.search import search, reward; import tinyeffnet.search as s; "
            "from tinyeffnet.search import *; print(callable(reward), s.reward is s.reward.__call__.__self__ "
            "if False else callable(s.reward), sorted(set(s.__all__) - set(dir(s)) - set(s._LAZY)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True", "[]"]
