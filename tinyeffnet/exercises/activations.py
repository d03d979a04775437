"""Exercise 5: sigmoid and SiLU (swish), forward and backward, computed stably
(``sigmoid_forward`` / ``sigmoid_backward`` / ``silu_forward`` / ``silu_backward``, as in ``tinyeffnet.ops``).

    s = sigmoid(x) = 1 / (1 + exp(-x))          ds/dx = s (1 - s)
    silu(x) = x s                               dsilu/dx = s + x s (1 - s) = s (1 + x (1 - s))

What the grid catches: the missing sigmoid' term in SiLU's slope (dx = dy s), a sign error in
s (1 - s), a sigmoid that overflows for x << 0 (exp(1000) raises under np.errstate(over="raise")
and gives a warning otherwise: the stable form uses e = exp(-|x|)), and a lost dtype.
"""
from __future__ import annotations

import numpy as np

from ..ops import reference
from .harness import (Exercise, Function, Mismatch, Test, as_grads, describe_shapes, expect_close, expect_op_gradients,
                      submitted, torch_module, unpack_pair)




def _x(rng, shape=None, dtype=np.float64):
    shape = shape or (int(rng.integers(2, 4)), int(rng.integers(2, 5)), int(rng.integers(2, 5)), 3)
    return (rng.standard_normal(shape) * 4).astype(dtype)


def pair_test(op: str, shape_kind: str, hint: str, points: int = 2) -> Test:
    """Row: forward and backward against the reference, and finite differences at every entry."""

    def run(sub, rng):
        x = _x(rng, (int(rng.integers(3, 8)), int(rng.integers(2, 6))) if shape_kind == "nc" else None)
        forward, backward = submitted(sub, f"{op}_forward"), submitted(sub, f"{op}_backward")
        y, cache = unpack_pair(f"{op}_forward", forward(x.copy()))
        y_ref, cache_ref = getattr(reference, f"{op}_forward")(x)
        expect_close("y", y, y_ref)
        dy = rng.standard_normal(x.shape)
        (dx,) = as_grads(f"{op}_backward", backward(dy.copy(), cache), 1)
        expect_close("dx", dx, getattr(reference, f"{op}_backward")(dy, cache_ref)[0])
        expect_op_gradients(forward, backward, [x], ["x"], rng)
        return describe_shapes(x=x) + "; every entry of dx by finite differences"

    return Test(f"{op} forward and backward, {'(N, C)' if shape_kind == 'nc' else '(N, H, W, C)'}", run, hint, points)


def extreme_test(op: str) -> Test:
    """Row: x in +-[30, 1000] under np.errstate(over="raise", invalid="raise"): no overflow, the limits."""

    def run(sub, rng):
        x = np.concatenate([-np.geomspace(30, 1000, 5), np.geomspace(30, 1000, 5), rng.standard_normal(4)])
        forward, backward = submitted(sub, f"{op}_forward"), submitted(sub, f"{op}_backward")
        try:
            with np.errstate(over="raise", invalid="raise"):
                y, cache = unpack_pair(f"{op}_forward", forward(x.copy()))
                (dx,) = as_grads(f"{op}_backward", backward(np.ones_like(x), cache), 1)
        except FloatingPointError as err:
            raise Mismatch(f"numpy reported {err} for x = +-30 .. +-1000") from None
        y_ref, cache_ref = getattr(reference, f"{op}_forward")(x)
        expect_close("y", y, y_ref)
        expect_close("dx", dx, getattr(reference, f"{op}_backward")(np.ones_like(x), cache_ref)[0])
        return "x = -1000 .. 1000 with np.errstate(over='raise', invalid='raise')"

    return Test(f"{op} at x = +-1000 (no overflow)", run,
                "exp(-x) overflows for x << 0: with e = exp(-|x|), s = 1/(1+e) for x >= 0 and e/(1+e) for x < 0")


