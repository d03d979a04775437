"""`bench train-vs-torch`: the torch contender does the main job's very job (identical start, the
same batches after augmentation, the same lr at every step), and a tiny run of both contenders
gives well-formed results. Tiny jobs (16 px, 128 images, 2 epochs): plumbing and parity, not speed."""
import dataclasses

import numpy as np
import pytest
import torch

from tinyeffnet.bench import train_vs_torch as tvt
from tinyeffnet.interop import torchvision_state_dict
from tinyeffnet.testing import compare
from tinyeffnet.train import Trainer, normalize

LOGITS_TOL = 3e-4               # float32 whole-model logits, relative to their magnitude (tests/models)


def _tiny(tmp_path, **overrides):
    # 2 epochs -> 2 stages: stage 1 without mixup or RandAugment, stage 2 with both
    return tvt.job_config(epochs=2, train_samples=128, val_samples=64, image_size=16, out=str(tmp_path / "run"),
                          **overrides)


def _quiet(message):
    pass


@pytest.mark.parametrize("channels_last", [False, True])
def test_the_torch_contender_starts_from_identical_weights(tmp_path, channels_last):
    recipe = Trainer(_tiny(tmp_path, drop_path_rate=0.0), progress=False, log=_quiet)  # no drop path: a deterministic forward
    net = tvt.torch_model(recipe, channels_last)
    theirs = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    ours = torchvision_state_dict(recipe.model)
    assert list(theirs) == list(ours)
    assert all(np.array_equal(theirs[k], ours[k]) for k in ours)              # the zeroed classifier too
    # The zeroed classifier makes every logit 0: give both the same random one, so the logits
    # depend on every weight, then compare the first batch's train-mode logits (dropout off).
    w = np.random.default_rng(7).standard_normal(recipe.model.classifier.weight.data.shape).astype(np.float32)
    recipe.model.classifier.weight.data[...] = w
    with torch.no_grad():
        net.classifier[1].weight.copy_(torch.from_numpy(w.T))
    recipe.model.dropout.p, net.classifier[0].p = 0.0, 0.0
    images, _ = recipe.train_set.batch(next(iter(recipe.batches)), recipe.stages[0].image_size)
    x = normalize(images)
    row = compare("first-batch logits", net(tvt._to_torch(x, channels_last)).detach().numpy(), recipe.model(x),
                  atol=LOGITS_TOL, rtol=0.0)
    assert row.ok, row


