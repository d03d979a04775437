"""Exercise 10: the 3x3 stride-1 convolution by Winograd's F(2x2, 3x3) (``transform_weights``,
``winograd_conv3x3_forward``, ``winograd_conv3x3_backward``: the names and signatures of
``tinyeffnet/ops/winograd.py``).

    B^T = [[1, 0,-1, 0], [0, 1, 1, 0], [0,-1, 1, 0], [0, 1, 0,-1]]
    G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
    A^T = [[1, 1, 1, 0], [0, 1,-1,-1]]
    Y   = A^T [ (G g G^T) * (B^T d B) ] A         a 2x2 output tile from a 4x4 input tile

With channels, the product at each of the 16 positions is a matrix product over Cin:
U[xi] = (G g G^T)[xi] (Cin, Cout), V[xi] = (B^T d B)[xi] (T, Cin), M[xi] = V[xi] @ U[xi].

What the grid catches: B^T and B swapped (the input transform transposed), G without its halves,
A^T and A swapped, tiles that step by 4 instead of 2 (they overlap by two rows), an odd H or W
without the extra zero row or column (the last output row lost), and a backward that is not the
transpose of each step (finite differences at every entry of dx and dw).
"""
from __future__ import annotations

import numpy as np

from ..ops import reference
from ..ops.winograd import transform_weights as library_transform_weights
from .harness import (Exercise, Function, Test, as_grads, describe_shapes, expect_close, expect_gradient,
                      numeric_gradient, submitted, torch_module)




def _arrays(rng, kind: str):
    c = lambda: int(rng.integers(2, 4))
    n, cin, cout = 2, c(), c()
    if kind == "even":
        h, w = 2 * int(rng.integers(1, 4)), 2 * int(rng.integers(2, 4))
    elif kind == "odd":
        h, w = 2 * int(rng.integers(1, 3)) + 1, 2 * int(rng.integers(1, 4)) + 1
    elif kind == "one":
        n, cin, cout = 1, 1, 1
        h, w = int(rng.integers(3, 6)), int(rng.integers(3, 6))
    else:                                                            # "tiny": 1 x W and 2 x 1
        h, w = int(rng.choice([1, 2])), int(rng.integers(1, 4))
    return rng.standard_normal((n, h, w, cin)), rng.standard_normal((3, 3, cin, cout))


def transform_test() -> Test:
    def run(sub, rng):
        w = rng.standard_normal((3, 3, int(rng.integers(1, 4)), int(rng.integers(1, 4))))
        expect_close("U", submitted(sub, "transform_weights")(w.copy()), library_transform_weights(w))
        return describe_shapes(w=w)

    return Test("weight transform U = G g G^T", run,
                "U[4r+s, ci, co] = (G g G^T)[r, s] with G 4x3 (rows 1, 1/2 (1, 1, 1), 1/2 (1, -1, 1), (0, 0, 1))")


def forward_test(kind: str, name: str, hint: str) -> Test:
    def run(sub, rng):
        x, w = _arrays(rng, kind)
        y = submitted(sub, "winograd_conv3x3_forward")(x.copy(), w.copy())
        expect_close("y", y, reference.conv2d_forward(x, w, 1, 1)[0])
        return describe_shapes(x=x, w=w) + ", against conv2d_forward(x, w, stride=1, padding=1)"

    return Test(f"forward: {name}", run, hint)


def backward_test(kind: str, name: str, hint: str) -> Test:
    def run(sub, rng):
        x, w = _arrays(rng, kind)
        forward, backward = submitted(sub, "winograd_conv3x3_forward"), submitted(sub, "winograd_conv3x3_backward")
        y_ref, cache = reference.conv2d_forward(x, w, 1, 1)
        dy = rng.standard_normal(y_ref.shape)
        dx, dw = as_grads("winograd_conv3x3_backward", backward(dy.copy(), x.copy(), w.copy()), 2)
        dx_ref, dw_ref = reference.conv2d_backward(dy, cache)
        expect_close("dx", dx, dx_ref)
        expect_close("dw", dw, dw_ref)
        loss = lambda: float(np.sum(forward(x, w) * dy))
        expect_gradient("dx", dx, numeric_gradient(loss, x))
        expect_gradient("dw", dw, numeric_gradient(loss, w))
        return describe_shapes(x=x, w=w) + "; every entry of dx and dw by finite differences"

    return Test(f"backward: {name}", run, hint, points=2)


def torch_test() -> Test:
    def run(sub, rng):
        torch = torch_module()
        x, w = _arrays(rng, "odd")
        y = submitted(sub, "winograd_conv3x3_forward")(x.copy(), w.copy())
        yt = torch.nn.functional.conv2d(torch.tensor(x.transpose(0, 3, 1, 2).copy()),
                                        torch.tensor(w.transpose(3, 2, 0, 1).copy()), padding=1)
        expect_close("y (torch)", y, yt.numpy().transpose(0, 2, 3, 1))
        return describe_shapes(x=x, w=w) + ": torch.nn.functional.conv2d(padding=1)"

    return Test("parity with PyTorch", run, "PyTorch disagrees: check the layouts and the tile positions")


