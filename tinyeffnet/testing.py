"""Proof helpers: gradient checks and PyTorch parity, for our tests and for a student's own ops.

Both helpers take a forward/backward pair in the form every op of ``tinyeffnet.ops`` uses:

    y, cache = forward(*inputs, **kwargs)
    grads    = backward(dy, cache)        # one gradient per input, in order, for the first len(grads) inputs

so a teacher can point them at a student's ``my_conv_forward`` / ``my_conv_backward`` in one call:

    >>> from tinyeffnet.testing import gradcheck
    >>> report = gradcheck(my_conv_forward, my_conv_backward, [x, w], kwargs={"stride": 2})
    >>> print(report)            # one row per gradient: max relative error, ok or not
    >>> assert report.ok

Gradient check (cs231n style). With a fixed random upstream gradient ``dy`` the scalar

    L(inputs) = sum(forward(inputs) * dy)

has gradient ``backward(dy)`` with respect to every input. Each checked entry ``i`` of an input gets
the centred difference

    n_i = (L(x + h e_i) - L(x - h e_i)) / (2 h)          (error O(h^2))

compared with the analytic value ``a_i`` by the relative error

    max_i |a_i - n_i| / max(1e-8, max_i (|a_i| + |n_i|))

taken over the whole gradient tensor: the round-off of a difference quotient is about
1e-16 |L| / h in absolute terms, the same for every entry, so an entry-by-entry ratio would flag tiny
entries (1e-3 of the largest) whose numbers are right; a wrong term moves the largest entries too.
``dy`` is random on purpose: with an all-ones ``dy`` BatchNorm's input gradient is zero analytically,
and a wrong backward that also returns zeros would pass.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """max|a - b| / max(1e-8, max(|a| + |b|)) over the whole tensor (0.0 for empty arrays)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1e-8, float(np.max(np.abs(a) + np.abs(b)))))


@dataclass
class CheckRow:
    name: str
    error: float
    tolerance: float
    detail: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.error <= self.tolerance)


@dataclass
class Report:
    """Rows of (name, error, tolerance). ``ok`` when every row is within its tolerance."""

    title: str
    rows: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

    @property
    def max_error(self) -> float:
        return max((row.error for row in self.rows), default=0.0)

    def __str__(self) -> str:
        lines = [self.title, f"  {'what':<24} {'error':>10} {'tolerance':>10}  result"]
        for row in self.rows:
            lines.append(f"  {row.name:<24} {row.error:>10.2e} {row.tolerance:>10.0e}  {'ok' if row.ok else 'FAIL'}")
            if row.detail and not row.ok:
                lines.extend("    " + line for line in row.detail.splitlines())
        return "\n".join(lines)

    __repr__ = __str__

    def assert_ok(self) -> "Report":
        if not self.ok:
            raise AssertionError(str(self))
        return self


def _upstream_rng(seed: int) -> np.random.Generator:
    """The generator of dy. Seeded with (seed, a tag), never with ``seed`` alone: inputs drawn with
    ``default_rng(0)`` would otherwise equal ``dy`` drawn with ``default_rng(0)``, and with dy == x
    BatchNorm's input gradient is nearly zero (y is invariant to shifting and scaling x), which
    hides errors exactly as an all-ones dy does."""
    return np.random.default_rng([seed, 0x7E57])


def _sample_indices(size: int, samples: int | None, rng: np.random.Generator) -> np.ndarray:
    if samples is None or samples >= size:
        return np.arange(size)
    return rng.choice(size, size=samples, replace=False)


def _call(forward, inputs, kwargs):
    # Deep copies: an op may update some inputs in place (BatchNorm's running statistics), and every
    # evaluation of L must see the same inputs.
    return forward(*[copy.deepcopy(v) for v in inputs], **copy.deepcopy(kwargs))


