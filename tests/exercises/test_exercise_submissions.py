"""Loading a student's file: refusing the library's own implementation (the import scan and the
identity of the objects), load errors as rows, the time limit, and torch missing as a skipped row."""
import sys
import textwrap

import pytest

from tinyeffnet import exercises

from exercise_mutants import solution_path


def _write(tmp_path, text, name="student.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


REEXPORTS = {
    "from-import": "from tinyeffnet.ops import conv2d_forward, conv2d_backward\n",
    "reference tier": "from tinyeffnet.ops.reference import *\n",
    "package import": "import tinyeffnet.ops as ops\nconv2d_forward = ops.conv2d_forward\n",
    "from package": "from tinyeffnet import ops\n\ndef conv2d_forward(x, w, stride=1, padding=0):\n"
                    "    return ops.conv2d_forward(x, w, stride, padding)\n",
    "__import__": "conv2d_forward = __import__('tinyeffnet.ops').ops.conv2d_forward\n",
    "importlib": "import importlib\nconv2d_forward = importlib.import_module('tinyeffnet.ops').conv2d_forward\n",
    # past the import scan, caught by identity: the function IS the library's object
    "builtins lookup": "import builtins\nconv2d_forward = getattr(builtins, '__imp' + 'ort__')('tinyeffnet.ops.reference',"
                       " fromlist=['x']).conv2d_forward\nconv2d_backward = None\n",
    # caught by where the function was defined: a wraps() of the library's function keeps its module
    "wrapped": "import functools, builtins\nlib = getattr(builtins, '__imp' + 'ort__')('tinyeffnet.ops.reference', "
               "fromlist=['x'])\n\n@functools.wraps(lib.conv2d_forward)\ndef conv2d_forward(*args):\n"
               "    return lib.conv2d_forward(*args)\n",
    # past the scan and the identity check: the student's own function calls the library's; the
    # profile hook sees the call while it runs
    "own wrapper": "import builtins\nlib = getattr(builtins, '__imp' + 'ort__')('tinyeffnet.ops', fromlist=['x'])\n\n"
                   "def conv2d_forward(x, w, stride=1, padding=0):\n    return lib.conv2d_forward(x, w, stride, padding)\n",
}


@pytest.mark.parametrize("kind", REEXPORTS)
def test_a_re_export_of_the_library_is_refused(kind, tmp_path):
    report = exercises.check("conv2d_forward", _write(tmp_path, REEXPORTS[kind]))
    assert not report.ok and report.refused, str(report)
    assert [row.name for row in report.rows] == ["own work"]
    assert "library" in report.refused or "not allowed" in report.refused


BLOCK_CHEATS = {
    "block(x)": "def forward(block, x):\n    return block(x)\n\ndef backward(block, dy):\n    return dy\n",
    "block.backward": "def forward(block, x):\n    return x\n\ndef backward(block, dy):\n    return block.backward(dy)\n",
    "type(block)": "def forward(block, x):\n    return type(block).forward(block, x)\n\ndef backward(block, dy):\n"
                   "    return dy\n",
    "import the class": "from tinyeffnet.nn import MBConv\n\ndef forward(block, x):\n    return MBConv.forward(block, x)\n"
                        "\ndef backward(block, dy):\n    return dy\n",
    # past the scan: the block's own forward is switched off on the student's copy, and refuses
    "getattr": "def forward(block, x):\n    return getattr(block, 'for' + 'ward')(x)\n\ndef backward(b, dy):\n"
               "    return getattr(b, 'back' + 'ward')(dy)\n",
    # past the scan and the instance switch: the class's method, reached through the MRO, seen running
    "the class's method": "def forward(block, x):\n    cls = getattr(block, '__cl' + 'ass__')\n"
                          "    return getattr(cls, 'for' + 'ward')(block, x)\n\ndef backward(b, dy):\n    return dy\n",
}


@pytest.mark.parametrize("kind", BLOCK_CHEATS)
def test_a_block_exercise_refuses_the_blocks_own_forward(kind, tmp_path):
    report = exercises.check("mbconv_backward", _write(tmp_path, BLOCK_CHEATS[kind]))
    assert not report.ok and report.refused, str(report)


def test_allowed_helpers_are_allowed(tmp_path):
    # the schedule exercise may build the library's StageSettings
    source = solution_path("progressive_schedule").read_text().replace(
        'from collections import namedtuple\n\nStage = namedtuple("Stage", "index epochs image_size dropout randaug mixup")',
        "from tinyeffnet.train import StageSettings as Stage")
    assert "StageSettings" in source
    assert exercises.check("progressive_schedule", _write(tmp_path, source)).ok
    # ... but not the schedule itself
    cheat = "from tinyeffnet.train import progressive_schedule\n"
    assert exercises.check("progressive_schedule", _write(tmp_path, cheat, "cheat.py")).refused


@pytest.mark.parametrize("text, expected", [
    ("def conv2d_forward(x, w, stride=1, padding=0)\n    return x\n", "syntax error on line 1"),
    ("raise RuntimeError('boom')\n", "raised RuntimeError: boom"),
    ("import sys\nsys.exit(3)\n", "raised SystemExit"),
    ("import numpy_that_does_not_exist\n", "ModuleNotFoundError"),
])
def test_a_file_that_does_not_load_is_a_failed_row(text, expected, tmp_path):
    report = exercises.check("conv2d_forward", _write(tmp_path, text))
    assert not report.ok and not report.refused
    assert [row.name for row in report.rows] == ["load"] and expected in report.rows[0].detail


def test_a_missing_file_is_a_failed_row(tmp_path):
    report = exercises.check("conv2d_forward", tmp_path / "nobody.py")
    assert not report.ok and "no such file" in report.rows[0].detail


def test_each_test_is_time_limited(tmp_path):
    source = solution_path("silu_sigmoid").read_text().replace(
        "def sigmoid_forward(x):\n", "def sigmoid_forward(x):\n    while True:\n        pass\n")
    report = exercises.check("silu_sigmoid", _write(tmp_path, source), time_limit_s=0.5)
    slow = [row for row in report.rows if "TimeoutError" in row.detail]
    assert slow and all(not row.passed for row in slow)
    assert any(row.passed and row.name.startswith("silu") for row in report.rows)   # the other rows still ran


def test_an_endless_import_is_time_limited(tmp_path):
    report = exercises.check("same_padding", _write(tmp_path, "while True:\n    pass\n"), time_limit_s=0.3)
    assert report.rows[0].name == "load" and "TimeoutError" in report.rows[0].detail


def test_not_implemented_says_so(tmp_path):
    exercises.start("silu_sigmoid", to=tmp_path)
    report = exercises.check("silu_sigmoid", tmp_path / "silu_sigmoid.py")
    assert report.rows[0].passed                                     # the skeleton has the right interface
    assert all("NotImplementedError" in row.detail for row in report.rows[1:]), str(report)
    assert report.total == 1 and not report.ok


def test_without_torch_the_parity_row_is_skipped_and_scores_nothing(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)                  # import torch now raises ImportError
    report = exercises.check("batchnorm", solution_path("batchnorm"))
    skipped = [row for row in report.rows if row.passed is None]
    assert [row.name for row in skipped] == ["parity with PyTorch"]
    assert skipped[0].detail == "skipped: torch not installed" and skipped[0].points == 0
    assert report.ok and report.total == report.possible
    assert "skipped" in str(report)


def test_a_wrong_signature_fails_the_interface_row(tmp_path):
    source = solution_path("same_padding").read_text().replace(
        "def resolve_padding(padding, height, width, kh, kw, stride):",
        "def resolve_padding(padding, width, height, kh, kw, stride):")
    report = exercises.check("same_padding", _write(tmp_path, source))
    assert report.rows[0].name == "functions and signatures" and not report.rows[0].passed
    assert not report.ok
