"""The ops every EfficientNetV2 layer is built from: forward and backward, written by hand.

Each op is a pair in the cs231n shape::

    y, cache = <op>_forward(x, params..., options...)
    grads    = <op>_backward(dy, cache)

Layout is channels-last: activations (N, H, W, C), dense conv weights (KH, KW, Cin, Cout),
depthwise weights (KH, KW, C), linear weights (Cin, Cout). float32 and float64; the dtype that goes
in comes out.

Three tiers share these names and signatures: ``tinyeffnet.ops.reference`` (plain NumPy, short and
obviously right), the public functions here (Numba-compiled CPU kernels, or NumPy where that is the
fastest code), which are tested against the reference, and ``tinyeffnet.cuda`` (numba.cuda kernels).
``OP_NAMES`` is the one list of them; ``tests/test_tiers.py`` checks that every tier has exactly these.
"""
from .conv2d import conv2d_forward, conv2d_backward
from .depthwise import depthwise_conv2d_forward, depthwise_conv2d_backward
from .batchnorm import batchnorm_forward, batchnorm_backward
from .activations import silu_forward, silu_backward, sigmoid_forward, sigmoid_backward
from .pooling import global_avg_pool_forward, global_avg_pool_backward
from .linear import linear_forward, linear_backward
from .losses import softmax_cross_entropy
from .fused import batchnorm_silu_forward, batchnorm_silu_backward
from .regularization import dropout_forward, dropout_backward, drop_path_forward, drop_path_backward
from .elementwise import add, channel_gate_forward, channel_gate_backward, fill, axpy, copy, zeros

from ._checks import OP_NAMES  # the op set of every tier (the contract lives in _checks)
from ..process import warn_if_unconfigured

warn_if_unconfigured()           # the kernels are about to be used: say so if the process was not configured

__all__ = [  # OP_NAMES, spelled out for linters and readers
    "OP_NAMES", "conv2d_forward", "conv2d_backward", "depthwise_conv2d_forward", "depthwise_conv2d_backward",
    "batchnorm_forward", "batchnorm_backward", "batchnorm_silu_forward", "batchnorm_silu_backward",
    "silu_forward", "silu_backward", "sigmoid_forward", "sigmoid_backward", "global_avg_pool_forward",
    "global_avg_pool_backward", "linear_forward", "linear_backward", "softmax_cross_entropy",
    "dropout_forward", "dropout_backward", "drop_path_forward", "drop_path_backward", "add",
    "channel_gate_forward", "channel_gate_backward", "fill", "axpy", "copy", "zeros",
]
