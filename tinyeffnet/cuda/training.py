"""A whole training step on the GPU: forward, loss, backward and the SGD update, all on device arrays.

Dimension legend: N batch, H, W image size, K classes; a parameter p has any shape P.

    logits = model(x)                                   (N, K)     every layer on the device
    L, dlogits = softmax_cross_entropy(logits, labels)  0-d, (N, K)
    model.backward(dlogits)                             fills p.grad for every parameter p
    SGD (torch.optim.SGD, exactly tinyeffnet.optim.SGD):
        d = g + wd p;  buf = d (first step) | momentum buf + d
        d = d + momentum buf (nesterov) | buf;  p = p - lr d          (elementwise.sgd_step, in place)

Nothing comes back to the host inside a step: the loss stays a 0-d device array
(``float(tinyeffnet.cuda.to_host(loss))`` reads it when you want it), the momentum buffers live on the
device. Two small host -> device copies remain, by design: the labels (N integers) and the dropout /
drop-path coins, which the host's numpy Generator draws so that CPU and GPU runs see the same masks
(see regularization.py).

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
from .losses import softmax_cross_entropy


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


def train_step(model, x, labels, optimizer, label_smoothing: float = 0.0):
    """One training step of ``model`` (already ``.to("cuda")``) on the batch ``x``, on the device.

        clear grads;  logits = model(x);  L, dlogits = softmax_cross_entropy(logits, labels, ls)
        model.backward(dlogits);  optimizer.step()

    x: (N, H, W, 3) device array; labels: (N,) class indices (numpy or device) or (N, K) probabilities;
    optimizer: ``tinyeffnet.cuda.SGD`` over the model's parameters. The model's mode is left as it is
    (call ``model.train()`` first). Gradients are cleared by setting them to None (torch's
    ``zero_grad(set_to_none=True)``): the first accumulate then copies instead of filling and adding.
    Returns (loss, logits): a 0-d device array and (N, K) device array, nothing copied to the host.
    No cache: the step is complete when it returns.
    """
    for param in model.parameters():
        param.grad = None
    logits = model(x)                                                             # (N, K)
    loss, dlogits = softmax_cross_entropy(logits, labels, label_smoothing)       # 0-d, (N, K)
    model.backward(dlogits)
    optimizer.step()
    return loss, logits
