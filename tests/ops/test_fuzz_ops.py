"""Every op's forward and backward against random input (hypothesis): a right answer or a clear error.

Hypothesis draws shapes (zero-size axes, ranks 0 to 5), dtypes (float16/32/64, ints, bool, complex),
memory layouts (C order, Fortran order, strided views), values (normal ones, NaN, +-inf) and
options (in range, out of range, NaN, None, a wrong type), mostly near a valid call so that both the
accepting and the refusing paths are walked. For each draw the Numba tier (``tinyeffnet.ops``) and
the reference tier (``tinyeffnet.ops.reference``) are both called and must agree:

- both refuse, with the same TypeError / ValueError, whose message starts with the op's name and
  names one of its arguments; never a Numba TypingError, IndexError, ZeroDivisionError, ...; or
- both answer, with the same shapes and dtypes and values within a tolerance scaled by the
  magnitude of the tensors involved (float32: 1e-4 of it; float64: 1e-9), and NaN / inf in the
  same places. One exception: the convolutions with NaN / inf in their input, where IEEE leaves the
  places to the algorithm. The reference multiplies padding zeros by dy (0 * NaN = NaN) where the
  Numba kernels skip the padding (the gradient of a tap that sees only padding is exactly 0), and
  Winograd mixes the 16 inputs of a tile, so one inf makes NaN of all 4 outputs of the tile. There
  only the entries finite in both tiers must agree (and with finite input, the places).

Values stay moderate (normal, scale 2) apart from the NaN / inf entries: near float32's overflow a
sum overflows to inf or not depending on its order, which differs between tiers by design.

Backward runs with the real cache of the forward and a random upstream gradient (sometimes of the
wrong shape or dtype). Deterministic: ``derandomize=True`` (the same examples on every run and
machine), 40 examples per op, no deadline (the first example of each op compiles its kernels).
"""
import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyeffnet import ops
from tinyeffnet.ops import reference

# NaN and inf inputs make NumPy (the reference tier) warn "invalid value encountered": expected here
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.data_too_large])

OTHER = [np.float16, np.int64, np.int32, np.bool_, np.complex64]
SPECIALS = [None, None, None, None, np.nan, np.inf, -np.inf, "all"]


# ------------------------------------------------------------------------------------- drawing
def make_array(shape, dtype, layout, seed, special):
    """A reproducible array: normal values (scale 2), a few entries replaced by ``special`` (NaN,
    inf, -inf, or "all" of them) for float dtypes, laid out C, Fortran or as a strided view."""
    r = np.random.default_rng(seed)
    values = r.standard_normal(shape) * 2
    if np.dtype(dtype).kind == "f" and special is not None and values.size:
        picks = [np.nan, np.inf, -np.inf] if special == "all" else [special]
        flat = values.reshape(-1)
        for value in picks:
            flat[r.integers(values.size)] = value
    if np.dtype(dtype).kind in "iub":
        values = np.round(values)
    array = values.astype(dtype)
    if layout == "F":
        return np.asfortranarray(array)
    if layout == "strided" and array.ndim:
        base = np.zeros(array.shape[:-1] + (2 * array.shape[-1],), dtype)
        base[..., ::2] = array
        return base[..., ::2]
    return array


def often(draw, chance_in_ten: int = 8) -> bool:
    """True in about ``chance_in_ten`` draws of ten: the valid choice is the common one, so that most
    examples reach the kernels, while the odd ones test the refusals."""
    return draw(st.integers(0, 9)) < chance_in_ten


@st.composite
def arrays(draw, shape, dtype=None, keep_dtype=False):
    """An array of ``shape`` (a tuple or a strategy for one). dtype: usually ``dtype`` (or float32 /
    float64 when not given), else another float dtype or a non-float one; values sometimes hold
    NaN / inf; the memory is C order, Fortran order or a strided view."""
    if isinstance(shape, st.SearchStrategy):
        shape = draw(shape)
    if dtype is None:
        dtype = draw(st.sampled_from([np.float32, np.float64]))
    if not keep_dtype and not often(draw, 9):
        dtype = draw(st.sampled_from([np.float64 if dtype == np.float32 else np.float32] + OTHER))
    layout = draw(st.sampled_from(["C", "F", "strided"]))
    special = None if often(draw, 7) else draw(st.sampled_from([np.nan, np.inf, -np.inf, "all"]))
    return make_array(tuple(shape), dtype, layout, draw(st.integers(0, 2 ** 16)), special)


