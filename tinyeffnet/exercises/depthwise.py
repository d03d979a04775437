"""Exercise 3: the depthwise convolution, forward and backward (``depthwise_conv2d_forward`` /
``depthwise_conv2d_backward``, the signatures of ``tinyeffnet.ops``). Each channel has its own
KH x KW filter and channels never mix:

    y[n,i,j,c]  = sum_{a,b} xpad[n, i*S+a, j*S+b, c] w[a,b,c]
    dw[a,b,c]   = sum_{n,i,j} xpad[n, i*S+a, j*S+b, c] dy[n,i,j,c]
    dxpad[n, i*S+a, j*S+b, c] += dy[n,i,j,c] w[a,b,c];   dx = dxpad without its border

The grid is the dense convolution's (``conv2d.conv_cases``): stride 2 on odd and even sizes,
"same" padding, batch 1 and one channel, non-square, a kernel as large as the input; each backward
row compares dx and dw with the reference AND with finite differences at every entry, so a backward
that forgets the bottom-right pixel fails on every seed (a 30-entry sample misses it one time in three).
"""
from __future__ import annotations

from .conv2d import GEOMETRY, backward_test, float32_test, forward_test, torch_test
from .harness import Exercise, Function

FORWARD_DOC = f"""Depthwise 2-D convolution: one KH x KW filter per channel, no bias.

    y[n,i,j,c] = sum_{{a,b}} xpad[n, i*S+a, j*S+b, c] * w[a,b,c]

{GEOMETRY.replace("w: (KH, KW, Cin, Cout)", "w: (KH, KW, C)").replace("(N, H, W, Cin)", "(N, H, W, C)")}
    Returns (y, cache): y (N, Ho, Wo, C), same dtype as x; cache: what your backward needs.

    Hint: for tap (a, b), xpad[:, a : a + S*(Ho-1) + 1 : S, b : b + S*(Wo-1) + 1 : S, :] * w[a, b]
    (a broadcast over the channel axis) is that tap's contribution to every output."""

BACKWARD_DOC = """Gradients of depthwise_conv2d_forward, given dy (N, Ho, Wo, C).

    dw[a,b,c] = sum_{n,i,j} xpad[n, i*S+a, j*S+b, c] * dy[n,i,j,c]
    dxpad[n, i*S+a, j*S+b, c] += dy[n,i,j,c] * w[a,b,c];    dx = dxpad[:, top:top+H, left:left+W, :]

    Returns (dx, dw): dx (N, H, W, C), dw (KH, KW, C).

    Hints: dw sums over n, i, j but NOT over c; the scatter into dxpad uses += (windows overlap).
    Every entry of dx is checked, the last row and column too."""

INTRO = """Depthwise convolution (MobileNet; the 'D' of MBConv), channels-last.

    y[n,i,j,c] = sum_{a,b} xpad[n, i*S+a, j*S+b, c] w[a,b,c]

x (N, H, W, C), w (KH, KW, C), y (N, Ho, Wo, C): one filter per channel, so C x fewer
multiply-adds than a dense conv with C outputs. Read after notebooks/02_depthwise_pointwise.ipynb;
the library's version: tinyeffnet/ops/reference/conv.py."""

TRY_IT = """x = np.random.default_rng(0).standard_normal((2, 6, 6, 3))
w = np.random.default_rng(1).standard_normal((3, 3, 3))
y, cache = solution.depthwise_conv2d_forward(x, w, stride=2, padding=1)
dx, dw = solution.depthwise_conv2d_backward(np.ones_like(y), cache)
print(y.shape, dx.shape, dw.shape)   # expected (2, 3, 3, 3) (2, 6, 6, 3) (3, 3, 3)"""


def exercises() -> list:
    prefix = "depthwise_conv2d"
    return [Exercise(
        name="depthwise_conv2d", title="Depthwise convolution: forward and backward", intro=INTRO,
        functions=[Function(f"{prefix}_forward", "x, w, stride=1, padding=0", FORWARD_DOC),
                   Function(f"{prefix}_backward", "dy, cache", BACKWARD_DOC)],
        tests=[forward_test(prefix, i, True) for i in (1, 3, 7)]
        + [backward_test(prefix, i, True) for i in range(10)]
        + [float32_test(prefix, True, True), torch_test(prefix, True, True)],
        try_it=TRY_IT, notebook="02_depthwise_pointwise.ipynb")]
