"""The register-blocked direct conv (ops/direct.py and the kernels it generates) against the NumPy
tier, im2col, finite differences and PyTorch.

Every arithmetic test runs with both block-size sets (the AVX-512 one, 8 pixels or input channels per
block, and the AVX2 one, 4), whatever the CPU running the tests: ``block_sizes`` sets how many vector
registers the op believes it has. Shapes cover channel counts that are not whole blocks (padded with
zero channels) and each channel block (8, 16, 24, 32), maps narrower than a block (the small-JB
kernels), kernels 1x1 to 5x5, padding 0 to kernel - 1, asymmetric pads, and stride 2 (the stem: the stride-1
kernels on the four phases of its input).
"""
import platform

import numba
import numpy as np
import pytest
import torch  # noqa: F401  (torch missing must fail these tests, never skip them)
import torch.nn.functional as F
from numba import njit

from tinyeffnet import nn
from tinyeffnet.ops import conv2d, direct, reference
from tinyeffnet.testing import gradcheck, torch_parity

# (N, H, W, Cin, Cout, kernel, stride, pads (top, bottom, left, right))
SHAPES = [(2, 6, 7, 3, 5, 3, 1, (1, 1, 1, 1)), (1, 5, 9, 16, 16, 3, 1, (1, 1, 1, 1)),
          (2, 9, 4, 5, 2, 3, 1, (1, 1, 1, 1)), (1, 1, 1, 2, 3, 3, 1, (1, 1, 1, 1)),
          (2, 8, 8, 4, 24, 3, 1, (0, 0, 0, 0)), (2, 7, 7, 3, 17, 5, 1, (2, 2, 2, 2)),
          (1, 6, 6, 2, 2, 1, 1, (0, 0, 0, 0)), (2, 6, 6, 3, 3, 3, 1, (2, 2, 2, 2)),
          (1, 5, 10, 9, 33, 3, 1, (0, 2, 1, 0)), (3, 12, 11, 24, 8, 3, 1, (1, 1, 1, 1)),
          (1, 3, 2, 8, 32, 2, 1, (1, 0, 0, 1)), (2, 14, 13, 32, 48, 3, 1, (1, 1, 1, 1)),
          (2, 9, 10, 3, 16, 3, 2, (1, 1, 1, 1)), (1, 8, 8, 3, 24, 3, 2, (0, 1, 0, 1)),
          (2, 7, 6, 5, 32, 3, 2, (0, 0, 0, 0)), (1, 17, 16, 6, 8, 5, 2, (2, 2, 2, 2))]
IDS = ["x".join(map(str, s[:6])) + f"s{s[6]}p" + "".join(map(str, s[7])) for s in SHAPES]


@pytest.fixture(params=[32, 16], ids=["avx512-blocks", "avx2-blocks"])
def block_sizes(request, monkeypatch):
    monkeypatch.setattr(direct, "vector_registers", lambda: request.param)
    return request.param


def _sample(n, h, w, cin, cout, k, stride, pads, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, cin)).astype(dtype)
    wt = rng.standard_normal((k, k, cin, cout)).astype(dtype)
    ho, wo = (h + pads[0] + pads[1] - k) // stride + 1, (w + pads[2] + pads[3] - k) // stride + 1
    dy = np.random.default_rng(seed + 100).standard_normal((n, ho, wo, cout)).astype(dtype)
    return x, wt, dy


def _reference(x, w, stride, pads, dy):
    """The NumPy tier, with the pads given to it as a padded input (its padding option is symmetric)."""
    top, bottom, left, right = pads
    xpad = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    y, cache = reference.conv2d_forward(xpad, w, stride, 0)
    dxpad, dw = reference.conv2d_backward(dy, cache)
    return y, dxpad[:, top:top + x.shape[1], left:left + x.shape[2]], dw


def _direct(x, w, stride, pads, dy):
    top, bottom, left, right = pads
    if pads == (top,) * 4:
        y, cache = direct.conv2d_direct_forward(x, w, stride, top)
    else:                                   # asymmetric pads: the ConvCache fields, as "same" resolves them
        x, w, _, _ = direct.check_direct_inputs(x, w, stride, 0, "test")
        cache = direct.DirectCache(x, w, stride, pads)
        y = direct.convolve(x, w, stride, pads, cache.output_shape[1:3])
    return (y, *direct.conv2d_direct_backward(dy, cache))


