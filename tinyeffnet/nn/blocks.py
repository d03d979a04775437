"""EfficientNetV2's building blocks: SqueezeExcite, MBConv and Fused-MBConv, backward by hand.

Dimension legend
    N batch   H, W input height, width   Ho, Wo output height, width (H/S, W/S)
    Cin, Cout block input / output channels   E expand ratio   Ce = Cin * E expanded channels
    Cr = int(Cin * se_ratio) SE squeeze width (from the BLOCK INPUT channels, not Ce)
    K kernel size   S stride

MBConv (Sandler et al. 2018, with SE; EfficientNetV2 stages 4-7):

    h1 = SiLU(BN(conv1x1(x)))              (N, H, W, Ce)      expand   (left out when E == 1)
    h2 = SiLU(BN(dwconvKxK_S(h1)))         (N, Ho, Wo, Ce)    depthwise
    h3 = SE(h2)                            (N, Ho, Wo, Ce)    squeeze-and-excitation
    h4 = BN(conv1x1(h3))                   (N, Ho, Wo, Cout)  project, no activation
    y  = x + DropPath(h4)  if S == 1 and Cin == Cout, else h4

Fused-MBConv (EfficientNetV2, stages 1-3): the expand 1x1 and the depthwise KxK fuse into one
dense KxK conv, which runs better on accelerators at early, high-resolution stages.

    E != 1:  h1 = SiLU(BN(convKxK_S(x)))   (N, Ho, Wo, Ce);   h2 = BN(conv1x1(h1))  (N, Ho, Wo, Cout)
    E == 1:  h2 = SiLU(BN(convKxK_S(x)))   (N, Ho, Wo, Cout)  (the activation comes BEFORE the residual)
    y = x + DropPath(h2)  if S == 1 and Cin == Cout, else h2

Squeeze-and-excitation (Hu et al. 2018), for x of shape (N, H, W, C):

    s = mean_{h,w} x                   (N, C)     squeeze
    z = SiLU(s @ W1 + b1)              (N, Cr)    reduce
    g = sigmoid(z @ W2 + b2)           (N, C)     excite: one gate per channel
    y = x * g[:, None, None, :]        (N, H, W, C)

Its backward has TWO paths to x, because x is used twice (in the product and in the mean):

    dx = dy * g                                      (the product, with g held fixed)
       + pool.backward(reduce.backward(... dg ...))  (through the gate),  dg = sum_{h,w} dy * x

``SqueezeExcite(fast=True)`` (the default) computes the same sum in four passes over the big tensor
instead of seven (``ops/squeeze_excite.py``); fast=False runs the three ops above one by one.

Stochastic depth (Huang et al. 2016): block i (global index, from 0) of a network with B blocks
drops its residual branch with probability drop_path_rate * i / B in training (torchvision rule).
"""
from __future__ import annotations

import numpy as np

from .. import backend
from .. import ops as cpu_ops
from ..ops import squeeze_excite
from ..ops._checks import (check_bool, check_channel_gate_cache, check_eps, check_gradient, check_int, check_number,
                           check_probability, check_stride)
from .layers import ConvBNAct, DropPath, GlobalAvgPool, Linear, Sigmoid, SiLU
from .module import Module


def check_block_options(where: str, in_channels, out_channels, kernel_size, stride, expand_ratio,
                        drop_path_rate, bn_eps) -> tuple:
    """What MBConv and Fused-MBConv both take: channels, kernel and stride ints >= 1, expand_ratio a
    number > 0 that leaves at least one expanded channel, drop_path_rate in [0, 1), bn_eps > 0.
    Returns them checked (in the same order)."""
    in_channels = check_int("in_channels", in_channels, op=where)
    out_channels = check_int("out_channels", out_channels, op=where)
    kernel_size = check_int("kernel_size", kernel_size, op=where)
    stride = check_stride(stride, op=where)
    check_number("expand_ratio", expand_ratio, 0, low_open=True, op=where)  # kept as given (4 stays an int)
    if int(in_channels * expand_ratio) < 1:
        raise ValueError(f"{where}: expand_ratio {expand_ratio:g} leaves no expanded channel for "
                         f"in_channels {in_channels} (int(in_channels * expand_ratio) must be >= 1)")
    drop_path_rate = check_probability("drop_path_rate", drop_path_rate, op=where)
    return in_channels, out_channels, kernel_size, stride, expand_ratio, drop_path_rate, check_eps(bn_eps, op=where)


def squeeze_channels(in_channels: int, se_ratio: float) -> int:
    """SE width from the block's INPUT channels: max(1, int(Cin * se_ratio)) (official rule;
    torchvision's Cin // 4 gives the same for se_ratio 0.25)."""
    return max(1, int(in_channels * se_ratio))


