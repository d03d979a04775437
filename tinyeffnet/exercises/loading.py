"""Loading a student's file for grading: its own fresh module, a scan of its imports, a time limit.

A submission is imported with importlib from its path into a module of its own (a fresh namespace
under a private name, removed from ``sys.modules`` afterwards), so two students' files never see
each other and nothing of the library is replaced. Loading never crashes the grader: a syntax error
or an exception raised at import becomes a ``SubmissionError`` whose message the report shows.

A submission that hands back the library's own implementation instead of the student's is refused
(``Refused``), found two independent ways:

1. before anything runs, an AST scan of the source: an import of ``tinyeffnet`` or one of its
   modules is refused unless the exercise lists it as an allowed helper, and so are the ways round
   the scan (``__import__``, ``importlib``, ``sys.modules``); a block exercise also refuses calling
   the block's own ``forward`` / ``backward`` (its children's are the point of the exercise);
2. after loading, each function the exercise asks for must be the student's: not one of the
   library's objects, and defined neither in a ``tinyeffnet`` module nor in a file of the package;
3. while the student's functions run (``CallGuard``), a profile hook watches the Python calls they
   make: a call into the library's implementation (any code of the package for an op exercise; the
   block's own forward / backward for a block exercise) refuses the submission, however the
   function object was reached.

``time_limit(seconds)`` raises ``TimeoutError`` in a test that runs too long (an endless loop), with
SIGALRM on POSIX in the main thread; elsewhere it does nothing.
"""
from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.util
import signal
import sys
import threading
import types
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]            # .../tinyeffnet
BLOCK_METHODS = {"forward", "backward", "branch_forward", "branch_backward"}


class SubmissionError(Exception):
    """The file could not be read or imported (missing, syntax error, exception at import)."""


class Refused(Exception):
    """The submission uses the library's own implementation of the exercise."""


# ------------------------------------------------------------------------------ the AST scan
def _allowed(module: str, name: str | None, allowed: tuple) -> bool:
    """``allowed`` holds "module" (all of it) or "module:name" entries."""
    return module in allowed or (name is not None and f"{module}:{name}" in allowed)


def _is_library(module: str | None) -> bool:
    return bool(module) and (module == "tinyeffnet" or module.startswith("tinyeffnet."))


def scan_imports(source: str, filename: str, allowed: tuple = (), block_arg: str | None = None) -> None:
    """Raise Refused for an import of the library not in ``allowed``, or a way round this scan.

    block_arg: for a block exercise, the name of the block parameter ("block"): ``block.forward(...)``,
    ``block(x)``, ``type(block).forward`` and ``block.__class__`` are the library's answer, refused.
    A SyntaxError becomes a SubmissionError naming the line.
    """
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as err:
        raise SubmissionError(f"syntax error on line {err.lineno}: {err.msg}") from None
    for node in ast.walk(tree):
        where = f"line {getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _is_library(alias.name) and not _allowed(alias.name, None, allowed):
                    raise Refused(f"{where}: 'import {alias.name}' uses the library's own implementation; "
                                  f"write it yourself{_allowed_text(allowed)}")
                if alias.name.split(".")[0] == "importlib":
                    raise Refused(f"{where}: importlib is not allowed in a submission (imports must be plain)")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                raise Refused(f"{where}: a relative import ('from {'.' * node.level}{module} import ...') is not "
                              f"allowed in a submission")
            if module.split(".")[0] == "importlib":
                raise Refused(f"{where}: importlib is not allowed in a submission (imports must be plain)")
            if _is_library(module):
                for alias in node.names:
                    full = f"{module}.{alias.name}"
                    if not (_allowed(module, alias.name, allowed) or _allowed(full, None, allowed)):
                        raise Refused(f"{where}: 'from {module} import {alias.name}' uses the library's own "
                                      f"implementation; write it yourself{_allowed_text(allowed)}")
        elif isinstance(node, ast.Name) and node.id == "__import__":
            raise Refused(f"{where}: __import__ is not allowed in a submission (imports must be plain)")
        elif isinstance(node, ast.Attribute) and node.attr == "modules" and _name_of(node.value) == "sys":
            raise Refused(f"{where}: sys.modules is not allowed in a submission")
        elif block_arg and isinstance(node, ast.Attribute):
            _scan_block_attribute(node, block_arg, where)
        elif block_arg and isinstance(node, ast.Call) and _name_of(node.func) == block_arg:
            raise Refused(f"{where}: {block_arg}(...) runs the library's own forward; call its children instead")


def _scan_block_attribute(node: ast.Attribute, block_arg: str, where: str) -> None:
    if node.attr == "__class__":
        raise Refused(f"{where}: __class__ is not allowed in a block exercise (it reaches the library's own "
                      f"forward and backward)")
    value = node.value
    is_block = _name_of(value) == block_arg
    is_type_of_block = (isinstance(value, ast.Call) and _name_of(value.func) == "type")
    if node.attr in BLOCK_METHODS and (is_block or is_type_of_block):
        raise Refused(f"{where}: {block_arg}.{node.attr} is the library's own answer; call the children "
                      f"({block_arg}.expand, {block_arg}.depthwise, ...) instead")


def _name_of(node) -> str | None:
    return node.id if isinstance(node, ast.Name) else None


def _allowed_text(allowed: tuple) -> str:
    return f" (allowed from tinyeffnet: {', '.join(allowed)})" if allowed else " (numpy is allowed)"


