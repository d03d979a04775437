"""The matrix product every CPU op calls: Intel MKL's GEMM where it is installed and measured faster,
numpy's own (OpenBLAS) otherwise.

    out (M, N) = a (M, K) @ b (K, N)          ``matmul(a, b, out=None)``, float32 or float64

Why a second BLAS: the dense convs are GEMMs (im2col's one, Winograd's 16, the 1x1 convs, which are
half of EfficientNetV2-S's conv time), and on the shapes of this network numpy's OpenBLAS ran
1.2-2.2x slower than MKL (the BLAS inside PyTorch) on a 2-core Xeon (family 6, AVX-512), both called
from this process between Numba kernels, GFLOP/s: (9216 x 216) @ (216 x 96) 184 against 271;
(8192 x 48) @ (48 x 192) 148 against 213; (128 x 1536) @ (1536 x 256) 127 against 183; the weight
gradient's col^T dy, (24 x 32768) @ (32768 x 96), 70 against 155. A whole training step: S at 128 px
518 -> 469 ms, the main job's model at 48 px 60.6 -> 57.3 ms. The convolutions stay ours; only the
matrix product is the library's, as it is for PyTorch.

Which one runs (``backend()``, decided once, at the first product):
    TINYEFFNET_BLAS=numpy    numpy's matmul (its bundled OpenBLAS), always
    TINYEFFNET_BLAS=mkl      MKL, or an error saying why it cannot be loaded
    unset or "auto"          MKL when all of: the ``mkl`` wheel is installed (a dependency on Linux
                             x86-64), the CPU is an Intel one (MKL was measured on Intel only; on
                             AMD CPUs its dispatch is not ours to predict), and Numba's threading
                             layer is OpenMP; else numpy
MKL runs on the GNU OpenMP runtime (``MKL_THREADING_GNU``), the one Numba's parallel loops use, so
the two share one team of threads instead of spinning against each other (what a second OpenMP
runtime, or OpenBLAS's own threads, do: ``process.py``), with as many threads as Numba.
``MKL_ENABLE_INSTRUCTIONS=AVX2`` (``machine.AVX2_ENVIRONMENT``) holds it to AVX2 code.

What goes to MKL: 2-D float32/float64 operands that are C-contiguous or transposes of C-contiguous
arrays (``x.T`` is free), into a C-contiguous ``out`` of the same dtype. Anything else (a stack of
matrices, a strided slice, mixed dtypes, an empty matrix) goes to ``np.matmul``, so the result never
depends on the caller knowing this. ``tests/ops/test_blas.py`` checks both against each other.
"""
from __future__ import annotations

import ctypes
import functools

import numpy as np

from .. import machine

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112          # CBLAS enums
_MKL_THREADING_GNU = 3
CHOICES = machine.BLAS_CHOICES


class BlasUnavailable(RuntimeError):
    """TINYEFFNET_BLAS=mkl, and MKL could not be loaded (the message says why)."""


def _numba_threading_layer() -> str:
    """The threading layer Numba's parallel loops use in this process (started if not yet)."""
    import numba
    from numba.np.ufunc.parallel import _launch_threads

    _launch_threads()
    return numba.threading_layer()


def _why_not_mkl(require_intel: bool) -> str | None:
    """None when MKL can run here, else the reason it cannot (machine.why_mkl_cannot_load, and
    Numba's threading layer)."""
    reason = machine.why_mkl_cannot_load(require_intel)
    if reason is not None:
        return reason
    layer = _numba_threading_layer()
    if layer != "omp":
        return f"Numba's threading layer is {layer!r}, not OpenMP, which MKL would share"
    return None


