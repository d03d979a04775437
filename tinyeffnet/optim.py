"""Optimizers, learning-rate schedules and an exponential moving average (EMA) of the weights.

The API is PyTorch's: ``opt = SGD(model.parameters(), lr=0.1, momentum=0.9)``, then per step
``opt.zero_grad(); <forward + backward>; opt.step()``; ``opt.param_groups[i]["lr"]`` is the learning
rate a schedule sets. Every rule below is written for one parameter p with gradient g; ``t`` counts
steps from 1; ``lr`` is the group's learning rate; ``wd`` its weight decay.

Weight decay applies only to parameters with ``p.decay == True``. Layers set ``decay=False`` on
BatchNorm's gamma/beta and on biases, as in the paper ("weight decay 1e-5", excluding bias, gamma,
beta). For those parameters wd is treated as 0 in every rule.

SGD (torch.optim.SGD, dampening 0), coupled (L2) weight decay:

    d   = g + wd * p
    buf = d                              on the first step
    buf = momentum * buf + d             afterwards
    d   = d + momentum * buf  (nesterov)  or  d = buf  (plain momentum);  d = g + wd*p if momentum == 0
    p   = p - lr * d

RMSProp, TensorFlow flavour (the optimizer EfficientNet and EfficientNetV2 were trained with;
decay rho 0.9, momentum 0.9, epsilon 1e-3). Weight decay is coupled, as TF adds wd/2 * ||p||^2 to
the loss:

    d   = g + wd * p
    ms  = rho * ms + (1 - rho) * d^2                 ms starts at ``initial_ms`` (default 1.0)
    mom = momentum * mom + lr * d / sqrt(ms + eps)   mom starts at 0
    p   = p - mom

  How this differs from torch.optim.RMSprop(alpha=rho, eps, momentum):
    1. eps sits INSIDE the square root here (sqrt(ms + eps)); torch uses sqrt(ms) + eps. With eps=1e-3
       that is a floor of sqrt(1e-3) ~ 0.032 on the denominator instead of 1e-3.
    2. ms starts at ONES (tf.compat.v1.train.RMSPropOptimizer and timm's RMSpropTF), so the first steps
       are small (d / sqrt(0.1 d^2 + 0.9 + eps) instead of ~ d / sqrt(0.1 d^2)); torch and Keras'
       RMSprop start at zeros. Pass ``initial_ms=0.0`` for the zero start.
    3. lr multiplies INSIDE the momentum buffer (mom accumulates lr * step), torch applies it outside
       (buf = momentum*buf + d/denom; p -= lr*buf). The two agree for a constant lr; when a schedule
       changes lr, TF's buffer keeps the old lr's contributions.

AdamW (torch.optim.AdamW, amsgrad False), decoupled weight decay:

    p   = p * (1 - lr * wd)
    m   = beta1 * m + (1 - beta1) * g
    v   = beta2 * v + (1 - beta2) * g^2
    p   = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

Schedules (callables of a fractional epoch, or of a step count, used consistently):

    ExponentialDecayWarmup:  lr(t) = base_lr * t / warmup                         for t < warmup
                             lr(t) = base_lr * rate ** floor(t / every)          otherwise
                             (paper: rate 0.97 every 2.4 epochs; exponent counted from t = 0, as TF's
                             exponential_decay(global_step) with the warmup overriding its start)
    CosineWarmup:            lr(t) = base_lr * t / warmup                         for t < warmup
                             lr(t) = min_lr + (base_lr - min_lr) * (1 + cos(pi * s)) / 2,
                             s = clip((t - warmup) / (total - warmup), 0, 1)      otherwise

EMA of the weights (evaluation uses the averaged weights; BN running statistics are copied, not
averaged):

    shadow = d * shadow + (1 - d) * p,    d = decay                                   (warmup=False)
                                          d = min(decay, (1 + n) / (10 + n))           (warmup=True)
    n is the number of EMA updates made before this one (TF's ExponentialMovingAverage with
    num_updates; timm's ModelEmaV2 has no warmup, its V3 uses another curve).

State dicts: every optimizer and the EMA return a FLAT dict ``{str: numpy array}`` (hyperparameters
as 0-d arrays), so a checkpoint can store it in an .npz file without pickling.

Dimension legend: a parameter has any shape P; every state buffer (buf, ms, mom, m, v, shadow) has
shape P and the parameter's dtype.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np

from tinyeffnet.nn.parameter import Parameter
from tinyeffnet.ops import adamw as adamw_kernel
from tinyeffnet.ops._checks import interval, is_number

__all__ = [
    "Optimizer", "SGD", "RMSProp", "AdamW",
    "ExponentialDecayWarmup", "CosineWarmup", "set_lr",
    "EMA",
]


# --------------------------------------------------------------------------------------------------
# Parameter handling
# --------------------------------------------------------------------------------------------------

def _parameter_list(params, where: str) -> list:
    """Parameters from an iterable of Parameters or of (name, Parameter) pairs, in order."""
    if isinstance(params, Parameter):
        raise TypeError(f"{where}: params must be an iterable of Parameters, got a single Parameter")
    out = []
    for item in params:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Parameter):
            item = item[1]
        if not isinstance(item, Parameter):
            raise TypeError(f"{where}: expected Parameter or (name, Parameter), got {type(item).__name__}")
        out.append(item)
    if not out:
        raise ValueError(f"{where}: got an empty parameter list")
    if len({id(p) for p in out}) != len(out):
        raise ValueError(f"{where}: a parameter appears more than once")
    return out


def _check_hyper(name: str, value, low: float = 0.0, high: float = math.inf, high_open: bool = False,
                 where: str = ""):
    """A hyperparameter: a finite number in [low, high] (or [low, high)); returned as a Python float.

    None, a str, a bool or an array -> TypeError ("lr must be a number >= 0, got None");
    NaN, inf or out of range -> ValueError ("lr must be in [0.0, inf], got -1.0").
    ``where`` (the optimizer's or schedule's name) starts the message.
    """
    prefix = f"{where}: " if where else ""
    if not is_number(value):
        raise TypeError(f"{prefix}{name} must be a number {interval(low, high, high_open=high_open)}, got {value!r}")
    value = float(value)
    too_high = value >= high if high_open else value > high
    if not math.isfinite(value) or value < low or too_high:
        bracket = ")" if high_open else "]"
        raise ValueError(f"{prefix}{name} must be in [{low}, {high}{bracket}, got {value}")
    return value


def _check_flag(name: str, value, where: str) -> bool:
    """True or False (numpy's bool too): ``nesterov="no"`` would otherwise count as True."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}: {name} must be True or False, got {value!r}")
    return bool(value)


# --------------------------------------------------------------------------------------------------
# Optimizer base class
# --------------------------------------------------------------------------------------------------

class Optimizer:
    """Base class: holds param_groups and per-parameter state; subclasses write ``_update``.

    params: an iterable of Parameters, of (name, Parameter) pairs, or of dicts
            ``{"params": [...], "lr": ..., ...}`` (param groups; missing keys take the defaults).
    State: ``self.state[k]`` is a dict of numpy arrays for the k-th parameter (in group order).
    """

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        if not isinstance(params, Parameter) and not hasattr(params, "__iter__"):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Parameters "
                            f"(model.parameters()), got {type(params).__name__}")
        params = list(params) if not isinstance(params, Parameter) else params
        if isinstance(params, list) and params and isinstance(params[0], dict):
            for group in params:
                self._add_group(group)
        else:
            self._add_group({"params": params})
        all_ids = [id(p) for g in self.param_groups for p in g["params"]]
        if len(set(all_ids)) != len(all_ids):
            raise ValueError(f"{type(self).__name__}: a parameter appears in more than one group")
        self.state: dict[int, dict] = {}

    def _add_group(self, group: dict) -> None:
        if "params" not in group:
            raise ValueError(f"{type(self).__name__}: a param group needs a 'params' entry, got keys {sorted(group)}")
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown param-group options {sorted(unknown)}")
        full = {**self.defaults, **{k: v for k, v in group.items() if k != "params"}}
        self._validate(full)
        full["params"] = _parameter_list(group["params"], type(self).__name__)
        self.param_groups.append(full)

    def _validate(self, group: dict) -> None:
        """Raise TypeError / ValueError for bad hyperparameters (subclasses extend)."""
        where = type(self).__name__
        group["lr"] = _check_hyper("lr", group["lr"], where=where)
        group["weight_decay"] = _check_hyper("weight_decay", group["weight_decay"], where=where)

    def _indexed_params(self):
        """(k, group, p) for every parameter, k numbering them across groups."""
        k = 0
        for group in self.param_groups:
            for p in group["params"]:
                yield k, group, p
                k += 1

    def zero_grad(self) -> None:
        """Reset every parameter's gradient to zeros (allocating it if needed)."""
        for _, _, p in self._indexed_params():
            p.zero_grad()

    def step(self) -> None:
        """Apply one update to every parameter that has a gradient."""
        for k, group, p in self._indexed_params():
            if p.grad is None:
                continue
            if p.grad.shape != p.data.shape:
                raise ValueError(f"parameter {k}: grad shape {p.grad.shape} != data shape {p.data.shape}")
            wd = float(group["weight_decay"]) if p.decay else 0.0
            self._update(p, self.state.setdefault(k, {}), group, float(group["lr"]), wd)

    def _update(self, p: Parameter, state: dict, group: dict, lr: float, wd: float) -> None:
        raise NotImplementedError

    # ---- checkpoints --------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Flat ``{str: numpy array}`` that np.savez can store without pickling:
        ``param_groups.<i>.<option>`` (0-d: lr, momentum, ...), ``param_groups.<i>.num_params`` (0-d),
        and ``state.<k>.<buffer>``, copies of the k-th parameter's buffers (k counts across groups)."""
        out = {}
        for i, group in enumerate(self.param_groups):
            for key, value in group.items():
                if key != "params":
                    out[f"param_groups.{i}.{key}"] = np.array(value)
            out[f"param_groups.{i}.num_params"] = np.array(len(group["params"]), dtype=np.int64)
        for k, buffers in self.state.items():
            for name, value in buffers.items():
                out[f"state.{k}.{name}"] = np.array(value, copy=True)
        return out

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyperparameters and buffers written by ``state_dict`` (same parameter layout)."""
        name = type(self).__name__
        for i, group in enumerate(self.param_groups):
            key = f"param_groups.{i}.num_params"
            if key not in state_dict:
                raise KeyError(f"{name}.load_state_dict: missing {key!r}")
            if int(state_dict[key]) != len(group["params"]):
                raise ValueError(f"{name}.load_state_dict: group {i} has {len(group['params'])} "
                                 f"parameters, the state dict {int(state_dict[key])}")
        extra_groups = [k for k in state_dict if k.startswith(f"param_groups.{len(self.param_groups)}.")]
        if extra_groups:
            raise ValueError(f"{name}.load_state_dict: state dict has more param groups than the optimizer")
        params = [p for _, _, p in self._indexed_params()]
        new_state: dict[int, dict] = {}
        for key, value in state_dict.items():
            parts = key.split(".")
            if parts[0] == "param_groups" and parts[2] != "num_params":
                if parts[2] not in self.defaults:
                    raise KeyError(f"{name}.load_state_dict: unknown option {key!r}")
                self.param_groups[int(parts[1])][parts[2]] = np.asarray(value).item()
            elif parts[0] == "state":
                k = int(parts[1])
                if k >= len(params):
                    raise ValueError(f"{name}.load_state_dict: state for parameter {k}, "
                                     f"but the optimizer has {len(params)}")
                value = np.asarray(value)
                if value.ndim > 0 and value.shape != params[k].data.shape:
                    raise ValueError(f"{name}.load_state_dict: {key} has shape {value.shape}, "
                                     f"parameter {k} has {params[k].data.shape}")
                dtype = params[k].data.dtype if value.ndim > 0 else value.dtype
                new_state.setdefault(k, {})[parts[2]] = np.array(value, dtype=dtype, copy=True)
        for group in self.param_groups:
            self._validate(group)          # back to Python floats/bools, ranges checked
        self.state = new_state


# --------------------------------------------------------------------------------------------------
# SGD
# --------------------------------------------------------------------------------------------------

class SGD(Optimizer):
    """Stochastic gradient descent with momentum / Nesterov momentum, exactly torch.optim.SGD.

        d = g + wd p;  buf = d (first step) | momentum buf + d;  d = d + momentum buf (nesterov) | buf
        p = p - lr d
    State per parameter: ``momentum_buffer`` (shape of p) when momentum > 0.
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay))

    def _validate(self, group: dict) -> None:
        super()._validate(group)
        group["momentum"] = _check_hyper("momentum", group["momentum"], where="SGD")
        group["nesterov"] = _check_flag("nesterov", group["nesterov"], "SGD")
        if group["nesterov"] and group["momentum"] <= 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")

    def _update(self, p, state, group, lr, wd):
        d = p.grad + wd * p.data if wd else p.grad                   # (P,)
        momentum = float(group["momentum"])
        if momentum:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = np.array(d, dtype=p.data.dtype, copy=True)
            else:
                buf = state["momentum_buffer"]
                buf *= momentum
                buf += d
            buf = state["momentum_buffer"]
            d = d + momentum * buf if group["nesterov"] else buf
        p.data -= lr * d


