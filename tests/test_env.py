"""The process settings tinyeffnet applies on import (tinyeffnet/_env.py), checked in fresh interpreters."""
import json
import os
import subprocess
import sys

REPORT = ("import json, os, tinyeffnet._env as e; print(json.dumps({'env': {k: os.environ.get(k) for k in e.DEFAULTS},"
          " 'numpy_first': e.NUMPY_WAS_FIRST, 'torch_env': {k: e.worker_environment(False, '').get(k) for k in e.DEFAULTS}}))")


def _report(prefix: str = "", **overrides) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT")}
    env.update(overrides)
    out = subprocess.run([sys.executable, "-c", prefix + REPORT], check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_defaults_are_applied_and_taken_out_again_for_torch_workers():
    report = _report()
    assert report["env"]["OMP_WAIT_POLICY"] == "PASSIVE"
    assert report["env"]["OPENBLAS_THREAD_TIMEOUT"] == "4"
    assert report["numpy_first"] is False
    assert report["torch_env"]["OMP_WAIT_POLICY"] is None          # PyTorch's worker keeps its own defaults
    assert report["torch_env"]["OPENBLAS_THREAD_TIMEOUT"] is None


def test_a_value_the_user_set_wins():
    report = _report(OPENBLAS_THREAD_TIMEOUT="20", OMP_WAIT_POLICY="ACTIVE")
    assert report["env"]["OPENBLAS_THREAD_TIMEOUT"] == "20"
    assert report["env"]["OMP_WAIT_POLICY"] == "ACTIVE"
    assert report["torch_env"]["OPENBLAS_THREAD_TIMEOUT"] == "20"


def test_numpy_imported_first_is_reported():
    assert _report("import numpy; ")["numpy_first"] is True
