"""Execute the walkthrough notebooks top to bottom and store their outputs, with a version stamp.

    python notebooks/execute.py                       # every NN_*.ipynb, full mode, in place
    python notebooks/execute.py 05_mbconv_vs_fused.ipynb 10_winograd.ipynb
    python notebooks/execute.py --fast --out /tmp/nb  # CI sizes, executed copies written elsewhere

Each notebook runs in a fresh kernel (this interpreter's own ``python3`` kernel), with the notebook
folder as the working directory and ``TINYEFFNET_FAST`` set to "0" (full mode) or "1" (``--fast``),
after its old outputs are cleared. Run the full mode on a quiet machine: the notebooks time things,
and their stored numbers are what a reader sees. In full mode the notebooks also write their
figures to ``notebooks/figures/``.

On success the notebook's metadata gets the stamp that ``tests/test_notebooks.py`` checks:

    metadata["tinyeffnet"] = {"version": tinyeffnet.__version__, "executed": "2026-12-01T14:05:00Z",
                              "mode": "full", "seconds": 93.1, "cpu": machine.describe()}

and the file is replaced atomically (a temporary file beside it, then a rename). A notebook that
fails is left as it was; the others still run, and the exit code is 1.
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parent
CELL_TIMEOUT = 1800          # seconds per cell: full mode trains small networks on two cores


def stamp(mode: str, seconds: float) -> dict:
    """The metadata a notebook is stamped with: which tinyeffnet, when, in which mode, on which CPU."""
    import tinyeffnet
    from tinyeffnet import machine

    executed = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return {"version": tinyeffnet.__version__, "executed": executed.isoformat().replace("+00:00", "Z"),
            "mode": mode, "seconds": round(seconds, 1), "cpu": machine.describe()}


def execute(path: Path, out: Path, fast: bool, timeout: int = CELL_TIMEOUT) -> float:
    """Run one notebook in a fresh kernel and write it, stamped, to ``out``. Returns the seconds taken.
    Raises nbclient's CellExecutionError (or a timeout) without writing anything."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:                              # a clean start: no stale outputs
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    notebook.metadata.setdefault("kernelspec", {"display_name": "Python 3", "language": "python",
                                                "name": "python3"})
    os.environ["TINYEFFNET_FAST"] = "1" if fast else "0"     # inherited by the kernel process
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    notebook.metadata["tinyeffnet"] = stamp("fast" if fast else "full", seconds)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        nbformat.write(notebook, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*",
                        help="notebook files or names in notebooks/ (default: every NN_*.ipynb)")
    parser.add_argument("--fast", action="store_true",
                        help="TINYEFFNET_FAST=1: CI sizes (for checking, not for committing)")
    parser.add_argument("--out", help="write the executed notebooks to this folder instead of in place")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT, help="seconds per cell (default %(default)s)")
    args = parser.parse_args(argv)

    paths = [Path(n) if Path(n).exists() else NOTEBOOK_DIR / n for n in args.notebooks] or \
        sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"error: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    failed = []
    for path in paths:
        path = path.resolve()
        out = Path(args.out).resolve() / path.name if args.out else path
        print(f"{path.name}: running ({'fast' if args.fast else 'full'} mode) ...", flush=True)
        try:
            seconds = execute(path, out, args.fast, args.timeout)
        except Exception as error:                            # a failing cell: report it, keep going
            failed.append(path.name)
            print(f"{path.name}: FAILED, left unchanged: {type(error).__name__}: {str(error)[-1500:]}", flush=True)
            continue
        print(f"{path.name}: done in {seconds:.0f} s -> {out}", flush=True)
    if failed:
        print(f"{len(failed)} of {len(paths)} notebooks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