class SqueezeExcite(Module):
    """Channel gates computed from the globally pooled input (see the module docstring).

    channels: C of the tensor being gated (the expanded width Ce in MBConv).
    squeeze:  Cr, the hidden width (0.25 x the block input channels in EfficientNetV2).
    The two 1x1 convs of the usual formulation act on a (N, 1, 1, C) tensor, so they ARE linear
    layers with bias on (N, C); interop.py reshapes their weights to torchvision's fc1/fc2 convs.
    fast:     True (the default): the backward of ops/squeeze_excite.py on the CPU (the two
              big-tensor terms of dx in one pass); False: the three readable ops.
    Cache: x and g (the product's two factors), needed for dx = dy * g and dg = sum dy * x.
    """

    def __init__(self, channels: int, squeeze: int, rng=None, dtype=np.float32, fast: bool = True):
        super().__init__()
        channels = check_int("channels", channels, op="SqueezeExcite")
        squeeze = check_int("squeeze", squeeze, op="SqueezeExcite")
        self.channels, self.squeeze = channels, squeeze
        self.fast = check_bool("fast", fast, op="SqueezeExcite")   # the backward of ops/squeeze_excite.py
        self.pool = GlobalAvgPool()
        self.reduce = Linear(channels, squeeze, init="conv1x1", rng=rng, dtype=dtype)
        self.act = SiLU()
        self.expand = Linear(squeeze, channels, init="conv1x1", rng=rng, dtype=dtype)
        self.gate = Sigmoid()
        self._cache = None

    def forward(self, x):
        s = self.pool(x)                          # (N, C)
        z = self.act(self.reduce(s))              # (N, Cr)
        g = self.gate(self.expand(z))             # (N, C)
        y, self._cache = backend.ops_for(x).channel_gate_forward(x, g)  # y = x * g[:, None, None, :]  (N, H, W, C)
        return y

    def backward(self, dy):
        if self._cache is None:
            raise RuntimeError("SqueezeExcite.backward called without a forward")
        cache, self._cache = self._cache, None
        if self.fast and backend.ops_for(dy) is cpu_ops:
            return self._fused_backward(dy, cache)
        # path 1: through the product, gate held fixed: dx_product = dy * g[:, None, None, :]
        # path 2 starts with the gate's gradient:      dg = sum_{h,w} dy * x
        dx_product, dg = backend.ops_for(dy).channel_gate_backward(dy, cache)  # (N, H, W, C), (N, C)
        # path 2: through the gate, back down the excite/reduce chain to the pooled input
        dx_gate = self.pool.backward(self._excite_backward(dg))   # (N, H, W, C), ds / (H W) at every pixel
        return backend.ops_for(dx_product).add(dx_product, dx_gate)   # (N, H, W, C)

    def _fused_backward(self, dy, cache):
        """The same dx with the two big-tensor terms formed in registers (ops/squeeze_excite.py)."""
        x, g = check_channel_gate_cache(cache)
        dy = check_gradient(dy, x.shape, x.dtype, op="SqueezeExcite.backward", ndim=4)
        ds = self._excite_backward(squeeze_excite.gate_gradient(dy, x))   # dg = sum_{h,w} dy * x, then (N, C)
        self.pool._take_cache()                   # its backward, ds / (H W), is folded into input_gradient
        return squeeze_excite.input_gradient(dy, g, ds)         # dy * g + ds / (H W): (N, H, W, C)

    def _excite_backward(self, dg):
        """The gate's gradient dg (N, C) back through sigmoid, expand, SiLU and reduce: ds (N, C), the
        gradient of the pooled input s."""
        dz = self.expand.backward(self.gate.backward(dg))       # (N, Cr)
        return self.reduce.backward(self.act.backward(dz))      # (N, C)

    def extra_repr(self) -> str:
        return f"{self.channels}, squeeze={self.squeeze}" + (", backward=fused" if self.fast else "")


class _ResidualBlock(Module):
    """What MBConv and Fused-MBConv share: the residual rule and the drop path on the branch.

        y = x + DropPath(branch(x))  if use_residual else branch(x)
        dx = dy + branch.backward(DropPath.backward(dy))   (the skip passes dy through unchanged)
    """

    def _setup_residual(self, in_channels, out_channels, stride, drop_path_rate):
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.use_residual = stride == 1 and in_channels == out_channels
        self.drop_path = DropPath(drop_path_rate) if self.use_residual else None

    def forward(self, x):
        h = self.branch_forward(x)                # (N, Ho, Wo, Cout)
        if not self.use_residual:
            return h
        return backend.ops_for(x).add(x, self.drop_path(h))  # x + DropPath(h): (N, H, W, Cout), H = Ho since S = 1

    def backward(self, dy):
        if not self.use_residual:
            return self.branch_backward(dy)
        d_skip = dy                               # d(x + b)/dx = 1: dy flows straight to x
        d_branch = self.branch_backward(self.drop_path.backward(dy))
        return backend.ops_for(dy).add(d_skip, d_branch)


