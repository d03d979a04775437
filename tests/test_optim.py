"""Optimizers against torch.optim (SGD, AdamW) and a written-out TF rule (RMSProp); schedules; EMA.

Every optimizer test feeds the SAME random gradients to ours and to the reference for several steps,
with two parameters that take weight decay and one (a "bias", decay=False) that must not.
"""
import io
import math

import numpy as np
import pytest
import torch

from tinyeffnet.nn.parameter import Parameter
from tinyeffnet.optim import (
    EMA, SGD, AdamW, CosineWarmup, ExponentialDecayWarmup, RMSProp, set_lr,
)
from tinyeffnet.testing import Report, compare

SHAPES = [(3, 4), (2, 2, 3), (4,)]          # the last one is a bias: decay=False
DECAYS = [True, True, False]
STEPS = 6
# Tolerances per dtype: the same elementwise formulas in a possibly different operation order, so
# a few ulps per step, accumulated over STEPS steps (values are O(1)).
TOL = {np.float64: dict(atol=1e-12, rtol=1e-10), np.float32: dict(atol=1e-6, rtol=1e-5)}


def make_params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [Parameter(rng.standard_normal(s).astype(dtype), decay=d) for s, d in zip(SHAPES, DECAYS)]


def grad_sequence(dtype, seed=1):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(STEPS)]


def torch_groups(params, weight_decay):
    """Two torch param groups: weight decay on the decay=True copies, none on the others."""
    tensors = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    decay = [t for t, p in zip(tensors, params) if p.decay]
    no_decay = [t for t, p in zip(tensors, params) if not p.decay]
    return tensors, [{"params": decay, "weight_decay": weight_decay},
                     {"params": no_decay, "weight_decay": 0.0}]


def run_both(ours_factory, torch_factory, dtype, weight_decay, lr_change=None):
    params = make_params(dtype)
    tensors, groups = torch_groups(params, weight_decay)
    ours, theirs = ours_factory(params), torch_factory(groups)
    for step, grads in enumerate(grad_sequence(dtype)):
        if lr_change is not None and step == STEPS // 2:
            set_lr(ours, lr_change)
            for group in theirs.param_groups:
                group["lr"] = lr_change
        ours.zero_grad()
        for p, t, g in zip(params, tensors, grads):
            p.accumulate(g)
            t.grad = torch.from_numpy(g.copy())
        ours.step()
        theirs.step()
    report = Report(f"{type(ours).__name__} vs torch ({np.dtype(dtype).name})")
    for i, (p, t) in enumerate(zip(params, tensors)):
        report.rows.append(compare(f"param{i}", p.data, t.detach().numpy(), **TOL[dtype]))
    return report


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum, nesterov, weight_decay", [
    (0.0, False, 0.0),      # plain SGD
    (0.0, False, 0.1),      # plain SGD with L2 decay
    (0.9, False, 0.0),      # heavy-ball momentum
    (0.9, False, 0.05),     # momentum + decay
    (0.9, True, 0.05),      # Nesterov + decay
])
def test_sgd_matches_torch(dtype, momentum, nesterov, weight_decay):
    report = run_both(
        lambda ps: SGD(ps, lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay),
        lambda gs: torch.optim.SGD(gs, lr=0.1, momentum=momentum, nesterov=nesterov),
        dtype, weight_decay, lr_change=0.03)
    report.assert_ok()


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "readable"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adamw_matches_torch(dtype, weight_decay, fused):
    report = run_both(
        lambda ps: AdamW(ps, lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=weight_decay, fused=fused),
        lambda gs: torch.optim.AdamW(gs, lr=0.01, betas=(0.8, 0.95), eps=1e-6),
        dtype, weight_decay, lr_change=0.002)
    report.assert_ok()


# The fused kernel against the readable NumPy lines. A 200 x 201 parameter (40,200 elements) takes the
# kernel's parallel path, with a last chunk shorter than the others; the small ones its serial path.
BIG_SHAPES = [(200, 201), (7, 5), (33,)]


