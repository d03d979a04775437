"""tinyeffnet.cuda without a GPU (this process runs WITHOUT the simulator): is_available() answers
False instead of raising, and using CUDA without numba-cuda raises the install hint; ``model.to("cuda")``
raises a RuntimeError that says what is missing (numba-cuda, or a visible GPU) and moves nothing."""
import os
import subprocess
import sys

import pytest

import numpy as np

import tinyeffnet.cuda as tc
from tinyeffnet import nn

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


def test_model_to_cuda_without_numba_cuda_names_the_install_command():
    result = _run_without_numba_cuda(
        "from tinyeffnet import nn\n"
        "model = nn.Linear(3, 2)\n"
        "try:\n"
        "    model.to('cuda')\n"
        "except RuntimeError as error:\n"
        "    print('ERROR:', error)\n"
        "print(type(model.weight.data).__name__, model.to('cpu') is model)\n"
    )
    assert result.returncode == 0, result.stderr
    assert 'ERROR: cannot use CUDA: CUDA support needs numba-cuda: pip install "tinyeffnet[cuda]"' in result.stdout
    assert result.stdout.splitlines()[-1] == "ndarray True"  # nothing moved; to("cpu") needs no CUDA


class _NoGpu:
    """numba.cuda as it answers on a machine without an NVIDIA GPU or driver."""

    @staticmethod
    def is_available():
        return False


def test_model_to_cuda_without_a_gpu_says_no_gpu_is_visible(monkeypatch):
    monkeypatch.setattr(tc, "_numba_cuda", lambda: _NoGpu)
    model = nn.Sequential(nn.ConvBNAct(3, 4, 3), nn.GlobalAvgPool(), nn.Linear(4, 2))
    with pytest.raises(RuntimeError, match=r"no CUDA GPU is visible.*NUMBA_ENABLE_CUDASIM=1") as caught:
        model.to("cuda")
    assert 'pip install "tinyeffnet[cuda]"' in str(caught.value)
    assert all(isinstance(p.data, np.ndarray) for p in model.parameters())
    assert isinstance(model[0].bn.running_mean, np.ndarray)


def test_model_to_cuda_here_raises_or_moves():
    """On this machine: without a GPU (CI) the helpful error, with one the parameters move."""
    model = nn.Linear(3, 2)
    if tc.is_available():
        model.to("cuda")
        assert not isinstance(model.weight.data, np.ndarray)
        model.to("cpu")
    else:
        with pytest.raises(RuntimeError, match='pip install "tinyeffnet\\[cuda\\]"'):
            model.to("cuda")
    assert isinstance(model.weight.data, np.ndarray)


def test_bad_device_name_is_a_value_error():
    with pytest.raises(ValueError, match='device must be "cpu" or "cuda", got \'tpu\''):
        nn.Linear(3, 2).to("tpu")
