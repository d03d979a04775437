"""Process settings that must be in place before Numba is imported.

Imported first by ``tinyeffnet/__init__.py``. Each setting is a default only: a value the user has
already put in the environment wins.

- ``OMP_WAIT_POLICY=PASSIVE``: Numba's OpenMP workers otherwise spin after every parallel loop and
  fight OpenBLAS (called for every GEMM) for the same cores. Measured on the 2-core CI machine
  (docs/DESIGN.md, section 9.1): im2col + GEMM 21-26 ms by default, 12-20 ms
  passive.
- ``OPENBLAS_THREAD_TIMEOUT=4``: after each GEMM, OpenBLAS's worker threads keep spinning for
  2^28 cycles (about 0.1 s) by default, waiting for more work; the next Numba kernel then shares a
  core with a spinning thread and runs up to 2x slower. With 4 (2^4 cycles, the minimum) they go to
  sleep at once. Measured on the 2-core CI machine, EfficientNetV2-S training step at 128 px:
  1.23-1.32 s with the default, 1.05-1.11 s with 4. OpenBLAS reads this when it is loaded, that is
  when numpy is first imported: import tinyeffnet before numpy to get it (``NUMPY_WAS_FIRST`` says
  whether it came too late). The CLI and the benchmarks do.
- ``NUMBA_CACHE_DIR``: compiled kernels are cached (``cache=True``) in a per-user folder, so that a
  package installed read-only still caches, and a second run starts in seconds instead of a minute.
"""
import os
import sys


def _default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tinyeffnet", "numba")


DEFAULTS = {
    "OMP_WAIT_POLICY": "PASSIVE",
    "OPENBLAS_THREAD_TIMEOUT": "4",
    "NUMBA_CACHE_DIR": _default_cache_dir(),
}

# What the user had before we set anything: benchmarks restore it for PyTorch's own process, so
# that torch runs with its usual settings.
USER_ENV = {name: os.environ.get(name) for name in DEFAULTS}

# True when numpy (and so OpenBLAS) was loaded before tinyeffnet: OPENBLAS_THREAD_TIMEOUT then has no
# effect in this process. Results are the same; GEMM-heavy steps are slower.
NUMPY_WAS_FIRST = "numpy" in sys.modules


def apply_defaults() -> None:
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)


def user_environment() -> dict:
    """A copy of os.environ with tinyeffnet's defaults taken out again (for foreign subprocesses)."""
    env = dict(os.environ)
    for name, value in USER_ENV.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def worker_environment(ours: bool, package_parent: str) -> dict:
    """Environment for a benchmark worker process: tinyeffnet's settings for our contender (they must be
    in place before the worker imports numpy), the user's own for PyTorch; the package importable."""
    env = dict(os.environ) if ours else user_environment()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    return env


apply_defaults()
