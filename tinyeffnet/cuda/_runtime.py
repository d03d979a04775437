"""The plumbing every CUDA kernel module shares: the guarded numba.cuda import, the launch rule,
the kernel registry (for the PTX checks) and the input checks for device arrays (with the copy
kernels that turn a strided device view into a C-contiguous array).

This module imports no other kernel module of the package (every one of them imports it), so there
is no import cycle: ``_runtime`` <- ``elementwise`` <- ``gemm``, ``batchnorm``, ...

Launch rule (every kernel of this package uses it, so one paragraph explains them all): a kernel is a
1-D grid of blocks of THREADS_PER_BLOCK threads, and each thread walks a *grid-stride loop*

    for idx in range(cuda.grid(1), total, cuda.gridsize(1)):      # idx = this thread's work item
        ...

so thread t handles items t, t + G, t + 2G, ... (G = threads in the grid). With enough blocks every
thread gets exactly one item ("one thread per output element"); the grid is capped at MAX_BLOCKS
blocks so that huge tensors reuse threads instead of launching millions of blocks. Neighbouring
threads get neighbouring idx, and idx runs over the LAST axis fastest (channels-last C), so the
threads of a warp read neighbouring addresses: coalesced memory access.

Why the import is guarded: CUDA is optional (``pip install "tinyeffnet[cuda]"``). ``import tinyeffnet``
and ``import tinyeffnet.cuda`` never import numba.cuda; the kernel modules do, through
``load_cuda()``, which turns a missing numba-cuda into one clear error.
"""
from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np

from ..ops._checks import FLOAT_DTYPES

THREADS_PER_BLOCK = 128
MAX_BLOCKS = 8192


def load_cuda():
    """Return the ``numba.cuda`` module, or raise CudaUnavailableError with the install hint."""
    from . import _numba_cuda

    return _numba_cuda()


cuda = load_cuda()


# ---------------------------------------------------------------------------------------- kernels
class KernelSpec(NamedTuple):
    """One kernel: its plain Python function and its signature with ``{t}`` for the float type."""

    name: str
    py_func: object
    signature: str

    def signature_for(self, float_type: str) -> str:
        return self.signature.format(t=float_type)


KERNELS: list[KernelSpec] = []


def kernel(signature: str):
    """Decorator: register ``py_func`` with its signature template, return the lazily compiled kernel.

    ``signature`` is a numba signature with ``{t}`` standing for float32 / float64, for example
    ``"void({t}[::1], {t}[::1])"``. The kernel itself is compiled on first launch for the argument
    types it gets (float32 or float64); the template is what tests/cuda/test_ptx.py compiles to PTX.
    """

    def register(py_func):
        KERNELS.append(KernelSpec(f"{py_func.__module__}.{py_func.__name__}", py_func, signature))
        return cuda.jit(fastmath=True)(py_func)

    return register