@st.composite
def array_or_not(draw, shape, dtype=None):
    """Usually an array (see ``arrays``), now and then a list, a float, None or a str."""
    if often(draw, 9):
        return draw(arrays(shape, dtype))
    return draw(st.sampled_from([None, 1.0, [[1.0, 2.0]], "x"]))


def sizes(high=3):
    return st.integers(0, high) | st.integers(1, high)          # zero-size axes now and then


@st.composite
def any_shape(draw, rank=None):
    rank = draw(st.integers(0, 5)) if rank is None else rank
    return tuple(draw(sizes()) for _ in range(rank))


@st.composite
def shape_near(draw, shape):
    """Usually ``shape``; sometimes one axis changed, one axis more or less, or any shape."""
    shape = tuple(shape)
    if often(draw, 8):
        return shape
    kind = draw(st.sampled_from(["axis", "rank+", "rank-", "any"]))
    if kind == "axis" and shape:
        i = draw(st.integers(0, len(shape) - 1))
        return shape[:i] + (draw(sizes(4)),) + shape[i + 1:]
    if kind == "rank+":
        return shape + (draw(sizes()),)
    if kind == "rank-" and shape:
        return shape[:-1]
    return draw(any_shape())


@st.composite
def maybe(draw, strategy, weird):
    """Usually a value of ``strategy``, sometimes one of the ``weird`` values."""
    return draw(strategy) if often(draw, 8) else draw(st.sampled_from(weird))


NAN = float("nan")
STRIDES = maybe(st.integers(1, 3), [0, -1, 1.5, True, None, np.int64(2)])
PADDINGS = maybe(st.integers(0, 2) | st.just("same"), [-1, "valid", None, 1.5, "SAME"])
PROBABILITIES = maybe(st.sampled_from([0.0, 0.25, 0.5, 0.9]), [1.0, -0.1, NAN, None, "0.5", True])
MOMENTA = maybe(st.sampled_from([0.0, 0.1, 1.0]), [1.5, -0.1, NAN, None])
EPSILONS = maybe(st.sampled_from([1e-5, 1e-3, 0.1]), [0.0, -1e-3, NAN, float("inf"), None])
FLAGS = maybe(st.booleans(), [1, "yes", None, np.bool_(True)])


# ------------------------------------------------------------------------------ the two verdicts
def outcome(function, *args, **kwargs):
    """("ok", result) or ("error", exception); anything but TypeError / ValueError fails the test."""
    try:
        return "ok", function(*args, **kwargs)
    except (TypeError, ValueError) as error:
        if isinstance(error, numba.core.errors.NumbaError):
            raise AssertionError(f"a Numba error reached the user: {error}") from error
        return "error", error


def check_error(op: str, error: Exception, names: tuple) -> None:
    message = str(error)
    assert message.startswith(f"{op}: "), f"the message does not name the op {op}: {message!r}"
    assert any(name in message for name in names), f"the message names none of {names}: {message!r}"


def scale_of(*arrays) -> float:
    """The magnitude a round-off is relative to: the largest finite entry among the arrays."""
    finite = [np.abs(np.asarray(a, np.float64))[np.isfinite(a)] for a in arrays
              if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.size]
    return max([float(f.max()) for f in finite if f.size] + [1e-30])


def all_finite(*arrays) -> bool:
    return all(np.all(np.isfinite(a)) for a in arrays if isinstance(a, np.ndarray) and a.dtype.kind in "fc")


