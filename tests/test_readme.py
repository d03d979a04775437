"""Every ```python block of the README runs as written (so the README can never drift from the code).

Each block is executed on its own, in a fresh namespace, in the order it appears: a block must
define what it uses, as a reader pasting it into a fresh interpreter would need.
"""
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks() -> list:
    text = README.read_text()
    blocks = []
    for match in BLOCK.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        blocks.append(pytest.param(match.group(1), id=f"README.md:{line}"))
    return blocks


def test_the_readme_has_python_blocks():
    assert len(python_blocks()) >= 3


@pytest.mark.parametrize("source", python_blocks())
def test_readme_block_runs(source, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                  # a block that writes files writes them here
    exec(compile(source, str(README), "exec"), {"__name__": "__readme__"})
