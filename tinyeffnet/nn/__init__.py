"""tinyeffnet.nn: Parameter, Module and the layers and blocks EfficientNetV2 is made of.

PyTorch-like on purpose (that is what learners know), with one difference: there is no autograd.
Every module's ``backward(dy)`` is written by hand and returns dx, adding parameter gradients into
``Parameter.grad``. See module.py (the base class), layers.py (one op each) and blocks.py
(SqueezeExcite, MBConv, FusedMBConv).
"""
from .parameter import Parameter
from .module import Module, Sequential, ModuleList, module_as_op
from .layers import (
    Conv2d, DepthwiseConv2d, BatchNorm2d, BatchNormSiLU, SiLU, Sigmoid, GlobalAvgPool, Linear, Dropout, DropPath,
    Identity, ConvBNAct,
)
from .blocks import SqueezeExcite, MBConv, FusedMBConv, squeeze_channels

__all__ = [
    "Parameter", "Module", "Sequential", "ModuleList", "module_as_op",
    "Conv2d", "DepthwiseConv2d", "BatchNorm2d", "BatchNormSiLU", "SiLU", "Sigmoid", "GlobalAvgPool", "Linear",
    "Dropout", "DropPath", "Identity", "ConvBNAct",
    "SqueezeExcite", "MBConv", "FusedMBConv", "squeeze_channels",
]
