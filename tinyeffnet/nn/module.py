"""Module: the base class of every layer, block and model, with a PyTorch-like API.

There is no autograd tape. A module's ``forward`` computes its output and keeps what its backward
needs (its cache); its ``backward(dy)`` returns ``dx`` and ADDS the gradient of every parameter into
``Parameter.grad``. A composite module's backward calls its children's backward in reverse order,
so the chain rule

    y = f3(f2(f1(x)))   =>   dx = f1'(x)^T f2'(.)^T f3'(.)^T dy

is written out in code where a reader can see it.

Registration works like PyTorch: assigning a ``Parameter`` or a ``Module`` to an attribute registers
it (in assignment order); ``register_buffer`` registers a non-learnable array (BatchNorm's running
statistics). A private name (``_cache``) holding anything else is a plain attribute, set without
the registration bookkeeping (layers set their cache on every forward). Dotted names
(``stages.3.0.se.reduce.weight``) follow the attribute path; the state_dict lists, module by module,
its own parameters, then its own buffers, then its children, the order torch uses, which is what
lets interop.py map our names onto torchvision's one by one.

Containers: ``Sequential`` (run children in order, backward in reverse) and ``ModuleList`` (a
numbered list, no forward of its own).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Iterator

import numpy as np

from .parameter import Parameter

class Module:
    """Base class: subclasses call ``super().__init__()`` first, then assign parameters and children.

    Subclasses implement ``forward(x) -> y`` and ``backward(dy) -> dx``.
    """

    stochastic = False  # True for layers that draw random numbers (Dropout, DropPath)

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ----------------------------------------------------------------- registration
    def __setattr__(self, name: str, value) -> None:
        state = self.__dict__
        if "_parameters" not in state:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() before assigning {name!r}")
        if (name[0] == "_" and name not in state["_parameters"] and name not in state["_modules"]
                and name not in state["_buffers"] and not isinstance(value, (Parameter, Module))):
            object.__setattr__(self, name, value)  # private state (a layer's _cache, each forward): no registry
            return
        if name in self._buffers and isinstance(value, np.ndarray):
            object.__setattr__(self, name, value)  # a buffer stays a buffer (e.g. counter += 1)
            return
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, array: np.ndarray) -> None:
        """Register a non-learnable array saved in the state_dict (e.g. BatchNorm running_mean)."""
        if not isinstance(array, np.ndarray):
            raise TypeError(f"buffer {name!r} must be a numpy array, got {type(array).__name__}")
        object.__setattr__(self, name, array)
        self._buffers[name] = None  # the value lives in the attribute; this records name and order

    # ----------------------------------------------------------------- forward / backward
    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} has no forward")

    def backward(self, dy):
        raise NotImplementedError(f"{type(self).__name__} has no backward")

    # ----------------------------------------------------------------- traversal
    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        yield from self._modules.items()

    def children(self) -> Iterator["Module"]:
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        for _, module in self.named_modules():
            yield module

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for module_name, module in self.named_modules(prefix):
            for name, param in module._parameters.items():
                yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self) -> Iterator[Parameter]:
        for _, param in self.named_parameters():
            yield param

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for module_name, module in self.named_modules(prefix):
            for name in module._buffers:
                yield (f"{module_name}.{name}" if module_name else name), getattr(module, name)

    def num_parameters(self) -> int:
        """Total number of learnable scalars (what papers call "Params")."""
        return int(sum(p.data.size for p in self.parameters()))

    # ----------------------------------------------------------------- state
    def _state_items(self) -> Iterator[tuple[str, "Module", str, bool]]:
        """(dotted name, owning module, attribute, is_parameter) in torch's state_dict order."""
        for module_name, module in self.named_modules():
            prefix = f"{module_name}." if module_name else ""
            for name in module._parameters:
                yield prefix + name, module, name, True
            for name in module._buffers:
                yield prefix + name, module, name, False

    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Copies of every parameter and buffer, by dotted name (params, then buffers, per module).
        Always numpy arrays, also for a model on the GPU (device arrays are copied to the host)."""
        from .. import backend

        state = OrderedDict()
        for key, module, name, is_param in self._state_items():
            value = getattr(module, name)
            state[key] = np.array(backend.to_host(value.data if is_param else value), copy=True)
        return state

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Copy arrays into the parameters and buffers, converting to each one's dtype.

        state: a mapping of name -> array (what ``state_dict()`` returns, or ``np.load(path)``); anything
        else is a TypeError. Every value must be a numeric array (or a number for a 0-d buffer).
        strict: every key must be present, no extra key, every shape equal; otherwise a ValueError
        lists all missing keys, unexpected keys and shape mismatches by name. Nothing is modified
        when the check fails.
        """
        where = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, Mapping) and not hasattr(state, "keys"):  # np.load's NpzFile has keys()
            raise TypeError(f"{where}: state must be a mapping of name -> array (a state_dict), "
                            f"got {type(state).__name__}")
        if not isinstance(strict, (bool, np.bool_)):
            raise TypeError(f"{where}: strict must be True or False, got {strict!r}")
        items = {key: (module, name, is_param) for key, module, name, is_param in self._state_items()}
        missing = [k for k in items if k not in state]
        unexpected = [k for k in state if k not in items]
        mismatched = []
        for key, (module, name, is_param) in items.items():
            if key in state:
                target = getattr(module, name)
                target = target.data if is_param else target
                value = state[key]
                kind = _numeric_dtype(value)
                if kind is None:
                    got = f"dtype {value.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
                    mismatched.append(f"{key}: expected a numeric array of shape {tuple(target.shape)}, got {got}")
                elif tuple(np.shape(value)) != tuple(target.shape):
                    mismatched.append(f"{key}: expected {tuple(target.shape)}, got {tuple(np.shape(value))}")
        problems = describe_key_problems(missing if strict else [], unexpected if strict else [], mismatched)
        if problems:
            raise ValueError(f"cannot load state_dict into {type(self).__name__}:\n{problems}")
        for key, (module, name, is_param) in items.items():
            if key not in state:
                continue
            target = getattr(module, name)
            target = target.data if is_param else target
            target[...] = np.asarray(state[key]).astype(target.dtype, copy=False)

    # ----------------------------------------------------------------- modes and gradients
    def train(self, mode: bool = True) -> "Module":
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self) -> None:
        for param in self.parameters():
            param.zero_grad()

    def set_rng(self, generator: np.random.Generator) -> "Module":
        """Give every stochastic layer (Dropout, DropPath) the same numpy Generator.

        One generator drawn in forward order makes a training run reproducible from one seed.
        """
        if not isinstance(generator, np.random.Generator):
            raise TypeError(f"set_rng expects a numpy.random.Generator, got {type(generator).__name__}")
        for module in self.modules():
            if module.stochastic:
                module.rng = generator
        return self

    # ----------------------------------------------------------------- dtype and device
    @property
    def dtype(self):
        """The dtype of the parameters (float32 by default, float64 for gradient checks)."""
        for param in self.parameters():
            return param.data.dtype
        return None

    def astype(self, dtype) -> "Module":
        """Convert every parameter and every float buffer to ``dtype`` (float32 or float64), in place.

        Gradients are dropped (they would have the old dtype); counters such as
        num_batches_tracked stay integers.
        """
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        for module in self.modules():
            for param in module._parameters.values():
                param.data = param.data.astype(dtype)
                param.grad = None
            for name in module._buffers:
                value = getattr(module, name)
                if value.dtype.kind == "f":
                    object.__setattr__(module, name, value.astype(dtype))
        return self

    def float(self) -> "Module":
        return self.astype(np.float32)

    def double(self) -> "Module":
        return self.astype(np.float64)

    def to(self, device) -> "Module":
        """Move every parameter (data and grad) and every float buffer (BatchNorm's running statistics)
        to ``"cuda"`` (numba device arrays, the current GPU) or back to ``"cpu"`` (numpy), in place.

        Integer counters (num_batches_tracked) stay on the host: nothing computes with them. Arrays
        already on the target device are kept as they are. Without CUDA, ``to("cuda")`` raises a
        RuntimeError saying what is missing (``pip install "tinyeffnet[cuda]"``, or a visible GPU).
        """
        device = str(device)
        if device != "cpu" and not device.startswith("cuda"):
            raise ValueError(f'device must be "cpu" or "cuda", got {device!r}')
        from .. import backend  # late: backend is imported by the layers, after this module

        move = backend.mover("cpu" if device == "cpu" else "cuda")  # checks CUDA before anything moves
        for module in self.modules():
            for param in module._parameters.values():
                param.data = move(param.data)
                param.grad = None if param.grad is None else move(param.grad)
            for name in module._buffers:
                value = getattr(module, name)
                if value.dtype.kind == "f":
                    object.__setattr__(module, name, move(value))
        return self

    # ----------------------------------------------------------------- printing
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._modules.items():
            child_lines = repr(child).splitlines()
            lines.append(f"  ({name}): {child_lines[0]}")
            lines.extend("  " + line for line in child_lines[1:])
        if len(lines) == 1:
            return lines[0] + ")"
        return "\n".join(lines) + "\n)"


