"""Exercises 1-2: the dense 2-D convolution, forward (``conv2d_forward``) then backward
(``conv2d_backward``), channels-last, with the signatures of ``tinyeffnet.ops``.

    y[n,i,j,co]   = sum_{a,b,ci} xpad[n, i*S+a, j*S+b, ci] w[a,b,ci,co]
    dw[a,b,ci,co] = sum_{n,i,j} xpad[n, i*S+a, j*S+b, ci] dy[n,i,j,co]
    dxpad[n, i*S+a, j*S+b, ci] += sum_co dy[n,i,j,co] w[a,b,ci,co];   dx = dxpad without its border

The grid (``conv_cases``) is built to catch the classic mistakes: stride 2 on odd and on even sizes
(the last window and the output size), TensorFlow "same" padding (asymmetric, the smaller half
first), batch 1 and one channel (a squeezed axis), non-square inputs and kernels (H and W swapped),
and a kernel as large as the input (the borders: the last row and column). The seed draws the
sizes inside each case, so a new seed is a new grid with the same traps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ops import reference
from ..ops._checks import resolve_padding
from .harness import (Exercise, Function, Test, as_grads, describe_shapes, draw_size, expect_close,
                      expect_op_gradients, submitted, torch_module, unpack_pair)

GEOMETRY = """\
    x: (N, H, W, Cin) channels-last; w: (KH, KW, Cin, Cout); stride S: an int >= 1;
    padding: an int p (PyTorch: p zeros on every side) or "same" (TensorFlow: the output is
    ceil(H / S) x ceil(W / S); the total padding along an axis is max((ceil(H/S) - 1) S + K - H, 0),
    and the SMALLER half goes on top / on the left).
    Output size: Ho = (H + top + bottom - KH) // S + 1, Wo likewise."""


@dataclass
class ConvCase:
    """One geometry of the grid."""

    name: str
    x_shape: tuple
    kernel: tuple          # (KH, KW)
    cout: int
    stride: int
    padding: object
    hint: str

    def arrays(self, rng, depthwise: bool, dtype=np.float64) -> tuple:
        x = rng.standard_normal(self.x_shape).astype(dtype)
        cin = self.x_shape[3]
        w_shape = self.kernel + ((cin,) if depthwise else (cin, self.cout))
        return x, rng.standard_normal(w_shape).astype(dtype)

    def describe(self, x, w) -> str:
        return describe_shapes(x=x, w=w, stride=self.stride, padding=self.padding)


HINT_ODD = ("stride 2 on an odd size: Ho = (H + top + bottom - KH) // S + 1, and the last window ends on the "
            "last padded row; check the output size and the loop bounds")
HINT_EVEN = "stride 2 on an even size: output i reads rows i*S .. i*S + KH - 1 of the padded input"
HINT_SAME = ('"same" padding: total = max((ceil(H/S) - 1) S + K - H, 0) per axis, the SMALLER half on top and on '
             'the left (TensorFlow), the larger half at the bottom and on the right')
HINT_ONE = "batch 1 and one channel: do not hard-code N or C, and do not let numpy squeeze a size-1 axis away"
HINT_RECT = "non-square input and kernel: H, W and KH, KW differ; check none of them is swapped"
HINT_BORDER = "a kernel as large as the (padded) input: every input pixel counts, the last row and column too"


def conv_cases(rng, depthwise: bool = False) -> list:
    """The geometries of the grid; the seed draws the sizes and channels inside each case."""
    c = lambda: int(rng.integers(2, 4))
    odd, even = (lambda: draw_size(rng, "odd", 3, 7)), (lambda: draw_size(rng, "even", 4, 6))
    b = int(rng.integers(3, 6))
    return [
        ConvCase("stride 1, padding 1", (2, odd(), even(), c()), (3, 3), c(), 1, 1,
                 "stride 1, padding 1: y[i, j] = sum over the 3x3 window whose top-left is xpad[i, j]"),
        ConvCase("stride 2, odd size, padding 1", (2, odd(), odd(), c()), (3, 3), c(), 2, 1, HINT_ODD),
        ConvCase("stride 2, even size, padding 1", (2, even(), even(), c()), (3, 3), c(), 2, 1, HINT_EVEN),
        ConvCase('"same", stride 2, even size', (2, even(), even(), c()), (3, 3), c(), 2, "same", HINT_SAME),
        ConvCase('"same", stride 2, odd size, 5x5 kernel', (1, odd(), odd() + 2, c()), (5, 5), c(), 2, "same",
                 HINT_SAME),
        ConvCase('"same", stride 1', (2, even(), odd(), c()), (3, 3), c(), 1, "same", HINT_SAME),
        ConvCase("batch 1, one channel", (1, odd(), even(), 1), (3, 3), 1, 1, 1, HINT_ONE),
        ConvCase("non-square input, 1x3 kernel, stride 2", (2, 3, odd() + 4, c()), (1, 3), c(), 2, 0, HINT_RECT),
        ConvCase("kernel as large as the input, no padding", (2, b, b + 1, c()), (b, b + 1), c(), 1, 0,
                 HINT_BORDER),
        ConvCase("stride 3, padding 2", (1, odd(), even(), c()), (3, 3), c(), 3, 2, HINT_ODD),
    ]


