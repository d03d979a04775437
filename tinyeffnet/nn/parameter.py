"""Parameter: a learnable array and the gradient that backward accumulates into it."""
from __future__ import annotations

import numpy as np

from .. import backend
from ..ops._checks import check_gradient_for


class Parameter:
    """A learnable tensor, like ``torch.nn.Parameter``.

    data:  the values, a float32 or float64 numpy array (or a device array after ``.to("cuda")``).
    grad:  same shape and dtype; every backward ADDS into it (so gradients of shared uses sum up),
           ``zero_grad()`` resets it. None until the first backward or zero_grad.
    decay: whether weight decay applies. False for BatchNorm's gamma/beta and for biases, as in the
           paper's recipe (weight decay 1e-5 "excluding bias, gamma, beta").
    """

    def __init__(self, data: np.ndarray, decay: bool = True):
        if not isinstance(data, np.ndarray) or data.dtype not in (np.float32, np.float64):
            got = data.dtype if isinstance(data, np.ndarray) else type(data).__name__
            raise TypeError(f"Parameter data must be a float32 or float64 numpy array, got {got}")
        self.data = data
        self.grad = None
        self.decay = decay

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    def zero_grad(self) -> None:
        ops = backend.ops_for(self.data)  # the tier of the device that holds the data
        if self.grad is None:
            self.grad = ops.zeros(self.data.shape, self.data.dtype)
        else:
            ops.fill(self.grad, 0)

    def accumulate(self, g: np.ndarray) -> None:
        """grad += g (a copy of g on first use: a later += must not write into an array an op still holds).

        g must have the parameter's dtype and shape: a float64 gradient for a float32 parameter is a
        TypeError on every device, never a silent cast.
        """
        check_gradient_for(g, self.data)
        ops = backend.ops_for(self.data)
        if self.grad is None:
            self.grad = ops.copy(g)
        else:
            ops.axpy(1, g, self.grad)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype}, decay={self.decay})"
