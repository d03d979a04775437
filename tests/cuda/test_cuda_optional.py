"""tinyeffnet.cuda without a GPU (this process runs WITHOUT the simulator): is_available() answers
False instead of raising, and using CUDA without numba-cuda raises the install hint."""
import os
import subprocess
import sys

import pytest

import tinyeffnet.cuda as tc

HAS_DRIVER_NODE = os.path.exists("/dev/nvidiactl")


def test_is_available_is_a_bool_and_false_without_a_gpu():
    available = tc.is_available()
    assert isinstance(available, bool)
    if not HAS_DRIVER_NODE and os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        assert available is False


def test_is_available_never_raises(monkeypatch):
    def broken_import():
        raise RuntimeError("driver exploded")

    monkeypatch.setattr(tc, "_numba_cuda", broken_import)
    assert tc.is_available() is False


def _run_without_numba_cuda(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter where ``import numba.cuda`` fails (as without numba-cuda)."""
    blocker = "import sys; sys.modules['numba.cuda'] = None\n"
    return subprocess.run([sys.executable, "-c", blocker + code], capture_output=True, text=True, timeout=120)


def test_import_tinyeffnet_works_without_numba_cuda():
    result = _run_without_numba_cuda(
        "import tinyeffnet, tinyeffnet.cuda as tc\nprint(tc.is_available())\nprint(tc.INSTALL_HINT)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "False"


def test_using_cuda_without_numba_cuda_names_the_install_command():
    result = _run_without_numba_cuda(
        "import tinyeffnet.cuda as tc\n"
        "try:\n"
        "    tc.silu_forward\n"
        "except tc.CudaUnavailableError as error:\n"
        "    print('ERROR:', error)\n"
    )
    assert result.returncode == 0, result.stderr
    assert 'ERROR: CUDA support needs numba-cuda: pip install "tinyeffnet[cuda]"' in result.stdout


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'conv3d_forward'"):
        tc.conv3d_forward  # noqa: B018