def test_every_kernel_the_op_can_pick_is_generated(block_sizes):
    module = direct.kernels()
    for cout in (8, 16, 24, 32, 40, 48, 64, 96):
        for cin in (1, 3, 4, 8, 12, 16, 20, 24):        # 12, 20: a stride-2 conv's phases of 3 and 5 channels
            for wo in range(1, 14):
                jb, cb, cib = direct.blocks(cin, cout, wo)
                assert jb <= wo and cout % cb == 0 or cb == 8
                assert hasattr(module, f"correlate_j{jb}_c{cb}")
                assert hasattr(module, f"weight_gradient_i{cib}_c{cb}")
    assert direct.kernels() is module                    # generated and imported once per process


def test_the_generated_module_is_the_generators_text_in_the_cache_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(direct, "_kernels_directory", lambda: str(tmp_path / "cache"))
    direct.kernels.cache_clear()
    try:
        module = direct.kernels()
        written = list((tmp_path / "cache").glob("direct_kernels_*.py"))
        assert len(written) == 1 and written[0].read_text() == direct.kernels_text()
        assert module.__file__ == str(written[0])
        blocked = tmp_path / "a-file"
        blocked.write_text("")                            # a directory that cannot be made: the temp fallback
        monkeypatch.setattr(direct, "_kernels_directory", lambda: str(blocked / "cache"))
        direct.kernels.cache_clear()
        assert direct.kernels().__file__.startswith(direct.tempfile.gettempdir())
    finally:
        direct.kernels.cache_clear()


@pytest.mark.parametrize("kernel, cin, pads", [(3, 3, (1, 1, 1, 1)), (3, 2, (0, 1, 0, 1)), (5, 1, (2, 2, 2, 2)),
                                               (4, 2, (1, 2, 0, 1)), (1, 2, (0, 0, 0, 0))])
