"""CUDA kernels against the CPU ops in numba's CUDA simulator: a SEPARATE pytest process.

Run from the repository root:

    NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/cuda/sim

The variable must be set before numba is imported (the simulator replaces numba.cuda at import), so
these tests cannot share the main pytest process; without the variable this folder is skipped at
collection (the main run, ``python -m pytest -n 2``, passes through it quietly).
On a real GPU, ``tinyeffnet bench gpu`` runs them with TINYEFFNET_CUDA_DEVICE_TESTS=1.
The simulator runs each CUDA thread as a Python thread (about 1,000 threads per second), so every
shape here is tiny: at most a few hundred threads per launch.
"""
import os

SIMULATOR_ON = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
# `tinyeffnet bench gpu` runs the same tests on a real GPU by setting this one
ON_REAL_GPU = os.environ.get("TINYEFFNET_CUDA_DEVICE_TESTS") == "1"

collect_ignore_glob = [] if SIMULATOR_ON or ON_REAL_GPU else ["test_*.py"]