def gradcheck(
    forward: Callable,
    backward: Callable,
    inputs: Sequence[np.ndarray],
    *,
    kwargs: dict | None = None,
    names: Sequence[str] | None = None,
    eps: float = 1e-6,
    tol: float = 1e-7,
    samples: int | None = 30,
    seed: int = 0,
) -> Report:
    """Compare ``backward``'s gradients with centred finite differences of ``forward``.

    inputs:  arrays passed positionally to forward; use float64 (float32 differences are too noisy).
    kwargs:  options passed to forward (stride, padding, ...), copied for every call.
    names:   labels of the inputs for the report (default x0, x1, ...).
    eps:     the step h. 1e-6 balances truncation error O(h^2) against round-off O(1e-16 / h).
    tol:     allowed relative error per gradient; 1e-7 suits smooth ops in float64 (cs231n notes).
    samples: entries checked per input, drawn at random (None: every entry).
    Returns a Report with one row per gradient that backward returns.
    """
    kwargs = dict(kwargs or {})
    rng = _upstream_rng(seed)
    inputs = [np.array(v, copy=True) if isinstance(v, np.ndarray) else v for v in inputs]
    y, cache = _call(forward, inputs, kwargs)
    dy = rng.standard_normal(np.shape(y)).astype(np.asarray(y).dtype)
    grads = backward(dy.copy(), cache)
    if not isinstance(grads, tuple):
        grads = (grads,)
    names = list(names) if names is not None else [f"x{i}" for i in range(len(inputs))]

    def loss(values):
        out, _ = _call(forward, values, kwargs)
        return float(np.sum(np.asarray(out, dtype=np.float64) * dy))

    report = Report(f"gradcheck of {getattr(forward, '__name__', 'forward')} (eps={eps:g}, tol={tol:g})")
    for position, analytic in enumerate(grads):
        if analytic is None:
            continue
        x = inputs[position]
        if np.shape(analytic) != np.shape(x):
            report.rows.append(CheckRow(f"d{names[position]}", np.inf, tol,
                                        f"shape {np.shape(analytic)} != {np.shape(x)}"))
            continue
        flat_index = _sample_indices(x.size, samples, rng)
        numeric = np.empty(len(flat_index))
        for j, i in enumerate(flat_index):
            idx = np.unravel_index(i, x.shape)
            saved = x[idx]
            x[idx] = saved + eps
            plus = loss(inputs)
            x[idx] = saved - eps
            minus = loss(inputs)
            x[idx] = saved
            numeric[j] = (plus - minus) / (2 * eps)
        picked = np.asarray(analytic).reshape(-1)[flat_index]
        report.rows.append(CheckRow(f"d{names[position]}", rel_error(picked, numeric), tol, _worst(picked, numeric)))
    return report


def _worst(ours: np.ndarray, theirs: np.ndarray, k: int = 5) -> str:
    """The k entries with the largest absolute difference, for failure messages."""
    ours = np.asarray(ours, dtype=np.float64).reshape(-1)
    theirs = np.asarray(theirs, dtype=np.float64).reshape(-1)
    diff = np.abs(ours - theirs)
    order = np.argsort(diff)[::-1][:k]
    rows = [f"flat index {i}: ours {ours[i]: .8e}  reference {theirs[i]: .8e}  |diff| {diff[i]:.2e}" for i in order]
    return "\n".join(rows)


