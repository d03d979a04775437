"""Process settings for fast kernels, applied only when asked: ``tinyeffnet.configure_process()``.

``import tinyeffnet`` changes nothing outside the package (not even ``os.environ``), so that other
libraries in the same process (torch, another Numba user) keep their own settings. The CLI, the
benchmarks, the notebooks and the tests call ``configure_process()`` first thing, before numpy is
imported; a user's script can do the same::

    import tinyeffnet
    tinyeffnet.configure_process()        # before numpy, numba or torch are imported
    import numpy as np

Each setting is a default only: a value the user already put in the environment wins.

- ``GOMP_SPINCOUNT``: after a parallel loop, Numba's OpenMP workers (GNU libgomp) wait for the
  next one by spinning, then sleep. How long to spin depends on who else wants the cores, so the
  value depends on the GEMM (``machine.mkl_expected``, the rule of ops/blas.py):
  - 5,000 (tens of microseconds) with numpy's OpenBLAS, whose own threads run every GEMM. Spinning
    longer fights them (and, with torch in the process, torch's OpenMP threads): EfficientNetV2-S
    step at 128 px, batch 8, 473 ms with 5,000 against 525 ms with 50,000. Sleeping at once
    (``OMP_WAIT_POLICY=PASSIVE``, this setting before 0.6.0) makes every parallel loop wake its
    workers through the kernel: an empty ``prange`` loop costs 74 us instead of 1.5 us, and a
    training step runs hundreds of them: S 590 ms passive, 510 ms with 5,000; the main job's
    efficientnetv2_tiny, batch 64, at 48 px 148 -> 70 ms and at 32 px 54 -> 37 ms.
  - 100,000 with MKL, which runs on the same OpenMP workers (ops/blas.py): there is no other team
    to fight, and a worker asleep when the next loop starts costs about 50 us to wake (a small
    ``prange`` loop after 200 us of Python: 52 us, against 1.6 us run serially). S at 128 px 416
    -> 398 ms, tiny at 48 px 52.7 -> 49.3 ms (7 alternating rounds; 300,000 and 1,000,000 the same).
  (2-core Xeon, family 6, AVX-512; docs/DESIGN.md, section 9.1.) GOMP_SPINCOUNT wins over
  OMP_WAIT_POLICY in libgomp, so a user's global PASSIVE does not undo it. The test suite runs two
  processes on two cores and keeps 5,000 (tests/conftest.py).
- ``OPENBLAS_THREAD_TIMEOUT=4``: after each GEMM, OpenBLAS's worker threads keep spinning for
  2^28 cycles (about 0.1 s) by default, waiting for more work; the next Numba kernel then shares a
  core with a spinning thread and runs up to 2x slower. With 4 (2^4 cycles, the minimum) they go to
  sleep at once. EfficientNetV2-S training step at 128 px: 1.23-1.32 s by default, 1.05-1.11 s
  with 4. OpenBLAS reads it when it is loaded, i.e. when numpy is first imported: hence "before numpy".
- ``NUMBA_CACHE_DIR``: compiled kernels are cached (``cache=True``) in a per-user folder, so that a
  package installed read-only still caches and a second run starts in seconds instead of a minute.
  Numba reads it when the kernels are defined, i.e. when ``tinyeffnet.ops`` is first imported.
- Freed memory stays in the process (glibc only: ``mallopt`` thresholds M_MMAP_THRESHOLD = 64 MiB
  and M_TRIM_THRESHOLD = 1 GiB). A training step allocates and frees the same activation-sized
  arrays every step. By default glibc hands blocks above an adaptive threshold straight back to the
  operating system, and every later step pays page faults (and, with two threads, TLB shootdowns)
  to get them again. Whether a process falls into that regime depends on its allocation history:
  efficientnetv2_tiny, batch 64, 48 px ran either at 57 ms or at 68 ms with spikes to 150 ms, with
  1,268 page faults per step; with the thresholds fixed, 56 ms and 2 faults, every time. Peak memory
  is unchanged (S at 224 px: 1,364 MiB either way). Applied with ``mallopt`` at once (no "too late");
  skipped when the user set glibc's own ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_``.
  Benchmark workers of ours get those two variables instead (``worker_environment``): glibc reads
  them when the process starts.
"""
from __future__ import annotations

import ctypes
import os
import platform
import sys
import warnings

from . import machine

MALLOC_THRESHOLDS = {"M_MMAP_THRESHOLD": 64 << 20, "M_TRIM_THRESHOLD": 1 << 30}   # bytes
_MALLOPT_CODES = {"M_TRIM_THRESHOLD": -1, "M_MMAP_THRESHOLD": -3}                   # glibc's malloc.h