# ------------------------------------------------------------------------------ identity
def library_objects() -> dict:
    """id -> "module.name" for every function and class the exercises could re-export."""
    import importlib as _importlib

    found = {}
    for name in ("tinyeffnet.ops", "tinyeffnet.ops.reference", "tinyeffnet.ops.winograd", "tinyeffnet.ops._checks",
                 "tinyeffnet.nn", "tinyeffnet.nn.blocks", "tinyeffnet.nn.layers", "tinyeffnet.train.algorithm",
                 "tinyeffnet.testing"):
        module = _importlib.import_module(name)
        for attr, value in vars(module).items():
            if callable(value):
                found[id(value)] = f"{name}.{attr}"
                for method in ("forward", "backward", "branch_forward", "branch_backward"):
                    if isinstance(value, type) and method in vars(value):
                        found[id(vars(value)[method])] = f"{name}.{attr}.{method}"
    return found


def check_own(module: types.ModuleType, functions: list) -> None:
    """Raise Refused when a required function is the library's object, or was defined in its files."""
    library = library_objects()
    for name in functions:
        fn = getattr(module, name, None)
        if fn is None:
            continue
        if id(fn) in library:
            raise Refused(f"{name} is the library's own {library[id(fn)]}; write it yourself")
        owner = getattr(fn, "__module__", None) or ""
        if _is_library(owner):
            raise Refused(f"{name} comes from the library module {owner}; write it yourself")
        code = getattr(getattr(fn, "__wrapped__", fn), "__code__", None)
        if code is not None and _inside(Path(code.co_filename), PACKAGE_DIR):
            raise Refused(f"{name} is defined in the library file {code.co_filename}; write it yourself")


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder)
        return True
    except (ValueError, OSError):
        return False


# ------------------------------------------------------------------------------ while it runs
EXERCISES_DIR = Path(__file__).resolve().parent


def in_package(code) -> bool:
    """The forbidden test of an op exercise: any Python code of the tinyeffnet package (but the
    grader's own, such as the time limit's signal handler)."""
    if code.co_filename[:1] in ("<", ""):
        return False
    path = Path(code.co_filename)
    return _inside(path, PACKAGE_DIR) and not _inside(path, EXERCISES_DIR)


class CallGuard:
    """Wraps the student's functions: while one runs, sys.setprofile watches every Python call it
    makes, and a call whose code object ``forbidden(code)`` flags refuses the submission.

    The hook costs time on every call, so each function is watched on its first ``watched`` calls
    after each ``calls.clear()`` (the checker clears it before every test row: the finite differences
    that follow a row's first calls repeat the same code)."""

    def __init__(self, forbidden, watched: int = 25):
        self.forbidden = forbidden
        self.watched = watched
        self.calls = {}
        self.hit = None
        self.active = False

    def _hook(self, frame, event, arg):
        if event == "call" and self.hit is None and self.forbidden(frame.f_code):
            self.hit = f"{frame.f_code.co_name} ({frame.f_code.co_filename}:{frame.f_code.co_firstlineno})"

    def wrap(self, name: str, fn):
        def guarded(*args, **kwargs):
            self.calls[name] = self.calls.get(name, 0) + 1
            if self.active or self.calls[name] > self.watched:   # nested (one student function calling another)
                return fn(*args, **kwargs)
            self.active, self.hit, previous = True, None, sys.getprofile()
            sys.setprofile(self._hook)
            try:
                result = fn(*args, **kwargs)
            finally:
                sys.setprofile(previous)
                self.active = False
            if self.hit:
                raise Refused(f"{name} called the library's own {self.hit}; write it yourself")
            return result

        guarded.__name__ = name
        guarded.__wrapped__ = fn
        return guarded

    def namespace(self, module: types.ModuleType, names: list) -> types.SimpleNamespace:
        """The functions ``names`` of ``module``, guarded, as the object the tests call."""
        return types.SimpleNamespace(**{name: self.wrap(name, getattr(module, name)) for name in names
                                        if callable(getattr(module, name, None))})


# ------------------------------------------------------------------------------ loading
def load_submission(path, *, allowed: tuple = (), block_arg: str | None = None,
                    seconds: float | None = 60) -> types.ModuleType:
    """Import the file at ``path`` as a fresh module, after the scan above. Raises SubmissionError
    (missing file, syntax error, exception at import, too slow) or Refused."""
    path = Path(path)
    if not path.is_file():
        raise SubmissionError(f"no such file: {path}")
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SubmissionError(f"cannot read {path}: {err}") from None
    scan_imports(source, str(path), allowed, block_arg)
    digest = hashlib.sha1(str(path.resolve()).encode() + source.encode()).hexdigest()[:12]
    name = f"_tinyeffnet_submission_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module                 # while it runs: dataclasses and pickling look it up there
    try:
        with time_limit(seconds):
            spec.loader.exec_module(module)
    except KeyboardInterrupt:
        raise
    except BaseException as err:               # SystemExit too: a student's exit() must not stop the grader
        raise SubmissionError(f"importing {path.name} raised {type(err).__name__}: {err}") from None
    finally:
        sys.modules.pop(name, None)
    return module


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """Raise TimeoutError in the body after ``seconds`` (POSIX main thread only; else no limit)."""
    usable = (seconds is not None and seconds > 0 and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def _expired(signum, frame):
        raise TimeoutError(f"took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