def check_close(name, got, ref, inputs, same_nan_places=True) -> None:
    """Same shape and dtype; NaN / inf in the same places (always with finite input; with non-finite
    input unless ``same_nan_places`` is False, see the module docstring); finite entries close."""
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape and got.dtype == ref.dtype, (name, got.shape, got.dtype, ref.shape, ref.dtype)
    bad_ref, bad_got = ~np.isfinite(ref), ~np.isfinite(got)
    if same_nan_places or all_finite(*inputs):
        assert np.array_equal(bad_got, bad_ref), f"{name}: NaN / inf in other places than the reference's"
    both = ~bad_ref & ~bad_got
    tol = (1e-4 if got.dtype == np.float32 else 1e-9) * scale_of(ref, *inputs)
    error = np.abs(got[both].astype(np.float64) - ref[both].astype(np.float64))
    assert error.size == 0 or error.max() <= tol, f"{name}: max error {error.max():.3g} > {tol:.3g}"


def check_tiers(op, names, numba_call, reference_call, inputs):
    """Run both tiers; both refuse alike, or both answer alike. Returns the two results (or None)."""
    kind, got = outcome(numba_call)
    ref_kind, ref = outcome(reference_call)
    assert kind == ref_kind, f"{op}: Numba tier {kind} ({got!r}) but reference {ref_kind} ({ref!r})"
    if kind == "error":
        check_error(op, got, names)
        assert type(got) is type(ref) and str(got) == str(ref), (got, ref)
        return None
    return got, ref


def compare_outputs(op, got, ref, inputs, same_nan_places=True):
    got = got if isinstance(got, tuple) else (got,)
    ref = ref if isinstance(ref, tuple) else (ref,)
    for i, (a, b) in enumerate(zip(got, ref)):
        if a is None or b is None:
            assert a is None and b is None, (op, i)
        else:
            check_close(f"{op} output {i}", a, b, inputs, same_nan_places)


@st.composite
def upstream(draw, like):
    """A gradient for ``like``: usually its shape and dtype, sometimes not."""
    return draw(array_or_not(shape_near(like.shape), like.dtype))


def run_backward(op, names, forward_results, dy, inputs, same_nan_places=True):
    (y, cache), (y_ref, cache_ref) = forward_results
    both = check_tiers(op, names, lambda: getattr(ops, op)(dy, cache),
                       lambda: getattr(reference, op)(dy, cache_ref), inputs)
    if both is not None:
        compare_outputs(op, *both, inputs + [dy], same_nan_places)


# ------------------------------------------------------------------------------------------ the ops
@FUZZ
@given(x=any_shape().flatmap(array_or_not), data=st.data())
@pytest.mark.parametrize("name", ["silu", "sigmoid"])
def test_activations(name, x, data):
    both = check_tiers(f"{name}_forward", ("x",), lambda: getattr(ops, f"{name}_forward")(x),
                       lambda: getattr(reference, f"{name}_forward")(x), [x])
    if both is None:
        return
    (y, _), (y_ref, _) = both
    assert y.shape == x.shape and y.dtype == x.dtype           # elementwise: a 0-d x gives a 0-d y
    compare_outputs(f"{name}_forward", y, y_ref, [x])
    dy = data.draw(upstream(y))
    run_backward(f"{name}_backward", ("dy", "cache"), both, dy, [x])


@st.composite
def spoil_one(draw, good: list, spoilers: list) -> list:
    """Half the time the good arguments as they are; otherwise one of them replaced by its spoiler
    (a strategy that draws a possibly wrong value: another shape, dtype, type or range)."""
    args = list(good)
    if often(draw, 5):
        return args
    i = draw(st.integers(0, len(args) - 1))
    args[i] = draw(spoilers[i])
    return args


@st.composite
def conv_inputs(draw, depthwise):
    n, h, w, c = draw(sizes(2)), draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(sizes(3))
    k = draw(st.sampled_from([3, 1, 2, 5]))
    stride, padding = draw(st.integers(1, 3)), draw(st.sampled_from([0, 1, 2, "same", 1]))
    if padding == "same" and k % 2 == 0:
        padding = k // 2
    h, w = max(h, k - 2 * padding if padding != "same" else 1), max(w, k - 2 * padding if padding != "same" else 1)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    w_shape = (k, k, c) if depthwise else (k, k, c, draw(sizes(3)))
    good = [draw(arrays((n, h, w, c), dtype, keep_dtype=True)), draw(arrays(w_shape, dtype, keep_dtype=True)),
            stride, padding]
    spoilers = [array_or_not(shape_near((n, h, w, c))), array_or_not(shape_near(w_shape), dtype), STRIDES, PADDINGS]
    return draw(spoil_one(good, spoilers))