def reference_pair(depthwise: bool) -> tuple:
    if depthwise:
        return reference.depthwise_conv2d_forward, reference.depthwise_conv2d_backward
    return reference.conv2d_forward, reference.conv2d_backward




# ------------------------------------------------------------------------------ test builders
def forward_test(prefix: str, index: int, depthwise: bool, points: int = 1) -> Test:
    """Row: the student's forward against the reference, float64, every entry, for case ``index``."""
    fname = f"{prefix}_forward"

    def run(sub, rng):
        case = conv_cases(rng, depthwise)[index]
        x, w = case.arrays(rng, depthwise)
        y, _ = unpack_pair(fname, submitted(sub, fname)(x.copy(), w.copy(), case.stride, case.padding))
        expect_close("y", y, reference_pair(depthwise)[0](x, w, case.stride, case.padding)[0])
        return case.describe(x, w)

    probe = conv_cases(np.random.default_rng(0), depthwise)[index]
    return Test(f"forward: {probe.name}", run, probe.hint, points)


def backward_test(prefix: str, index: int, depthwise: bool, points: int = 2) -> Test:
    """Row: dx and dw against the reference for one random dy, then finite differences of the
    student's own forward at every entry of x and w."""
    fname, bname = f"{prefix}_forward", f"{prefix}_backward"

    def run(sub, rng):
        case = conv_cases(rng, depthwise)[index]
        x, w = case.arrays(rng, depthwise)
        forward, backward = submitted(sub, fname), submitted(sub, bname)
        ref_forward, ref_backward = reference_pair(depthwise)
        y_ref, cache_ref = ref_forward(x, w, case.stride, case.padding)
        y, cache = unpack_pair(fname, forward(x.copy(), w.copy(), case.stride, case.padding))
        expect_close("y", y, y_ref)
        dy = rng.standard_normal(y_ref.shape)
        dx, dw = as_grads(bname, backward(dy.copy(), cache), 2)
        dx_ref, dw_ref = ref_backward(dy, cache_ref)
        expect_close("dx", dx, dx_ref)
        expect_close("dw", dw, dw_ref)
        expect_op_gradients(forward, backward, [x, w], ["x", "w"], rng,
                            kwargs={"stride": case.stride, "padding": case.padding})
        return case.describe(x, w) + "; every entry of dx and dw checked by finite differences"

    probe = conv_cases(np.random.default_rng(0), depthwise)[index]
    return Test(f"backward: {probe.name}", run, probe.hint, points)


def float32_test(prefix: str, depthwise: bool, backward: bool) -> Test:
    fname, bname = f"{prefix}_forward", f"{prefix}_backward"

    def run(sub, rng):
        case = conv_cases(rng, depthwise)[3]
        x, w = case.arrays(rng, depthwise, np.float32)
        y, cache = unpack_pair(fname, submitted(sub, fname)(x, w, case.stride, case.padding))
        ref_forward, ref_backward = reference_pair(depthwise)
        y_ref, cache_ref = ref_forward(x, w, case.stride, case.padding)
        expect_close("y", y, y_ref, tol=1e-5)
        if backward:
            dy = rng.standard_normal(y_ref.shape).astype(np.float32)
            for what, ours, ref in zip(("dx", "dw"), as_grads(bname, submitted(sub, bname)(dy, cache), 2),
                                       ref_backward(dy, cache_ref)):
                expect_close(what, ours, ref, tol=1e-5)
        return case.describe(x, w) + ", float32"

    return Test("float32 in, float32 out", run,
                "keep the input's dtype: a float64 constant or np.zeros(shape) without dtype= promotes to float64")


def torch_test(prefix: str, depthwise: bool, backward: bool) -> Test:
    """Row: parity with torch.nn.functional.conv2d (NCHW, weights (Cout, Cin, KH, KW)), forward and,
    for a backward exercise, both gradients; "same" pads are applied with F.pad first."""
    fname, bname = f"{prefix}_forward", f"{prefix}_backward"

    def run(sub, rng):
        torch = torch_module()
        detail = []
        for index in (1, 3, 7):
            case = conv_cases(rng, depthwise)[index]
            x, w = case.arrays(rng, depthwise)
            y, cache = unpack_pair(fname, submitted(sub, fname)(x.copy(), w.copy(), case.stride, case.padding))
            kh, kw = case.kernel
            top, bottom, left, right = resolve_padding(case.padding, x.shape[1], x.shape[2], kh, kw, case.stride)
            xt = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
            if depthwise:
                wt = torch.tensor(w.transpose(2, 0, 1)[:, None].copy(), requires_grad=True)   # (C, 1, KH, KW)
            else:
                wt = torch.tensor(w.transpose(3, 2, 0, 1).copy(), requires_grad=True)         # (Cout, Cin, KH, KW)
            padded = torch.nn.functional.pad(xt, (left, right, top, bottom))
            yt = torch.nn.functional.conv2d(padded, wt, stride=case.stride, groups=x.shape[3] if depthwise else 1)
            expect_close("y (torch)", y, yt.detach().numpy().transpose(0, 2, 3, 1))
            if backward:
                dy = rng.standard_normal(np.shape(y))
                dx, dw = as_grads(bname, submitted(sub, bname)(dy.copy(), cache), 2)
                yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2).copy()))
                expect_close("dx (torch)", dx, xt.grad.numpy().transpose(0, 2, 3, 1))
                dw_t = wt.grad.numpy()
                dw_t = dw_t[:, 0].transpose(1, 2, 0) if depthwise else dw_t.transpose(2, 3, 1, 0)
                expect_close("dw (torch)", dw, dw_t)
            detail.append(case.name)
        return "torch.nn.functional.conv2d: " + "; ".join(detail)

    return Test("parity with PyTorch", run, "PyTorch disagrees: compare your layout (NHWC, w (KH, KW, ...)) "
                "and your padding with the equations", points=1)