def _adamw_run(fused: bool, dtype, steps: int = 5) -> list:
    rng = np.random.default_rng(3)
    start = [rng.standard_normal(s) for s in BIG_SHAPES]
    grads = [[rng.standard_normal(s) for s in BIG_SHAPES] for _ in range(steps)]
    params = [Parameter(a.astype(dtype), decay=i != 2) for i, a in enumerate(start)]
    opt = AdamW(params, lr=0.02, betas=(0.85, 0.99), eps=1e-7, weight_decay=0.1, fused=fused)
    for step_grads in grads:
        opt.zero_grad()
        for p, g in zip(params, step_grads):
            p.accumulate(g.astype(dtype))
        opt.step()
    return [p.data for p in params] + [opt.state[k][name] for k in range(3) for name in ("exp_avg", "exp_avg_sq")]


def test_fused_adamw_equals_the_readable_update_in_float64():
    from tinyeffnet.ops import adamw
    assert BIG_SHAPES[0][0] * BIG_SHAPES[0][1] >= adamw.PARALLEL_FROM            # the parallel path runs
    report = Report("AdamW fused vs readable (float64)")
    for i, (f, r) in enumerate(zip(_adamw_run(True, np.float64), _adamw_run(False, np.float64))):
        report.rows.append(compare(f"array{i}", f, r, atol=1e-12, rtol=1e-12))
    report.assert_ok()


def test_fused_adamw_in_float32_is_no_further_from_float64_than_the_readable_update():
    exact = _adamw_run(False, np.float64)
    for i, (f, r, e) in enumerate(zip(_adamw_run(True, np.float32), _adamw_run(False, np.float32), exact)):
        assert f.dtype == np.float32
        fused_error, readable_error = np.abs(f - e).max(), np.abs(r - e).max()
        scale = np.abs(e).max()
        # both are float32 rounding of the same rule: within 2x of each other, or below a few ulps of the values
        assert fused_error <= 2 * readable_error + 4 * np.finfo(np.float32).eps * scale, (i, fused_error, readable_error)


def test_adamw_fused_must_be_a_bool():
    with pytest.raises(TypeError, match="AdamW: fused must be True or False"):
        AdamW(make_params(np.float32), fused="yes")