def launch(compiled_kernel, work_items: int, *args) -> None:
    """Run ``compiled_kernel(*args)`` on a 1-D grid big enough for ``work_items`` threads (see above)."""
    if work_items <= 0:
        return
    threads = min(THREADS_PER_BLOCK, work_items)
    blocks = min(MAX_BLOCKS, -(-work_items // threads))
    if counted(compiled_kernel):
        compiled_kernel[blocks, threads](*args)


# ------------------------------------------------------------------------- counting launches
class Counts:
    """What ran while ``counting()`` was active: kernel launches by kernel name, and copies between
    host and device (``to_device``: host -> device, ``to_host``: device -> host; device -> device
    copies are kernels' business and not counted)."""

    def __init__(self, dry: bool):
        self.dry = dry
        self.launches: Counter = Counter()
        self.to_device = 0
        self.to_host = 0

    @property
    def total_launches(self) -> int:
        return sum(self.launches.values())

    def as_dict(self) -> dict:
        return {"launches": self.total_launches, "to_device": self.to_device, "to_host": self.to_host,
                "by_kernel": dict(self.launches.most_common())}


_COUNTS: list = []          # the active Counts (at most one)


def _kernel_name(compiled_kernel) -> str:
    func = getattr(compiled_kernel, "py_func", None) or getattr(compiled_kernel, "fn", None)
    return getattr(func, "__name__", type(compiled_kernel).__name__)


def counted(compiled_kernel) -> bool:
    """Record one launch of ``compiled_kernel`` if counting; False when it must not run (a dry count)."""
    if not _COUNTS:
        return True
    _COUNTS[-1].launches[_kernel_name(compiled_kernel)] += 1
    return not _COUNTS[-1].dry


@contextmanager
def counting(dry: bool = False):
    """``with counting() as counts:`` records every kernel launch and every host <-> device copy of
    the code inside (``Counts``). dry=True records the launches without running them (outputs are
    then garbage): it counts a whole training step of a large model in the simulator in seconds, as
    long as nothing inside decides by a computed value."""
    counts = Counts(dry)
    device_array_type = type(cuda.device_array(1, dtype=np.float32))
    original_to_device, original_to_host = cuda.to_device, device_array_type.copy_to_host

    def to_device(*args, **kwargs):
        counts.to_device += 1
        return original_to_device(*args, **kwargs)

    def copy_to_host(self, *args, **kwargs):
        counts.to_host += 1
        return original_to_host(self, *args, **kwargs)

    _COUNTS.append(counts)
    cuda.to_device, device_array_type.copy_to_host = to_device, copy_to_host
    try:
        yield counts
    finally:
        cuda.to_device, device_array_type.copy_to_host = original_to_device, original_to_host
        _COUNTS.pop()


# ------------------------------------------------------------------------------- device arrays
def is_numba_device_array(x) -> bool:
    """True for a numba device array (a real one, or the simulator's stand-in)."""
    return cuda.devicearray.is_cuda_ndarray(x)


def is_device_array(x) -> bool:
    """True for a numba device array, or any object that speaks the CUDA array interface."""
    return is_numba_device_array(x) or hasattr(x, "__cuda_array_interface__")


def empty(shape, dtype):
    """An uninitialised device array (every kernel that receives one writes all its entries)."""
    return cuda.device_array(tuple(int(s) for s in shape), dtype=np.dtype(dtype))


def as_device_float_array(name: str, x, ndim: int | None = None, dtype=None, *, op=None):
    """Return ``x`` as a C-contiguous float32/float64 device array, or raise a clear error.

    The device twin of ``ops._checks.as_float_array``: a host numpy array is refused (the caller moves
    data explicitly with ``tinyeffnet.cuda.to_device``; a silent copy per layer would hide the cost),
    wrong dtype -> TypeError, wrong ndim -> ValueError, dtype unlike the input's -> TypeError
    ("mixed dtypes"). A non-contiguous device view is copied once into C order on the device.
    """
    where = f"{op}: " if op else ""
    if isinstance(x, np.ndarray):
        model_hint = (" (the input is on the device: if this is a weight, move the model with model.to(\"cuda\"))"
                      if dtype is not None else "")
        raise TypeError(
            f"{where}{name} must be a CUDA device array, got a numpy.ndarray on the host: "
            f"move it with tinyeffnet.cuda.to_device({name}){model_hint}"
        )
    if not is_device_array(x):
        raise TypeError(f"{where}{name} must be a CUDA device array of float32 or float64, got {type(x).__name__}")
    if not is_numba_device_array(x):
        x = cuda.as_cuda_array(x)  # e.g. a torch or cupy CUDA tensor: a zero-copy numba view
    if np.dtype(x.dtype) not in FLOAT_DTYPES:
        raise TypeError(f"{where}{name} must have dtype float32 or float64, got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{where}{name} must be {ndim}-D, got {x.ndim}-D array of shape {x.shape}")
    if dtype is not None and np.dtype(x.dtype) != np.dtype(dtype):
        raise TypeError(f"{where}mixed dtypes: {name} has dtype {x.dtype} but the input has dtype {np.dtype(dtype)}")
    if not x.is_c_contiguous():
        x = contiguous_copy(x)
    return x


# ---------------------------------------------------------------------- non-contiguous -> C order
# as_device_float_array's one copy of a strided view (a transposed or sliced device array): dst = src
@kernel("void({t}[:], {t}[::1])")
def _copy_1d_kernel(src, dst):
    for i in range(cuda.grid(1), dst.shape[0], cuda.gridsize(1)):
        dst[i] = src[i]


@kernel("void({t}[:, :], {t}[:, ::1])")
def _copy_2d_kernel(src, dst):
    rows, cols = dst.shape
    for idx in range(cuda.grid(1), rows * cols, cuda.gridsize(1)):
        dst[idx // cols, idx % cols] = src[idx // cols, idx % cols]


@kernel("void({t}[:, :, :], {t}[:, :, ::1])")
def _copy_3d_kernel(src, dst):
    d0, d1, d2 = dst.shape
    for idx in range(cuda.grid(1), d0 * d1 * d2, cuda.gridsize(1)):
        k = idx % d2
        j = (idx // d2) % d1
        i = idx // (d1 * d2)
        dst[i, j, k] = src[i, j, k]


@kernel("void({t}[:, :, :, :], {t}[:, :, :, ::1])")
def _copy_4d_kernel(src, dst):
    d0, d1, d2, d3 = dst.shape
    for idx in range(cuda.grid(1), d0 * d1 * d2 * d3, cuda.gridsize(1)):
        c = idx % d3
        w = (idx // d3) % d2
        h = (idx // (d3 * d2)) % d1
        n = idx // (d3 * d2 * d1)
        dst[n, h, w, c] = src[n, h, w, c]


_COPY_KERNELS = {1: _copy_1d_kernel, 2: _copy_2d_kernel, 3: _copy_3d_kernel, 4: _copy_4d_kernel}


def contiguous_copy(src):
    """A C-contiguous device copy of a strided device view (1-D to 4-D), made on the device."""
    if src.ndim not in _COPY_KERNELS:
        raise ValueError(f"non-contiguous device arrays are supported up to 4-D, got {src.ndim}-D")
    dst = empty(src.shape, src.dtype)
    launch(_COPY_KERNELS[src.ndim], dst.size, src, dst)
    return dst


def check_device_shape(name: str, x, expected: tuple) -> None:
    if tuple(x.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)}, got {tuple(x.shape)}")


def check_gradient(name: str, dy, shape: tuple, dtype):
    """An upstream gradient: a device array of the forward output's shape and dtype."""
    dy = as_device_float_array(name, dy, dtype=dtype)
    check_device_shape(name, dy, shape)
    return dy


def scalar(value, dtype):
    """A Python number as a numpy scalar of the kernel's float type (a bare Python float would be
    passed as float64 and turn a float32 kernel's arithmetic into float64)."""
    return np.dtype(dtype).type(value)
