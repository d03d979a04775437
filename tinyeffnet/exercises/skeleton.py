"""``start(name, to=DIR)``: write the student's two files for an exercise.

    DIR/NAME.py      the skeleton: every function to fill in, with the exercise's parameters, its
                     docstring stating the task, the equations, the shapes and hints, and a body
                     that raises NotImplementedError
    DIR/NAME.ipynb   the student notebook: the idea, a cell that loads the skeleton from beside
                     the notebook, a "try it" cell, and the check in its last cell

DIR defaults to notebooks/exercises. Existing files are kept (FileExistsError) unless
``overwrite=True``: a student's work is never overwritten by accident. Both files are written
atomically (``files.write_atomic``). The notebook is plain nbformat 4 JSON, written without
needing nbformat installed.
"""
from __future__ import annotations

import inspect
import json
import textwrap
from pathlib import Path

from ..files import write_atomic
from .catalog import get

DEFAULT_FOLDER = "notebooks/exercises"


def skeleton_source(name: str) -> str:
    """The text of NAME.py (see the module docstring)."""
    exercise = get(name)
    helpers = [f"from {entry.replace(':', ' import ')}" if ":" in entry else f"import {entry}"
               for entry in exercise.allowed]
    allowed = "numpy" + "".join(f", {helper}" for helper in helpers)
    if exercise.block_arg:
        allowed += f", and the children of the {exercise.block_arg} you are given"
    allowed = textwrap.fill(f"Allowed: {allowed}. Importing tinyeffnet's own implementation is refused.", 100)
    lines = [
        '"""' + f"Exercise {exercise.name}: {exercise.title}.",
        "",
        exercise.intro.strip(),
        "",
        "Fill in every function below: each raises NotImplementedError until you do. Check your work with",
        "",
        f"    tinyeffnet exercise check {exercise.name} {exercise.name}.py",
        "",
        f'or in Python: tinyeffnet.exercises.check("{exercise.name}", "{exercise.name}.py").',
        allowed,
        '"""',
        "import numpy as np  # noqa: F401",
        "",
    ]
    for function in exercise.functions:
        doc = textwrap.indent(inspect.cleandoc(function.doc), "    ").lstrip()
        lines += ["", f"def {function.name}({function.params}):", f'    """{doc}', '    """',
                  f'    raise NotImplementedError("{function.name}: write it")', ""]
    return "\n".join(lines)


def _cell(cell_id: str, kind: str, source: str) -> dict:
    cell = {"cell_type": kind, "id": cell_id, "metadata": {}, "source": source.strip("\n")}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def notebook_json(name: str, skeleton: str) -> dict:
    """The student notebook for exercise ``name``, loading ``skeleton`` (a file name beside it)."""
    exercise = get(name)
    functions = ", ".join(f"`{f.name}`" for f in exercise.functions)
    load = f'''import importlib.util
from pathlib import Path

import tinyeffnet
tinyeffnet.configure_process()   # before numpy: thread-pool settings
import numpy as np

from tinyeffnet import exercises

SOLUTION = Path("{skeleton}")    # your file, beside this notebook


def load_solution():
    """Import SOLUTION afresh (re-run this cell after each edit of the file)."""
    spec = importlib.util.spec_from_file_location("solution", SOLUTION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


solution = load_solution()
print("loaded", SOLUTION)'''
    try_it = f"""try:
{textwrap.indent(exercise.try_it.strip(), "    ")}
except NotImplementedError as err:
    print("not written yet:", err)"""
    check = f"""report = exercises.check("{exercise.name}", SOLUTION)
print(report)"""
    cells = [
        _cell("title", "markdown", f"# Exercise `{exercise.name}`: {exercise.title}\n\n"
                                   f"{exercise.intro.strip()}\n\n"
                                   f"Write {functions} in `{skeleton}` (beside this notebook); each docstring "
                                   "states the task, the equations and the shapes."),
        _cell("load", "code", load),
        _cell("try-md", "markdown", "## Try it\n\nOne call of your functions, to see shapes before the check."),
        _cell("try", "code", try_it),
        _cell("check-md", "markdown",
              "## Check\n\nThe same check your teacher runs (`tinyeffnet exercise check "
              f"{exercise.name} {skeleton}`): one row per test, a hint on each failure. "
              "The teacher may grade with another `seed`, i.e. other shapes and values."),
        _cell("check", "code", check),
    ]
    return {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                         "language_info": {"name": "python"}}}


def start(name: str, to=None, *, overwrite: bool = False) -> dict:
    """Write DIR/NAME.py and DIR/NAME.ipynb; return {"skeleton": path, "notebook": path}."""
    exercise = get(name)
    folder = Path(DEFAULT_FOLDER if to is None else to)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"to must be a folder, got the file {folder}")
    skeleton, notebook = folder / f"{exercise.name}.py", folder / f"{exercise.name}.ipynb"
    if not overwrite:
        for path in (skeleton, notebook):
            if path.exists():
                raise FileExistsError(f"{path} exists: not overwriting a student's work (overwrite=True, or "
                                      f"--force, to replace it)")
    folder.mkdir(parents=True, exist_ok=True)
    source = skeleton_source(exercise.name)
    write_atomic(skeleton, lambda f: f.write(source.encode("utf-8")))
    text = json.dumps(notebook_json(exercise.name, skeleton.name), indent=1) + "\n"
    write_atomic(notebook, lambda f: f.write(text.encode("utf-8")))
    return {"skeleton": str(skeleton), "notebook": str(notebook)}
