"""The walkthrough notebooks run top to bottom without an error, in fast mode, in a fresh kernel.

Each notebooks/NN_name.ipynb is executed in memory with nbclient (the committed file, with its
full-mode outputs, is never written back), with TINYEFFNET_FAST=1 so that sizes and iteration counts
shrink to CI scale, and with the notebook folder as working directory. A notebook fails the test on
any exception, including the `assert` lines that back the figures it claims (parity, "match: True",
gradient checks), and on any cell that runs longer than CELL_TIMEOUT seconds.
In fast mode the notebooks write their figures to a temporary folder, not to notebooks/figures.

The committed outputs must be true of the package as it is: every notebook carries the stamp that
notebooks/execute.py writes when it executes the notebook in full mode (the package version, the date,
the CPU), and a stamp from another version means the stored outputs are stale: re-run
`python notebooks/execute.py` on a quiet machine.
"""
import importlib.util
from pathlib import Path

import nbformat
import pytest
import torch  # noqa: F401  (the notebooks need it; a missing torch must fail here, not skip)
from nbclient import NotebookClient

import tinyeffnet

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
CELL_TIMEOUT = 300  # seconds; fast mode needs well under a minute per notebook with a warm Numba cache


def test_notebooks_are_found():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_in_fast_mode(path, monkeypatch):
    monkeypatch.setenv("TINYEFFNET_FAST", "1")          # inherited by the kernel process
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:                          # a clean start: no stale outputs in memory
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute()                                     # raises CellExecutionError on any error
    errors = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.outputs if output.get("output_type") == "error"]
    assert not errors
    assert "mode: fast" in "".join(output.get("text", "") for output in notebook.cells[1].outputs)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_committed_outputs_come_from_this_version(path):
    stamp = nbformat.read(path, as_version=4).metadata.get("tinyeffnet")
    rerun = "re-execute it with `python notebooks/execute.py " + path.name + "` (full mode, a quiet machine)"
    assert stamp, f"{path.name} has no execution stamp (metadata['tinyeffnet']): {rerun}"
    assert stamp.get("version") == tinyeffnet.__version__, (
        f"{path.name} was executed with tinyeffnet {stamp.get('version')}, this is {tinyeffnet.__version__}: {rerun}")
    assert stamp.get("mode") == "full", f"{path.name} was executed in {stamp.get('mode')!r} mode: {rerun}"
    assert stamp.get("executed") and stamp.get("cpu"), f"{path.name}: the stamp lacks the date or the CPU: {stamp}"


def test_the_execute_script_stamps_version_date_mode_and_cpu():
    spec = importlib.util.spec_from_file_location("execute", NOTEBOOK_DIR / "execute.py")
    execute = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(execute)
    stamp = execute.stamp("full", 12.34)
    assert stamp["version"] == tinyeffnet.__version__ and stamp["mode"] == "full" and stamp["seconds"] == 12.3
    assert stamp["executed"].endswith("Z") and len(stamp["executed"]) == len("2026-12-01T14:05:00Z")
    assert stamp["cpu"] == tinyeffnet.machine.describe()