# --------------------------------------------------------------------------------------------------
# RMSProp (TensorFlow)
# --------------------------------------------------------------------------------------------------

class RMSProp(Optimizer):
    """RMSProp as TensorFlow 1 implements it (see the module docstring for the differences to torch).

        d = g + wd p;  ms = rho ms + (1 - rho) d^2;  mom = momentum mom + lr d / sqrt(ms + eps)
        p = p - mom
    State per parameter: ``ms`` (starts at ``initial_ms``) and ``mom`` (starts at 0), shape of p.
    """

    def __init__(self, params, lr: float, rho: float = 0.9, momentum: float = 0.9, eps: float = 1e-3,
                 weight_decay: float = 0.0, initial_ms: float = 1.0):
        super().__init__(params, dict(lr=lr, rho=rho, momentum=momentum, eps=eps,
                                      weight_decay=weight_decay, initial_ms=initial_ms))

    def _validate(self, group: dict) -> None:
        super()._validate(group)
        group["rho"] = _check_hyper("rho", group["rho"], 0.0, 1.0, high_open=True, where="RMSProp")
        group["momentum"] = _check_hyper("momentum", group["momentum"], where="RMSProp")
        group["eps"] = _check_hyper("eps", group["eps"], where="RMSProp")
        group["initial_ms"] = _check_hyper("initial_ms", group["initial_ms"], where="RMSProp")
        if group["eps"] == 0 and group["initial_ms"] == 0:
            raise ValueError("RMSProp: eps and initial_ms cannot both be 0 (division by zero on a zero gradient)")

    def _update(self, p, state, group, lr, wd):
        if "ms" not in state:
            state["ms"] = np.full_like(p.data, group["initial_ms"])
            state["mom"] = np.zeros_like(p.data)
        ms, mom = state["ms"], state["mom"]                           # (P,), (P,)
        d = p.grad + wd * p.data if wd else p.grad                    # (P,)
        rho = group["rho"]
        ms *= rho
        ms += (1.0 - rho) * (d * d)
        mom *= group["momentum"]
        mom += lr * d / np.sqrt(ms + group["eps"])
        p.data -= mom


