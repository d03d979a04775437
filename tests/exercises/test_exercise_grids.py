"""Every exercise: the correct solution (tests/exercises/solutions, written from the math, not from
the library) passes; each typical wrong one (a small edit of it, exercise_mutants.py) fails; the
library's own implementation, re-exported, is refused; a new seed is a new grid."""
import json

import pytest

from tinyeffnet import exercises
from tinyeffnet.exercises.catalog import catalog

from exercise_mutants import MUTANTS, solution_path, write_mutant

MUTANT_CASES = [(name, i) for name in exercises.names() for i in range(len(MUTANTS[name]))]


def test_there_are_at_least_ten_exercises_each_with_three_mutants():
    assert len(exercises.names()) >= 10
    assert exercises.list() == exercises.names() == tuple(catalog())
    assert set(MUTANTS) == set(exercises.names())
    assert all(len(MUTANTS[name]) >= 3 for name in exercises.names())


@pytest.mark.parametrize("name", exercises.names())
def test_the_correct_solution_passes(name):
    report = exercises.check(name, solution_path(name))
    assert report.ok, str(report)
    assert report.total == report.possible > 5
    assert all(row.passed for row in report.rows)              # torch is installed in the test env: no skip
    json.loads(report.to_json())                               # JSON-able


@pytest.mark.parametrize("name, index", MUTANT_CASES, ids=[f"{n}-{MUTANTS[n][i][0]}" for n, i in MUTANT_CASES])
def test_a_typical_mistake_fails(name, index, tmp_path):
    report = exercises.check(name, write_mutant(name, index, tmp_path))
    assert not report.ok, f"{MUTANTS[name][index][0]} passed:\n{report}"
    assert report.rows[0].name == "functions and signatures" and report.rows[0].passed   # it loaded; the grid caught it
    failed = report.failed
    assert failed and all(row.hint for row in failed)           # every failure comes with a hint
    assert 0 < report.total < report.possible                   # partial credit, not all or nothing


def test_a_forgotten_bottom_right_pixel_fails_on_every_seed(tmp_path):
    # the brief's example: a sampled gradcheck (30 entries) passes it one time in three
    path = write_mutant("depthwise_conv2d", 0, tmp_path)
    for seed in range(5):
        report = exercises.check("depthwise_conv2d", path, seed)
        assert not report.ok
        assert any("entries wrong" in row.detail for row in report.failed)


def test_the_seed_changes_the_grid():
    a = exercises.check("conv2d_forward", solution_path("conv2d_forward"), seed=0)
    b = exercises.check("conv2d_forward", solution_path("conv2d_forward"), seed=7)
    c = exercises.check("conv2d_forward", solution_path("conv2d_forward"))
    assert a.ok and b.ok and (a.seed, b.seed, c.seed) == (0, 7, 0)
    assert [r.detail for r in a.rows] == [r.detail for r in c.rows]      # None is the published grid, seed 0
    changed = [ra.name for ra, rb in zip(a.rows, b.rows) if ra.detail != rb.detail]
    assert len(changed) >= 5, changed                                    # new shapes in most rows


def test_a_mistake_is_caught_on_other_seeds_too(tmp_path):
    path = write_mutant("batchnorm", 1, tmp_path)        # biased running_var
    assert not any(exercises.check("batchnorm", path, seed).ok for seed in (1, 2, 3))


def test_bad_name_and_seed_are_value_errors():
    with pytest.raises(ValueError, match="exercise must be one of"):
        exercises.check("conv3d", solution_path("batchnorm"))
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        exercises.check("batchnorm", solution_path("batchnorm"), seed=-1)


def test_an_imported_module_can_be_checked():
    import importlib.util

    spec = importlib.util.spec_from_file_location("student_bn", solution_path("batchnorm"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert exercises.check("batchnorm", module).ok
