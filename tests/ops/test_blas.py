"""ops/blas.matmul, the GEMM every CPU op calls, against np.matmul: MKL where it runs, numpy's
matmul for everything MKL does not take, and the rule that picks the backend."""
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from tinyeffnet import machine
from tinyeffnet.ops import blas

LAYOUTS = {  # how an operand is laid out: C order, or the transpose of a C-order array (x.T)
    "C": lambda a: np.ascontiguousarray(a),
    "T": lambda a: np.ascontiguousarray(a.T).T,
}


def _pair(m, k, n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)


def _check(ours, a, b):
    exact = np.matmul(a.astype(np.float64), b.astype(np.float64))
    # float32: each entry sums K products; the bound grows with sqrt(K) and the operands' magnitude
    eps = 1e-13 if a.dtype == np.float64 else 2e-6
    scale = np.abs(a).max() * np.abs(b).max() * np.sqrt(a.shape[-1])
    assert ours.dtype == a.dtype and ours.shape == exact.shape
    np.testing.assert_allclose(ours, exact, rtol=0, atol=eps * scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout_a, layout_b", [("C", "C"), ("T", "C"), ("C", "T"), ("T", "T")])
@pytest.mark.parametrize("m, k, n", [(37, 19, 23), (1, 5, 7), (64, 1, 3), (300, 48, 96)])
def test_every_layout_equals_numpys_product(dtype, layout_a, layout_b, m, k, n):
    a, b = _pair(m, k, n, dtype)
    a, b = LAYOUTS[layout_a](a), LAYOUTS[layout_b](b)
    _check(blas.matmul(a, b), a, b)
    out = np.full((m, n), np.nan, dtype=dtype)
    assert blas.matmul(a, b, out=out) is out
    _check(out, a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_stack_of_products_one_per_matrix(dtype):
    rng = np.random.default_rng(1)
    v = rng.standard_normal((16, 40, 24)).astype(dtype)
    u = rng.standard_normal((16, 24, 8)).astype(dtype)
    _check(blas.matmul(v, u), v, u)
    dm = rng.standard_normal((16, 40, 8)).astype(dtype)
    _check(blas.matmul(v.transpose(0, 2, 1), dm), v.transpose(0, 2, 1), dm)   # V^T dM: transposed slices


def test_what_mkl_does_not_take_goes_to_numpy():
    a, b = _pair(12, 10, 6, np.float32)
    cases = [(a[:, ::2], b[:5]),                       # a strided slice: neither C nor transposed-C
             (a, b.astype(np.float64)),                # mixed dtypes (numpy promotes)
             (a.astype(np.int64), b.astype(np.int64)),
             (a[:0], b),                               # an empty product
             (a, b[None])]                             # a matrix times a stack (broadcast)
    for x, y in cases:
        np.testing.assert_allclose(blas.matmul(x, y), np.matmul(x, y), rtol=1e-6, atol=1e-5)
    strided_out = np.empty((12, 12), dtype=np.float32)[:, ::2]
    blas.matmul(a, b, out=strided_out)
    np.testing.assert_allclose(strided_out, np.matmul(a, b), rtol=1e-5, atol=1e-5)
    square = np.random.default_rng(2).standard_normal((8, 8)).astype(np.float32)
    expected = square @ square
    blas.matmul(square, square, out=square)            # out aliases the inputs: numpy handles it
    np.testing.assert_allclose(square, expected, rtol=1e-5, atol=1e-5)


def _intel_linux_x86():
    return sys.platform.startswith("linux") and platform.machine() == "x86_64" and machine.cpu_vendor() == "GenuineIntel"


def test_mkl_is_the_gemm_on_an_intel_linux_machine():
    # The dependency is declared for Linux x86-64 (pyproject.toml), so there CI must run on MKL; the
    # rule keeps numpy's GEMM elsewhere (and on AMD CPUs, where MKL was not measured).
    if os.environ.get("TINYEFFNET_BLAS", "auto") not in ("", "auto"):
        assert blas.backend() == os.environ["TINYEFFNET_BLAS"]
    elif _intel_cpu_with_mkl():
        assert blas.backend() == "mkl", blas._why_not_mkl(require_intel=True)
        assert blas.describe().startswith("MKL ")
    else:
        assert blas.backend() == "numpy"
        assert blas.describe() == "numpy (OpenBLAS)"


def _intel_cpu_with_mkl():
    return _intel_linux_x86() and machine.mkl_library() is not None


def test_the_reasons_mkl_is_not_taken(monkeypatch):
    monkeypatch.setattr(machine, "mkl_library", lambda: None)
    assert "not installed" in blas._why_not_mkl(require_intel=True)
    monkeypatch.setattr(machine, "mkl_library", lambda: "/somewhere/libmkl_rt.so.2")
    monkeypatch.setattr(machine, "cpu_vendor", lambda: "AuthenticAMD")
    if sys.platform.startswith("linux"):
        assert "not an Intel one" in blas._why_not_mkl(require_intel=True)
        monkeypatch.setattr(blas, "_numba_threading_layer", lambda: "workqueue")
        assert "threading layer is 'workqueue'" in blas._why_not_mkl(require_intel=False)


def _backend_in_a_fresh_process(value):
    env = dict(os.environ, TINYEFFNET_BLAS=value)
    code = "import tinyeffnet; tinyeffnet.configure_process(); from tinyeffnet.ops import blas; print(blas.backend())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_the_environment_variable_chooses():
    done = _backend_in_a_fresh_process("numpy")
    assert done.returncode == 0 and done.stdout.strip() == "numpy", done.stderr
    done = _backend_in_a_fresh_process("openblas")
    assert done.returncode != 0 and "TINYEFFNET_BLAS must be one of auto, mkl, numpy, got 'openblas'" in done.stderr
    done = _backend_in_a_fresh_process("mkl")
    if _intel_cpu_with_mkl():
        assert done.returncode == 0 and done.stdout.strip() == "mkl", done.stderr
    elif machine.mkl_library() is None:
        assert done.returncode != 0 and "TINYEFFNET_BLAS=mkl, but the mkl package is not installed" in done.stderr