# --------------------------------------------------------------------------------------------------
# AdamW
# --------------------------------------------------------------------------------------------------

class AdamW(Optimizer):
    """Adam with decoupled weight decay, exactly torch.optim.AdamW (amsgrad off).

        p = p (1 - lr wd);  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        p = p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    State per parameter: ``step`` (0-d int64), ``exp_avg`` m and ``exp_avg_sq`` v (shape of p).

    fused: True (the default) runs the rule as one Numba kernel, one pass over p, g, m and v
    (``tinyeffnet/ops/adamw.py``: 120 -> 34 ms per step on EfficientNetV2-S); False runs the NumPy lines of
    ``_update_readable`` below, the version to read. Both give the same numbers (tests/test_optim.py).
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, fused: bool = True):
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise TypeError(f"AdamW: betas must be a pair (beta1, beta2) of numbers in [0, 1), got {betas!r}")
        self.fused = _check_flag("fused", fused, "AdamW")
        super().__init__(params, dict(lr=lr, beta1=betas[0], beta2=betas[1], eps=eps,
                                      weight_decay=weight_decay))

    def _validate(self, group: dict) -> None:
        super()._validate(group)
        group["beta1"] = _check_hyper("beta1", group["beta1"], 0.0, 1.0, high_open=True, where="AdamW")
        group["beta2"] = _check_hyper("beta2", group["beta2"], 0.0, 1.0, high_open=True, where="AdamW")
        group["eps"] = _check_hyper("eps", group["eps"], where="AdamW")

    def _update(self, p, state, group, lr, wd):
        if "step" not in state:
            state["step"] = np.array(0, dtype=np.int64)
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] = np.array(int(state["step"]) + 1, dtype=np.int64)
        m, v = state["exp_avg"], state["exp_avg_sq"]                   # (P,), (P,)
        if self.fused and adamw_kernel.ready(p.data, p.grad, m, v):
            adamw_kernel.adamw_update(p.data, p.grad, m, v, lr, wd, group["beta1"], group["beta2"], group["eps"],
                                      int(state["step"]))
        else:
            self._update_readable(p, m, v, group, lr, wd, int(state["step"]))

    @staticmethod
    def _update_readable(p, m, v, group, lr, wd, t):
        """The rule in NumPy, one line per equation (m, v updated in place)."""
        beta1, beta2, g = group["beta1"], group["beta2"], p.grad
        if wd:
            p.data *= 1.0 - lr * wd
        m *= beta1
        m += (1.0 - beta1) * g
        v *= beta2
        v += (1.0 - beta2) * (g * g)
        step_size = lr / (1.0 - beta1 ** t)
        denom = np.sqrt(v) / math.sqrt(1.0 - beta2 ** t) + group["eps"]   # (P,)
        p.data -= step_size * (m / denom)


# --------------------------------------------------------------------------------------------------
# Learning-rate schedules
# --------------------------------------------------------------------------------------------------

def _warmup_lr(t: float, base_lr: float, warmup: float, start_lr: float) -> float:
    """Linear ramp from start_lr at t = 0 to base_lr at t = warmup."""
    return start_lr + (base_lr - start_lr) * t / warmup


class ExponentialDecayWarmup:
    """The paper's schedule: linear warmup, then lr = base_lr * rate ** floor(t / every).

    t is a fractional epoch (or a step count, if warmup and every are in steps too).
    staircase=False uses the smooth exponent t / every instead of its floor.
    """

    def __init__(self, base_lr: float, warmup: float = 5.0, rate: float = 0.97, every: float = 2.4,
                 staircase: bool = True, warmup_start_lr: float = 0.0):
        where = "ExponentialDecayWarmup"
        self.base_lr = _check_hyper("base_lr", base_lr, where=where)
        self.warmup = _check_hyper("warmup", warmup, where=where)
        self.rate = _check_hyper("rate", rate, 0.0, 1.0, where=where)
        self.every = _check_hyper("every", every, where=where)
        if self.every == 0:
            raise ValueError(f"{where}: every must be > 0, got 0.0")
        self.staircase = _check_flag("staircase", staircase, where)
        self.warmup_start_lr = _check_hyper("warmup_start_lr", warmup_start_lr, where=where)

    def __call__(self, t: float) -> float:
        t = float(t)
        if t < self.warmup:
            return _warmup_lr(t, self.base_lr, self.warmup, self.warmup_start_lr)
        exponent = math.floor(t / self.every) if self.staircase else t / self.every
        return self.base_lr * self.rate ** exponent


class CosineWarmup:
    """Linear warmup, then a half cosine from base_lr down to min_lr at t = total (flat after)."""

    def __init__(self, base_lr: float, total: float, warmup: float = 0.0, min_lr: float = 0.0,
                 warmup_start_lr: float = 0.0):
        where = "CosineWarmup"
        self.base_lr = _check_hyper("base_lr", base_lr, where=where)
        self.total = _check_hyper("total", total, where=where)
        self.warmup = _check_hyper("warmup", warmup, where=where)
        if self.total <= self.warmup:
            raise ValueError(f"{where}: total must be > warmup, got total={self.total}, warmup={self.warmup}")
        self.min_lr = _check_hyper("min_lr", min_lr, where=where)
        self.warmup_start_lr = _check_hyper("warmup_start_lr", warmup_start_lr, where=where)

    def __call__(self, t: float) -> float:
        t = float(t)
        if t < self.warmup:
            return _warmup_lr(t, self.base_lr, self.warmup, self.warmup_start_lr)
        s = min(max((t - self.warmup) / (self.total - self.warmup), 0.0), 1.0)
        return self.min_lr + (self.base_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * s))


def set_lr(optimizer: Optimizer, lr: float) -> None:
    """Set every param group's learning rate (what a schedule does once per step)."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"set_lr: optimizer must be an Optimizer (SGD, RMSProp, AdamW), got {type(optimizer).__name__}")
    lr = _check_hyper("lr", lr, where="set_lr")
    for group in optimizer.param_groups:
        group["lr"] = lr


