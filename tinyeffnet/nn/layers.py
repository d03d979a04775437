"""Layers: thin stateful wrappers around the ops, holding parameters and the forward cache.

Dimension legend
    N batch   H, W height, width   Cin, Cout input/output channels   C channels (depthwise, BN)
    K kernel size (K x K)          S stride

Every layer has the same three-line shape::

    forward(x):   y, self._cache = ops.<op>_forward(x, params...)      # keep the cache for backward
    backward(dy): dx, dparams = ops.<op>_backward(dy, self._cache)     # use it once, then drop it
                  param.accumulate(dparam)                             # grad += dparam
                  return dx

The ops come from ``tinyeffnet.backend.ops_for(x)`` (CPU numpy arrays -> ``tinyeffnet.ops``), so a
layer never branches on the device. A layer keeps the cache of its LAST forward for ONE backward;
calling backward twice, or before forward, raises.

Initialisation follows torchvision's EfficientNet (``_efficientnet.py``):
    conv (dense and depthwise): w ~ Normal(0, sqrt(2 / fan_out)),  fan_out = Cout * K * K
                                (torch does not divide by groups, so a depthwise conv has fan_out C*K*K)
    BatchNorm: gamma = 1, beta = 0, running_mean = 0, running_var = 1
    Linear (classifier): w ~ Uniform(-1/sqrt(Cout), 1/sqrt(Cout)), b = 0
Weight decay: BatchNorm's gamma/beta and every bias are ``Parameter(..., decay=False)``.

Every constructor checks its options first (``ops/_checks.py``, the same rules as the ops), so a bad
one fails here, naming the layer and the argument, not at the first training step:
``Conv2d: in_channels must be an int >= 1, got 0``.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..ops._checks import (check_bool, check_dtype, check_eps, check_int, check_momentum, check_padding_option,
                           check_probability, check_rng, check_stride)
from .module import Module
from .parameter import Parameter


def _rng(rng) -> np.random.Generator:
    return rng if rng is not None else np.random.default_rng()


def kaiming_normal_fan_out(shape: tuple, fan_out: int, rng, dtype) -> np.ndarray:
    """Normal(0, std) with std = sqrt(2 / fan_out) (He init for ReLU-like nets, torch mode="fan_out")."""
    std = np.dtype(dtype).type(np.sqrt(2.0 / fan_out))
    return _rng(rng).standard_normal(shape, dtype=dtype) * std  # drawn in dtype: no float64 temporary


def default_padding(kernel_size: int) -> int:
    """Symmetric padding that keeps the size at stride 1: (K - 1) // 2 (torchvision's rule)."""
    return (kernel_size - 1) // 2


def check_conv_options(where: str, kernel_size, stride, padding, rng, dtype) -> tuple:
    """The options every conv layer shares: kernel_size an int >= 1, stride an int >= 1, padding None
    (the default (K - 1) // 2), an int >= 0 or "same" (odd kernels only), rng None or a Generator,
    dtype float32 or float64. Returns (kernel_size, stride, padding, dtype) checked."""
    kernel_size = check_int("kernel_size", kernel_size, op=where)
    stride = check_stride(stride, op=where)
    padding = check_padding_option(padding, op=where, allow_none=True)
    if padding == "same" and kernel_size % 2 == 0:
        raise ValueError(f'{where}: padding="same" needs an odd kernel_size, got {kernel_size}')
    check_rng("rng", rng, op=where)
    return kernel_size, stride, padding, check_dtype("dtype", dtype, op=where)


class _CachedLayer(Module):
    """A layer that keeps the cache of one forward for one backward."""

    def __init__(self):
        super().__init__()
        self._cache = None

    def _take_cache(self):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called without a forward (or twice for one forward)")
        cache, self._cache = self._cache, None
        return cache


