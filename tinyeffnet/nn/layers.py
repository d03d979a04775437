"""Layers: thin stateful wrappers around the ops, holding parameters and the forward cache.

Dimension legend
    N batch   H, W height, width   Cin, Cout input/output channels   C channels (depthwise, BN)
    K kernel size (K x K)          S stride

Every layer has the same three-line shape::

    forward(x):   y, self._cache = ops.<op>_forward(x, params...)      # keep the cache for backward
    backward(dy): dx, dparams = ops.<op>_backward(dy, self._cache)     # use it once, then drop it
                  param.accumulate(dparam, fresh=True)                 # grad += dparam (dparam: new, ours)
                  return dx

The ops come from ``tinyeffnet.backend.ops_for(x)`` (CPU numpy arrays -> ``tinyeffnet.ops``), so a
layer never branches on the device; a layer with one op pair names it as every tier does
(``op = "silu"`` runs ``silu_forward`` / ``silu_backward``, docs/DESIGN.md, section 4). A layer keeps
the cache of its LAST forward for ONE backward; calling backward twice, or before forward, raises.

Fast paths are chosen once, when a layer is built (``fast=True``, the default; docs/DESIGN.md,
section 5), and the module tree shows what runs:
    Conv2d(..., fast=True)     the direct conv for a thin conv (``direct.chosen_for``: <= 32 channels,
                               stride 1 or 2), Winograd for another 3x3 stride-1 "same" conv
                               where it pays on this CPU (``winograd.chosen_for``: by input
                               channels), else im2col; ``algorithm`` and
                               ``forward_op`` / ``backward_op`` say which
    ConvBNAct(..., fast=True)  conv -> BatchNormSiLU (BN and SiLU in one op, ops/fused.py);
                               fast=False: conv -> BatchNorm2d -> SiLU, the readable chain
With fast=False every op a learner steps into is the readable one; tests/nn/test_fast_paths.py
shows that the two give the same numbers.

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
from .. import ops as cpu_ops
from ..ops import direct, winograd, winograd_fused
from ..ops.conv2d import conv2d_weight_gradient
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
            raise RuntimeError(f"{type(self).__name__}.backward called before forward (a backward without a forward, "
                               f"or a second one: a forward's cache serves one backward)")
        cache, self._cache = self._cache, None
        return cache


def _conv_algorithm(shape, stride, padding, fast: bool, algorithm) -> str:
    """The conv op pair for this geometry: ``algorithm`` when given (checked), else, when ``fast``,
    the register-blocked direct conv for thin 3x3-and-up stride-1 convs (``direct.chosen_for``: at
    most DIRECT_MAX_CHANNELS channels in and out), three-pass Winograd for the other 3x3 stride-1
    convs with enough input channels for this CPU (``winograd.chosen_for``) on maps of 24 x 24 and
    more and im2col on smaller ones ("winograd_or_im2col", decided per call by the input's size),
    im2col + GEMM for every other geometry."""
    if algorithm is None:
        if fast and direct.chosen_for(shape, stride, padding):
            return "direct"
        return "winograd_or_im2col" if fast and winograd.chosen_for(shape, stride, padding) else "im2col"
    if algorithm not in Conv2d.ALGORITHMS:
        raise ValueError(f"Conv2d: algorithm must be None or one of {sorted(Conv2d.ALGORITHMS)}, got {algorithm!r}")
    if algorithm == "direct" and not direct.applies(shape, stride, padding):
        raise ValueError(f"Conv2d: algorithm 'direct' covers stride-1 convs padded by at most kernel - 1, "
                         f"got kernel {shape[0]}, stride {stride}, padding {padding!r}")
    if algorithm not in ("im2col", "direct") and not winograd.applies(shape, stride, padding):
        raise ValueError(f"Conv2d: algorithm {algorithm!r} covers 3x3 stride-1 convs padded by 1 (or \"same\"), "
                         f"got kernel {shape[0]}, stride {stride}, padding {padding!r}")
    return algorithm


class Conv2d(_CachedLayer):
    """Dense convolution without bias: (N, H, W, Cin) -> (N, Ho, Wo, Cout), weight (K, K, Cin, Cout).

        y[n,i,j,co] = sum_{a,b,ci} xpad[n, i*S+a, j*S+b, ci] * w[a,b,ci,co]

    padding: int (symmetric, default (K-1)//2) or "same" (TensorFlow's rule, for ported weights).
    fast: True picks "direct" for a thin conv (kernel above 1x1, at most ``direct.DIRECT_MAX_CHANNELS``
    (32) channels in and out, stride 1 or 2: the register-blocked kernels of ops/direct.py, no
    im2col matrix); else "winograd_or_im2col" where Winograd F(2x2, 3x3) applies (3x3, stride 1,
    padding 1 or "same") and pays on this CPU (``winograd.chosen_for``: from 96 input channels where
    Numba has AVX-512, any with AVX2): the transforms + GEMMs of ops/winograd.py on maps of at least 24 x 24,
    im2col on smaller ones, where Winograd's transforms cost more than they save
    (``winograd.WINOGRAD_MIN_SIZE``; the cache says which ran); False, or any other geometry: im2col
    + GEMM (ops/conv2d.py, the readable op). algorithm: None (choose as above) or a name from
    ALGORITHMS ("winograd": Winograd on every size; "direct" on any geometry ``direct.applies``
    covers), e.g.
    "winograd_fused" (ops/winograd_fused.py, one pass per tile: faster on its own, slower inside a
    whole training step on the machines measured, so never chosen by default).
    Chosen here, once: ``algorithm`` names it, ``forward_op`` / ``backward_op`` are the pair.
    (A CUDA array runs the CUDA tier's conv2d_forward / backward: that tier has one conv algorithm.)
    Cache: the op's cache (input x and geometry; its ``algorithm`` says which op made it).
    """

    ALGORITHMS = {  # algorithm -> (forward op, backward op): siblings with the same signatures
        "im2col": (cpu_ops.conv2d_forward, cpu_ops.conv2d_backward),
        "winograd": (winograd.conv2d_winograd_forward, winograd.conv2d_winograd_backward),
        "winograd_or_im2col": (winograd.conv2d_winograd_or_im2col_forward,
                               winograd.conv2d_winograd_or_im2col_backward),
        "winograd_fused": (winograd_fused.conv2d_winograd_fused_forward, winograd_fused.conv2d_winograd_fused_backward),
        "direct": (direct.conv2d_direct_forward, direct.conv2d_direct_backward),
    }
    # algorithm -> the op that computes dw alone (backward with input_gradient=False); the others
    # compute dx too and drop it
    WEIGHT_GRADIENT_OPS = {"im2col": conv2d_weight_gradient, "direct": direct.conv2d_direct_weight_gradient}

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding=None, rng=None, dtype=np.float32, fast: bool = True, algorithm: str | None = None):
        super().__init__()
        in_channels = check_int("in_channels", in_channels, op="Conv2d")
        out_channels = check_int("out_channels", out_channels, op="Conv2d")
        kernel_size, stride, padding, dtype = check_conv_options("Conv2d", kernel_size, stride, padding, rng, dtype)
        fast = check_bool("fast", fast, op="Conv2d")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel_size, stride
        self.padding = default_padding(kernel_size) if padding is None else padding
        shape = (kernel_size, kernel_size, in_channels, out_channels)  # (K, K, Cin, Cout)
        self.weight = Parameter(kaiming_normal_fan_out(shape, out_channels * kernel_size ** 2, rng, dtype))
        self.algorithm = _conv_algorithm(shape, stride, self.padding, fast, algorithm)
        self.forward_op, self.backward_op = self.ALGORITHMS[self.algorithm]

    def forward(self, x):
        ops = backend.ops_for(x)
        forward_op = self.forward_op if ops is cpu_ops else ops.conv2d_forward
        y, self._cache = forward_op(x, self.weight.data, self.stride, self.padding)
        return y  # (N, Ho, Wo, Cout)

    def backward(self, dy, input_gradient: bool = True):
        """dx (N, H, W, Cin), and dw added to weight.grad. input_gradient=False: dw only, returns None
        (the stem, whose input is the image: what PyTorch skips for an input without requires_grad)."""
        ops = backend.ops_for(dy)
        if not input_gradient and ops is cpu_ops and self.algorithm in self.WEIGHT_GRADIENT_OPS:
            self.weight.accumulate(self.WEIGHT_GRADIENT_OPS[self.algorithm](dy, self._take_cache()), fresh=True)
            return None
        backward_op = self.backward_op if ops is cpu_ops else ops.conv2d_backward
        dx, dw = backward_op(dy, self._take_cache())
        self.weight.accumulate(dw, fresh=True)
        return dx if input_gradient else None  # (N, H, W, Cin)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding!r}, algorithm={self.algorithm}")


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
        self.weight.accumulate(dw, fresh=True)
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

    op = "batchnorm"  # runs ops.batchnorm_forward / batchnorm_backward (BatchNormSiLU: batchnorm_silu_*)

    def forward(self, x):
        forward_op = getattr(backend.ops_for(x), f"{self.op}_forward")
        y, self._cache = forward_op(x, self.weight.data, self.bias.data, self.running_mean, self.running_var,
                                    self.training, momentum=self.momentum, eps=self.eps)  # stats updated in place
        if self.training:
            self.num_batches_tracked += 1
        return y  # (N, H, W, C)

    def backward(self, dy):
        dx, dgamma, dbeta = getattr(backend.ops_for(dy), f"{self.op}_backward")(dy, self._take_cache())
        self.weight.accumulate(dgamma, fresh=True)
        self.bias.accumulate(dbeta, fresh=True)
        return dx  # (N, H, W, C)

    def extra_repr(self) -> str:
        return f"{self.channels}, eps={self.eps:g}, momentum={self.momentum:g}"


class BatchNormSiLU(BatchNorm2d):
    """SiLU(BatchNorm2d(x)) in one op (``ops.batchnorm_silu_forward``, ops/fused.py): the fast path of
    a conv-BN-SiLU unit (``ConvBNAct(..., fast=True)``). One pass less over the activation each way
    and one activation-sized array less in the cache than BatchNorm2d followed by SiLU.

    A BatchNorm2d in everything else: the same parameters, buffers and state_dict keys (weight, bias,
    running_mean, running_var, num_batches_tracked), so checkpoints and interop do not see the choice.
    Cache: the fused op's cache (x, the statistics, gamma, beta: the SiLU input is recomputed).
    """

    op = "batchnorm_silu"  # BatchNorm2d's forward and backward, running ops.batchnorm_silu_forward / _backward


class _OneInputLayer(_CachedLayer):
    """A layer without parameters or options: y, cache = <op>_forward(x); (dx,) = <op>_backward(dy, cache),
    with ``op`` the op's name in every tier (docs/DESIGN.md, section 4)."""

    op = ""

    def forward(self, x):
        y, self._cache = getattr(backend.ops_for(x), f"{self.op}_forward")(x)
        return y

    def backward(self, dy):
        (dx,) = getattr(backend.ops_for(dy), f"{self.op}_backward")(dy, self._take_cache())
        return dx


class SiLU(_OneInputLayer):
    """y = x * sigmoid(x) (a.k.a. swish), elementwise, any shape. Cache: the op's cache (x)."""

    op = "silu"  # ops.silu_forward / silu_backward


class Sigmoid(_OneInputLayer):
    """y = 1 / (1 + exp(-x)), elementwise, any shape. Cache: the op's cache (y itself)."""

    op = "sigmoid"  # ops.sigmoid_forward / sigmoid_backward


class GlobalAvgPool(_OneInputLayer):
    """y[n,c] = mean_{h,w} x[n,h,w,c]: (N, H, W, C) -> (N, C). Cache: the input shape."""

    op = "global_avg_pool"  # ops.global_avg_pool_forward / global_avg_pool_backward


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
        self.weight.accumulate(dw, fresh=True)
        if self.bias is not None:
            self.bias.accumulate(db, fresh=True)
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

    op = "dropout"  # ops.dropout_forward / dropout_backward: one coin per element

    def forward(self, x):
        if not self.training or self.p == 0.0:
            self._cache = "identity"
            return x
        if self.rng is None:
            self.rng = np.random.default_rng()
        y, self._cache = getattr(backend.ops_for(x), f"{self.op}_forward")(x, self.p, self.rng, training=True)
        return y

    def backward(self, dy):
        cache = self._take_cache()
        if isinstance(cache, str):
            return dy
        (dx,) = getattr(backend.ops_for(dy), f"{self.op}_backward")(dy, cache)
        return dx

    def extra_repr(self) -> str:
        return f"p={self.p:g}"


class DropPath(Dropout):
    """Stochastic depth on a residual branch: training: y[n] = x[n] * keep[n] / (1 - p),
    keep[n] ~ Bernoulli(1 - p), ONE draw per sample (torchvision StochasticDepth "row" mode).
    Eval (or p = 0): y = x. Cache: the op's cache (the per-sample mask), or "identity".
    """

    op = "drop_path"  # Dropout's forward and backward, running ops.drop_path_forward / _backward


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
    fast=True (the default): ``bn`` is a BatchNormSiLU (BN and SiLU in one op) and ``act`` is None,
    and the conv may be Winograd (``Conv2d(fast=True)``); fast=False: ``bn`` a BatchNorm2d, ``act`` a
    SiLU, im2col convs: the readable chain. The state_dict keys are the same either way.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, *,
                 depthwise: bool = False, act: bool = True, padding=None, bn_eps: float = 1e-3,
                 rng=None, dtype=np.float32, fast: bool = True):
        super().__init__()
        in_channels = check_int("in_channels", in_channels, op="ConvBNAct")
        out_channels = check_int("out_channels", out_channels, op="ConvBNAct")
        depthwise, act = check_bool("depthwise", depthwise, op="ConvBNAct"), check_bool("act", act, op="ConvBNAct")
        fast = check_bool("fast", fast, op="ConvBNAct")
        if depthwise:
            if in_channels != out_channels:
                raise ValueError(f"a depthwise ConvBNAct needs in_channels == out_channels, "
                                 f"got {in_channels}, {out_channels}")
            self.conv = DepthwiseConv2d(in_channels, kernel_size, stride, padding, rng=rng, dtype=dtype)
        else:
            self.conv = Conv2d(in_channels, out_channels, kernel_size, stride, padding, rng=rng, dtype=dtype, fast=fast)
        if act and fast:
            self.bn = BatchNormSiLU(out_channels, eps=bn_eps, dtype=dtype)  # SiLU(BN(h)) in one op
            self.act = None
        else:
            self.bn = BatchNorm2d(out_channels, eps=bn_eps, dtype=dtype)
            self.act = SiLU() if act else None

    def forward(self, x):
        h = self.bn(self.conv(x))  # (N, Ho, Wo, Cout); a BatchNormSiLU ends in the SiLU itself
        return self.act(h) if self.act is not None else h

    def backward(self, dy, input_gradient: bool = True):
        """dx, or None with input_gradient=False (the conv then computes only its weight gradient)."""
        if self.act is not None:
            dy = self.act.backward(dy)
        dh = self.bn.backward(dy)
        if isinstance(self.conv, Conv2d):
            return self.conv.backward(dh, input_gradient)
        dx = self.conv.backward(dh)
        return dx if input_gradient else None