@FUZZ
@given(args=st.data())
@pytest.mark.parametrize("op", ["conv2d", "depthwise_conv2d"])
def test_convolutions(op, args):
    x, w, stride, padding = args.draw(conv_inputs(op == "depthwise_conv2d"))
    forward = f"{op}_forward"
    names = ("x", "w", "stride", "padding", "kernel", "channel")
    both = check_tiers(forward, names, lambda: getattr(ops, forward)(x, w, stride, padding),
                       lambda: getattr(reference, forward)(x, w, stride, padding), [x, w])
    if both is None:
        return
    compare_outputs(forward, both[0][0], both[1][0], [x, w], same_nan_places=False)
    dy = args.draw(upstream(both[1][0]))
    run_backward(f"{op}_backward", ("dy", "cache"), both, dy, [x, w], same_nan_places=False)


@st.composite
def batchnorm_inputs(draw):
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    shape = shape if often(draw, 7) else (shape[0] + 1, shape[3])          # (N, H, W, C) or (N, C)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    channels = shape[-1]
    vectors = [draw(arrays((channels,), dtype, keep_dtype=True)) for _ in range(4)]
    good = [draw(arrays(shape, dtype, keep_dtype=True)), *vectors, True if often(draw, 6) else False,
            draw(st.sampled_from([0.0, 0.1, 1.0])), draw(st.sampled_from([1e-5, 1e-3, 0.1]))]
    spoilers = [array_or_not(st.sampled_from([4, 2, 0, 1, 3, 5]).flatmap(any_shape))]
    spoilers += [array_or_not(shape_near((channels,)), dtype)] * 4 + [FLAGS, MOMENTA, EPSILONS]
    args = draw(spoil_one(good, spoilers))
    if isinstance(args[4], np.ndarray) and args[4].dtype.kind == "f":
        args[4] = np.abs(args[4])                                   # a variance is >= 0
    return tuple(args)


def _copies(args):
    """Fresh running statistics for each tier: training updates them in place."""
    return tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)


BN_NAMES = ("x", "gamma", "beta", "running_mean", "running_var", "training", "momentum", "eps")


@FUZZ
@given(data=st.data())
def test_batchnorm(data):
    args = data.draw(batchnorm_inputs())
    mine, theirs = _copies(args), _copies(args)
    both = check_tiers("batchnorm_forward", BN_NAMES, lambda: ops.batchnorm_forward(*mine),
                       lambda: reference.batchnorm_forward(*theirs), list(args[:5]))
    if both is None:
        return
    compare_outputs("batchnorm_forward", both[0][0], both[1][0], list(args[:5]))
    compare_outputs("running statistics", (mine[3], mine[4]), (theirs[3], theirs[4]), list(args[:5]))
    dy = data.draw(upstream(both[1][0]))
    run_backward("batchnorm_backward", ("dy", "cache"), both, dy, list(args[:5]))


def _reference_bn_silu(args):
    h, bn_cache = reference.batchnorm_forward(*args)
    y, silu_cache = reference.silu_forward(h)
    return y, (bn_cache, silu_cache)