def _numeric_dtype(value):
    """The dtype of ``value`` as an array if it is a numeric one (bool, int, float), else None."""
    try:
        dtype = np.asarray(value).dtype
    except Exception:  # an object numpy cannot read as an array
        return None
    return dtype if dtype.kind in "biuf" else None


def describe_key_problems(missing, unexpected, mismatched) -> str:
    """One readable block listing every missing key, unexpected key and shape mismatch ('' if none)."""
    parts = []
    if missing:
        parts.append(f"missing keys ({len(missing)}): " + ", ".join(missing))
    if unexpected:
        parts.append(f"unexpected keys ({len(unexpected)}): " + ", ".join(unexpected))
    if mismatched:
        parts.append(f"shape mismatches ({len(mismatched)}): " + "; ".join(mismatched))
    return "\n".join(parts)


class _Numbered(Module):
    """Children registered as "0", "1", ... in order: len(), [index], iteration and append."""

    def append(self, module: Module) -> "_Numbered":
        setattr(self, str(len(self._modules)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __iter__(self):
        return iter(self._modules.values())


class Sequential(_Numbered):
    """Children run in order; backward runs their backward in reverse order.

        y = f_n(... f_2(f_1(x)))        dx = f_1.backward(f_2.backward(... f_n.backward(dy)))
    """

    def __init__(self, *modules: Module):
        super().__init__()
        for module in modules:
            self.append(module)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def backward(self, dy):
        for module in reversed(self._modules.values()):
            dy = module.backward(dy)
        return dy


class ModuleList(_Numbered):
    """A numbered list of modules (registered as "0", "1", ...); no forward of its own."""

    def __init__(self, modules=()):
        super().__init__()
        for module in modules:
            self.append(module)


def module_as_op(module: Module, seed: int = 0):
    """Turn a module into the ``forward(*inputs) / backward(dy, cache)`` pair that
    ``tinyeffnet.testing.gradcheck`` and ``torch_parity`` take, with every parameter as an input.

    Returns (forward, backward, names, values): names = ["x", <parameter names>...], values = the
    current parameter arrays (copies), so that a whole block is checked in one call::

        fwd, bwd, names, values = module_as_op(block)
        gradcheck(fwd, bwd, [x] + values, names=names).assert_ok()

    Every forward first restores the buffers (BatchNorm running statistics) as they were at the
    call and reseeds the stochastic layers with ``seed``, so repeated forwards compute the same
    function (finite differences need that). backward zeroes the gradients, runs module.backward
    and returns (dx, dparam_1, ...).
    """
    names = [name for name, _ in module.named_parameters()]
    params = [param for _, param in module.named_parameters()]
    saved_buffers = [(owner, name, np.array(getattr(owner, name), copy=True))
                     for owner in module.modules() for name in owner._buffers]

    def forward(x, *param_values):
        for param, value in zip(params, param_values):
            param.data = value
        for owner, name, value in saved_buffers:
            getattr(owner, name)[...] = value
        module.set_rng(np.random.default_rng(seed))
        return module(x), None

    def backward(dy, cache):
        module.zero_grad()
        dx = module.backward(dy)
        return (dx,) + tuple(np.array(param.grad, copy=True) for param in params)

    return forward, backward, ["x"] + names, [np.array(p.data, copy=True) for p in params]