# ------------------------------------------------------------------------------ the exercises
FORWARD_DOC = f"""Dense 2-D convolution (a cross-correlation), channels-last, no bias.

    y[n,i,j,co] = sum_{{a,b,ci}} xpad[n, i*S+a, j*S+b, ci] * w[a,b,ci,co]

{GEOMETRY}
    Returns (y, cache): y (N, Ho, Wo, Cout), same dtype as x; cache: whatever your backward needs
    (x, w, the stride and the four pads).

    Hints: pad first (np.pad with ((0, 0), (top, bottom), (left, right), (0, 0))), then loop over the
    KH x KW taps: for tap (a, b) the pixels read by every output are the strided slice
    xpad[:, a : a + S*(Ho-1) + 1 : S, b : b + S*(Wo-1) + 1 : S, :], shape (N, Ho, Wo, Cin);
    np.tensordot(slice, w[a, b], axes=([3], [0])) adds that tap's contribution."""

BACKWARD_DOC = """Gradients of conv2d_forward, given dy = dL/dy of shape (N, Ho, Wo, Cout).

    dw[a,b,ci,co] = sum_{n,i,j} xpad[n, i*S+a, j*S+b, ci] * dy[n,i,j,co]
    dxpad[n, i*S+a, j*S+b, ci] += sum_co dy[n,i,j,co] * w[a,b,ci,co]     (for every i, j, a, b)
    dx = dxpad[:, top : top + H, left : left + W, :]                      (drop the padding)

    Returns (dx, dw): dx (N, H, W, Cin), dw (KH, KW, Cin, Cout), the dtype of dy.

    Hints: the same tap loop as the forward; the strided slice of dxpad is where tap (a, b) scatters
    its gradient (use +=: windows overlap when KH > S). Every input pixel must receive its share,
    the bottom-right one too: the check compares EVERY entry with finite differences."""

INTRO = """Dense convolution, channels-last (docs/DESIGN.md, section 3).

    y[n,i,j,co] = sum_{a,b,ci} xpad[n, i*S+a, j*S+b, ci] w[a,b,ci,co]

x (N, H, W, Cin), w (KH, KW, Cin, Cout), y (N, Ho, Wo, Cout); xpad is x with zeros around H and W.
padding is an int (PyTorch, symmetric) or "same" (TensorFlow: asymmetric, the smaller half first).
Read after notebooks/01_dense_conv.ipynb. The library's version, to compare with once you are done:
tinyeffnet/ops/reference/conv.py."""

TRY_CONV = """x = np.random.default_rng(0).standard_normal((2, 5, 5, 3))
w = np.random.default_rng(1).standard_normal((3, 3, 3, 4))
y, cache = solution.conv2d_forward(x, w, stride=2, padding="same")
print(y.shape)   # expected (2, 3, 3, 4)"""


def exercises() -> list:
    forward = Exercise(
        name="conv2d_forward", title="Dense convolution: the forward pass", intro=INTRO,
        functions=[Function("conv2d_forward", "x, w, stride=1, padding=0", FORWARD_DOC)],
        tests=[forward_test("conv2d", i, False) for i in range(10)]
        + [float32_test("conv2d", False, False), torch_test("conv2d", False, False)],
        try_it=TRY_CONV, notebook="01_dense_conv.ipynb")
    backward = Exercise(
        name="conv2d_backward", title="Dense convolution: the backward pass", intro=INTRO,
        functions=[Function("conv2d_forward", "x, w, stride=1, padding=0", FORWARD_DOC),
                   Function("conv2d_backward", "dy, cache", BACKWARD_DOC)],
        tests=[backward_test("conv2d", i, False) for i in range(10)]
        + [float32_test("conv2d", False, True), torch_test("conv2d", False, True)],
        try_it=TRY_CONV + "\ndx, dw = solution.conv2d_backward(np.ones_like(y), cache)\nprint(dx.shape, dw.shape)",
        notebook="01_dense_conv.ipynb")
    return [forward, backward]