def tf_rmsprop_reference(p0, grads, lr, rho, momentum, eps, wd, initial_ms):
    """The TF1 rule written out with scalars, in float64, one entry at a time."""
    p = [float(v) for v in p0.ravel()]
    ms = [initial_ms] * len(p)
    mom = [0.0] * len(p)
    for g in grads:
        for j, gj in enumerate(g.ravel()):
            d = float(gj) + wd * p[j]
            ms[j] = rho * ms[j] + (1 - rho) * d * d
            mom[j] = momentum * mom[j] + lr * d / math.sqrt(ms[j] + eps)
            p[j] = p[j] - mom[j]
    return np.array(p).reshape(p0.shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("initial_ms, weight_decay", [(1.0, 0.0), (1.0, 0.1), (0.0, 0.05)])
def test_rmsprop_matches_written_out_tf_rule(dtype, initial_ms, weight_decay):
    params = make_params(dtype)
    start = [p.data.copy() for p in params]
    opt = RMSProp(params, lr=0.05, rho=0.9, momentum=0.9, eps=1e-3, weight_decay=weight_decay,
                  initial_ms=initial_ms)
    grads = grad_sequence(dtype)
    for step_grads in grads:
        opt.zero_grad()
        for p, g in zip(params, step_grads):
            p.accumulate(g)
        opt.step()
    report = Report(f"RMSProp vs TF rule ({np.dtype(dtype).name})")
    for i, p in enumerate(params):
        wd = weight_decay if p.decay else 0.0
        expected = tf_rmsprop_reference(start[i], [g[i] for g in grads], 0.05, 0.9, 0.9, 1e-3, wd,
                                        initial_ms)
        report.rows.append(compare(f"param{i}", p.data.astype(np.float64), expected, **TOL[dtype]))
    report.assert_ok()
    assert all(p.data.dtype == dtype for p in params)


def test_rmsprop_first_step_differs_from_torch_as_documented():
    # One step, no momentum history: TF divides by sqrt(rho*1 + (1-rho) g^2 + eps) (ms starts at 1),
    # torch by sqrt((1-rho) g^2) + eps. For g = 2: TF 0.1*2/sqrt(0.9+0.4+1e-3); torch 0.1*2/(sqrt(0.4)+1e-3).
    p = Parameter(np.zeros(1))
    opt = RMSProp([p], lr=0.1, rho=0.9, momentum=0.9, eps=1e-3)
    p.accumulate(np.array([2.0]))
    opt.step()
    assert p.data[0] == pytest.approx(-0.2 / math.sqrt(1.301), rel=1e-12)
    t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    torch_opt = torch.optim.RMSprop([t], lr=0.1, alpha=0.9, eps=1e-3, momentum=0.9)
    t.grad = torch.tensor([2.0], dtype=torch.float64)
    torch_opt.step()
    assert t.item() == pytest.approx(-0.2 / (math.sqrt(0.4) + 1e-3), rel=1e-12)
    assert abs(t.item() - p.data[0]) > 0.1


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.5),
    lambda ps: RMSProp(ps, lr=0.1, weight_decay=0.5),
    lambda ps: AdamW(ps, lr=0.1, weight_decay=0.5),
], ids=["sgd", "rmsprop", "adamw"])
def test_weight_decay_skips_decay_false_parameters(make):
    params = make_params(np.float64)
    start = [p.data.copy() for p in params]
    opt = make(params)
    for _ in range(3):
        opt.zero_grad()            # zero gradients: only weight decay can move a parameter
        opt.step()
    for p, p0 in zip(params, start):
        if p.decay:
            assert np.all(np.abs(p.data) < np.abs(p0)), "decay should shrink every entry"
        else:
            np.testing.assert_array_equal(p.data, p0)


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda ps: RMSProp(ps, lr=0.05, weight_decay=0.01),
    lambda ps: AdamW(ps, lr=0.01),
], ids=["sgd", "rmsprop", "adamw"])
def test_state_dict_round_trip_continues_identically(make):
    grads = grad_sequence(np.float32)
    params = make_params(np.float32)
    opt = make(params)

    def run(opt, params, steps):
        for step_grads in steps:
            opt.zero_grad()
            for p, g in zip(params, step_grads):
                p.accumulate(g)
            opt.step()

    run(opt, params, grads[:3])
    set_lr(opt, 0.02)
    buffer = io.BytesIO()                                  # through .npz, as a checkpoint stores it
    np.savez(buffer, **opt.state_dict())
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as npz:
        saved = {k: npz[k] for k in npz.files}
    copies = [Parameter(p.data.copy(), decay=p.decay) for p in params]
    fresh = make(copies)
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["lr"] == 0.02
    run(opt, params, grads[3:])
    run(fresh, copies, grads[3:])
    for p, q in zip(params, copies):
        np.testing.assert_array_equal(p.data, q.data)
        assert q.data.dtype == np.float32