# --------------------------------------------------------------------------------------------------
# EMA of the weights
# --------------------------------------------------------------------------------------------------

class EMA:
    """Exponential moving average of a model's parameters, for evaluation.

        shadow = d * shadow + (1 - d) * p,   d = decay, or min(decay, (1 + n) / (10 + n)) with warmup
    Buffers (entries of ``model.state_dict()`` that are not parameters: BatchNorm running mean/var)
    are COPIED at each update, not averaged, so the EMA weights are evaluated with the live
    statistics.

    An update works in place: the shadows and the buffer copies are arrays made once, at
    construction, and each update overwrites them from the live parameters and buffers, found
    through references taken at construction (the Parameters; for a tinyeffnet Module, the module
    and attribute that hold each buffer). Nothing is copied wholesale (no state_dict() per step).

    model: anything with ``named_parameters()`` -> (name, Parameter) pairs; for buffers it also needs
           ``state_dict()`` -> {name: array} and ``load_state_dict(dict)``. Without them (a plain
           list of Parameters or (name, Parameter) pairs) only parameters are averaged.
    Usage:
        ema = EMA(model, decay=0.9999, warmup=True)
        ...; opt.step(); ema.update()
        with ema.applied():          # model holds the EMA weights inside the block
            evaluate(model)
    """

    def __init__(self, model, decay: float = 0.9999, warmup: bool = False):
        self.decay = _check_hyper("decay", decay, 0.0, 1.0, where="EMA")
        self.warmup = _check_flag("warmup", warmup, "EMA")
        self.model = model
        if not hasattr(model, "named_parameters") and not hasattr(model, "__iter__"):
            raise TypeError(f"EMA: model must be a Module or an iterable of Parameters, got {type(model).__name__}")
        if hasattr(model, "named_parameters"):
            named = list(model.named_parameters())
        else:
            items = list(model)
            named = [it if isinstance(it, tuple) else (str(i), it) for i, it in enumerate(items)]
        self._params = dict(named)                                        # name -> Parameter
        _parameter_list(self._params.values(), "EMA")
        self.shadow = {name: p.data.copy() for name, p in self._params.items()}
        self._buffer_slots = self._find_buffer_slots()
        self.buffers = self._current_buffers()
        self.num_updates = 0

    def _has_state_dict(self) -> bool:
        return hasattr(self.model, "state_dict") and hasattr(self.model, "load_state_dict")

    def _find_buffer_slots(self):
        """[(key, module, attribute), ...] of every buffer, in state_dict order, for a tinyeffnet
        Module (its ``_state_items``); None for another model (then each update reads state_dict())."""
        if not self._has_state_dict() or not hasattr(self.model, "_state_items"):
            return None
        return [(key, module, attr) for key, module, attr, is_param in self.model._state_items()
                if not is_param and key not in self._params]

    def _current_buffers(self) -> dict:
        """Copies of the model's buffers, written into the arrays of ``self.buffers`` where they fit."""
        if not self._has_state_dict():
            return {}
        if self._buffer_slots is None:
            return {k: np.array(v, copy=True) for k, v in self.model.state_dict().items()
                    if k not in self._params}
        old = getattr(self, "buffers", {})
        buffers = {}
        for key, module, attr in self._buffer_slots:
            live = getattr(module, attr)
            if not isinstance(live, np.ndarray):   # a device array: state_dict() copies it to the host too
                from tinyeffnet import backend

                live = backend.to_host(live)
            copy = old.get(key)
            if isinstance(copy, np.ndarray) and copy.shape == live.shape and copy.dtype == live.dtype:
                np.copyto(copy, live)
            else:                                  # first update, or a loaded copy of another dtype or shape
                copy = np.array(live, copy=True)
            buffers[key] = copy
        return buffers

    def current_decay(self) -> float:
        """The decay the next update uses."""
        if not self.warmup:
            return self.decay
        n = self.num_updates
        return min(self.decay, (1.0 + n) / (10.0 + n))

    def update(self) -> None:
        """shadow = d shadow + (1 - d) p for every parameter; buffers copied."""
        d = self.current_decay()
        for name, p in self._params.items():
            s = self.shadow[name]
            s *= d                     # d * shadow, rounded in the shadow's dtype
            s += (1.0 - d) * p.data    # + (1 - d) * p, rounded: the same numbers as the formula
        self.buffers = self._current_buffers()
        self.num_updates += 1

    def copy_to(self, model=None) -> None:
        """Write the EMA weights (and buffers) into the model (for export)."""
        for name, p in self._params.items():
            p.data[...] = self.shadow[name]
        if self.buffers and self._has_state_dict():
            state = dict(self.model.state_dict())
            state.update({k: v.copy() for k, v in self.buffers.items()})
            self.model.load_state_dict(state)

    @contextlib.contextmanager
    def applied(self):
        """Context: the model holds the EMA weights inside, its own weights are restored after."""
        saved_params = {name: p.data.copy() for name, p in self._params.items()}
        saved_state = ({k: np.array(v, copy=True) for k, v in self.model.state_dict().items()}
                       if self.buffers and self._has_state_dict() else None)
        self.copy_to()
        try:
            yield self.model
        finally:
            for name, p in self._params.items():
                p.data[...] = saved_params[name]
            if saved_state is not None:
                self.model.load_state_dict(saved_state)

    def state_dict(self) -> dict:
        """Flat {str: array}: decay, warmup, num_updates (0-d), shadow.<name>, buffer.<name>."""
        out = {"decay": np.array(self.decay), "warmup": np.array(self.warmup),
               "num_updates": np.array(self.num_updates, dtype=np.int64)}
        out.update({f"shadow.{k}": v.copy() for k, v in self.shadow.items()})
        out.update({f"buffer.{k}": v.copy() for k, v in self.buffers.items()})
        return out

    def load_state_dict(self, state_dict: dict) -> None:
        missing = [f"shadow.{k}" for k in self.shadow if f"shadow.{k}" not in state_dict]
        if missing:
            raise KeyError(f"EMA.load_state_dict: missing {missing[:3]}")
        for name in self.shadow:
            value = np.asarray(state_dict[f"shadow.{name}"])
            if value.shape != self.shadow[name].shape:
                raise ValueError(f"EMA.load_state_dict: shadow.{name} has shape {value.shape}, "
                                 f"expected {self.shadow[name].shape}")
            self.shadow[name] = value.astype(self._params[name].data.dtype, copy=True)
        self.buffers = {k[len("buffer."):]: np.array(v, copy=True)
                        for k, v in state_dict.items() if k.startswith("buffer.")}
        self.decay = float(state_dict["decay"])
        self.warmup = bool(state_dict["warmup"])
        self.num_updates = int(state_dict["num_updates"])
