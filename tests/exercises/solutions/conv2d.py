"""A correct dense convolution, written from the equations (channels-last). Test fixture."""
import numpy as np


def _same(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def _pads(padding, h, w, kh, kw, stride):
    if padding == "same":
        return _same(h, kh, stride) + _same(w, kw, stride)
    return (padding,) * 4


def conv2d_forward(x, w, stride=1, padding=0):
    kh, kw, cin, cout = w.shape
    top, bottom, left, right = _pads(padding, x.shape[1], x.shape[2], kh, kw, stride)
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    ho = (xp.shape[1] - kh) // stride + 1
    wo = (xp.shape[2] - kw) // stride + 1
    y = np.zeros((x.shape[0], ho, wo, cout), dtype=x.dtype)
    for a in range(kh):
        for b in range(kw):
            patch = xp[:, a:a + stride * (ho - 1) + 1:stride, b:b + stride * (wo - 1) + 1:stride, :]
            y += np.einsum("nijc,cd->nijd", patch, w[a, b])
    return y, (x, w, stride, (top, bottom, left, right))


def conv2d_backward(dy, cache):
    x, w, stride, (top, bottom, left, right) = cache
    kh, kw = w.shape[:2]
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    ho, wo = dy.shape[1:3]
    for a in range(kh):
        for b in range(kw):
            rows = slice(a, a + stride * (ho - 1) + 1, stride)
            cols = slice(b, b + stride * (wo - 1) + 1, stride)
            dw[a, b] = np.einsum("nijc,nijd->cd", xp[:, rows, cols, :], dy)
            dxp[:, rows, cols, :] += np.einsum("nijd,cd->nijc", dy, w[a, b])
    h, wd = x.shape[1:3]
    return dxp[:, top:top + h, left:left + wd, :], dw