def test_named_parameters_and_param_groups_are_accepted():
    params = make_params(np.float64)
    opt = SGD([("w", params[0]), ("v", params[1])], lr=0.1)
    assert opt.param_groups[0]["params"] == params[:2]
    opt = SGD([{"params": params[:2]}, {"params": params[2:], "lr": 0.5}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    for p in params:
        p.accumulate(np.ones_like(p.data))
    before = [p.data.copy() for p in params]
    opt.step()
    np.testing.assert_allclose(before[0] - params[0].data, 0.1)
    np.testing.assert_allclose(before[2] - params[2].data, 0.5)


def test_bad_hyperparameters_and_params_raise_named_errors():
    params = make_params(np.float64)
    with pytest.raises(ValueError, match="lr must be in"):
        SGD(params, lr=-1.0)
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0"):
        SGD(params, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="rho must be in"):
        RMSProp(params, lr=0.1, rho=1.0)
    with pytest.raises(ValueError, match="beta2 must be in"):
        AdamW(params, betas=(0.9, 1.5))
    with pytest.raises(TypeError, match="expected Parameter or \\(name, Parameter\\), got ndarray"):
        SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        SGD([params[0], params[0]], lr=0.1)


def test_load_state_dict_rejects_a_mismatched_layout():
    params = make_params(np.float64)
    opt = SGD(params, lr=0.1, momentum=0.9)
    for p in params:
        p.accumulate(np.ones_like(p.data))
    opt.step()
    state = opt.state_dict()
    other = SGD(make_params(np.float64)[:2], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="group 0 has 2 parameters, the state dict 3"):
        other.load_state_dict(state)
    state["state.0.momentum_buffer"] = np.zeros((5, 5))
    with pytest.raises(ValueError, match=r"state.0.momentum_buffer has shape \(5, 5\), parameter 0 has \(3, 4\)"):
        SGD(make_params(np.float64), lr=0.1, momentum=0.9).load_state_dict(state)


# ------------------------------------------------------------------------------------------------
# Schedules
# ------------------------------------------------------------------------------------------------

def test_exponential_decay_with_warmup_values():
    sched = ExponentialDecayWarmup(base_lr=0.256, warmup=5.0, rate=0.97, every=2.4)
    assert sched(0.0) == 0.0
    assert sched(2.5) == pytest.approx(0.128)                 # halfway up the ramp
    assert sched(4.99) == pytest.approx(0.256 * 4.99 / 5)
    assert sched(5.0) == pytest.approx(0.256 * 0.97 ** 2)     # floor(5 / 2.4) = 2
    assert sched(7.19) == pytest.approx(0.256 * 0.97 ** 2)
    assert sched(7.2) == pytest.approx(0.256 * 0.97 ** 3)     # floor(7.2 / 2.4) = 3
    assert sched(350.0) == pytest.approx(0.256 * 0.97 ** 145)
    smooth = ExponentialDecayWarmup(base_lr=1.0, warmup=0.0, rate=0.97, every=2.4, staircase=False)
    assert smooth(6.0) == pytest.approx(0.97 ** 2.5)
    ramp = ExponentialDecayWarmup(base_lr=1.0, warmup=4.0, warmup_start_lr=0.2)
    assert ramp(1.0) == pytest.approx(0.4)


def test_cosine_with_warmup_values():
    sched = CosineWarmup(base_lr=1.0, total=12.0, warmup=2.0, min_lr=0.1)
    assert sched(0.0) == 0.0
    assert sched(1.0) == pytest.approx(0.5)
    assert sched(2.0) == pytest.approx(1.0)
    assert sched(7.0) == pytest.approx(0.55)                                   # half way: mean
    assert sched(4.5) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2)
    assert sched(12.0) == pytest.approx(0.1)
    assert sched(20.0) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="total must be > warmup"):
        CosineWarmup(base_lr=1.0, total=2.0, warmup=2.0)


# ------------------------------------------------------------------------------------------------
# EMA
# ------------------------------------------------------------------------------------------------

class TinyModel:
    """Stands in for a Module: named_parameters, state_dict (params + a BN-like buffer), load."""

    def __init__(self):
        self.w = Parameter(np.array([1.0, 2.0]))
        self.b = Parameter(np.array([0.5]), decay=False)
        self.running_mean = np.array([0.0, 0.0])

    def named_parameters(self):
        return [("w", self.w), ("b", self.b)]

    def state_dict(self):
        return {"w": self.w.data.copy(), "b": self.b.data.copy(), "bn.running_mean": self.running_mean.copy()}

    def load_state_dict(self, state):
        self.w.data[...] = state["w"]
        self.b.data[...] = state["b"]
        self.running_mean = np.array(state["bn.running_mean"], copy=True)


def test_ema_follows_the_formula_and_copies_buffers():
    model = TinyModel()
    ema = EMA(model, decay=0.9)
    model.w.data[...] = [3.0, 4.0]                    # jump, then hold: shadow_n = 0.9^n w0 + (1 - 0.9^n) w1
    model.running_mean[...] = [7.0, 8.0]
    for _ in range(3):
        ema.update()
    expected = 0.9 ** 3 * np.array([1.0, 2.0]) + (1 - 0.9 ** 3) * np.array([3.0, 4.0])
    np.testing.assert_allclose(ema.shadow["w"], expected, rtol=1e-14)
    np.testing.assert_allclose(ema.shadow["b"], [0.5], rtol=1e-14)
    np.testing.assert_array_equal(ema.buffers["bn.running_mean"], [7.0, 8.0])

    with ema.applied():
        np.testing.assert_allclose(model.w.data, expected, rtol=1e-14)
        model.running_mean[...] = [-1.0, -1.0]        # changed inside: restored after
    np.testing.assert_array_equal(model.w.data, [3.0, 4.0])
    np.testing.assert_array_equal(model.running_mean, [7.0, 8.0])


