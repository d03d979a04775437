"""Benchmark workers: a measurement in a process of its own, its result read back as one JSON line.

Each contender of a benchmark runs in a fresh process (its own thread pools, allocator and Numba
cache state; torch never in the process whose kernels are timed). A worker prints its result as the
last line starting with ``RESULT`` on stdout:

    result: {"median_s": 0.041, ...}

and ``run_worker`` starts one and parses that line, or raises with the worker's stderr.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

RESULT = "result:"      # the prefix of a worker's result line on stdout
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def print_result(report: dict) -> None:
    """What a worker prints last: its report as one ``result:`` line."""
    print(RESULT + json.dumps(report), flush=True)


def run_worker(args: list, what: str, ours: bool = True) -> dict:
    """``python *args`` in a process of its own (tinyeffnet's environment if ``ours``, else a
    clean one for a peer); returns the JSON of its last result line. RuntimeError naming ``what``
    with the end of its stderr if it failed or printed no result."""
    from ..process import worker_environment

    out = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                         env=worker_environment(ours, PACKAGE_PARENT))
    lines = [line for line in out.stdout.splitlines() if line.startswith(RESULT)]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"{what} failed (exit code {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][len(RESULT):])