def _default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tinyeffnet", "numba")


SPINCOUNT = {"openblas": "5000", "mkl": "100000"}   # GOMP_SPINCOUNT by the GEMM that will run (see above)


def defaults() -> dict:
    """The settings ``configure_process`` applies (name -> value)."""
    spin = SPINCOUNT["mkl" if machine.mkl_expected() else "openblas"]
    return {"GOMP_SPINCOUNT": spin, "OPENBLAS_THREAD_TIMEOUT": "4", "NUMBA_CACHE_DIR": _default_cache_dir()}


# What the environment held before configure_process() changed it (None: unset), so that
# benchmarks can give PyTorch's own process the user's environment, not ours.
_USER_ENV: dict = {}


def configure_process() -> dict:
    """Apply the defaults above to ``os.environ`` (a value already set wins) and glibc's malloc
    thresholds (``keep_freed_memory``); return a report:
    ``{"applied": {name: value}, "kept": {name: value}, "too_late": [what came too late],
    "malloc": {threshold: bytes} (empty where not applied)}``.

    Call it before numpy and ``tinyeffnet.ops`` are imported. Called later it still sets the
    variables (for subprocesses), and ``too_late`` names the settings this process can no longer use.
    """
    applied, kept = {}, {}
    for name, value in defaults().items():
        _USER_ENV.setdefault(name, os.environ.get(name))
        if os.environ.get(name) is None:
            os.environ[name] = value
            applied[name] = value
        else:
            kept[name] = os.environ[name]
    too_late = []
    if "numpy" in sys.modules:
        too_late.append("OPENBLAS_THREAD_TIMEOUT (numpy was imported first)")
    if "tinyeffnet.ops" in sys.modules:
        too_late.append("NUMBA_CACHE_DIR (tinyeffnet.ops was imported first)")
    return {"applied": applied, "kept": kept, "too_late": too_late, "malloc": keep_freed_memory()}


def _is_glibc() -> bool:
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def keep_freed_memory() -> dict:
    """Set glibc's M_MMAP_THRESHOLD and M_TRIM_THRESHOLD to MALLOC_THRESHOLDS (see the module
    docstring). Returns what was set ({} on another C library, or when the user set glibc's
    MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ variables: theirs win)."""
    if not _is_glibc():
        return {}
    if any(f"MALLOC_{name[2:]}_" in os.environ for name in MALLOC_THRESHOLDS):
        return {}
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return {name: value for name, value in MALLOC_THRESHOLDS.items() if mallopt(_MALLOPT_CODES[name], value) == 1}


QUIET = "TINYEFFNET_THREADS_WARNING"     # "0": no warning_if_unconfigured (set for benchmark peers)


def warn_if_unconfigured() -> None:
    """Warn (RuntimeWarning) when the CPU kernels are loaded in a process that neither called
    ``configure_process()`` nor set the OpenMP wait setting itself. With OpenMP's and OpenBLAS's
    defaults their threads spin against each other: measured on the 2-core Xeon, an
    EfficientNetV2-S training step took 2.3 s instead of 0.45 s, the main job's model 600 ms
    instead of 60 ms. Changes nothing (``import tinyeffnet`` stays free of side effects)."""
    if _USER_ENV or os.environ.get(QUIET) == "0":
        return
    if any(name in os.environ for name in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")):
        return
    warnings.warn("tinyeffnet: the OpenMP and OpenBLAS thread settings are at their defaults, under which "
                  "their threads fight for the cores (training steps measured 5-10x slower). Call "
                  "tinyeffnet.configure_process() first thing, before numpy is imported (the CLI does).",
                  RuntimeWarning, stacklevel=3)


def user_environment() -> dict:
    """A copy of os.environ with what configure_process() set taken out again (for PyTorch's process)."""
    env = dict(os.environ)
    for name, value in _USER_ENV.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def worker_environment(ours: bool, package_parent: str) -> dict:
    """Environment for a benchmark worker process: tinyeffnet's settings for our contender (they must be
    in place before the worker imports numpy), the user's own for PyTorch; the package importable."""
    if ours:
        env = dict(os.environ)
        for name, value in defaults().items():
            env.setdefault(name, value)
        if _is_glibc():          # glibc reads these at process start: keep_freed_memory's thresholds
            for name, value in MALLOC_THRESHOLDS.items():
                env.setdefault(f"MALLOC_{name[2:]}_", str(value))
    else:
        env = user_environment()
        env[QUIET] = "0"        # a peer's process: tinyeffnet's kernels are not what it times
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    return env