def test_ema_warmup_decay_is_tf_num_updates_rule():
    model = TinyModel()
    ema = EMA(model, decay=0.5, warmup=True)
    assert ema.current_decay() == pytest.approx(0.1)             # (1 + 0) / (10 + 0)
    values = [[2.0, 2.0], [4.0, 0.0], [0.0, 8.0]]
    shadow = np.array([1.0, 2.0])
    for n, value in enumerate(values):
        d = min(0.5, (1 + n) / (10 + n))                         # 0.1, 2/11, 3/12
        model.w.data[...] = value
        ema.update()
        shadow = d * shadow + (1 - d) * np.array(value)
    np.testing.assert_allclose(ema.shadow["w"], shadow, rtol=1e-14)
    ema.num_updates = 100
    assert ema.current_decay() == 0.5                           # capped by decay


def test_ema_state_dict_round_trip():
    model = TinyModel()
    ema = EMA(model, decay=0.99, warmup=True)
    model.w.data[...] = [5.0, 5.0]
    ema.update()
    ema.update()
    other = EMA(TinyModel(), decay=0.5)
    other.load_state_dict(ema.state_dict())
    assert (other.decay, other.warmup, other.num_updates) == (0.99, True, 2)
    np.testing.assert_array_equal(other.shadow["w"], ema.shadow["w"])
    model.w.data[...] = [1.0, 0.0]
    other.model.w.data[...] = [1.0, 0.0]
    ema.update()
    other.update()
    np.testing.assert_array_equal(other.shadow["w"], ema.shadow["w"])


def test_ema_on_a_plain_parameter_list_keeps_dtype():
    p = Parameter(np.ones(3, dtype=np.float32))
    ema = EMA([p], decay=0.75)
    p.data[...] = 0.0
    ema.update()
    assert ema.shadow["0"].dtype == np.float32
    np.testing.assert_allclose(ema.shadow["0"], 0.75)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("warmup", [False, True])
def test_ema_updates_in_place_bit_for_bit_like_the_formula(dtype, warmup):
    """On a real Module: a few updates give exactly (bit for bit) the shadows of the written-out
    rule shadow = d * shadow + (1 - d) * p and buffers equal to the live ones; the update writes
    into the arrays made at construction and never calls state_dict()."""
    from tinyeffnet.nn import FusedMBConv, MBConv, Sequential

    model = Sequential(FusedMBConv(4, 4, expand_ratio=1, dtype=dtype, rng=np.random.default_rng(0)),
                       MBConv(4, 8, stride=2, dtype=dtype, rng=np.random.default_rng(1)))
    ema = EMA(model, decay=0.9, warmup=warmup)
    arrays = {id(v) for v in list(ema.shadow.values()) + list(ema.buffers.values())}
    reference = {name: p.data.copy() for name, p in model.named_parameters()}
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 6, 6, 4)).astype(dtype)
    model.state_dict = lambda: pytest.fail("EMA.update called state_dict()")  # shadows the method
    for n in range(4):
        for p in model.parameters():
            p.data += (0.1 * rng.standard_normal(p.data.shape)).astype(dtype)
        model(x)                                             # training forward: running stats move
        d = min(0.9, (1 + n) / (10 + n)) if warmup else 0.9
        reference = {name: d * reference[name] + (1 - d) * p.data for name, p in model.named_parameters()}
        ema.update()
    del model.state_dict
    for name, value in reference.items():
        assert ema.shadow[name].dtype == dtype
        np.testing.assert_array_equal(ema.shadow[name], value, err_msg=name)
    live = {name: value for name, value in model.state_dict().items() if name not in reference}
    assert list(ema.buffers) == list(live)
    for name, value in live.items():
        assert ema.buffers[name].dtype == value.dtype
        np.testing.assert_array_equal(ema.buffers[name], value, err_msg=name)
    assert int(ema.buffers["0.conv.bn.num_batches_tracked"]) == 4
    assert {id(v) for v in list(ema.shadow.values()) + list(ema.buffers.values())} == arrays  # in place
