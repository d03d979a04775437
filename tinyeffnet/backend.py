"""The one place that picks the tier for an array: NumPy -> ``tinyeffnet.ops`` (CPU), CUDA -> ``tinyeffnet.cuda``.

Layers never branch on the device themselves: they ask ``ops_for(x)`` for the module that holds
``conv2d_forward``, ``batchnorm_forward``, ``add``, ``channel_gate_forward``, ... for the kind of array
``x`` is, and call it. Every tier has the same op set (``tinyeffnet.ops.OP_NAMES``) with the same
signatures (docs/DESIGN.md, section 5; ``tests/test_tiers.py``), so a layer's code is the same on
every device:

- numpy.ndarray                                            -> tinyeffnet.ops (Numba CPU kernels)
- a CUDA array (anything with ``__cuda_array_interface__``) -> tinyeffnet.cuda

Besides the choice, this module only moves arrays (``to_device``, ``to_host``, ``mover``: Module.to).
"""
from __future__ import annotations

import numpy as np

from . import ops as cpu_ops


def _on_host(x) -> bool:
    """A numpy array, or a numpy scalar (what a CPU loss is)."""
    return isinstance(x, (np.ndarray, np.generic))


def _cuda():
    """The tinyeffnet.cuda package (its kernels load lazily; a missing numba-cuda raises the install hint)."""
    from . import cuda

    return cuda


def _is_device_array(x) -> bool:
    """A CUDA array: anything with ``__cuda_array_interface__``, or a numba device array (the simulator's
    stand-in has no such interface; numba.cuda is imported only for numba's own array types)."""
    if hasattr(x, "__cuda_array_interface__"):
        return True
    if "numba" not in type(x).__module__:
        return False
    from .cuda._runtime import is_numba_device_array

    return is_numba_device_array(x)


def ops_for(x):
    """Return the ops module (the tier) for the device holding ``x`` (see the module docstring)."""
    if isinstance(x, (np.ndarray, np.generic)):     # _on_host(x), inline: this runs for every op call
        return cpu_ops
    if _is_device_array(x):
        return _cuda()
    raise TypeError(f"expected a numpy.ndarray (or a CUDA array), got {type(x).__name__}")


# ----------------------------------------------------------------------------------- moving
def to_device(a):
    """A device copy of a numpy array (a device array is returned as it is)."""
    return _cuda().to_device(a) if _on_host(a) else a


def to_host(a):
    """A numpy copy of a device array (a numpy array is returned as it is)."""
    return a if _on_host(a) else _cuda().to_host(a)


def mover(device: str):
    """The function that moves one array to ``device`` ("cpu" or "cuda...").

    "cuda" first checks that CUDA kernels can run here and raises a RuntimeError that says what is
    missing (numba-cuda: ``pip install "tinyeffnet[cuda]"``; or a visible GPU) before anything moves.
    """
    if device == "cpu":
        return to_host
    _cuda().require_available()
    return to_device