def float32_test() -> Test:
    def run(sub, rng):
        x = _x(rng, dtype=np.float32)
        for op in ("sigmoid", "silu"):
            y, cache = unpack_pair(f"{op}_forward", submitted(sub, f"{op}_forward")(x))
            y_ref, cache_ref = getattr(reference, f"{op}_forward")(x)
            expect_close(f"{op} y", y, y_ref, tol=1e-6)
            dy = np.ones_like(x)
            (dx,) = as_grads(f"{op}_backward", submitted(sub, f"{op}_backward")(dy, cache), 1)
            expect_close(f"{op} dx", dx, getattr(reference, f"{op}_backward")(dy, cache_ref)[0], tol=1e-6)
        return describe_shapes(x=x) + ", float32"

    return Test("float32 in, float32 out", run, "keep the input's dtype (a float64 constant promotes the result)")


def torch_test() -> Test:
    def run(sub, rng):
        torch = torch_module()
        x = _x(rng)
        for op, torch_fn in (("sigmoid", torch.sigmoid), ("silu", torch.nn.functional.silu)):
            y, cache = unpack_pair(f"{op}_forward", submitted(sub, f"{op}_forward")(x.copy()))
            xt = torch.tensor(x, requires_grad=True)
            yt = torch_fn(xt)
            expect_close(f"{op} y (torch)", y, yt.detach().numpy())
            dy = rng.standard_normal(x.shape)
            (dx,) = as_grads(f"{op}_backward", submitted(sub, f"{op}_backward")(dy.copy(), cache), 1)
            yt.backward(torch.tensor(dy))
            expect_close(f"{op} dx (torch)", dx, xt.grad.numpy())
        return describe_shapes(x=x) + ": torch.sigmoid, torch.nn.functional.silu"

    return Test("parity with PyTorch", run, "PyTorch disagrees: re-derive the slope from s = sigmoid(x)")


SIGMOID_FORWARD = """y = sigmoid(x) = 1 / (1 + exp(-x)), elementwise, without overflow.

    x: any shape. Returns (y, cache): y like x (same dtype); cache: what backward needs (y itself).
    Hint: exp(-x) overflows for x = -1000. With e = exp(-|x|) in (0, 1]:
          s = 1 / (1 + e) where x >= 0,   s = e / (1 + e) where x < 0   (np.where picks)."""

SIGMOID_BACKWARD = """dx = dy * y (1 - y), with y = sigmoid(x) from the cache. Returns (dx,): a 1-tuple."""

SILU_FORWARD = """y = silu(x) = x * sigmoid(x), elementwise (EfficientNetV2's activation, a.k.a. swish).

    x: any shape. Returns (y, cache): y like x; cache: what backward needs (x: recompute s from it)."""

SILU_BACKWARD = """dx = dy * d silu / dx, with s = sigmoid(x):

    d silu / dx = s + x s (1 - s) = s (1 + x (1 - s))      (the product rule: x' s + x s')

    Returns (dx,): a 1-tuple. Hint: forgetting the x s (1 - s) term is the classic mistake."""

INTRO = """Sigmoid and SiLU: EfficientNetV2 uses SiLU after every convolution and sigmoid as the
gate of squeeze-and-excitation.

    s = 1 / (1 + exp(-x)),  ds/dx = s (1 - s);   silu(x) = x s,  dsilu/dx = s (1 + x (1 - s))

The library's version: tinyeffnet/ops/reference/activations.py."""

TRY_IT = """x = np.linspace(-6, 6, 5)
y, cache = solution.silu_forward(x)
print(y, solution.silu_backward(np.ones_like(x), cache)[0])"""


def exercises() -> list:
    return [Exercise(
        name="silu_sigmoid", title="Sigmoid and SiLU, stable, forward and backward", intro=INTRO,
        functions=[Function("sigmoid_forward", "x", SIGMOID_FORWARD),
                   Function("sigmoid_backward", "dy, cache", SIGMOID_BACKWARD),
                   Function("silu_forward", "x", SILU_FORWARD),
                   Function("silu_backward", "dy, cache", SILU_BACKWARD)],
        tests=[pair_test("sigmoid", "nhwc", "ds/dx = s (1 - s), written in the output alone"),
               pair_test("sigmoid", "nc", "elementwise: any shape"),
               pair_test("silu", "nhwc", "dsilu/dx = s + x s (1 - s): do not forget the sigmoid' term"),
               pair_test("silu", "nc", "elementwise: any shape"),
               extreme_test("sigmoid"), extreme_test("silu"), float32_test(), torch_test()],
        try_it=TRY_IT, notebook="04_squeeze_excite.ipynb")]
