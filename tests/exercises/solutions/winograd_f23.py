"""A correct Winograd F(2x2, 3x3), with einsum over whole tiles. Test fixture."""
import numpy as np

BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=float)
G = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], dtype=float)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=float)


def transform_weights(w):
    u = np.einsum("ra,abio,sb->rsio", G, w, G)
    return u.reshape(16, w.shape[2], w.shape[3])


def _input_tiles(x):
    n, h, wd, cin = x.shape
    th, tw = (h + 1) // 2, (wd + 1) // 2
    xp = np.zeros((n, 2 * th + 2, 2 * tw + 2, cin), dtype=x.dtype)
    xp[:, 1:h + 1, 1:wd + 1, :] = x
    d = np.stack([np.stack([xp[:, 2 * i:2 * i + 4, 2 * j:2 * j + 4, :] for j in range(tw)]) for i in range(th)])
    return np.einsum("ra,ijnabc,sb->ijnrsc", BT, d, BT), th, tw      # V = B^T d B, (th, tw, N, 4, 4, Cin)


def winograd_conv3x3_forward(x, w):
    n, h, wd, _ = x.shape
    v, th, tw = _input_tiles(x)
    u = transform_weights(w).reshape(4, 4, w.shape[2], w.shape[3])
    m = np.einsum("ijnrsc,rsco->ijnrso", v, u)
    yt = np.einsum("pr,ijnrso,qs->ijnpqo", AT, m, AT)                 # (th, tw, N, 2, 2, Cout)
    y = yt.transpose(2, 0, 3, 1, 4, 5).reshape(n, 2 * th, 2 * tw, w.shape[3])
    return np.ascontiguousarray(y[:, :h, :wd, :])


def winograd_conv3x3_backward(dy, x, w):
    n, h, wd, cin = x.shape
    cout = w.shape[3]
    v, th, tw = _input_tiles(x)
    dyp = np.zeros((n, 2 * th, 2 * tw, cout), dtype=dy.dtype)
    dyp[:, :h, :wd, :] = dy
    dyt = dyp.reshape(n, th, 2, tw, 2, cout).transpose(1, 3, 0, 2, 4, 5)
    dm = np.einsum("pr,ijnpqo,qs->ijnrso", AT, dyt, AT)
    u = transform_weights(w).reshape(4, 4, cin, cout)
    du = np.einsum("ijnrsc,ijnrso->rsco", v, dm)
    dw = np.einsum("ra,rsco,sb->abco", G, du, G)
    dv = np.einsum("ijnrso,rsco->ijnrsc", dm, u)
    dd = np.einsum("ra,ijnrsc,sb->ijnabc", BT, dv, BT)
    dxp = np.zeros((n, 2 * th + 2, 2 * tw + 2, cin), dtype=x.dtype)
    for i in range(th):
        for j in range(tw):
            dxp[:, 2 * i:2 * i + 4, 2 * j:2 * j + 4, :] += dd[i, j]
    return np.ascontiguousarray(dxp[:, 1:h + 1, 1:wd + 1, :]), dw
