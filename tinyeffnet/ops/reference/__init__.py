"""Tier 1: every op in plain NumPy, short and obviously right.

Same names (``tinyeffnet.ops.OP_NAMES``), signatures and caches as ``tinyeffnet.ops``. These are tested
against PyTorch, and the Numba kernels of ``tinyeffnet.ops`` are tested against these. Read these first.
"""
from .conv import conv2d_forward, conv2d_backward, depthwise_conv2d_forward, depthwise_conv2d_backward
from .batchnorm import batchnorm_forward, batchnorm_backward
from .activations import silu_forward, silu_backward, sigmoid_forward, sigmoid_backward
from .pooling import global_avg_pool_forward, global_avg_pool_backward
from .linear import linear_forward, linear_backward
from .losses import softmax_cross_entropy
from .regularization import dropout_forward, dropout_backward, drop_path_forward, drop_path_backward
from .fused import batchnorm_silu_forward, batchnorm_silu_backward
from .elementwise import add, channel_gate_forward, channel_gate_backward, fill, axpy, copy, zeros
__all__ = [  # OP_NAMES, spelled out for linters and readers
    "conv2d_forward", "conv2d_backward", "depthwise_conv2d_forward", "depthwise_conv2d_backward",
    "batchnorm_forward", "batchnorm_backward", "batchnorm_silu_forward", "batchnorm_silu_backward",
    "silu_forward", "silu_backward", "sigmoid_forward", "sigmoid_backward", "global_avg_pool_forward",
    "global_avg_pool_backward", "linear_forward", "linear_backward", "softmax_cross_entropy",
    "dropout_forward", "dropout_backward", "drop_path_forward", "drop_path_backward", "add",
    "channel_gate_forward", "channel_gate_backward", "fill", "axpy", "copy", "zeros",
]