class Conv2d(_CachedLayer):
    """Dense convolution without bias: (N, H, W, Cin) -> (N, Ho, Wo, Cout), weight (K, K, Cin, Cout).

        y[n,i,j,co] = sum_{a,b,ci} xpad[n, i*S+a, j*S+b, ci] * w[a,b,ci,co]

    padding: int (symmetric, default (K-1)//2) or "same" (TensorFlow's rule, for ported weights).
    Cache: the op's cache (input x and geometry), needed for dw and dx.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding=None, rng=None, dtype=np.float32):
        super().__init__()
        in_channels = check_int("in_channels", in_channels, op="Conv2d")
        out_channels = check_int("out_channels", out_channels, op="Conv2d")
        kernel_size, stride, padding, dtype = check_conv_options("Conv2d", kernel_size, stride, padding, rng, dtype)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel_size, stride
        self.padding = default_padding(kernel_size) if padding is None else padding
        shape = (kernel_size, kernel_size, in_channels, out_channels)  # (K, K, Cin, Cout)
        self.weight = Parameter(kaiming_normal_fan_out(shape, out_channels * kernel_size ** 2, rng, dtype))

    def forward(self, x):
        y, self._cache = backend.ops_for(x).conv2d_forward(x, self.weight.data, self.stride, self.padding)
        return y  # (N, Ho, Wo, Cout)

    def backward(self, dy):
        dx, dw = backend.ops_for(dy).conv2d_backward(dy, self._take_cache())
        self.weight.accumulate(dw)
        return dx  # (N, H, W, Cin)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel={self.kernel_size}, stride={self.stride}, padding={self.padding!r}"


class DepthwiseConv2d(_CachedLayer):
    """One K x K filter per channel, no bias: (N, H, W, C) -> (N, Ho, Wo, C), weight (K, K, C).

        y[n,i,j,c] = sum_{a,b} xpad[n, i*S+a, j*S+b, c] * w[a,b,c]

    Cache: the op's cache (input x and geometry).
    """

    def __init__(self, channels: int, kernel_size: int, stride: int = 1, padding=None, rng=None, dtype=np.float32):
        super().__init__()
        channels = check_int("channels", channels, op="DepthwiseConv2d")
        kernel_size, stride, padding, dtype = check_conv_options("DepthwiseConv2d", kernel_size, stride, padding,
                                                                 rng, dtype)
        self.channels, self.kernel_size, self.stride = channels, kernel_size, stride
        self.padding = default_padding(kernel_size) if padding is None else padding
        shape = (kernel_size, kernel_size, channels)  # (K, K, C)
        self.weight = Parameter(kaiming_normal_fan_out(shape, channels * kernel_size ** 2, rng, dtype))

    def forward(self, x):
        y, self._cache = backend.ops_for(x).depthwise_conv2d_forward(x, self.weight.data, self.stride, self.padding)
        return y  # (N, Ho, Wo, C)

    def backward(self, dy):
        dx, dw = backend.ops_for(dy).depthwise_conv2d_backward(dy, self._take_cache())
        self.weight.accumulate(dw)
        return dx  # (N, H, W, C)

    def extra_repr(self) -> str:
        return f"{self.channels}, kernel={self.kernel_size}, stride={self.stride}, padding={self.padding!r}"


class BatchNorm2d(_CachedLayer):
    """Per-channel batch normalisation over (N, H, W), PyTorch conventions (docs/DESIGN.md, section 3).

        train: mu, var = mean and biased variance of x over (N, H, W)
               y = gamma * (x - mu) / sqrt(var + eps) + beta
               running_mean = (1 - m) running_mean + m mu
               running_var  = (1 - m) running_var  + m var * M / (M - 1)      (M = N*H*W, unbiased)
        eval:  the same with running_mean / running_var in place of mu / var.

    eps 1e-3 (EfficientNetV2's value in TF, Keras, torchvision), momentum m = 0.1 (TF's 0.9 decay).
    Buffers: running_mean (C,), running_var (C,), num_batches_tracked (a counter, int64, kept for
    torchvision's key names; +1 per training forward, as in torch).
    Cache: the op's cache (normalised input and 1/std), needed for dx, dgamma, dbeta.
    """

    def __init__(self, channels: int, eps: float = 1e-3, momentum: float = 0.1, dtype=np.float32):
        super().__init__()
        channels = check_int("channels", channels, op="BatchNorm2d")
        eps, momentum = check_eps(eps, op="BatchNorm2d"), check_momentum(momentum, op="BatchNorm2d")
        dtype = check_dtype("dtype", dtype, op="BatchNorm2d")
        self.channels, self.eps, self.momentum = channels, eps, momentum
        self.weight = Parameter(np.ones(channels, dtype=dtype), decay=False)  # gamma (C,)
        self.bias = Parameter(np.zeros(channels, dtype=dtype), decay=False)   # beta  (C,)
        self.register_buffer("running_mean", np.zeros(channels, dtype=dtype))  # (C,)
        self.register_buffer("running_var", np.ones(channels, dtype=dtype))    # (C,)
        self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))

    def forward(self, x, silu: bool = False):
        """BN(x); with silu=True, SiLU(BN(x)) in one fused op (ops/fused.py: the speed path of ConvBNAct)."""
        ops = backend.ops_for(x)
        op = ops.batchnorm_silu_forward if silu else ops.batchnorm_forward
        y, cache = op(x, self.weight.data, self.bias.data, self.running_mean, self.running_var,
                      self.training, momentum=self.momentum, eps=self.eps)  # running stats updated in place
        self._cache = (silu, cache)
        if self.training:
            self.num_batches_tracked += 1
        return y  # (N, H, W, C)

    def backward(self, dy):
        silu, cache = self._take_cache()
        ops = backend.ops_for(dy)
        dx, dgamma, dbeta = (ops.batchnorm_silu_backward if silu else ops.batchnorm_backward)(dy, cache)
        self.weight.accumulate(dgamma)
        self.bias.accumulate(dbeta)
        return dx

    def extra_repr(self) -> str:
        return f"{self.channels}, eps={self.eps:g}, momentum={self.momentum:g}"


class SiLU(_CachedLayer):
    """y = x * sigmoid(x) (a.k.a. swish), elementwise, any shape. Cache: the op's cache."""

    def forward(self, x):
        y, self._cache = backend.ops_for(x).silu_forward(x)
        return y

    def backward(self, dy):
        (dx,) = backend.ops_for(dy).silu_backward(dy, self._take_cache())
        return dx


class Sigmoid(_CachedLayer):
    """y = 1 / (1 + exp(-x)), elementwise, any shape. Cache: the op's cache (y itself)."""

    def forward(self, x):
        y, self._cache = backend.ops_for(x).sigmoid_forward(x)
        return y

    def backward(self, dy):
        (dx,) = backend.ops_for(dy).sigmoid_backward(dy, self._take_cache())
        return dx


class GlobalAvgPool(_CachedLayer):
    """y[n,c] = mean_{h,w} x[n,h,w,c]: (N, H, W, C) -> (N, C). Cache: the input shape."""

    def forward(self, x):
        y, self._cache = backend.ops_for(x).global_avg_pool_forward(x)
        return y  # (N, C)

    def backward(self, dy):
        (dx,) = backend.ops_for(dy).global_avg_pool_backward(dy, self._take_cache())
        return dx  # (N, H, W, C)


class Linear(_CachedLayer):
    """y = x @ w + b: (N, Cin) -> (N, Cout); w stored (Cin, Cout) (the transpose of torch's), b (Cout,).

    init "uniform" (torchvision classifier): w ~ U(-1/sqrt(Cout), 1/sqrt(Cout)), b = 0.
    init "conv1x1" (torchvision SE convs, which are 1x1 convs): w ~ N(0, sqrt(2/Cout)), b = 0.
    Cache: the op's cache (x, needed for dw).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, init: str = "uniform",
                 rng=None, dtype=np.float32):
        super().__init__()
        in_features = check_int("in_features", in_features, op="Linear")
        out_features = check_int("out_features", out_features, op="Linear")
        bias = check_bool("bias", bias, op="Linear")
        check_rng("rng", rng, op="Linear")
        dtype = check_dtype("dtype", dtype, op="Linear")
        self.in_features, self.out_features = in_features, out_features
        shape = (in_features, out_features)  # (Cin, Cout)
        if init == "uniform":
            bound = 1.0 / np.sqrt(out_features)
            w = _rng(rng).uniform(-bound, bound, shape).astype(dtype)
        elif init == "conv1x1":
            w = kaiming_normal_fan_out(shape, out_features, rng, dtype)
        else:
            raise ValueError(f'Linear: init must be "uniform" or "conv1x1", got {init!r}')
        self.weight = Parameter(w)
        self.bias = Parameter(np.zeros(out_features, dtype=dtype), decay=False) if bias else None

    def forward(self, x):
        b = None if self.bias is None else self.bias.data
        y, self._cache = backend.ops_for(x).linear_forward(x, self.weight.data, b)
        return y  # (N, Cout)

    def backward(self, dy):
        dx, dw, db = backend.ops_for(dy).linear_backward(dy, self._take_cache())
        self.weight.accumulate(dw)
        if self.bias is not None:
            self.bias.accumulate(db)
        return dx  # (N, Cin)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Dropout(_CachedLayer):
    """Training: y = x * mask / (1 - p), mask ~ Bernoulli(1 - p) per element. Eval (or p = 0): y = x.

    The mask comes from ``self.rng`` (a numpy Generator; ``Module.set_rng`` shares one across a model).
    Cache: the op's cache (the mask and scale), or the marker "identity" (eval, or p = 0).
    """

    stochastic = True

    def __init__(self, p: float = 0.0, rng=None):
        super().__init__()
        self.p = check_probability("p", p, op=type(self).__name__)
        self.rng = check_rng("rng", rng, op=type(self).__name__)

    def forward(self, x):
        if not self.training or self.p == 0.0:
            self._cache = "identity"
            return x
        if self.rng is None:
            self.rng = np.random.default_rng()
        y, self._cache = backend.ops_for(x).dropout_forward(x, self.p, self.rng, training=True)
        return y

    def backward(self, dy):
        cache = self._take_cache()
        if isinstance(cache, str):
            return dy
        (dx,) = backend.ops_for(dy).dropout_backward(dy, cache)
        return dx

    def extra_repr(self) -> str:
        return f"p={self.p:g}"


class DropPath(Dropout):
    """Stochastic depth on a residual branch: training: y[n] = x[n] * keep[n] / (1 - p),
    keep[n] ~ Bernoulli(1 - p), ONE draw per sample (torchvision StochasticDepth "row" mode).
    Eval (or p = 0): y = x. Cache: the op's cache (the per-sample mask), or "identity".
    """

    def forward(self, x):
        if not self.training or self.p == 0.0:
            self._cache = "identity"
            return x
        if self.rng is None:
            self.rng = np.random.default_rng()
        y, self._cache = backend.ops_for(x).drop_path_forward(x, self.p, self.rng, training=True)
        return y

    def backward(self, dy):
        cache = self._take_cache()
        if isinstance(cache, str):
            return dy
        (dx,) = backend.ops_for(dy).drop_path_backward(dy, cache)
        return dx


class Identity(Module):
    """y = x, dx = dy."""

    def forward(self, x):
        return x

    def backward(self, dy):
        return dy


class ConvBNAct(Module):
    """The conv -> BatchNorm -> activation unit (torchvision's Conv2dNormActivation).

        y = act(BN(conv(x)))           dx = conv.backward(bn.backward(act.backward(dy)))

    depthwise=True uses a DepthwiseConv2d (then out_channels must equal in_channels).
    act=False leaves the activation out (the projection convs of MBConv/Fused-MBConv end in BN).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, *,
                 depthwise: bool = False, act: bool = True, padding=None, bn_eps: float = 1e-3,
                 rng=None, dtype=np.float32):
        super().__init__()
        in_channels = check_int("in_channels", in_channels, op="ConvBNAct")
        out_channels = check_int("out_channels", out_channels, op="ConvBNAct")
        depthwise, act = check_bool("depthwise", depthwise, op="ConvBNAct"), check_bool("act", act, op="ConvBNAct")
        if depthwise:
            if in_channels != out_channels:
                raise ValueError(f"a depthwise ConvBNAct needs in_channels == out_channels, got {in_channels}, {out_channels}")
            self.conv = DepthwiseConv2d(in_channels, kernel_size, stride, padding, rng=rng, dtype=dtype)
        else:
            self.conv = Conv2d(in_channels, out_channels, kernel_size, stride, padding, rng=rng, dtype=dtype)
        self.bn = BatchNorm2d(out_channels, eps=bn_eps, dtype=dtype)
        self.act = SiLU() if act else None

    # Speed path: BN and SiLU run as one fused op (ops/fused.py, tested against the two in a row):
    # one pass less over the activation each way and one activation-sized array less in the cache.
    # Set ConvBNAct.fuse_bn_silu = False to run the readable chain act(bn(conv(x))) instead.
    fuse_bn_silu = True

    def forward(self, x):
        h = self.conv(x)  # (N, Ho, Wo, Cout)
        self._fused = (self.act is not None and self.fuse_bn_silu
                       and hasattr(backend.ops_for(h), "batchnorm_silu_forward"))  # the CPU ops have it
        if self._fused:
            return self.bn(h, silu=True)
        h = self.bn(h)
        return self.act(h) if self.act is not None else h

    def backward(self, dy):
        if self.act is not None and not self._fused:
            dy = self.act.backward(dy)
        return self.conv.backward(self.bn.backward(dy))