def test_the_torch_contender_has_the_same_drop_path_dropout_and_weight_decay(tmp_path):
    recipe = Trainer(_tiny(tmp_path), progress=False, log=_quiet)
    net = tvt.torch_model(recipe)
    # Both drop only residual branches (torchvision's StochasticDepth sits unused on the other blocks).
    ours = [block.drop_path.p for stage in recipe.model.stages for block in stage if block.use_residual]
    theirs = [m.stochastic_depth.p for m in net.modules() if getattr(m, "use_res_connect", False)]
    assert len(theirs) == len(ours) > 0 and np.allclose(theirs, ours) and max(ours) > 0
    assert net.classifier[0].p == pytest.approx(recipe.model.dropout.p)
    decay, no_decay = tvt.torch_param_groups(recipe, net, 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    sizes = {flag: sum(p.data.size for p in recipe.model.parameters() if p.decay == flag) for flag in (True, False)}
    assert sum(p.numel() for p in decay["params"]) == sizes[True]
    assert sum(p.numel() for p in no_decay["params"]) == sizes[False] > 0
    assert all(p.ndim == 1 for p in no_decay["params"])                       # BN gamma/beta, biases


def test_the_torch_contender_sees_the_same_batches_and_lr_at_every_step(tmp_path):
    cfg = _tiny(tmp_path)
    ours_x, ours_lr = [], []
    trainer = Trainer(cfg, progress=False, log=_quiet)
    forward, step = trainer.model.forward, trainer.optimizer.step

    def recording_forward(x):                                   # training steps only, not evaluation
        if trainer.model.training:
            ours_x.append(np.array(x))
        return forward(x)

    def recording_step():
        ours_lr.append(trainer.optimizer.param_groups[0]["lr"])
        step()

    trainer.model.forward, trainer.optimizer.step = recording_forward, recording_step
    trainer.run()
    theirs_x, theirs_lr = [], []
    result = tvt.torch_job(cfg, log=_quiet, on_step=lambda x, lr: (theirs_x.append(x.numpy()), theirs_lr.append(lr)))
    assert len(ours_lr) == len(theirs_lr) == cfg.epochs * cfg.train_samples // 64
    assert theirs_lr == ours_lr and len(set(ours_lr)) > 1                    # warmup, then cosine
    for step_number, (a, b) in enumerate(zip(theirs_x, ours_x)):              # after flip, RandAugment, mixup
        assert np.array_equal(a.transpose(0, 2, 3, 1), b), f"step {step_number + 1}: different images"
    assert not np.array_equal(ours_x[0], ours_x[-1])
    assert [p["image_size"] for p in result["curve"]] == [16, 16] and 0 <= result["curve"][-1]["val_acc"] <= 1


def test_a_tiny_run_of_both_contenders_gives_well_formed_results():
    messages = []
    results = tvt.run(rounds=1, target=0.01, peers=("torch-cl",), progress=messages.append,
                      epochs=2, train_samples=128, val_samples=64, image_size=16)
    assert set(results["contenders"]) == {"tinyeffnet", "torch-cl"} and results["best_torch"] == "torch-cl"
    assert results["job"]["epochs"] == 2 and "out" not in results["job"]
    for name, c in results["contenders"].items():
        walls = [p["wall_s"] for p in c["curve"]]
        assert [p["epoch"] for p in c["curve"]] == [1, 2] and walls == sorted(walls) and walls[0] > 0
        assert c["total_s"] >= walls[-1] and 0 < c["first_step_s"] < c["total_s"] and c["startup_s"] > 0
        assert c["time_to_target_s"] == walls[0] and c["reached"] == 1            # 1%: reached after epoch 1
        assert 0 <= c["final_acc"] <= 1 and ("Numba" in c["paths"]) == (name == "tinyeffnet")
    ratio = results["ratio"]["best torch"]
    assert ratio["total"] == pytest.approx(results["contenders"]["tinyeffnet"]["total_s"]
                                           / results["contenders"]["torch-cl"]["total_s"])
    assert any("tinyeffnet: epoch   2/2" in m for m in messages)              # the workers' lines, live
    table = tvt.format_table(results)
    assert "| tinyeffnet |" in table and "| torch-cl |" in table and "headline" in table


def test_time_to_target_and_format_table_say_never_when_not_reached():
    curve = [{"epoch": e, "stage": 1, "image_size": 32, "train_loss": 1.0, "val_loss": 1.0, "val_acc": a,
              "wall_s": 10.0 * e} for e, a in ((1, 0.5), (2, 0.92), (3, 0.95))]
    assert tvt.time_to_target(curve, 0.9) == 20.0 and tvt.time_to_target(curve, 0.99) is None
    run = {"curve": curve, "total_s": 31.0, "first_step_s": 2.0, "startup_s": 1.0, "paths": "p"}
    slow = dict(run, curve=[dict(p, val_acc=0.5, wall_s=p["wall_s"] * 2) for p in curve], total_s=62.0)
    contenders = {"tinyeffnet": tvt.summarize([run], 0.9), "torch": tvt.summarize([slow], 0.9)}
    ratio, best = tvt.ratios(contenders, ("torch",))
    assert best == "torch" and ratio["torch"] == {"time_to_target": None, "total": 0.5}
    results = {"job": dataclasses.asdict(tvt.job_config()), "target": 0.9, "rounds": 1, "isa": "native", "cold_cache": False,
               "machine": "cpu", "contenders": contenders, "ratio": ratio, "best_torch": best}
    table = tvt.format_table(results)
    assert "| torch | never | 62.0 s |" in table and "| 0.50 |" in table and "| 3 | 32 |" in table


def test_bad_options_are_refused_with_the_argument_named():
    for kwargs, name in (({"peers": ["tensorflow"]}, "peers"), ({"isa": "sse2"}, "isa"),
                         ({"rounds": 0}, "rounds"), ({"target": 1.5}, "target")):
        with pytest.raises(ValueError, match=name):
            tvt.run(**kwargs)
