"""Which CPU this is and which SIMD code paths numpy, OpenBLAS and Numba really take on it.

Speed and rounding both depend on it: the same library takes AVX-512 paths on one CPU and AVX2 on
another, and a float32 sum comes out a few ulps apart. Benchmarks print ``describe()`` beside every
figure, and the tests use ``cpu_paths()`` to prove that the AVX2-forcing variables took effect:

    NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR"   numpy: no AVX-512 kernels
    OPENBLAS_CORETYPE=Haswell                                  OpenBLAS: the AVX2 (Haswell) GEMM
    NUMBA_CPU_NAME=haswell NUMBA_CPU_FEATURES=-avx512f         Numba/LLVM: compile for an AVX2 CPU
    MKL_ENABLE_INSTRUCTIONS=AVX2                               MKL (the GEMM, where it runs): AVX2 code
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2           PyTorch (the benchmarks' contender)

NUMBA_CPU_NAME alone is not enough: Numba then still passes the host's own feature list to LLVM,
AVX-512 included, and the compiled loops use zmm registers (seen on an AVX-512 Xeon); the feature
string must be given too. ``tests/test_cpu_paths.py`` checks the compiled code for it.

Which GEMM ``ops/blas.py`` will run (MKL or numpy's OpenBLAS) is decided here too, as far as the
environment decides it (``mkl_expected``): ``configure_process()`` needs the answer before numpy is
imported, to pick the OpenMP spin time that suits that GEMM.

Nothing here imports torch, or numpy.
"""
from __future__ import annotations

import ctypes
import functools
import glob
import os
import platform
import sys


# The variables above, as one mapping: ``tinyeffnet bench train-step --isa avx2`` gives them to every
# contender's process (they must be set before numpy, Numba or torch load).
AVX2_ENVIRONMENT = {
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    "OPENBLAS_CORETYPE": "Haswell",
    "NUMBA_CPU_NAME": "haswell",
    "NUMBA_CPU_FEATURES": "-avx512f",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}


def cpu_model() -> str:
    """The CPU's marketing name and family, e.g. 'AMD EPYC 7B13 (family 25)'."""
    name, family = platform.processor() or platform.machine(), None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and name in (platform.processor(), platform.machine()):
                    name = value.strip()
                elif key == "cpu family" and family is None:
                    family = value.strip()
    except OSError:
        pass
    return f"{name} (family {family})" if family else name


def _cpuinfo(field: str) -> str:
    """The first value of ``field`` in /proc/cpuinfo ('' where there is none, or no such file)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == field:
                    return value.strip()
    except OSError:
        pass
    return ""


def cpu_has_avx512() -> bool:
    """True when the CPU itself reports AVX-512F (what it can do, not what the libraries use)."""
    return "avx512f" in _cpuinfo("flags").split()


def cpu_vendor() -> str:
    """'GenuineIntel', 'AuthenticAMD', ... ('' where the system does not say)."""
    return _cpuinfo("vendor_id")


def numpy_avx512() -> bool:
    """True when numpy dispatches its AVX-512 kernels (X86_V4) in this process."""
    from numpy._core._multiarray_umath import __cpu_features__

    return bool(__cpu_features__.get("X86_V4", False) or __cpu_features__.get("AVX512_SKX", False))


def openblas_core() -> str:
    """The kernel set numpy's bundled OpenBLAS picked ('Haswell', 'SkylakeX', 'Zen', ...), or '?'."""
    import numpy as np

    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "lib*openblas*.so*"))
    for path in libs:
        lib = ctypes.CDLL(path)
        for symbol in ("scipy_openblas_get_corename64_", "openblas_get_corename64_", "openblas_get_corename"):
            getter = getattr(lib, symbol, None)
            if getter is not None:
                getter.restype = ctypes.c_char_p
                return getter().decode()
    return "?"


def numba_cpu() -> str:
    """The CPU Numba compiles for: NUMBA_CPU_NAME if set, else LLVM's name for this host."""
    import llvmlite.binding as llvm
    import numba

    return numba.config.CPU_NAME or llvm.get_host_cpu_name()


@functools.lru_cache(maxsize=None)
def numba_vector_registers() -> int:
    """32 when Numba compiles for AVX-512 (zmm0-31, ymm0-31), else 16 (AVX2's ymm0-15). The fast
    paths size their register blocks by it (ops/direct.py) and choose Winograd by it (ops/winograd.py:
    where Numba has AVX-512, so has OpenBLAS's GEMM, unless the AVX2 variables above force both)."""
    from llvmlite import binding
    features = os.environ.get("NUMBA_CPU_FEATURES") or binding.get_host_cpu_features().flatten()
    return 32 if "+avx512f" in features.split(",") else 16


def cpu_paths() -> dict:
    """Everything above in one dict (for benchmark records and tests)."""
    return {"cpu": cpu_model(), "cpu_avx512": cpu_has_avx512(), "numpy_avx512": numpy_avx512(),
            "openblas_core": openblas_core(), "numba_cpu": numba_cpu()}


def describe() -> str:
    """One line to print beside a timing: the CPU and the code paths in use."""
    p = cpu_paths()
    isa = "AVX-512" if p["cpu_avx512"] else "AVX2"
    return (f"{p['cpu']}, {isa} CPU; numpy {'AVX-512' if p['numpy_avx512'] else 'AVX2'} paths, "
            f"OpenBLAS {p['openblas_core']} kernels, Numba compiles for {p['numba_cpu']}")


# ------------------------------------------------------------------------------- which GEMM will run
BLAS_CHOICES = ("auto", "mkl", "numpy")      # TINYEFFNET_BLAS (ops/blas.py says what each means)


def blas_choice() -> str:
    """TINYEFFNET_BLAS as ops/blas.py reads it: "auto" when unset or empty, else lower-cased
    (an unknown value is returned as it is; ops/blas.py refuses it with the list of choices)."""
    return os.environ.get("TINYEFFNET_BLAS", "auto").strip().lower() or "auto"


def mkl_library() -> str | None:
    """The path of MKL's single dynamic library (``libmkl_rt``), where pip's ``mkl`` wheel puts it."""
    prefixes = dict.fromkeys([sys.prefix, sys.base_prefix, os.path.expanduser("~/.local")])
    for prefix in prefixes:
        found = sorted(glob.glob(os.path.join(prefix, "lib", "libmkl_rt.so*")))
        if found:
            return found[-1]
    return None


def why_mkl_cannot_load(require_intel: bool) -> str | None:
    """None when this machine can load MKL (Linux, the mkl wheel installed, an Intel CPU where
    asked), else the reason. ops/blas.py adds the one condition that needs Numba: its threading
    layer must be OpenMP, which MKL then shares."""
    if not sys.platform.startswith("linux"):
        return f"MKL is loaded on Linux only (this is {sys.platform})"
    if mkl_library() is None:
        return "the mkl package is not installed (pip install mkl)"
    if require_intel and cpu_vendor() != "GenuineIntel":
        return "the CPU is not an Intel one (set TINYEFFNET_BLAS=mkl to use MKL anyway)"
    return None


def mkl_expected() -> bool:
    """Whether ops/blas.py will run MKL's GEMM in this process, judged from the environment alone
    (no numpy, no Numba): TINYEFFNET_BLAS=mkl, or "auto" where MKL can load and the user did not
    give Numba a threading layer other than OpenMP."""
    choice = blas_choice()
    if choice == "mkl":
        return True
    layer = os.environ.get("NUMBA_THREADING_LAYER", "default").strip().lower()
    return choice == "auto" and layer in ("default", "omp") and why_mkl_cannot_load(require_intel=True) is None