def compare(name: str, ours, reference, *, atol: float, rtol: float, scale: float | None = None) -> CheckRow:
    """One report row: shape and dtype must match, then, for every entry,

        |ours - ref| <= atol * scale + rtol * |ref|,      scale = max |ref| over the tensor (1 if all zero)

    ``atol`` is relative to the tensor's magnitude, not absolute. Why: an entry of a float32 sum
    (a conv's dw, a BN gradient) carries round-off of about eps * sum|terms|, which grows with the
    whole tensor's size, not the entry's; an entry that cancels to near zero keeps the round-off of
    its big neighbours. A bare absolute atol therefore passes on one CPU and fails on another whose
    BLAS sums in a different order (AVX2 vs AVX-512), as soon as the tensor's values reach 10 or
    100. Scaled, the same tolerance means "a few hundred ulps of the largest value" on every
    machine and for every magnitude.

    Pass ``scale`` when the tensor's own values do not show the computation's magnitude: a
    gradient that is zero in exact arithmetic (a bias whose output is normalised away) holds only
    round-off (1e-16), and its error must be judged against the gradients it was computed with.

    The row's error is max(0, max(|ours - ref| - rtol |ref|) / (atol * scale)): ok when error <= 1.
    """
    ours = np.asarray(ours)
    reference = np.asarray(reference)
    if ours.shape != reference.shape:
        return CheckRow(name, np.inf, 1.0, f"shape {ours.shape}, reference {reference.shape}")
    if ours.dtype != reference.dtype:
        return CheckRow(name, np.inf, 1.0, f"dtype {ours.dtype}, reference {reference.dtype}")
    if ours.size == 0:
        return CheckRow(name, 0.0, 1.0)
    a = ours.astype(np.float64)
    b = reference.astype(np.float64)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        same = np.array_equal(a, b, equal_nan=True)            # inf/NaN must sit in the same places
        return CheckRow(name, 0.0 if same else np.inf, 1.0, "" if same else "non-finite entries differ")
    if scale is None:
        scale = float(np.max(np.abs(b))) or 1.0
    excess = np.abs(a - b) - rtol * np.abs(b)
    # 0 when every entry is inside the band (how far inside does not matter to the reader)
    return CheckRow(name, max(float(np.max(excess) / (atol * scale)), 0.0), 1.0, _worst(a, b))


def torch_parity(
    forward: Callable,
    backward: Callable,
    torch_forward: Callable,
    inputs: Sequence[np.ndarray],
    *,
    kwargs: dict | None = None,
    names: Sequence[str] | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    seed: int = 0,
) -> Report:
    """Run the same inputs through ours and through PyTorch; compare the output and every gradient.

    torch_forward(*tensors) must compute the same function on torch tensors laid out like ours
    (it does any NHWC <-> NCHW permutes itself). The array inputs become tensors with
    requires_grad=True; the output is back-propagated with the same random ``dy`` as ours.
    Tolerances default by dtype: float64 atol=rtol=1e-10 (only summation order differs);
    float32 atol=1e-5, rtol=1e-4 (a few ulps of float32 rounding accumulated over the reductions).
    Rows are ok when |ours - torch| <= atol * max|torch| + rtol |torch| (see ``compare``: atol is
    relative to the tensor's largest value, so the same numbers hold for any magnitude and CPU).
    """
    import torch  # imported here: tinyeffnet itself never needs torch

    kwargs = dict(kwargs or {})
    dtype = next(np.asarray(v).dtype for v in inputs if isinstance(v, np.ndarray))
    if atol is None:
        atol = 1e-10 if dtype == np.float64 else 1e-5
    if rtol is None:
        rtol = 1e-10 if dtype == np.float64 else 1e-4
    names = list(names) if names is not None else [f"x{i}" for i in range(len(inputs))]

    y, cache = _call(forward, inputs, kwargs)
    rng = _upstream_rng(seed)
    dy = rng.standard_normal(np.shape(y)).astype(np.asarray(y).dtype)
    grads = backward(dy.copy(), cache)
    if not isinstance(grads, tuple):
        grads = (grads,)

    tensors = [
        torch.tensor(np.array(v), requires_grad=True) if isinstance(v, np.ndarray) else v for v in inputs
    ]
    y_torch = torch_forward(*tensors)
    y_torch.backward(torch.from_numpy(dy))

    name = getattr(forward, "__name__", "forward")
    report = Report(f"parity of {name} with PyTorch ({dtype}, atol={atol:g}, rtol={rtol:g})")
    report.rows.append(compare("forward", y, y_torch.detach().numpy(), atol=atol, rtol=rtol))
    for position, ours in enumerate(grads):
        if ours is None:
            continue
        theirs = tensors[position].grad
        reference = np.zeros_like(inputs[position]) if theirs is None else theirs.numpy()
        report.rows.append(compare(f"d{names[position]}", ours, reference, atol=atol, rtol=rtol))
    return report
