"""Exercises 6-8: the blocks of EfficientNetV2 written out from their children: squeeze-and-
excitation, MBConv and Fused-MBConv (``tinyeffnet/nn/blocks.py``), forward and backward.

The student writes ``forward(block, x) -> y`` and ``backward(block, dy) -> dx`` for a block that the
check builds (float64, ``fast=False``: the readable children). Its children are given and are the
allowed helpers: ``block.expand``, ``block.depthwise``, ``block.se``, ``block.project``, ``block.conv``,
``block.drop_path`` (ConvBNAct, SqueezeExcite, DropPath modules, each with ``__call__`` = forward and
``backward(dy)``, which also accumulates the children's parameter gradients), and for SE
``block.pool``, ``block.reduce``, ``block.act``, ``block.expand``, ``block.gate``. There is no autograd:
the backward calls the children's backward in reverse order, and a tensor used twice (x in the
residual; x in SE's product and in its pool) gets the SUM of the gradients of its uses.

Every row runs the student's functions and the library's block on two copies of one block with the
same weights and the same drop-path masks, and compares y, dx and every parameter's gradient; most
rows then check dx and every parameter gradient against finite differences of the student's forward
at EVERY entry. The block's own forward and backward are switched off on the student's copy (calling
them is the library's answer, and refuses the submission).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from ..nn.blocks import FusedMBConv, MBConv, SqueezeExcite
from .harness import (Exercise, Function, Mismatch, Test, as_array, expect_close, expect_gradient, numeric_gradient,
                      submitted)
from .loading import Refused


@dataclass
class BlockCase:
    """One block of the grid: its constructor arguments and the input shape."""

    name: str
    kind: str                    # "se", "mbconv", "fused"
    args: dict
    x_shape: tuple
    hint: str
    gradcheck: bool = True
    training: bool = True

    def build(self, rng):
        dtype = np.float64
        if self.kind == "se":
            block = SqueezeExcite(**self.args, rng=rng, dtype=dtype)
        else:
            cls = MBConv if self.kind == "mbconv" else FusedMBConv
            block = cls(**self.args, rng=rng, dtype=dtype, fast=False)
        for name, param in block.named_parameters():   # BN gamma 1 / beta 0 and zero biases hide mistakes
            if name.endswith("bn.weight"):
                param.data[...] = rng.uniform(0.5, 1.5, param.data.shape)
            elif name.endswith("bias"):
                param.data[...] = rng.standard_normal(param.data.shape) * 0.5
        block.train(self.training)
        return block

    def describe(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.args.items())
        return f"{self.kind}({args}), x {self.x_shape}, {'training' if self.training else 'eval'}"


def warmer(tests):
    """The exercise's warmup: run the library's block of every row once (compiling its kernels,
    which can take longer than a test's time limit on a cold cache), the first time only."""
    done = []

    def warmup():
        if done:
            return
        for test in tests:
            case = test.case_of(np.random.default_rng(0))
            block = case.build(np.random.default_rng(0))
            y = block(np.random.default_rng(1).standard_normal(case.x_shape))
            block.backward(np.ones_like(y))
        done.append(True)

    return warmup


def forbidden_codes(*functions):
    """The ``forbidden`` test of a block exercise: the code of the block's own methods (its
    children's code, the library's layers, is what the student is given to call)."""
    codes = {fn.__code__ for fn in functions}
    return lambda code: code in codes


def _refuse(*args, **kwargs):
    raise Refused("the block's own forward/backward was called: it is the library's answer; call its children")


def _guard(block) -> None:
    """Switch off the block's own forward and backward on the student's copy."""
    for method in ("forward", "backward", "branch_forward", "branch_backward"):
        setattr(block, method, _refuse)




def block_test(case_of, name: str, hint: str, points: int = 2) -> Test:
    """Row: the student's forward/backward against the library's on one block, then finite differences."""

    def run(sub, rng):
        case = case_of(rng)
        block = case.build(rng)
        x = rng.standard_normal(case.x_shape)
        mask_seed = int(rng.integers(1 << 30))
        ref, ours = copy.deepcopy(block), copy.deepcopy(block)
        _guard(ours)
        forward, backward = submitted(sub, "forward"), submitted(sub, "backward")

        def run_forward(module, fn, value):
            module.set_rng(np.random.default_rng(mask_seed))   # the same drop-path masks every time
            return fn(value)

        y_ref = run_forward(ref, ref, x.copy())
        dy = rng.standard_normal(y_ref.shape)
        ref.zero_grad()
        dx_ref = ref.backward(dy.copy())
        ours.zero_grad()
        y = as_array("y", run_forward(ours, lambda v: forward(ours, v), x.copy()))
        expect_close("y", y, y_ref)
        dx = backward(ours, dy.copy())
        expect_close("dx", dx, dx_ref)
        ours_params, ref_params = dict(ours.named_parameters()), dict(ref.named_parameters())
        for pname, param in ref_params.items():
            if ours_params[pname].grad is None:
                raise Mismatch(f"{pname}.grad: no gradient (its module's backward was never called)")
            expect_close(f"{pname}.grad", ours_params[pname].grad, param.grad)
        if case.gradcheck:
            grads = {pname: p.grad.copy() for pname, p in ours_params.items()}
            loss = lambda: float(np.sum(run_forward(ours, lambda v: forward(ours, v), x) * dy))
            expect_gradient("dx", dx, numeric_gradient(loss, x))
            for pname, param in ours_params.items():
                expect_gradient(f"{pname}.grad", grads[pname], numeric_gradient(loss, param.data))
            return case.describe() + "; every entry of dx and of every parameter gradient by finite differences"
        return case.describe()

    test = Test(name, run, hint, points)
    test.case_of = case_of
    return test


# ------------------------------------------------------------------------------ squeeze-and-excitation
def _c(rng, low=2, high=5):
    return int(rng.integers(low, high + 1))


SE_HINT_PATHS = ("x is used twice, in the product and in the pool: dx = dy * g + pool.backward(...dg...), "
                 "with dg = sum over h, w of dy * x")


def se_exercise() -> Exercise:
    def case(name, shape_of, squeeze_of, hint):
        def case_of(rng):
            shape = shape_of(rng)
            return BlockCase(name, "se", {"channels": shape[3], "squeeze": squeeze_of(shape[3])}, shape, hint)
        return block_test(case_of, name, hint)

    tests = [
        case("(N, H, W, C), squeeze C/4", lambda r: (2, _c(r), _c(r), 4 * _c(r, 1, 2)), lambda c: c // 4,
             SE_HINT_PATHS),
        case("batch 1, non-square", lambda r: (1, _c(r, 2, 3), _c(r, 4, 6), _c(r)), lambda c: max(1, c // 2),
             "do not hard-code N; the pool averages over H * W (not over N)"),
        case("one pixel (H = W = 1)", lambda r: (_c(r), 1, 1, _c(r)), lambda c: 1,
             "with H = W = 1 the pool is the identity: the two paths to x must still add up"),
        case("squeeze = C (no reduction)", lambda r: (2, _c(r), _c(r), _c(r)), lambda c: c,
             "reduce then SiLU, expand then sigmoid: backward walks the same chain in reverse order"),
        case("one channel", lambda r: (2, _c(r), _c(r), 1), lambda c: 1, SE_HINT_PATHS),
    ]
    return Exercise(
        name="squeeze_excite", title="Squeeze-and-excitation: forward and backward from its children",
        intro=SE_INTRO, functions=[Function("forward", "block, x", SE_FORWARD), Function("backward", "block, dy",
                                                                                          SE_BACKWARD)],
        tests=tests, block_arg="block", warmup=warmer(tests), try_it=SE_TRY,
        forbidden=forbidden_codes(SqueezeExcite.forward, SqueezeExcite.backward),
        notebook="04_squeeze_excite.ipynb")


SE_INTRO = """Squeeze-and-excitation (Hu et al. 2018): one gate per channel, computed from the pooled input.

    s = mean_{h,w} x            (N, C)      block.pool
    z = SiLU(s @ W1 + b1)       (N, Cr)     block.reduce, block.act
    g = sigmoid(z @ W2 + b2)    (N, C)      block.expand, block.gate
    y = x * g[:, None, None, :] (N, H, W, C)

Its backward has two paths to x, because x is used twice. Read after
notebooks/04_squeeze_excite.ipynb; the library's version: SqueezeExcite in tinyeffnet/nn/blocks.py."""

SE_FORWARD = """y = SE(x) for x (N, H, W, C), using the block's children.

    s = block.pool(x)                       (N, C)    mean over h, w
    z = block.act(block.reduce(s))          (N, Cr)   SiLU(s @ W1 + b1)
    g = block.gate(block.expand(z))         (N, C)    sigmoid(z @ W2 + b2)
    y = x * g[:, None, None, :]             (N, H, W, C)

    Returns y. Keep what backward needs on the block, e.g. block.saved = (x, g).
    (Do not call block(x) or block.forward: that is the library's answer.)"""

SE_BACKWARD = """dx for dy (N, H, W, C); the children accumulate their parameters' gradients.

    path 1, the product with g fixed:   dx1 = dy * g[:, None, None, :]
    path 2, through the gate:           dg = sum_{h,w} dy * x                      (N, C)
                                        dz = block.expand.backward(block.gate.backward(dg))
                                        ds = block.reduce.backward(block.act.backward(dz))
                                        dx2 = block.pool.backward(ds)               (ds / (H W) everywhere)
    dx = dx1 + dx2

    Returns dx (N, H, W, C). Each child's backward uses the cache of its last forward, once."""

SE_TRY = """import tinyeffnet.nn as nn
block = nn.SqueezeExcite(8, 2, rng=np.random.default_rng(0), dtype=np.float64)
x = np.random.default_rng(1).standard_normal((2, 4, 4, 8))
y = solution.forward(block, x)
print(y.shape, solution.backward(block, np.ones_like(y)).shape)"""


# ------------------------------------------------------------------------------ MBConv
MB_HINT_RESIDUAL = "with the residual, dx = dy + (the branch's dx): the skip passes dy through unchanged"
MB_HINT_ORDER = ("backward calls the children in REVERSE order: project, se, depthwise, expand (each child's "
                 "backward needs the cache of its own forward)")
MB_HINT_NORES = "no residual when stride != 1 or Cin != Cout (block.use_residual): then y = branch(x)"
MB_HINT_DROP = ("the branch goes through block.drop_path in training: y = x + block.drop_path(h), and backward "
                "passes dy through block.drop_path.backward before the branch")


def _block_case(kind: str):
    """case(name, args_of, shape_of, hint, ...) -> a Test for a block of ``kind`` ("mbconv" or "fused")
    whose constructor arguments and input shape are drawn from the row's generator."""
    def case(name, args_of, shape_of, hint, gradcheck=True, training=True):
        def case_of(rng):
            args = args_of(rng)
            return BlockCase(name, kind, args, shape_of(rng, args), hint, gradcheck, training)
        return block_test(case_of, name, hint)
    return case


def mbconv_exercise() -> Exercise:
    case = _block_case("mbconv")

    tests = [
        case("expand 4, stride 1, residual, SE",
             lambda r: dict(in_channels=2, out_channels=2, kernel_size=3, stride=1, expand_ratio=4, se_ratio=0.5),
             lambda r, a: (2, _c(r, 3, 4), _c(r, 3, 5), 2), MB_HINT_RESIDUAL),
        case("expand 1 (no expand conv), residual",
             lambda r: dict(in_channels=3, out_channels=3, kernel_size=3, stride=1, expand_ratio=1, se_ratio=0.34),
             lambda r, a: (2, _c(r, 3, 4), _c(r, 3, 4), 3), "expand_ratio 1: block.expand is None, skip it"),
        case("stride 2, odd size (no residual)",
             lambda r: dict(in_channels=2, out_channels=2, kernel_size=3, stride=2, expand_ratio=2, se_ratio=0.5),
             lambda r, a: (2, 5, 2 * _c(r, 1, 2) + 1, 2), MB_HINT_NORES),
        case("stride 2, even size, no SE",
             lambda r: dict(in_channels=2, out_channels=3, kernel_size=3, stride=2, expand_ratio=2, se_ratio=0),
             lambda r, a: (1, 4, 2 * _c(r, 2, 3), 2), "se_ratio 0: block.se is None, skip it"),
        case("Cin != Cout at stride 1 (no residual)",
             lambda r: dict(in_channels=2, out_channels=3, kernel_size=3, stride=1, expand_ratio=2, se_ratio=0.5),
             lambda r, a: (2, _c(r, 3, 4), _c(r, 3, 4), 2), MB_HINT_NORES),
        case("drop path in training (p = 0.5, fixed masks)",
             lambda r: dict(in_channels=2, out_channels=2, kernel_size=3, stride=1, expand_ratio=2, se_ratio=0.5,
                            drop_path_rate=0.5),
             lambda r, a: (6, 3, 3, 2), MB_HINT_DROP),
        case("eval mode (running statistics, no drop path)",
             lambda r: dict(in_channels=2, out_channels=2, kernel_size=3, stride=1, expand_ratio=2, se_ratio=0.5,
                            drop_path_rate=0.5),
             lambda r, a: (2, 3, _c(r, 3, 4), 2), MB_HINT_ORDER, gradcheck=False, training=False),
        case("batch 1, kernel 5",
             lambda r: dict(in_channels=2, out_channels=2, kernel_size=5, stride=1, expand_ratio=2, se_ratio=0.5),
             lambda r, a: (1, _c(r, 3, 5), _c(r, 3, 5), 2), MB_HINT_ORDER),
    ]
    return Exercise(
        name="mbconv_backward", title="MBConv: the backward pass from its children", intro=MB_INTRO,
        functions=[Function("forward", "block, x", MB_FORWARD), Function("backward", "block, dy", MB_BACKWARD)],
        tests=tests, block_arg="block", warmup=warmer(tests), try_it=MB_TRY,
        forbidden=forbidden_codes(MBConv.forward, MBConv.backward, MBConv.branch_forward, MBConv.branch_backward),
        notebook="05_mbconv_vs_fused.ipynb")


MB_INTRO = """MBConv (inverted residual with depthwise conv and SE; EfficientNetV2 stages 4-7).

    h1 = block.expand(x)        SiLU(BN(conv1x1))   (N, H, W, Ce)   None when expand_ratio == 1
    h2 = block.depthwise(h1)    SiLU(BN(dwconv))    (N, Ho, Wo, Ce)
    h3 = block.se(h2)           squeeze-excite      (N, Ho, Wo, Ce)  None when se_ratio == 0
    h4 = block.project(h3)      BN(conv1x1)         (N, Ho, Wo, Cout)
    y  = x + block.drop_path(h4)   if block.use_residual (stride 1 and Cin == Cout), else h4

Read after notebooks/05_mbconv_vs_fused.ipynb; the library's version: MBConv in tinyeffnet/nn/blocks.py."""

MB_FORWARD = """y = MBConv(x) for x (N, H, W, Cin), using the block's children (see the module docstring).

    Children: block.expand (or None), block.depthwise, block.se (or None), block.project,
    block.drop_path (None without residual); flag block.use_residual.
    Returns y (N, Ho, Wo, Cout). (Do not call block(x) or block.forward.)"""

MB_BACKWARD = """dx for dy (N, Ho, Wo, Cout): the chain rule, children in reverse order.

    with residual:    dx = dy + branch_backward(block.drop_path.backward(dy))
    without:          dx = branch_backward(dy)
    branch_backward:  project -> se (if any) -> depthwise -> expand (if any), each .backward(d)

    Returns dx (N, H, W, Cin). The children accumulate their parameters' gradients themselves."""

def _try_snippet(block_class: str) -> str:
    """The student notebook's "try it" cell: one small float64 block, forward, backward, shapes."""
    return f"""import tinyeffnet.nn as nn
block = nn.{block_class}(4, 4, 3, 1, expand_ratio=2, rng=np.random.default_rng(0), dtype=np.float64, fast=False)
x = np.random.default_rng(1).standard_normal((2, 5, 5, 4))
y = solution.forward(block, x)
print(y.shape, solution.backward(block, np.ones_like(y)).shape)"""


MB_TRY = _try_snippet("MBConv")


# ------------------------------------------------------------------------------ Fused-MBConv
def fused_exercise() -> Exercise:
    case = _block_case("fused")

    tests = [
        case("expand 4, stride 1, residual",
             lambda r: dict(in_channels=2, out_channels=2, kernel_size=3, stride=1, expand_ratio=4),
             lambda r, a: (2, _c(r, 3, 4), _c(r, 3, 5), 2), MB_HINT_RESIDUAL),
        case("expand 1 (one conv, SiLU before the residual), residual",
             lambda r: dict(in_channels=2, out_channels=2, kernel_size=3, stride=1, expand_ratio=1),
             lambda r, a: (2, _c(r, 3, 4), _c(r, 3, 4), 2),
             "expand_ratio 1: one unit, block.conv (conv, BN, SiLU); block.expand and block.project are None"),
        case("stride 2, odd size, expand 4 (no residual)",
             lambda r: dict(in_channels=2, out_channels=2, kernel_size=3, stride=2, expand_ratio=4),
             lambda r, a: (2, 5, 2 * _c(r, 1, 2) + 1, 2), MB_HINT_NORES),
        case("stride 2, even size, expand 1",
             lambda r: dict(in_channels=2, out_channels=3, kernel_size=3, stride=2, expand_ratio=1),
             lambda r, a: (1, 4, 2 * _c(r, 2, 3), 2), MB_HINT_NORES),
        case("Cin != Cout at stride 1 (no residual)",
             lambda r: dict(in_channels=2, out_channels=3, kernel_size=3, stride=1, expand_ratio=2),
             lambda r, a: (2, _c(r, 3, 4), _c(r, 3, 4), 2), MB_HINT_NORES),
        case("drop path in training (p = 0.5, fixed masks)",
             lambda r: dict(in_channels=2, out_channels=2, kernel_size=3, stride=1, expand_ratio=2,
                            drop_path_rate=0.5),
             lambda r, a: (6, 3, 3, 2), MB_HINT_DROP),
        case("eval mode, non-square",
             lambda r: dict(in_channels=2, out_channels=2, kernel_size=3, stride=1, expand_ratio=2),
             lambda r, a: (2, 3, _c(r, 4, 6), 2),
             "backward runs expand after project: block.expand.backward(block.project.backward(dy))",
             gradcheck=False, training=False),
    ]
    return Exercise(
        name="fused_mbconv_backward", title="Fused-MBConv: the backward pass from its children", intro=FUSED_INTRO,
        functions=[Function("forward", "block, x", FUSED_FORWARD), Function("backward", "block, dy", FUSED_BACKWARD)],
        tests=tests, block_arg="block", warmup=warmer(tests), try_it=FUSED_TRY,
        forbidden=forbidden_codes(FusedMBConv.forward, FusedMBConv.backward, FusedMBConv.branch_forward,
                                  FusedMBConv.branch_backward), notebook="05_mbconv_vs_fused.ipynb")


FUSED_INTRO = """Fused-MBConv (EfficientNetV2 stages 1-3): a dense KxK conv replaces expand 1x1 + depthwise.

    expand_ratio != 1:  h = block.project(block.expand(x))     KxK conv-BN-SiLU, then 1x1 conv-BN
    expand_ratio == 1:  h = block.conv(x)                      one KxK conv-BN-SiLU (SiLU before the residual)
    y = x + block.drop_path(h)   if block.use_residual, else h

Read after notebooks/05_mbconv_vs_fused.ipynb; the library's version: FusedMBConv in tinyeffnet/nn/blocks.py."""

FUSED_FORWARD = """y = FusedMBConv(x) for x (N, H, W, Cin), using the block's children.

    Children: block.conv (expand_ratio 1; else None), block.expand and block.project (else None),
    block.drop_path (None without residual); flag block.use_residual.
    Returns y (N, Ho, Wo, Cout). (Do not call block(x) or block.forward.)"""

FUSED_BACKWARD = """dx for dy (N, Ho, Wo, Cout).

    with residual:   dx = dy + branch_backward(block.drop_path.backward(dy))
    branch_backward: block.conv.backward(d), or block.expand.backward(block.project.backward(d))

    Returns dx (N, H, W, Cin)."""

FUSED_TRY = _try_snippet("FusedMBConv")


def exercises() -> list:
    return [se_exercise(), mbconv_exercise(), fused_exercise()]
