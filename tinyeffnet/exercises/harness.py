"""The machinery every exercise shares: what an exercise is, how a test row fails, and the three
kinds of evidence a row can ask for.

An ``Exercise`` names the functions the student writes (``Function``: name, parameters, the task
as a docstring) and the grid of tests (``Test``: a name, a hint, and ``run(sub, rng)``, which
raises ``Mismatch`` with what it saw when the submission is wrong, ``Skip`` when it cannot run,
and returns a line describing the case it covered when it passed).

The evidence:

1. ``expect_close``: an answer against the library's reference tier (float64), every entry,
   naming the first wrong entry and how many are wrong ("dx: 4 of 150 entries wrong; first at
   (0, 4, 6, 1)" is a forgotten bottom-right pixel).
2. ``expect_gradients``: centred differences of the student's OWN forward, in float64, at EVERY
   entry of every input (not a sample: a backward that drops one pixel is wrong at one entry of
   hundreds), with a random upstream gradient dy (never all ones: BatchNorm's dx would vanish):

       L(inputs) = sum(forward(inputs) * dy),    n_i = (L(x + h e_i) - L(x - h e_i)) / (2 h)
       error = max_i |a_i - n_i| / max(1e-8, max_i (|a_i| + |n_i|))      (tensor-wide, docs/DESIGN.md 7)

3. ``torch_module``: PyTorch, when it is installed; otherwise the row is skipped and scores nothing.
"""
from __future__ import annotations

import copy
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np


class Mismatch(Exception):
    """A test saw a wrong answer; the message says what (shapes, the first wrong entry)."""


class Skip(Exception):
    """A test could not run here (torch not installed); the row is reported and scores nothing."""


@dataclass
class Function:
    """A function the student writes: ``def name(params): doc``."""

    name: str
    params: str                  # the parameter list as written in the skeleton: "x, w, stride=1, padding=0"
    doc: str                     # the task: what to compute, the equations, the shapes, hints


@dataclass
class Test:
    """One row of the grid. ``run(sub, rng)`` returns a description of the case, or raises Mismatch / Skip."""

    name: str
    run: Callable
    hint: str
    points: int = 1


@dataclass
class Exercise:
    """One exercise: its functions, its tests, what it may import from tinyeffnet, and its texts."""

    name: str
    title: str
    intro: str                   # the idea and the equations: the skeleton's docstring, the notebook's first cell
    functions: list
    tests: list
    allowed: tuple = ()          # "module" or "module:name" entries a submission may import from tinyeffnet
    block_arg: str | None = None  # block exercises: the name of the block parameter
    try_it: str = ""             # a notebook cell that calls the student's functions once
    notebook: str = ""           # the walkthrough notebook this exercise follows
    warmup: Callable | None = None  # run once before the timed tests (compiles the library's kernels)
    forbidden: Callable | None = None  # code -> True if the student may not call it (None: any of the package)

    @property
    def function_names(self) -> list:
        return [f.name for f in self.functions]


def rng_for(seed: int, test_name: str) -> np.random.Generator:
    """The generator of one test's grid: a new seed gives new shapes and values for every row."""
    return np.random.default_rng([seed, zlib.crc32(test_name.encode())])


# ------------------------------------------------------------------------------ evidence 1
def as_array(what: str, value) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise Mismatch(f"{what}: expected a numpy array, got {type(value).__name__}")
    return value


def expect_close(what: str, ours, expected, *, tol: float = 1e-9) -> None:
    """Every entry of ``ours`` within tol * max(1, max|expected|) of ``expected``; same shape, same dtype."""
    ours = as_array(what, ours)
    expected = np.asarray(expected)
    if ours.shape != expected.shape:
        raise Mismatch(f"{what}: shape {ours.shape}, expected {expected.shape}")
    if ours.dtype != expected.dtype:
        raise Mismatch(f"{what}: dtype {ours.dtype}, expected {expected.dtype} (the dtype that goes in comes out)")
    if ours.size == 0:
        return
    scale = max(1.0, float(np.max(np.abs(expected))))
    wrong = ~(np.abs(ours.astype(np.float64) - expected) <= tol * scale)      # NaN counts as wrong
    if wrong.any():
        first = tuple(int(i) for i in np.argwhere(wrong)[0])
        raise Mismatch(f"{what}: {int(wrong.sum())} of {ours.size} entries wrong; first at {first}: "
                       f"got {ours[first]:.6g}, expected {expected[first]:.6g}")


