"""Test-wide setup.

tinyeffnet.configure_process() runs before any test module imports numpy or torch: it sets
GOMP_SPINCOUNT (OpenMP workers spin briefly, then sleep), which only takes effect if it is in the
environment before the first OpenMP runtime starts. torch starts one when it is imported; with torch
first, Numba's kernels and numpy's BLAS fight torch's spinning OpenMP threads for the two cores
(measured: 20-50x slower kernels).
"""
import os

import tinyeffnet
from tinyeffnet.process import SPINCOUNT

# pytest -n 2 runs two processes on two cores: OpenMP workers that spin long (what configure_process
# picks where MKL runs the GEMM) would spin against the other process's; keep the short spin
os.environ.setdefault("GOMP_SPINCOUNT", SPINCOUNT["openblas"])
tinyeffnet.configure_process()      # must come before numpy and torch


# ------------------------------------------------------------------ the CUDA simulator suite's count
# tests/cuda/test_simulator_suite.py runs tests/cuda/sim in a child process (it needs its own
# NUMBA_ENABLE_CUDASIM=1 process) and writes the child's summary line to this file; the main run's
# report ends with it, so the real number of simulator tests is shown, not just "1 passed".
def pytest_configure(config):
    if not hasattr(config, "workerinput"):             # the controller, not an xdist worker
        import tempfile

        handle, path = tempfile.mkstemp(prefix="tinyeffnet-sim-", suffix=".txt")
        os.close(handle)
        os.environ["TINYEFFNET_SIM_SUMMARY"] = path     # inherited by the xdist workers
        config._tinyeffnet_sim_summary = path


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    path = getattr(config, "_tinyeffnet_sim_summary", None)
    if path and os.path.exists(path):
        text = open(path).read().strip()
        os.unlink(path)
        if text:
            terminalreporter.write_line(f"CUDA simulator suite (own process, counted above as one test): {text}")