HINT_TRANSFORMS = ("Y = A^T [(G g G^T) * (B^T d B)] A: B^T (4x4) on the left of d, A^T (2x4) on the left of M; "
                   "swapping a matrix with its transpose gives wrong numbers, not an error")
HINT_TILES = ("output tile (ti, tj) covers outputs 2ti, 2ti+1 and reads padded rows 2ti .. 2ti+3: input tiles "
              "overlap by two rows and two columns")
HINT_ODD = "an odd H or W: pad one more zero row/column at the bottom/right, and drop the extra output row/column"

TRANSFORM_DOC = """The weight transform: U[4r+s, ci, co] = (G g G^T)[r, s] for g = w[:, :, ci, co].

    G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]     (4 x 3)
    w: (3, 3, Cin, Cout). Returns U (16, Cin, Cout), the 4x4 transformed filter flattened row by row."""

FORWARD_DOC = """y = conv2d(x, w, stride=1, padding=1), by Winograd F(2x2, 3x3).

    x (N, H, W, Cin), w (3, 3, Cin, Cout). Returns y (N, H, W, Cout) (no cache: backward gets x, w).
    1. Pad x: 1 zero row/column on top/left; at the bottom/right enough to complete the last 2x2
       output tile (th = ceil(H / 2) tiles down, tw = ceil(W / 2) across; xpad is (N, 2th+2, 2tw+2, Cin)).
    2. For output tile (n, ti, tj), d = xpad[n, 2ti : 2ti+4, 2tj : 2tj+4, :] (4, 4, Cin):
       V = B^T d B per channel (16 values), with B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]].
    3. M[xi] = V[xi] @ U[xi] for each of the 16 positions xi (U = transform_weights(w)).
    4. The 2x2 output tile: A^T M A, with A^T = [[1,1,1,0],[0,1,-1,-1]]; crop to H x W at the end.
    Hint: write the 1-D F(2, 3) first (y0 = d0 g0 + d1 g1 + d2 g2, y1 = d1 g0 + d2 g1 + d3 g2)."""

BACKWARD_DOC = """Gradients of winograd_conv3x3_forward: every step is linear, so each one's gradient is its transpose.

    dM[xi] = (A dY_t A^T)[xi];  dV[xi] = dM[xi] @ U[xi]^T;  dU[xi] = V[xi]^T @ dM[xi] (summed over tiles)
    dw = G^T dU G  (3, 3, Cin, Cout);   dd_t = B dV_t B^T, added into dxpad at tile t's 4x4 window
    dy: (N, H, W, Cout); x, w as in the forward. Returns (dx (N, H, W, Cin), dw (3, 3, Cin, Cout)).
    Hint: overlapping windows ADD into dxpad; the outputs dropped for an odd size get no gradient."""

INTRO = """Winograd's minimal filtering F(2x2, 3x3): a 3x3 stride-1 "same" convolution with 16
multiplications per 2x2 output tile instead of 36 (2.25x fewer), the speed path of
tinyeffnet/ops/winograd.py (read its docstring). The check compares with the plain convolution."""

TRY_IT = """x = np.random.default_rng(0).standard_normal((1, 5, 4, 2))
w = np.random.default_rng(1).standard_normal((3, 3, 2, 3))
print(solution.transform_weights(w).shape, solution.winograd_conv3x3_forward(x, w).shape)   # (16, 2, 3) (1, 5, 4, 3)"""


def exercises() -> list:
    tests = [
        transform_test(),
        forward_test("even", "even sizes", HINT_TRANSFORMS),
        forward_test("odd", "odd height and width", HINT_ODD),
        forward_test("one", "batch 1, one channel in and out", HINT_TILES),
        forward_test("tiny", "1 or 2 rows (one tile)", HINT_ODD),
        backward_test("even", "even sizes", HINT_TRANSFORMS),
        backward_test("odd", "odd height and width", HINT_ODD),
        backward_test("one", "batch 1, one channel", HINT_TILES),
        torch_test(),
    ]
    return [Exercise(
        name="winograd_f23", title="Winograd F(2x2, 3x3): forward and backward", intro=INTRO,
        functions=[Function("transform_weights", "w", TRANSFORM_DOC),
                   Function("winograd_conv3x3_forward", "x, w", FORWARD_DOC),
                   Function("winograd_conv3x3_backward", "dy, x, w", BACKWARD_DOC)],
        tests=tests, try_it=TRY_IT, notebook="01_dense_conv.ipynb")]
