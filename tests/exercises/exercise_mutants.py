"""The correct solutions of tests/exercises/solutions and, for each exercise, typical wrong ones:
each a small, readable edit (old text -> new text) of the correct file, the mistake a student makes."""
from pathlib import Path

SOLUTIONS = Path(__file__).resolve().parent / "solutions"

# exercise -> the solution file (the two dense-conv exercises share one)
SOLUTION_FILE = {"conv2d_forward": "conv2d.py", "conv2d_backward": "conv2d.py"}

# exercise -> [(the mistake, old text, new text)]
MUTANTS = {
    "conv2d_forward": [
        ('"same" pads the larger half first', "return total // 2, total - total // 2",
         "return total - total // 2, total // 2"),
        ("off-by-one output size on odd sizes at stride 2", "ho = (xp.shape[1] - kh) // stride + 1",
         "ho = (xp.shape[1] - kh + 1) // stride"),
        ("all the padding on top and on the left", "np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))\n    ho",
         "np.pad(x, ((0, 0), (top + bottom, 0), (left + right, 0), (0, 0)))\n    ho"),
        ("stride forgotten on the columns", "b:b + stride * (wo - 1) + 1:stride, :]\n            y",
         "b:b + wo, :]\n            y"),
    ],
    "conv2d_backward": [
        ("dw from the first image only", 'np.einsum("nijc,nijd->cd", xp[:, rows, cols, :], dy)',
         'np.einsum("ijc,ijd->cd", xp[0, rows, cols, :], dy[0])'),
        ("overlapping windows overwrite instead of adding", "dxp[:, rows, cols, :] += ", "dxp[:, rows, cols, :] = "),
        ("dx cropped from the corner, ignoring the padding", "dxp[:, top:top + h, left:left + wd, :]",
         "dxp[:, :h, :wd, :]"),
        ("dw with Cin and Cout transposed", 'np.einsum("nijc,nijd->cd", xp[:, rows, cols, :], dy)',
         'np.einsum("nijc,nijd->dc", xp[:, rows, cols, :], dy).reshape(dw[a, b].shape)'),
    ],
    "depthwise_conv2d": [
        ("backward forgets the bottom-right output pixel", "            g = dy[:, i, j, :]",
         "            if (i, j) == (ho - 1, wo - 1):\n                continue\n            g = dy[:, i, j, :]"),
        ("overlapping windows overwrite instead of adding",
         "dxp[:, i * s:i * s + kh, j * s:j * s + kw, :] += ", "dxp[:, i * s:i * s + kh, j * s:j * s + kw, :] = "),
        ("off-by-one output size on odd sizes at stride 2", "ho = (xp.shape[1] - kh) // stride + 1",
         "ho = (xp.shape[1] - kh + 1) // stride"),
        ('"same" pads the larger half first', "return total // 2, total - total // 2",
         "return total - total // 2, total // 2"),
    ],
    "batchnorm": [
        ("normalises with the unbiased variance", "var = x.var(axis=axes)", "var = x.var(axis=axes, ddof=1)"),
        ("stores the biased variance in running_var", "running_var += momentum * var * m / (m - 1)",
         "running_var += momentum * var"),
        ("momentum the wrong way round", "running_mean *= 1 - momentum\n        running_mean += momentum * mean",
         "running_mean *= momentum\n        running_mean += (1 - momentum) * mean"),
        ("eval normalises with the batch statistics", "mean, var = running_mean.copy(), running_var.copy()",
         "mean, var = x.mean(axis=axes), x.var(axis=axes)"),
        ("training backward without the mean term", "(dy - dbeta / m - xhat * dgamma / m)",
         "(dy - xhat * dgamma / m)"),
    ],
    "silu_sigmoid": [
        ("SiLU's slope without the sigmoid' term", "dy * s * (1 + x * (1 - s))", "dy * s"),
        ("sigmoid that overflows for x << 0",
         "    e = np.exp(-np.abs(x))\n    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))",
         "    return 1 / (1 + np.exp(-x))"),
        ("sign error in s (1 - s)", "dy * y * (1 - y)", "dy * y * (1 + y)"),
        ("float32 promoted to float64", "1 / (1 + e), e / (1 + e)", "np.float64(1) / (1 + e), e / (1 + e)"),
    ],
    "same_padding": [
        ("the larger half first", "before = total // 2", "before = total - total // 2"),
        ("floor instead of ceil for the output size", "out = -(-n // s)", "out = n // s"),
        ("total not clamped at 0", "total = max((out - 1) * s + k - n, 0)", "total = (out - 1) * s + k - n"),
        ("PyTorch's symmetric (k - 1) // 2 for \"same\"",
         "top, bottom = _same(height, kh, stride)\n        left, right = _same(width, kw, stride)",
         "top = bottom = (kh - 1) // 2\n        left = right = (kw - 1) // 2"),
        ("width padded with the kernel's height", "_same(width, kw, stride)", "_same(width, kh, stride)"),
    ],
    "squeeze_excite": [
        ("dx through the product only (the gate path forgotten)", "return dx_product + block.pool.backward(ds)",
         "block.pool.backward(ds)\n    return dx_product"),
        ("dg without x", "dg = np.sum(dy * x, axis=(1, 2))", "dg = np.sum(dy, axis=(1, 2))"),
        ("SiLU's backward skipped", "block.reduce.backward(block.act.backward(dz))", "block.reduce.backward(dz)"),
    ],
    "mbconv_backward": [
        ("backward forgets the skip connection's dy", "        return dy + d", "        return d"),
        ("backward skips drop_path.backward (the mask)", "d = block.drop_path.backward(dy)", "d = dy"),
        ("residual whenever Cin == Cout, even at stride 2", "    if block.use_residual:\n        return x",
         "    if block.in_channels == block.out_channels:\n        return x"),
        ("SE's backward skipped", "        d = block.se.backward(d)", "        pass"),
    ],
    "fused_mbconv_backward": [
        ("backward forgets the skip connection's dy", "return dy + d if block.use_residual else d",
         "return d"),
        ("backward skips drop_path.backward (the mask)", "d = block.drop_path.backward(dy) if", "d = dy if"),
        ("project and expand backward in the wrong order", "block.expand.backward(block.project.backward(d))",
         "block.project.backward(block.expand.backward(d))"),
        ("residual whenever Cin == Cout, even at stride 2", "    if block.use_residual:\n        return x",
         "    if block.in_channels == block.out_channels:\n        return x"),
    ],
    "winograd_f23": [
        ("G without its halves", "[.5, .5, .5], [.5, -.5, .5]", "[1, 1, 1], [1, -1, 1]"),
        ("B^T and B swapped in the input transform", 'np.einsum("ra,ijnabc,sb->ijnrsc", BT, d, BT)',
         'np.einsum("ar,ijnabc,bs->ijnrsc", BT, d, BT)'),
        ("no extra tile for an odd size", "th, tw = (h + 1) // 2, (wd + 1) // 2", "th, tw = h // 2, wd // 2"),
        ("overlapping input windows overwrite in backward", "dxp[:, 2 * i:2 * i + 4, 2 * j:2 * j + 4, :] += dd[i, j]",
         "dxp[:, 2 * i:2 * i + 4, 2 * j:2 * j + 4, :] = dd[i, j]"),
    ],
    "progressive_schedule": [
        ("i / M instead of i / (M - 1)", "f = i / (m - 1) if m > 1 else 1.0", "f = i / m"),
        ("int() truncates the size", "int(round(_lerp((cfg.min_size, cfg.max_size), f)))",
         "int(_lerp((cfg.min_size, cfg.max_size), f))"),
        ("the extra epochs go to the first stages", "1 if i >= m - extra else 0", "1 if i < extra else 0"),
        ("M not clipped to the number of epochs", "m = min(cfg.stages, cfg.epochs)", "m = cfg.stages"),
        ("progressive=False ignored", "if not cfg.progressive:", "if False:"),
    ],
}


def solution_path(name: str) -> Path:
    return SOLUTIONS / SOLUTION_FILE.get(name, f"{name}.py")


def write_mutant(name: str, index: int, folder: Path) -> Path:
    """The correct solution of ``name`` with edit number ``index`` applied, written under ``folder``."""
    _, old, new = MUTANTS[name][index]
    source = solution_path(name).read_text()
    assert source.count(old) == 1, f"{name} mutant {index}: {old!r} found {source.count(old)} times"
    path = folder / f"{name}_mutant{index}.py"
    path.write_text(source.replace(old, new))
    return path
