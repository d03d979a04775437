"""A correct depthwise convolution, written from the equations; backward loops over output pixels. Test fixture."""
import numpy as np


def _same(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def depthwise_conv2d_forward(x, w, stride=1, padding=0):
    kh, kw, c = w.shape
    if padding == "same":
        pads = _same(x.shape[1], kh, stride) + _same(x.shape[2], kw, stride)
    else:
        pads = (padding,) * 4
    top, bottom, left, right = pads
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    ho = (xp.shape[1] - kh) // stride + 1
    wo = (xp.shape[2] - kw) // stride + 1
    y = np.zeros((x.shape[0], ho, wo, c), dtype=x.dtype)
    for a in range(kh):
        for b in range(kw):
            y += xp[:, a:a + stride * (ho - 1) + 1:stride, b:b + stride * (wo - 1) + 1:stride, :] * w[a, b]
    return y, (x, w, stride, pads)


def depthwise_conv2d_backward(dy, cache):
    x, w, s, (top, bottom, left, right) = cache
    kh, kw, _ = w.shape
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    ho, wo = dy.shape[1:3]
    for i in range(ho):
        for j in range(wo):
            g = dy[:, i, j, :]                                   # (N, C)
            window = xp[:, i * s:i * s + kh, j * s:j * s + kw, :]  # (N, KH, KW, C)
            dw += np.einsum("nabc,nc->abc", window, g)
            dxp[:, i * s:i * s + kh, j * s:j * s + kw, :] += g[:, None, None, :] * w
    return dxp[:, top:top + x.shape[1], left:left + x.shape[2], :], dw
