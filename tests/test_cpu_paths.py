"""The AVX2-forcing variables really take effect (CI runs the CPU-sensitive tests a second time with
them, so that a pass on an AVX-512 CPU also means a pass on an AVX2 one).

.ci/run sets TINYEFFNET_EXPECT_AVX2=1 in that second run; then every library must be on its AVX2
path. In the ordinary run the checks are about this CPU as it is.
"""
import os
import re

import numpy as np
import torch
from numba import njit

from tinyeffnet import machine

FORCED = os.environ.get("TINYEFFNET_EXPECT_AVX2") == "1"


@njit(cache=False, fastmath=True)
def _axpy(a, x, y):
    for i in range(x.shape[0]):
        y[i] += a * x[i]


def _vector_registers() -> set:
    """The SIMD register kinds in a compiled float32 loop: xmm (SSE), ymm (AVX2), zmm (AVX-512)."""
    x = np.ones(1024, np.float32)
    _axpy(np.float32(2), x, x.copy())
    return set(re.findall(r"%([xyz]mm)\d", _axpy.inspect_asm(_axpy.signatures[0])))


def test_numpy_simd_paths():
    if FORCED:
        assert not machine.numpy_avx512(), "NPY_DISABLE_CPU_FEATURES did not switch off numpy's AVX-512 kernels"
    else:
        assert machine.numpy_avx512() == machine.cpu_has_avx512()


def test_openblas_kernels():
    core = machine.openblas_core()
    assert core != "?", "could not ask numpy's OpenBLAS which kernels it uses"
    if FORCED:
        assert core == "Haswell", f"OPENBLAS_CORETYPE=Haswell did not take effect: {core}"


def test_numba_target_cpu():
    registers = _vector_registers()
    assert "ymm" in registers or "zmm" in registers, f"the loop did not vectorise with AVX: {registers}"
    if FORCED:
        assert machine.numba_cpu() == "haswell"
        # NUMBA_CPU_NAME=haswell without NUMBA_CPU_FEATURES still emits AVX-512 (the host's features)
        assert "zmm" not in registers, "Numba still compiles AVX-512 code: set NUMBA_CPU_FEATURES=-avx512f"
    elif not machine.cpu_has_avx512():
        assert "zmm" not in registers


def test_torch_oracle_capability():
    # The parity tests' oracle follows the same rule (ATEN_CPU_CAPABILITY=avx2 in the forced run).
    capability = torch.backends.cpu.get_cpu_capability()
    if FORCED:
        assert capability == "AVX2", capability
    else:
        assert capability in ("AVX512", "AVX2", "DEFAULT")
        assert (capability == "AVX512") <= machine.cpu_has_avx512()


def test_describe_names_the_cpu():
    line = machine.describe()
    assert machine.cpu_model() in line and ("AVX2" in line or "AVX-512" in line)


def test_the_gemm_kernels():
    from tinyeffnet.ops import blas
    line = blas.describe()
    if blas.backend() == "mkl":
        assert line.startswith("MKL ") and ("(AVX2)" if FORCED else "(AVX") in line, line
        if FORCED:
            assert "AVX-512" not in line, f"MKL_ENABLE_INSTRUCTIONS=AVX2 did not take effect: {line}"
        elif machine.cpu_has_avx512():
            assert "(AVX-512)" in line, line
    else:
        assert line == "numpy (OpenBLAS)"
