"""tinyeffnet.cuda: every op of ``tinyeffnet.ops`` as numba.cuda kernels (tier 3), same names and
signatures, taking and returning numba device arrays (channels-last, float32 or float64).

    >>> import numpy as np, tinyeffnet.cuda as tc
    >>> x = tc.to_device(np.random.rand(2, 8, 8, 16).astype(np.float32))    # (N, H, W, C) on the GPU
    >>> w = tc.to_device(np.random.rand(3, 3, 16).astype(np.float32))        # (KH, KW, C)
    >>> y, cache = tc.depthwise_conv2d_forward(x, w, stride=1, padding=1)    # y stays on the GPU
    >>> tc.to_host(y).shape
    (2, 8, 8, 16)

One file per op family, as in ``tinyeffnet.ops`` (conv2d, depthwise, batchnorm, activations, pooling,
linear, losses, regularization, fused), plus ``gemm`` (the tiled matrix multiply), ``elementwise`` (residual
add, Squeeze-Excite gate, fills, copies, SGD update, sums), ``optim`` (``SGD`` on device arrays) and
``_runtime`` (the launch rule every kernel follows, the kernel registry, device-array checks).

A whole model on the GPU (every layer dispatches through ``tinyeffnet.backend``)::

    >>> model = tinyeffnet.create_model("efficientnetv2_s").to("cuda")   # parameters, grads, BN stats
    >>> opt = tc.SGD(model.parameters(), lr=0.1, momentum=0.9)           # tinyeffnet.optim.SGD's API
    >>> from tinyeffnet.train import update_step                          # the CPU's step, unchanged
    >>> loss, logits = update_step(model, opt, tc.to_device(images), labels, check_finite=False)
    >>> model.to("cpu")                                                  # everything back in numpy

Each kernel is a plain Python function (one thread's work) compiled by ``cuda.jit``;
``tests/cuda/test_ptx.py`` compiles every one of them to PTX.

CUDA is optional. ``import tinyeffnet`` and ``import tinyeffnet.cuda`` work without numba-cuda; the
kernels are imported on first use, and without numba-cuda that use raises ``CudaUnavailableError``
naming the install command, ``pip install "tinyeffnet[cuda]"``. ``is_available()`` never raises.
No GPU? ``NUMBA_ENABLE_CUDASIM=1`` (set before numba is imported) runs every kernel in numba's CUDA
simulator, slowly (about 1,000 threads per second): that is how the tests run in CI.
"""
from __future__ import annotations

import importlib

INSTALL_HINT = (
    'CUDA support needs numba-cuda: pip install "tinyeffnet[cuda]" '
    '(it installs numba-cuda[cu13]; a machine with an NVIDIA GPU and driver runs the kernels, '
    "NUMBA_ENABLE_CUDASIM=1 runs them slowly in numba's CUDA simulator)"
)

# public name -> the module (inside this package) that defines it
_EXPORTS = {
    "conv2d_forward": "conv2d", "conv2d_backward": "conv2d",
    "depthwise_conv2d_forward": "depthwise", "depthwise_conv2d_backward": "depthwise",
    "batchnorm_forward": "batchnorm", "batchnorm_backward": "batchnorm",
    "silu_forward": "activations", "silu_backward": "activations",
    "sigmoid_forward": "activations", "sigmoid_backward": "activations",
    "global_avg_pool_forward": "pooling", "global_avg_pool_backward": "pooling",
    "linear_forward": "linear", "linear_backward": "linear",
    "softmax_cross_entropy": "losses",
    "dropout_forward": "regularization", "dropout_backward": "regularization",
    "drop_path_forward": "regularization", "drop_path_backward": "regularization",
    "batchnorm_silu_forward": "fused", "batchnorm_silu_backward": "fused",
    # between the layers: the residual add, Squeeze-Excite's gate, gradient accumulation
    "add": "elementwise", "channel_gate_forward": "elementwise", "channel_gate_backward": "elementwise",
    "fill": "elementwise", "axpy": "elementwise", "copy": "elementwise", "zeros": "elementwise",
    # device helpers, not ops (the CPU has numpy for these): the optimiser update, sums, the GEMM
    "sgd_step": "elementwise", "total": "elementwise", "column_sums": "elementwise", "matmul": "gemm",
    # the optimiser level: SGD on device arrays (the step itself is tinyeffnet.train.update_step)
    "SGD": "optim",
}

# what only this tier has, not ops: device helpers, the model level, moving arrays
DEVICE_HELPERS = ["sgd_step", "total", "column_sums", "matmul", "SGD", "to_device", "to_host"]
# the ops: tinyeffnet.ops.OP_NAMES, the same set in every tier (tests/test_tiers.py)
OPS = [name for name in _EXPORTS if name not in DEVICE_HELPERS]
__all__ = ["is_available", "require_available", "to_device", "to_host", "CudaUnavailableError", "INSTALL_HINT",
           "NO_GPU_HINT", "OPS", "DEVICE_HELPERS", *_EXPORTS]

NO_GPU_HINT = (
    "no CUDA GPU is visible here (numba.cuda.is_available() is False: no NVIDIA GPU, or no driver). "
    'tinyeffnet\'s CUDA target needs an NVIDIA GPU with its driver and numba-cuda (pip install "tinyeffnet[cuda]"); '
    "without a GPU, NUMBA_ENABLE_CUDASIM=1 (set before Python starts) runs the kernels in numba's CUDA "
    "simulator, slowly"
)


class CudaUnavailableError(ImportError):
    """numba-cuda is missing: the message says what to install."""


def _numba_cuda():
    """numba.cuda, or CudaUnavailableError with the install hint."""
    try:
        return importlib.import_module("numba.cuda")
    except ImportError as error:
        raise CudaUnavailableError(f"{INSTALL_HINT}. Import error: {error}") from error


def is_available() -> bool:
    """True when CUDA kernels can run here (a GPU and its driver, or the simulator). Never raises."""
    try:
        return bool(_numba_cuda().is_available())
    except Exception:  # no numba-cuda, no driver, a broken install: all mean "not available"
        return False


def require_available() -> None:
    """Raise RuntimeError saying what is missing when CUDA kernels cannot run here; None when they can.

    Two causes, two messages: numba-cuda is not installed (INSTALL_HINT: ``pip install "tinyeffnet[cuda]"``),
    or it is installed but no GPU is visible (NO_GPU_HINT, which also names the simulator).
    """
    try:
        numba_cuda = _numba_cuda()
    except CudaUnavailableError as error:
        raise RuntimeError(f"cannot use CUDA: {error}") from error
    try:
        available = bool(numba_cuda.is_available())
    except Exception as error:  # a broken driver install: report it as "not visible", with the cause
        raise RuntimeError(f"{NO_GPU_HINT}. Error: {error}") from error
    if not available:
        raise RuntimeError(NO_GPU_HINT)


def to_device(array):
    """Copy a numpy array to the GPU; returns a numba device array (C-contiguous, same dtype)."""
    import numpy as np

    return _numba_cuda().to_device(np.ascontiguousarray(array))


def to_host(device_array):
    """Copy a device array back to a numpy array (same shape and dtype)."""
    return device_array.copy_to_host()


def __getattr__(name):
    """Load the kernel module that defines ``name`` on first use (so numba.cuda is imported lazily)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tinyeffnet.cuda' has no attribute {name!r}")
    _numba_cuda()  # the install hint, before any kernel module is imported
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
