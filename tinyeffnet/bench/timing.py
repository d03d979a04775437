"""The one timing loop every benchmark uses: warm-up calls, then the median of timed calls."""
from __future__ import annotations

import time

import numpy as np


def median_seconds(step, repeats: int, warmups: int = 1) -> float:
    """Call ``step()`` ``warmups`` times untimed (compilation, allocator, caches), then ``repeats``
    times timed; return the median wall time of the timed calls, in seconds."""
    for _ in range(warmups):
        step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def machine_line() -> str:
    """``machine.describe()`` and the GEMM the ops call (ops/blas.py): the line beside every figure."""
    from ..machine import describe
    from ..ops import blas

    return f"{describe()}; GEMM: {blas.describe()}"
