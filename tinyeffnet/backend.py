"""The one place that picks the ops for an array: ``tinyeffnet.ops`` (CPU) or ``tinyeffnet.cuda``.

Layers never branch on the device themselves: they ask ``ops_for(x)`` for the module that holds
``conv2d_forward``, ``batchnorm_forward``, ... for the kind of array ``x`` is, and call it. Both
modules have the same names and signatures (DESIGN.md), so a layer's code is the same on every device.

- numpy.ndarray               -> tinyeffnet.ops (Numba CPU kernels)
- a CUDA array (anything with ``__cuda_array_interface__``) -> tinyeffnet.cuda, once it exists
"""
from __future__ import annotations

import numpy as np

from . import ops as cpu_ops
from .nn.module import CUDA_NOT_AVAILABLE


def ops_for(x):
    """Return the ops module for the device holding ``x`` (see the module docstring)."""
    if isinstance(x, np.ndarray):
        return cpu_ops
    if hasattr(x, "__cuda_array_interface__"):
        try:
            from . import cuda as cuda_ops  # noqa: F401  (issue 4)
        except ImportError as error:
            raise RuntimeError(CUDA_NOT_AVAILABLE) from error
        return cuda_ops
    raise TypeError(f"expected a numpy.ndarray (or a CUDA array), got {type(x).__name__}")
