"""Process settings that must be in place before Numba is imported.

Imported first by ``tinyeffnet/__init__.py``. Each setting is a default only: a value the user has
already put in the environment wins.

- ``OMP_WAIT_POLICY=PASSIVE``: Numba's OpenMP workers otherwise spin after every parallel loop and
  fight OpenBLAS (called for every GEMM) for the same cores. Measured on the 2-core CI machine
  (shared/research/numba_engineering.md, section 3.1): im2col + GEMM 21-26 ms by default, 12-20 ms
  passive.
- ``NUMBA_CACHE_DIR``: compiled kernels are cached (``cache=True``) in a per-user folder, so that a
  package installed read-only still caches, and a second run starts in seconds instead of a minute.
"""
import os


def _default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tinyeffnet", "numba")


# What the user had before we set anything: benchmarks restore it for PyTorch's own process, so
# that torch runs with its usual settings.
USER_ENV = {name: os.environ.get(name) for name in ("OMP_WAIT_POLICY", "NUMBA_CACHE_DIR")}


def apply_defaults() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("NUMBA_CACHE_DIR", _default_cache_dir())


def user_environment() -> dict:
    """A copy of os.environ with tinyeffnet's defaults taken out again (for foreign subprocesses)."""
    env = dict(os.environ)
    for name, value in USER_ENV.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


apply_defaults()
