"""The one place that picks the code for an array: NumPy / ``tinyeffnet.ops`` (CPU) or ``tinyeffnet.cuda``.

Layers never branch on the device themselves: they ask ``ops_for(x)`` for the module that holds
``conv2d_forward``, ``batchnorm_forward``, ... for the kind of array ``x`` is, and call it. Both
modules have the same names and signatures (docs/DESIGN.md, section 5), so a layer's code is the same on every device.

- numpy.ndarray               -> tinyeffnet.ops (Numba CPU kernels)
- a CUDA array (anything with ``__cuda_array_interface__``) -> tinyeffnet.cuda

The few places in ``nn/`` that used to do NumPy arithmetic directly on activations or gradients
(the residual sum, Squeeze-Excite's gate, gradient accumulation) call the small functions below
instead. Each one's CPU branch IS the NumPy expression the layer used before (same code, same speed);
its device branch calls the matching kernel of ``tinyeffnet.cuda.elementwise``.

Dimension legend: N batch, H, W, C channels-last; g (N, C) one gate per image and channel.

    add:                     out = a + b                               (residual: y = x + branch(x))
    channel_gate_forward:    y[n,h,w,c] = x[n,h,w,c] g[n,c]             (Squeeze-Excite)
    channel_gate_backward:   dx = dy g[n,c];   dg[n,c] = sum_{h,w} dy x
    add_into:                target += g                               (Parameter.grad accumulation)
    copy_as / zeros_like / fill_zero                                   (Parameter.grad allocation)
    to_device / to_host:     move one array (Module.to)
"""
from __future__ import annotations

import numpy as np

from . import ops as cpu_ops


def _on_host(x) -> bool:
    return isinstance(x, np.ndarray)


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
    """Return the ops module for the device holding ``x`` (see the module docstring)."""
    if _on_host(x):
        return cpu_ops
    if _is_device_array(x):
        return _cuda()
    raise TypeError(f"expected a numpy.ndarray (or a CUDA array), got {type(x).__name__}")


# ------------------------------------------------------------------------------ activations
def add(a, b):
    """out = a + b, same shape and dtype (a new array). The residual sum and its backward."""
    if _on_host(a):
        return a + b
    return ops_for(a).add(a, b)


def channel_gate_forward(x, g):
    """Squeeze-Excite's product y = x * g[:, None, None, :]. x: (N, H, W, C); g: (N, C).

    Returns y (N, H, W, C) and the cache.
    Cache: (x, g), the product's two factors: dx = dy g needs g, dg = sum_{h,w} dy x needs x.
    """
    if _on_host(x):
        return x * g[:, None, None, :], (x, g)       # (N, H, W, C)
    return ops_for(x).channel_gate_forward(x, g)


def channel_gate_backward(dy, cache):
    """dx = dy * g[:, None, None, :]  (N, H, W, C);  dg[n,c] = sum_{h,w} dy x  (N, C). Returns (dx, dg)."""
    x, g = cache
    if _on_host(dy):
        dx = dy * g[:, None, None, :]                 # (N, H, W, C), the product with g held fixed
        dg = np.einsum("nhwc,nhwc->nc", dy, x)        # (N, C)
        return dx, dg
    return ops_for(dy).channel_gate_backward(dy, cache)


# -------------------------------------------------------------------------------- gradients
def copy_as(g, dtype):
    """A new array equal to g, of ``dtype`` (the first gradient a Parameter receives)."""
    if _on_host(g):
        return np.array(g, dtype=dtype, copy=True)
    if np.dtype(g.dtype) != np.dtype(dtype):
        raise TypeError(f"mixed dtypes: a gradient of dtype {g.dtype} for a parameter of dtype {np.dtype(dtype)}")
    return _cuda().copy(g)


def add_into(target, g) -> None:
    """target += g, in place (target: a Parameter's grad)."""
    if _on_host(target):
        target += g
    else:
        _cuda().axpy(1, g, target)


def zeros_like(a):
    """An array of zeros with a's shape and dtype, on a's device."""
    if _on_host(a):
        return np.zeros_like(a)
    return _cuda().zeros(a.shape, a.dtype)


def fill_zero(a) -> None:
    """a[...] = 0, in place."""
    if _on_host(a):
        a[...] = 0
    else:
        _cuda().fill(a, 0)


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
