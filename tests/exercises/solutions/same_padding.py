"""A correct resolve_padding: PyTorch int padding, TensorFlow "same". Test fixture."""


def _same(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    before = total // 2
    return before, total - before


def resolve_padding(padding, height, width, kh, kw, stride):
    if padding == "same":
        top, bottom = _same(height, kh, stride)
        left, right = _same(width, kw, stride)
        return top, bottom, left, right
    return padding, padding, padding, padding
