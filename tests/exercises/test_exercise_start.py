"""`start`: every skeleton imports, each of its functions raises NotImplementedError, op exercises
keep the library's names and signatures; the student notebook is valid nbformat and, with a correct
solution put in place of the skeleton (in a tmp folder), runs to the end with nbclient."""
import importlib.util
import inspect
import shutil

import nbformat
import pytest
from nbclient import NotebookClient

from tinyeffnet import exercises
from tinyeffnet.exercises.catalog import get

from exercise_mutants import solution_path

# op exercises: the library function each skeleton function must match, parameter for parameter
LIBRARY = {
    "conv2d_forward": "tinyeffnet.ops", "conv2d_backward": "tinyeffnet.ops",
    "depthwise_conv2d_forward": "tinyeffnet.ops", "depthwise_conv2d_backward": "tinyeffnet.ops",
    "batchnorm_forward": "tinyeffnet.ops", "batchnorm_backward": "tinyeffnet.ops",
    "sigmoid_forward": "tinyeffnet.ops", "sigmoid_backward": "tinyeffnet.ops",
    "silu_forward": "tinyeffnet.ops", "silu_backward": "tinyeffnet.ops",
    "resolve_padding": "tinyeffnet.ops._checks", "transform_weights": "tinyeffnet.ops.winograd",
    "winograd_conv3x3_forward": "tinyeffnet.ops.winograd", "winograd_conv3x3_backward": "tinyeffnet.ops.winograd",
    "progressive_schedule": "tinyeffnet.train.algorithm",
}


def _import(path):
    spec = importlib.util.spec_from_file_location(f"skeleton_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _positional(fn):
    return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


@pytest.mark.parametrize("name", exercises.names())
def test_the_skeleton_imports_and_every_function_raises(name, tmp_path):
    done = exercises.start(name, to=tmp_path)
    module = _import(tmp_path / f"{name}.py")
    exercise = get(name)
    for function in exercise.functions:
        fn = getattr(module, function.name)
        assert fn.__doc__ and len(fn.__doc__) > 60, function.name          # the task is stated
        with pytest.raises(NotImplementedError):
            fn(*[None] * len(_positional(fn)))
        if function.name in LIBRARY:
            library = getattr(importlib.import_module(LIBRARY[function.name]), function.name)
            assert _positional(fn) == _positional(library), function.name
    assert done == {"skeleton": str(tmp_path / f"{name}.py"), "notebook": str(tmp_path / f"{name}.ipynb")}
    nbformat.validate(nbformat.read(tmp_path / f"{name}.ipynb", as_version=4))


def test_start_defaults_to_notebooks_exercises(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exercises.start("batchnorm")
    assert (tmp_path / "notebooks" / "exercises" / "batchnorm.ipynb").is_file()
    with pytest.raises(FileExistsError, match="not overwriting"):
        exercises.start("batchnorm")


def _run(notebook_path):
    notebook = nbformat.read(notebook_path, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(notebook_path.parent)}}).execute()
    return notebook


@pytest.mark.parametrize("name", exercises.names())
def test_the_notebook_runs_to_the_end_with_a_correct_solution(name, tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    exercises.start(name, to=tmp_path)
    shutil.copy(solution_path(name), tmp_path / f"{name}.py")          # injected here, never committed
    notebook = _run(tmp_path / f"{name}.ipynb")
    last = notebook.cells[-1]
    assert "exercises.check" in last.source
    text = "".join(output.get("text", "") for output in last.outputs)
    assert "all passed" in text, text


def test_the_notebook_of_an_unwritten_skeleton_runs_too(tmp_path):
    exercises.start("same_padding", to=tmp_path)
    notebook = _run(tmp_path / "same_padding.ipynb")
    text = "".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs)
    assert "not written yet" in text and "FAIL" in text
