"""The CUDA simulator suite, run by the main test command in a process of its own.

``tests/cuda/sim`` needs NUMBA_ENABLE_CUDASIM=1 set before numba is imported, so it cannot share
this process. This test starts ``python -m pytest tests/cuda/sim`` with the variable set and fails
if that run fails, so that the one command in the README (``python -m pytest -n 2``) proves the
CUDA kernels too, and a failure anywhere fails the whole run. The child's own summary line (its
real count, e.g. "96 passed") is printed at the end of the main run's report (see conftest.py).
"""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cuda_kernels_pass_in_the_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/cuda/sim", "-q", "-p", "no:cacheprovider",
                           "-p", "no:xdist"], cwd=ROOT, env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    summary = lines[-1].strip("= ") if lines else "(no output)"
    record = os.environ.get("TINYEFFNET_SIM_SUMMARY")
    if record:
        Path(record).write_text(summary)
    # pytest exits 0 only if tests were collected and all passed (5 = none collected, 1 = failures)
    assert proc.returncode == 0, f"CUDA simulator suite failed (exit {proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    assert " passed" in summary and "failed" not in summary, summary