def unpack_pair(what: str, result) -> tuple:
    """An op's forward returns (y, cache)."""
    if not (isinstance(result, tuple) and len(result) == 2):
        raise Mismatch(f"{what} must return (y, cache), got {type(result).__name__}")
    return result


def as_grads(what: str, result, count: int) -> tuple:
    """An op's backward returns a tuple of ``count`` gradients (a list is accepted)."""
    if isinstance(result, list):
        result = tuple(result)
    if not isinstance(result, tuple):
        result = (result,)
    if len(result) != count:
        raise Mismatch(f"{what} must return {count} gradient(s) as a tuple, got {len(result)}")
    return result


# ------------------------------------------------------------------------------ evidence 2
def numeric_gradient(loss: Callable, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """dL/dx by centred differences at every entry of x (changed in place and restored)."""
    grad = np.empty(x.shape, dtype=np.float64)
    for index in np.ndindex(x.shape):
        saved = x[index]
        x[index] = saved + h
        plus = loss()
        x[index] = saved - h
        minus = loss()
        x[index] = saved
        grad[index] = (plus - minus) / (2 * h)
    return grad


def expect_gradient(what: str, analytic, numeric: np.ndarray, *, tol: float = 1e-6) -> None:
    """Tensor-wide relative error (module docstring) at most tol; names the worst entry if not."""
    analytic = as_array(what, analytic)
    if analytic.shape != numeric.shape:
        raise Mismatch(f"{what}: shape {analytic.shape}, expected {numeric.shape}")
    if analytic.size == 0:
        return
    a = analytic.astype(np.float64)
    diff = np.abs(a - numeric)
    error = float(np.max(diff) / max(1e-8, float(np.max(np.abs(a) + np.abs(numeric)))))
    if not error <= tol:
        worst = tuple(int(i) for i in np.unravel_index(int(np.nanargmax(np.where(np.isnan(diff), np.inf, diff))),
                                                          diff.shape))
        bad = int(np.sum(~(diff <= tol * max(1e-8, float(np.max(np.abs(numeric)))))))
        raise Mismatch(f"{what}: relative error {error:.2e} > {tol:g} against finite differences, {bad} of "
                       f"{a.size} entries off; worst at {worst}: backward {a[worst]:.6g}, "
                       f"finite differences {numeric[worst]:.6g}")


def expect_op_gradients(forward: Callable, backward: Callable, inputs: list, names: list, rng, *,
                        kwargs: dict | None = None, tol: float = 1e-6) -> None:
    """Gradient check of an op pair at every entry of the first len(names) inputs.

    forward(*inputs, **kwargs) -> (y, cache); backward(dy, cache) -> one gradient per name.
    Every call gets fresh copies of the inputs (an op may update some in place, like running stats).
    """
    kwargs = kwargs or {}
    inputs = [np.array(v, copy=True) if isinstance(v, np.ndarray) else v for v in inputs]
    call = lambda: forward(*copy.deepcopy(inputs), **kwargs)
    y, cache = unpack_pair(forward.__name__, call())
    y = as_array("y", y)
    dy = rng.standard_normal(y.shape)
    grads = as_grads(backward.__name__, backward(dy.copy(), cache), len(names))
    loss = lambda: float(np.sum(np.asarray(unpack_pair(forward.__name__, call())[0], dtype=np.float64) * dy))
    for position, name in enumerate(names):
        expect_gradient(f"d{name}", grads[position], numeric_gradient(loss, inputs[position]), tol=tol)


# ------------------------------------------------------------------------------ evidence 3
def torch_module():
    """torch, or Skip("torch not installed"): a parity row that cannot run scores nothing."""
    try:
        import torch
    except ImportError:
        raise Skip("skipped: torch not installed") from None
    return torch


# ------------------------------------------------------------------------------ the grid
def draw_size(rng, parity: str | None = None, low: int = 2, high: int = 9) -> int:
    """A spatial size in [low, high]: "odd", "even" or either."""
    choices = [s for s in range(low, high + 1)
               if parity is None or (s % 2 == 1) == (parity == "odd")]
    return int(rng.choice(choices))


def describe_shapes(**arrays) -> str:
    return ", ".join(f"{k} {tuple(np.shape(v))}" if isinstance(v, np.ndarray) else f"{k} {v!r}"
                     for k, v in arrays.items())


def submitted(sub, name: str):
    """The submission's function ``name``, or a Mismatch saying it is missing."""
    fn = getattr(sub, name, None)
    if not callable(fn):
        raise Mismatch(f"the submission has no function {name}")
    return fn