@FUZZ
@given(data=st.data())
def test_fused_batchnorm_silu_matches_the_two_reference_ops(data):
    args = data.draw(batchnorm_inputs())
    mine, theirs = _copies(args), _copies(args)
    kind, got = outcome(ops.batchnorm_silu_forward, *mine)
    ref_kind, ref = outcome(_reference_bn_silu, theirs)
    assert kind == ref_kind, (got, ref)
    if kind == "error":
        check_error("batchnorm_silu_forward", got, BN_NAMES)
        assert str(got).split(": ", 1)[1] == str(ref).split(": ", 1)[1]   # the rule; only the op name differs
        return
    inputs = list(args[:5])
    compare_outputs("batchnorm_silu_forward", got[0], ref[0], inputs)
    compare_outputs("running statistics", (mine[3], mine[4]), (theirs[3], theirs[4]), inputs)
    dy = data.draw(upstream(ref[0]))
    kind, grads = outcome(ops.batchnorm_silu_backward, dy, got[1])
    bn_cache, silu_cache = ref[1]
    ref_kind, ref_grads = outcome(lambda: reference.batchnorm_backward(reference.silu_backward(dy, silu_cache)[0],
                                                                       bn_cache))
    assert kind == ref_kind, (grads, ref_grads)
    if kind == "error":
        check_error("batchnorm_silu_backward", grads, ("dy",))
    else:
        compare_outputs("batchnorm_silu_backward", grads, ref_grads, inputs + [dy])


@FUZZ
@given(data=st.data())
def test_global_avg_pool(data):
    x = data.draw(st.sampled_from([4, 4, 4, 3, 5]).flatmap(lambda r: any_shape(r)).flatmap(array_or_not))
    both = check_tiers("global_avg_pool_forward", ("x",), lambda: ops.global_avg_pool_forward(x),
                       lambda: reference.global_avg_pool_forward(x), [x])
    if both is None:
        return
    compare_outputs("global_avg_pool_forward", both[0][0], both[1][0], [x])
    dy = data.draw(upstream(both[1][0]))
    run_backward("global_avg_pool_backward", ("dy", "cache"), both, dy, [x])


@FUZZ
@given(data=st.data())
def test_linear(data):
    n, cin, cout = data.draw(sizes()), data.draw(sizes()), data.draw(sizes())
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    good = [data.draw(arrays((n, cin), dtype, keep_dtype=True)), data.draw(arrays((cin, cout), dtype, keep_dtype=True)),
            data.draw(arrays((cout,), dtype, keep_dtype=True)) if often(data.draw, 7) else None]
    spoilers = [array_or_not(shape_near((n, cin))), array_or_not(shape_near((cin, cout)), dtype),
                array_or_not(shape_near((cout,)), dtype)]
    x, w, b = data.draw(spoil_one(good, spoilers))
    both = check_tiers("linear_forward", ("x", "w", "b"), lambda: ops.linear_forward(x, w, b),
                       lambda: reference.linear_forward(x, w, b), [x, w, b])
    if both is None:
        return
    compare_outputs("linear_forward", both[0][0], both[1][0], [x, w, b])
    dy = data.draw(upstream(both[1][0]))
    run_backward("linear_backward", ("dy", "cache"), both, dy, [x, w, b])


@FUZZ
@given(data=st.data())
def test_softmax_cross_entropy(data):
    n, k = data.draw(sizes()), data.draw(sizes(4))
    logits = data.draw(array_or_not(shape_near((n, k))))
    dtype = logits.dtype if isinstance(logits, np.ndarray) else np.float32
    hard = st.builds(lambda seed, low, high: np.random.default_rng(seed).integers(low, max(high, low) + 1, n),
                     st.integers(0, 99), st.sampled_from([0, 0, 0, -1]), st.sampled_from([k - 1] * 3 + [k]))
    soft = arrays((n, k), dtype).map(lambda a: np.abs(a) if a.dtype.kind == "f" else a)
    labels = data.draw(hard) if often(data.draw, 6) else data.draw(st.one_of(soft, array_or_not(shape_near((n,)))))
    smoothing = data.draw(PROBABILITIES)
    both = check_tiers("softmax_cross_entropy", ("logits", "labels", "label_smoothing"),
                       lambda: ops.softmax_cross_entropy(logits, labels, smoothing),
                       lambda: reference.softmax_cross_entropy(logits, labels, smoothing), [logits])
    if both is not None:
        soft_labels = [labels] if isinstance(labels, np.ndarray) and labels.dtype.kind == "f" else []
        compare_outputs("softmax_cross_entropy", both[0], both[1], [logits] + soft_labels)