def test_a_stride_2_conv_is_a_stride_1_conv_on_the_phases_of_its_input(kernel, cin, pads):
    # The identity behind the stride-2 path, on plain NumPy sums: xpad * w at stride 2 equals
    # space_to_depth(x) * phase_weight(w) at stride 1, and unphase_weight takes phase_weight back.
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 9, 8, cin)), rng.standard_normal((kernel, kernel, cin, 3))
    top, bottom, left, right = pads
    xpad = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    expected, _ = reference.conv2d_forward(xpad, w, 2, 0)
    w2 = direct.phase_weight(w)
    half = -(-kernel // 2)
    assert w2.shape == (half, half, 4 * cin, 3)
    ho, wo = expected.shape[1:3]
    xs = direct.space_to_depth(x, top, left, (ho + half - 1, wo + half - 1), 4 * cin + 1)
    assert xs.shape == (2, ho + half - 1, wo + half - 1, 4 * cin + 1) and not xs[..., 4 * cin].any()
    assert xs[1, 1, 2, (2 * 1 + 0) * cin] == xpad[1, 3, 4, 0]          # phase (rh, rw) = (1, 0) of pixel (1, 2)
    phases, _ = reference.conv2d_forward(xs[..., :4 * cin], w2, 1, 0)
    np.testing.assert_allclose(phases, expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(direct.unphase_weight(w2, kernel, kernel), w)


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_float64_equals_the_numpy_tier(shape, block_sizes):
    x, w, dy = _sample(*shape, np.float64)
    stride, pads = shape[6:]
    for name, ours, ref in zip(("y", "dx", "dw"), _direct(x, w, stride, pads, dy), _reference(x, w, stride, pads, dy)):
        assert ours.shape == ref.shape and ours.dtype == np.float64, name
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12 * max(1.0, np.abs(ref).max()), err_msg=name)


@pytest.mark.parametrize("shape", [(8, 24, 24, 16, 16, 1), (2, 32, 30, 24, 24, 1), (4, 13, 9, 20, 12, 1),
                                   (8, 48, 48, 3, 16, 2)], ids=["stage1-tiny", "stage1-S", "odd", "stem"])
def test_float32_error_is_close_to_im2col(shape, block_sizes):
    # Against float64 ground truth. im2col in float32 is the baseline; the direct sums are sequential
    # over taps and channels (dw: over the pixels of a row group, then over groups), so within 4x of
    # im2col and below 5e-6 of the largest value.
    n, h, width, cin, cout, stride = shape
    x, w, dy = _sample(n, h, width, cin, cout, 3, stride, (1, 1, 1, 1), np.float32)
    y64, cache64 = reference.conv2d_forward(x.astype(np.float64), w.astype(np.float64), stride, 1)
    truth = (y64, *reference.conv2d_backward(dy.astype(np.float64), cache64))
    y32, cache32 = conv2d.conv2d_forward(x, w, stride, 1)
    baseline = (y32, *conv2d.conv2d_backward(dy, cache32))
    y, cache = direct.conv2d_direct_forward(x, w, stride, 1)
    ours = (y, *direct.conv2d_direct_backward(dy, cache))

    def relative(a, b):
        return np.abs(a - b).max() / np.abs(b).max()

    for name, mine, base, exact in zip(("y", "dx", "dw"), ours, baseline, truth):
        assert mine.dtype == np.float32
        assert relative(mine, exact) < 5e-6, name
        assert relative(mine, exact) < 4 * relative(base, exact) + 1e-7, name


@pytest.mark.parametrize("stride", [1, 2])
def test_float64_gradcheck_every_entry(block_sizes, stride):
    x, w, _ = _sample(2, 5, 4, 3, 2, 3, stride, (1, 1, 1, 1), np.float64)
    report = gradcheck(lambda x, w: direct.conv2d_direct_forward(x, w, stride, 1),
                       direct.conv2d_direct_backward, [x, w], names=["x", "w"], samples=x.size + w.size)
    assert report.ok, report


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("stride, padding", [(1, 0), (1, 1), (1, 2), (2, 1), (2, 0)])
def test_matches_torch(dtype, stride, padding, block_sizes):
    x, w, _ = _sample(2, 7, 9, 5, 18, 3, stride, (padding,) * 4, dtype)

    def torch_forward(xt, wt):
        y = F.conv2d(xt.permute(0, 3, 1, 2).contiguous(), wt.permute(3, 2, 0, 1).contiguous(),
                     stride=stride, padding=padding)
        return y.permute(0, 2, 3, 1)

    report = torch_parity(lambda x, w: direct.conv2d_direct_forward(x, w, stride, padding),
                          direct.conv2d_direct_backward, torch_forward, [x, w], names=["x", "w"])
    assert report.ok, report


def test_the_cache_says_direct_and_each_backward_takes_only_its_own():
    x, w, dy = _sample(1, 4, 4, 2, 3, 3, 1, (1, 1, 1, 1), np.float64)
    _, cache = direct.conv2d_direct_forward(x, w, 1, "same")
    assert cache.algorithm == "direct" and isinstance(cache, direct.DirectCache) and cache.pads == (1, 1, 1, 1)
    _, im2col_cache = conv2d.conv2d_forward(x, w, 1, 1)
    with pytest.raises(ValueError, match="conv2d_backward: this cache was made by the direct conv.*"
                                         "conv2d_direct_backward"):
        conv2d.conv2d_backward(dy, cache)
    with pytest.raises(ValueError, match="conv2d_direct_backward: this cache was made by the im2col conv"):
        direct.conv2d_direct_backward(dy, im2col_cache)
    with pytest.raises(ValueError, match="conv2d_weight_gradient: this cache was made by the direct conv"):
        conv2d.conv2d_weight_gradient(dy, cache)
    with pytest.raises(ValueError, match="conv2d_direct_weight_gradient: this cache was made by the im2col"):
        direct.conv2d_direct_weight_gradient(dy, im2col_cache)
    np.testing.assert_array_equal(direct.conv2d_direct_weight_gradient(dy, cache), direct.conv2d_direct_backward(dy, cache)[1])


@pytest.mark.parametrize("w_shape, stride, padding", [((3, 3, 2, 2), 3, 1), ((3, 3, 2, 2), 1, 3),
                                                      ((1, 1, 2, 2), 1, 1), ((5, 5, 2, 2), 1, 5)])
def test_the_direct_op_refuses_other_geometries(w_shape, stride, padding):
    x = np.zeros((1, 12, 12, w_shape[2]))
    with pytest.raises(ValueError, match="conv2d_direct_forward: the direct conv covers stride-1 convs"):
        direct.conv2d_direct_forward(x, np.zeros(w_shape), stride, padding)


def test_bad_input_gets_the_conv_checks_message():
    with pytest.raises(ValueError, match="conv2d_forward: x must be 4-D"):
        direct.conv2d_direct_forward(np.zeros((3, 4)), np.zeros((3, 3, 4, 4)), 1, 1)
    _, cache = direct.conv2d_direct_forward(np.zeros((1, 4, 4, 2)), np.zeros((3, 3, 2, 3)), 1, 1)
    with pytest.raises(ValueError, match="dy"):
        direct.conv2d_direct_backward(np.zeros((1, 4, 4, 5)), cache)


@pytest.mark.parametrize("w_shape, stride, padding, applies, chosen", [
    ((3, 3, 16, 16), 1, 1, True, True),            # the main job's stage 1
    ((3, 3, 24, 24), 1, "same", True, True),       # EfficientNetV2-S's stage 1, ported weights
    ((3, 3, 32, 32), 1, 1, True, True),
    ((3, 3, 24, 96), 1, 1, True, False),           # a wide expand conv: BLAS's GEMM is faster
    ((3, 3, 48, 24), 1, 1, True, False),
    ((3, 3, 3, 16), 2, 1, True, True),             # the main job's stem: stride 2
    ((3, 3, 3, 24), 2, "same", True, True),        # S's stem, ported weights ("same": resolved per input)
    ((3, 3, 16, 64), 2, 1, True, False),           # a stage's first, strided, expand conv: wide
    ((3, 3, 16, 16), 3, 1, False, False),          # stride 3
    ((3, 3, 16, 16), 1, 3, False, False),          # padding beyond kernel - 1
    ((1, 1, 16, 16), 1, 0, True, False),           # 1x1: already a GEMM without im2col
    ((5, 5, 8, 8), 1, 2, True, True),
    ((4, 4, 8, 8), 1, "same", False, False),       # "same" needs an odd kernel
    ((3, 3, 8, 8), 1, (0, 2, 1, 1), True, True),   # resolved, asymmetric pads
])
def test_which_geometries_take_the_direct_conv(w_shape, stride, padding, applies, chosen):
    assert direct.applies(w_shape, stride, padding) is applies
    assert direct.chosen_for(w_shape, stride, padding) is chosen
    if isinstance(padding, (int, str)) and w_shape[0] == w_shape[1] and (padding != "same" or w_shape[0] % 2) \
            and stride in (1, 2):
        assert (nn.Conv2d(w_shape[2], w_shape[3], w_shape[0], stride, padding).algorithm == "direct") is chosen


def test_the_superword_vectorizer_is_on_only_while_a_kernel_compiles(monkeypatch):
    seen = []
    monkeypatch.setattr(direct.kernels(), "correlate_j1_c8", lambda *args: seen.append(numba.config.SLP_VECTORIZE))
    before = numba.config.SLP_VECTORIZE
    direct._run("correlate_j1_c8")
    assert seen == [1] and numba.config.SLP_VECTORIZE == before


def test_with_the_superword_vectorizer_the_sums_are_vector_fmas():
    # What the register blocking is for: the 16 sums of a pixel become packed multiply-adds. Compiled
    # here afresh (a cached kernel cannot be inspected), the way direct._run compiles the real one.
    module = direct.kernels()
    fresh = njit(parallel=True, fastmath=module.FASTMATH)(module.correlate_j4_c16.py_func)
    xp, wb, y = np.zeros((1, 3, 6, 2), np.float32), np.zeros((1, 3, 3, 2, 16), np.float32), np.zeros((1, 1, 4, 1, 16), np.float32)
    with direct._superword_vectorization():
        fresh(xp, wb, y)
    asm = "\n".join(fresh.inspect_asm().values())
    if platform.machine() in ("x86_64", "AMD64"):
        assert "fmadd" in asm and "ps\t%ymm" in asm.replace("ps\t%zmm", "ps\t%ymm"), "no packed FMAs"
    else:
        assert asm.strip(), "no code"


def test_a_fast_model_runs_the_direct_conv_in_its_thin_layers(monkeypatch):
    from tinyeffnet.models import create_model
    from tinyeffnet.ops import winograd
    monkeypatch.setattr(winograd, "vector_registers", lambda: 16)    # Winograd's AVX2 rule: every width
    model = create_model("efficientnetv2_tiny", num_classes=10, seed=0)
    chosen = {(conv.in_channels, conv.out_channels, conv.stride): conv.algorithm
              for conv in model.modules() if isinstance(conv, nn.Conv2d) and conv.kernel_size == 3}
    assert chosen[(16, 16, 1)] == "direct"                        # stage 1
    assert chosen[(24, 96, 1)] == chosen[(32, 128, 1)] == "winograd_or_im2col"
    assert chosen[(3, 16, 2)] == "direct"                         # the stem
    assert chosen[(16, 64, 2)] == chosen[(24, 96, 2)] == "im2col"  # wide strided expand convs
