"""Test-wide setup.

tinyeffnet is imported before any test module imports torch: tinyeffnet/_env.py sets
OMP_WAIT_POLICY=PASSIVE, which only takes effect if it is in the environment before the first
OpenMP runtime starts. torch starts one when it is imported; with torch first, Numba's kernels and
numpy's BLAS fight torch's spinning OpenMP threads for the two cores (measured: 20-50x slower kernels).
"""
import tinyeffnet  # noqa: F401  (must come before torch)