@FUZZ
@given(data=st.data())
@pytest.mark.parametrize("op", ["dropout", "drop_path"])
def test_dropout_and_drop_path(op, data):
    good = [data.draw(st.integers(1, 5).flatmap(any_shape).flatmap(arrays)),
            data.draw(st.sampled_from([0.0, 0.25, 0.5, 0.9])), data.draw(st.integers(0, 99)), True]
    spoilers = [any_shape().flatmap(array_or_not), PROBABILITIES, st.none(), FLAGS]
    x, p, seed, training = data.draw(spoil_one(good, spoilers))

    def generator():                                                # the same coins for both tiers
        return None if seed is None else np.random.default_rng(seed)
    forward = f"{op}_forward"
    both = check_tiers(forward, ("x", "p", "rng", "training"),
                       lambda: getattr(ops, forward)(x, p, generator(), training),
                       lambda: getattr(reference, forward)(x, p, generator(), training), [x])
    if both is None:
        return
    assert both[0][0].shape == x.shape and both[0][0].dtype == x.dtype
    compare_outputs(forward, both[0][0], both[1][0], [x])
    dy = data.draw(upstream(both[1][0]))
    run_backward(f"{op}_backward", ("dy", "cache"), both, dy, [x])


# --------------------------------------------------------------------- SiLU and sigmoid at +-inf
EDGES = [-np.inf, -1e30, -1000.0, -100.0, -1.0, 0.0, 1.0, 100.0, 1000.0, 1e30, np.inf]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tier", [ops, reference], ids=["numba", "reference"])
def test_silu_and_sigmoid_take_their_limits_at_infinity(tier, dtype):
    x = np.array(EDGES, dtype)
    y, cache = tier.silu_forward(x)
    (slope,) = tier.silu_backward(np.ones_like(x), cache)
    s, _ = tier.sigmoid_forward(x)
    assert y[0] == 0 and y[-1] == np.inf          # silu(-inf) = lim x e^x = 0; silu(inf) = inf
    assert slope[0] == 0 and slope[-1] == 1       # the slope's limits
    assert s[0] == 0 and s[-1] == 1               # sigmoid(-inf) = 0, sigmoid(inf) = 1
    assert np.all(np.isfinite(y[:-1])) and np.all(np.isfinite(slope)) and np.all(np.isfinite(s))
    assert abs(y[1]) <= 1e-30 and y[1] <= 0       # far below zero: the limit, not -1e30 * tiny
    assert y.dtype == slope.dtype == s.dtype == np.dtype(dtype)


@pytest.mark.parametrize("tier", [ops, reference], ids=["numba", "reference"])
def test_nan_stays_nan(tier):
    x = np.array([np.nan, 1.0], np.float32)
    y, cache = tier.silu_forward(x)
    assert np.isnan(y[0]) and np.isnan(tier.silu_backward(np.ones_like(x), cache)[0][0])
    assert np.isnan(tier.sigmoid_forward(x)[0][0])


def test_the_cuda_tier_takes_the_same_limits_in_the_simulator():
    """The CUDA kernels in numba's simulator (its own process: the variable must be set before numba
    is imported), float32 and float64, on the same edge values."""
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np, tinyeffnet.cuda as tc\ninf = np.inf\n"
        f"for dt in (np.float32, np.float64):\n"
        f"    x = np.array({EDGES!r}, dt)\n"
        "    y, c = tc.silu_forward(tc.to_device(x))\n"
        "    (g,) = tc.silu_backward(tc.to_device(np.ones_like(x)), c)\n"
        "    s, _ = tc.sigmoid_forward(tc.to_device(x))\n"
        "    y, g, s = tc.to_host(y), tc.to_host(g), tc.to_host(s)\n"
        "    assert (y[0], y[-1], g[0], g[-1], s[0], s[-1]) == (0, np.inf, 0, 1, 0, 1), (y, g, s)\n"
        "    assert np.isfinite(g).all() and np.isfinite(y[:-1]).all()\n"
        "print('ok')\n"
    )
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
