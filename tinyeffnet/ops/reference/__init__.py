"""Tier 1: every op in plain NumPy, short and obviously right.

Same names, signatures and caches as ``tinyeffnet.ops``. These are tested against PyTorch, and the
Numba kernels of ``tinyeffnet.ops`` are tested against these. Read these first.
"""
from .conv import conv2d_forward, conv2d_backward, depthwise_conv2d_forward, depthwise_conv2d_backward
from .batchnorm import batchnorm_forward, batchnorm_backward
from .activations import silu_forward, silu_backward, sigmoid_forward, sigmoid_backward
from .pooling import global_avg_pool_forward, global_avg_pool_backward
from .linear import linear_forward, linear_backward
from .losses import softmax_cross_entropy
from .regularization import dropout_forward, dropout_backward, drop_path_forward, drop_path_backward
