"""Every CUDA kernel compiles to PTX for an H100 (sm_90), with no GPU: the typing check the simulator
cannot give (it runs kernels as plain Python), and float32 kernels contain no float64 instruction.

    numba.cuda.compile_ptx(py_func, signature, cc=(9, 0))   needs libNVVM + NVRTC, no driver

Each kernel registers its plain Python function and its signature (``{t}`` for the float type) in
``tinyeffnet.cuda._runtime.KERNELS``; this file compiles every entry for float32 (the training
dtype; the float64 variant differs only in the type and runs in the simulator tests), plus the
tiled GEMM's separately written float64 kernel.
A ``.f64`` instruction in float32 PTX means a float64 constant or accumulator slipped in
(docs/DESIGN.md, section 9.4: ``acc = 0.0`` gives 20 such lines).
"""
import importlib
import re

import pytest
from numba import cuda

PACKAGE = "tinyeffnet.cuda"
KERNEL_MODULES = ["_runtime", "elementwise", "activations", "pooling", "regularization", "losses", "gemm", "linear",
                  "conv2d", "depthwise", "batchnorm"]  # _runtime: the strided-view copies of the input checks
for _module in KERNEL_MODULES:
    importlib.import_module(f"{PACKAGE}.{_module}")
from tinyeffnet.cuda._runtime import KERNELS  # noqa: E402  (filled by the imports above)

F64_INSTRUCTION = re.compile(r"\.f64\b")


def _float_types(spec):
    """float32 for {t} templates, the fixed type otherwise."""
    if "{t}" in spec.signature:
        return ["float32"]
    return ["float64" if "float64" in spec.signature else "float32"]


CASES = [(spec, t) for spec in KERNELS for t in _float_types(spec)]


def test_every_kernel_module_registers_kernels():
    modules = {spec.name.rsplit(".", 2)[-2] for spec in KERNELS}
    assert modules == set(KERNEL_MODULES)
    assert len(KERNELS) >= 40  # one entry per kernel; a lost decorator would shrink this


@pytest.mark.parametrize("spec,float_type", CASES, ids=[f"{s.name.split('.', 2)[-1]}-{t}" for s, t in CASES])
def test_kernel_compiles_to_ptx_without_float64_in_float32(spec, float_type):
    ptx, _ = cuda.compile_ptx(spec.py_func, spec.signature_for(float_type), cc=(9, 0), fastmath=True)
    assert ".entry" in ptx  # a kernel, not a device function
    f64_lines = [line.strip() for line in ptx.splitlines() if F64_INSTRUCTION.search(line)]
    if float_type == "float32":
        assert not f64_lines, f"{spec.name}: float64 instructions in float32 PTX:\n" + "\n".join(f64_lines[:10])
    else:
        assert f64_lines, f"{spec.name}: float64 PTX has no .f64 instruction (signature not applied?)"