class MBConv(_ResidualBlock):
    """Inverted residual with depthwise conv and SE (see the module docstring)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 expand_ratio: float = 4, se_ratio: float = 0.25, drop_path_rate: float = 0.0, *,
                 padding=None, bn_eps: float = 1e-3, rng=None, dtype=np.float32, fast: bool = True):
        super().__init__()
        (in_channels, out_channels, kernel_size, stride, expand_ratio, drop_path_rate, bn_eps) = check_block_options(
            "MBConv", in_channels, out_channels, kernel_size, stride, expand_ratio, drop_path_rate, bn_eps)
        check_number("se_ratio", se_ratio, 0, 1, op="MBConv")
        mid = int(in_channels * expand_ratio)    # Ce, not rounded (official rule)
        self.expand_ratio, self.kernel_size, self.se_ratio = expand_ratio, kernel_size, se_ratio
        unit = dict(padding=padding, bn_eps=bn_eps, rng=rng, dtype=dtype, fast=fast)  # fast: ConvBNAct's
        self.expand = ConvBNAct(in_channels, mid, 1, **unit) if mid != in_channels else None
        self.depthwise = ConvBNAct(mid, mid, kernel_size, stride, depthwise=True, **unit)
        self.se = (SqueezeExcite(mid, squeeze_channels(in_channels, se_ratio), rng=rng, dtype=dtype, fast=fast)
                   if se_ratio else None)
        self.project = ConvBNAct(mid, out_channels, 1, act=False, **unit)
        self._setup_residual(in_channels, out_channels, stride, drop_path_rate)

    def branch_forward(self, x):
        h = self.expand(x) if self.expand is not None else x   # (N, H, W, Ce)
        h = self.depthwise(h)                                   # (N, Ho, Wo, Ce)
        if self.se is not None:
            h = self.se(h)                                      # (N, Ho, Wo, Ce)
        return self.project(h)                                  # (N, Ho, Wo, Cout)

    def branch_backward(self, dy):
        dh = self.project.backward(dy)            # (N, Ho, Wo, Ce)
        if self.se is not None:
            dh = self.se.backward(dh)             # (N, Ho, Wo, Ce)
        dh = self.depthwise.backward(dh)          # (N, H, W, Ce)
        return self.expand.backward(dh) if self.expand is not None else dh  # (N, H, W, Cin)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel={self.kernel_size}, stride={self.stride}, "
                f"expand={self.expand_ratio}, se={self.se_ratio}, residual={self.use_residual}")


class FusedMBConv(_ResidualBlock):
    """Fused-MBConv: a dense KxK conv replaces expand + depthwise (see the module docstring).

    expand_ratio 1: one KxK conv -> BN -> SiLU (``self.conv``).
    otherwise: KxK conv -> BN -> SiLU (``self.expand``), then 1x1 conv -> BN (``self.project``).
    No SE (the EfficientNetV2 configs have none in fused stages).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 expand_ratio: float = 4, drop_path_rate: float = 0.0, *, padding=None,
                 bn_eps: float = 1e-3, rng=None, dtype=np.float32, fast: bool = True):
        super().__init__()
        (in_channels, out_channels, kernel_size, stride, expand_ratio, drop_path_rate, bn_eps) = check_block_options(
            "FusedMBConv", in_channels, out_channels, kernel_size, stride, expand_ratio, drop_path_rate, bn_eps)
        self.expand_ratio, self.kernel_size = expand_ratio, kernel_size
        unit = dict(padding=padding, bn_eps=bn_eps, rng=rng, dtype=dtype, fast=fast)  # fast: ConvBNAct's
        if expand_ratio == 1:
            self.conv = ConvBNAct(in_channels, out_channels, kernel_size, stride, **unit)
            self.expand = self.project = None
        else:
            mid = int(in_channels * expand_ratio)  # Ce
            self.conv = None
            self.expand = ConvBNAct(in_channels, mid, kernel_size, stride, **unit)
            self.project = ConvBNAct(mid, out_channels, 1, act=False, **unit)
        self._setup_residual(in_channels, out_channels, stride, drop_path_rate)

    def branch_forward(self, x):
        if self.conv is not None:
            return self.conv(x)                   # (N, Ho, Wo, Cout), ends in SiLU
        return self.project(self.expand(x))       # (N, Ho, Wo, Ce) -> (N, Ho, Wo, Cout), ends in BN

    def branch_backward(self, dy):
        if self.conv is not None:
            return self.conv.backward(dy)         # (N, H, W, Cin)
        return self.expand.backward(self.project.backward(dy))

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel={self.kernel_size}, stride={self.stride}, "
                f"expand={self.expand_ratio}, residual={self.use_residual}")
