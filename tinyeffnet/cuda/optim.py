"""The SGD optimiser on the GPU: ``tinyeffnet.optim.SGD`` with the update done by a CUDA kernel.

Dimension legend: a parameter p has any shape P; g is its gradient, buf its momentum buffer.

    SGD (torch.optim.SGD, exactly tinyeffnet.optim.SGD):
        d = g + wd p;  buf = d (first step) | momentum buf + d
        d = d + momentum buf (nesterov) | buf;  p = p - lr d          (elementwise.sgd_step, in place)

A whole training step on the GPU is the same code as on the CPU: ``tinyeffnet.train.update_step``
(forward, loss, backward, this optimiser's step) on a model moved with ``model.to("cuda")``. Nothing
comes back to the host inside it except, when asked, the loss for its finiteness check; the
momentum buffers live on the device.

Why a subclass instead of changing ``tinyeffnet.optim.SGD``: that class is plain NumPy on the host
(``p.data -= lr * d``); ``SGD`` here keeps its API, hyperparameter checks, param groups, ``decay``
flags and checkpoint format, and only replaces the per-parameter update with the CUDA kernel. Its
``state_dict`` holds host copies, so a checkpoint written on the GPU loads into the CPU optimizer
and back.
"""
from __future__ import annotations

import numpy as np

from ..optim import SGD as HostSGD
from . import to_device
from ._runtime import is_numba_device_array
from .elementwise import sgd_step


class SGD(HostSGD):
    """``tinyeffnet.optim.SGD`` for parameters on the GPU (host parameters use the NumPy update).

        d = g + wd p;  buf = d (first step) | momentum buf + d;  d = d + momentum buf (nesterov) | buf
        p = p - lr d                                           (wd = 0 for parameters with decay=False)

    State per parameter: ``momentum_buffer`` (a device array of p's shape) when momentum > 0.
    """

    def _update(self, p, state, group, lr, wd):
        if not is_numba_device_array(p.data):
            return super()._update(p, state, group, lr, wd)
        momentum = float(group["momentum"])
        buffer = sgd_step(p.data, p.grad, lr, momentum, wd, group["nesterov"], state.get("momentum_buffer"))
        if buffer is not None:
            state["momentum_buffer"] = buffer

    def state_dict(self) -> dict:
        """As ``tinyeffnet.optim.SGD.state_dict``, with every device buffer copied to the host."""
        on_device = self.state
        self.state = {k: {name: _host(value) for name, value in buffers.items()} for k, buffers in on_device.items()}
        try:
            return super().state_dict()
        finally:
            self.state = on_device

    def load_state_dict(self, state_dict: dict) -> None:
        """As ``tinyeffnet.optim.SGD.load_state_dict``; buffers go to the device of their parameter."""
        super().load_state_dict(state_dict)
        params = [p for _, _, p in self._indexed_params()]
        for k, buffers in self.state.items():
            if is_numba_device_array(params[k].data):
                for name, value in buffers.items():
                    if np.ndim(value) > 0:
                        buffers[name] = to_device(value)


def _host(value):
    return value.copy_to_host() if is_numba_device_array(value) else value
