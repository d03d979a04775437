"""Which units a block has, and in which order, read from the block itself.

interop.py (the key maps) and analysis.py (the cost per layer) both need the units of an MBConv or
Fused-MBConv branch in forward order. Neither spells that out again: a block's children, in the
order its ``__init__`` assigns them (``Module.named_children``), ARE its branch in forward order,
and the same order is the block's state_dict order (nn/blocks.py):

    MBConv        expand (left out when E == 1), depthwise, se (left out when se_ratio is 0), project
    Fused-MBConv  conv (E == 1)  |  expand, project (E != 1)

The DropPath on the residual is a child too; it holds no weights and costs nothing, and it is not
part of the branch, so it is left out.
"""
from __future__ import annotations

from .nn import DropPath, FusedMBConv, MBConv


def branch_units(block, where: str = "branch_units") -> list:
    """[(attribute, module), ...]: the units of an MBConv / FusedMBConv branch in forward order.

    A unit is a ConvBNAct or, in MBConv, the SqueezeExcite. ``where`` names the caller in the
    TypeError for anything other than those two blocks.
    """
    if not isinstance(block, (MBConv, FusedMBConv)):
        raise TypeError(f"{where} knows FusedMBConv and MBConv blocks, got {type(block).__name__}")
    return [(name, child) for name, child in block.named_children() if not isinstance(child, DropPath)]