class _MKL:
    """cblas_sgemm / cblas_dgemm from libmkl_rt, on the GNU OpenMP runtime, Numba's thread count."""

    def __init__(self, path: str):
        import numba

        ctypes.CDLL("libgomp.so.1", mode=ctypes.RTLD_GLOBAL)   # Numba's OpenMP, visible to MKL's GNU layer
        self.lib = ctypes.CDLL(path)
        self.lib.MKL_Set_Threading_Layer(_MKL_THREADING_GNU)   # before any other MKL call
        self.lib.MKL_Set_Num_Threads(numba.get_num_threads())
        pointer, c_int = ctypes.c_void_p, ctypes.c_int
        self.gemm = {}
        for dtype, name, scalar in ((np.float32, "cblas_sgemm", ctypes.c_float),
                                    (np.float64, "cblas_dgemm", ctypes.c_double)):
            function = getattr(self.lib, name)
            function.argtypes = [c_int] * 6 + [scalar, pointer, c_int, pointer, c_int, scalar, pointer, c_int]
            function.restype = None
            self.gemm[np.dtype(dtype)] = function

    def describe(self) -> str:
        class Version(ctypes.Structure):
            _fields_ = [("major", ctypes.c_int), ("minor", ctypes.c_int), ("update", ctypes.c_int),
                        ("patch", ctypes.c_int), ("status", ctypes.c_char_p), ("build", ctypes.c_char_p),
                        ("processor", ctypes.c_char_p), ("platform", ctypes.c_char_p)]

        version = Version()
        self.lib.MKL_Get_Version(ctypes.byref(version))
        processor = (version.processor or b"").decode()
        isa = next((name for key, name in (("AVX-512", "AVX-512"), ("AVX2", "AVX2"), ("AVX", "AVX"))
                    if key in processor), "SSE")
        return f"MKL {version.major}.{version.update} ({isa})"


@functools.lru_cache(maxsize=None)
def _mkl():
    """The loaded MKL, or None for numpy's matmul (the choice described in the module docstring)."""
    choice = machine.blas_choice()
    if choice not in CHOICES:
        raise ValueError(f"TINYEFFNET_BLAS must be one of {', '.join(CHOICES)}, got {choice!r}")
    if choice == "numpy":
        return None
    reason = _why_not_mkl(require_intel=choice == "auto")
    if reason is not None:
        if choice == "mkl":
            raise BlasUnavailable(f"TINYEFFNET_BLAS=mkl, but {reason}")
        return None
    return _MKL(machine.mkl_library())


def backend() -> str:
    """"mkl" or "numpy": which GEMM ``matmul`` runs in this process."""
    return "numpy" if _mkl() is None else "mkl"


def describe() -> str:
    """The GEMM in words, e.g. 'MKL 2026.2 (AVX-512)' or 'numpy (OpenBLAS)'."""
    mkl = _mkl()
    return "numpy (OpenBLAS)" if mkl is None else mkl.describe()


def _operand(a: np.ndarray):
    """(CBLAS transpose flag, leading dimension) of a 2-D operand, or None if MKL cannot read it."""
    if a.flags.c_contiguous:
        return _NO_TRANS, max(1, a.shape[1])
    if a.flags.f_contiguous:                     # the transpose of a C-contiguous array
        return _TRANS, max(1, a.shape[0])
    return None


def _takes(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> bool:
    """Whether MKL's GEMM can compute out = a @ b for these 2-D arrays exactly as np.matmul would."""
    return (_operand(a) is not None and _operand(b) is not None and a.shape[1] == b.shape[0]
            and out.shape == (a.shape[0], b.shape[1]) and out.dtype == a.dtype and out.flags.c_contiguous
            and out.flags.writeable and not np.may_share_memory(out, a) and not np.may_share_memory(out, b))


def _gemm(mkl, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    (trans_a, lda), (trans_b, ldb) = _operand(a), _operand(b)
    m, k = a.shape
    n = b.shape[1]
    mkl.gemm[a.dtype](_ROW_MAJOR, trans_a, trans_b, m, n, k, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb,
                      0.0, out.ctypes.data, max(1, n))


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """out = a @ b, as ``np.matmul(a, b, out=out)``: MKL's GEMM where it runs (see the module
    docstring), numpy's for every case it does not take. a, b: (M, K), (K, N), or stacks (B, M, K),
    (B, K, N) (Winograd's 16 products: one GEMM per matrix). Returns out."""
    mkl = _mkl()
    if (mkl is None or a.ndim != b.ndim or a.ndim not in (2, 3) or a.dtype != b.dtype
            or a.dtype not in mkl.gemm or 0 in a.shape or 0 in b.shape or (a.ndim == 3 and len(a) != len(b))):
        return np.matmul(a, b, out=out)
    if out is None:
        out = np.empty(a.shape[:-1] + b.shape[-1:], dtype=a.dtype)
    if a.ndim == 2:
        if not _takes(a, b, out):
            return np.matmul(a, b, out=out)
        _gemm(mkl, a, b, out)
        return out
    if out.shape[0] != len(a) or not all(_takes(a[i], b[i], out[i]) for i in range(len(a))):
        return np.matmul(a, b, out=out)
    for i in range(len(a)):
        _gemm(mkl, a[i], b[i], out[i])
    return out
