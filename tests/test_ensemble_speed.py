"""The speed switches of the vectorised groups (certssb/ensemble/speed.py) against the reference
path: the grouped engine, Adam's implementations, padded batches, compile, the device shuffle."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from certssb.ensemble import CheckpointStore, predict_members, train_members
from certssb.ensemble.group_trainer import FitSpec, GroupTrainer
from certssb.ensemble.grouped import group_models, unsupported_modules, verify_grouped
from certssb.ensemble.jobs import member_job
from certssb.ensemble.masking import masked_batch_norm, padded_order
from certssb.ensemble.speed import Speed
from certssb.ensemble.train import choose_engine, choose_vectorise
from certssb.ensemble.vectorised import fit_group, stack_models
from certssb.errors import ConfigError
from certssb.model import model_factory
from certssb.ensemble.training_data import TrainingData
from certssb.ensemble.predict import EvalInputs
from tolerances import assert_one_adam_step_close

from conftest import ensemble_settings, model_option

CPU = torch.device("cpu")
N, C = 40, 3
MODELS = {  # name: (input shape, option overrides); small, so float64 on one thread stays fast
    "mnist_cnn": ((1, 28, 28), {}),
    "preact_resnet32": ((3, 8, 8), {"blocks_per_stage": 1}),
    "digits_cnn": ((1, 8, 8), {}),
    "mlp": ((1, 8, 8), {"hidden": [32]}),
}


def factory(name):
    shape, kw = MODELS[name]
    return model_factory(model_option(name, **kw), shape, C), shape


def data(shape, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(N) % C
    x = (torch.rand((N,) + shape, generator=g) * 0.5 + (y.view(-1, 1, 1, 1) / C) * 0.5).clamp(0, 1)
    return x.to(dtype), y, (0.1 + 0.2 * torch.rand(N, generator=g)).to(dtype)


def train(f, jobs, x, y, s, speed=Speed(), epochs=2, batch=16, lr=1e-2):
    return GroupTrainer(f, jobs, x, y, s, FitSpec(epochs, batch, lr, CPU, speed=speed)).run()


def max_diff(a: list[dict], b: list[dict]) -> float:
    return max(float((sa[k].double() - sb[k].double()).abs().max()) for sa, sb in zip(a, b, strict=True) for k in sa)


# --- grouped convolutions == vmap ---------------------------------------------------------------

@pytest.mark.parametrize("name", ["mnist_cnn", "preact_resnet32", "digits_cnn", "mlp"])
def test_grouped_forward_and_gradients_equal_vmap_in_float64(float64, name):
    f, shape = factory(name)
    models = [f().train() for _ in range(3)]
    p1, b1, _, vcall = stack_models([copy.deepcopy(m) for m in models])
    p2, b2, _, gcall = group_models([copy.deepcopy(m) for m in models])
    x = torch.rand((3, 5) + shape, generator=torch.Generator().manual_seed(1))
    out_v, out_g = vcall(p1, b1, x), gcall(p2, b2, x)
    assert out_g.shape == out_v.shape == (3, 5, C)
    torch.testing.assert_close(out_g, out_v, atol=1e-12, rtol=1e-10)
    assert not torch.allclose(out_g[0], out_g[1])  # models differ: a mixed-up model would be seen
    w = torch.randn(out_v.shape, generator=torch.Generator().manual_seed(2))
    gv = torch.autograd.grad((out_v * w).sum(), list(p1.values()))
    gg = torch.autograd.grad((out_g * w).sum(), list(p2.values()))
    for name_, a, b in zip(p1, gv, gg):
        torch.testing.assert_close(b, a, atol=1e-12, rtol=1e-10, msg=name_)
    for k in b1:  # BatchNorm statistics updated per model alike
        torch.testing.assert_close(b2[k], b1[k], atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("name", ["mnist_cnn", "preact_resnet32"])
def test_grouped_training_equals_vmap_in_float64(float64, name):
    """One Adam step (full batch) and two epochs of 3 steps: the same models to float64 rounding."""
    f, shape = factory(name)
    x, y, s = data(shape, torch.float64)
    jobs = [member_job(0, k) for k in range(3)]
    one_v = train(f, jobs, x, y, s, Speed("vmap"), epochs=1, batch=N)
    one_g = train(f, jobs, x, y, s, Speed("grouped"), epochs=1, batch=N)
    assert max_diff(one_v, one_g) < 1e-10
    vmap, grouped = train(f, jobs, x, y, s, Speed("vmap")), train(f, jobs, x, y, s, Speed("grouped"))
    assert max_diff(vmap, grouped) < 1e-10
    assert max_diff(vmap[:1], vmap[1:2]) > 1e-3  # each model its own


def test_grouped_training_float32_within_tolerance(tmp_path):
    f, shape = factory("preact_resnet32")
    x, y, s = data(shape)
    cfg = dict(epochs=1, batch_size=N, lr=1e-2, device="cpu", group_size=3, n_members=3)
    a, b = CheckpointStore(tmp_path / "v", "fp"), CheckpointStore(tmp_path / "g", "fp")
    train_members(f, TrainingData(x, y, s), ensemble_settings(vectorise="vmap", **cfg), 0, range(3), a, progress=False)
    train_members(
        f, TrainingData(x, y, s), ensemble_settings(vectorise="grouped", **cfg), 0, range(3), b, progress=False
    )
    assert b.load_meta(0)["speed"]["engine"] == "grouped" and "speed" not in a.load_meta(0)
    assert_one_adam_step_close([a.load(k) for k in range(3)], [b.load(k) for k in range(3)], lr=1e-2)
    # prediction of grouped-trained models runs vmapped (the checkpoints are ordinary state dicts)
    idx = torch.arange(N)
    pv = predict_members(
        f, b, EvalInputs(x, s, idx, 0), ensemble_settings(vectorise="vmap", **cfg), range(3), progress=False
    )
    pg = predict_members(
        f, b, EvalInputs(x, s, idx, 0), ensemble_settings(vectorise="grouped", **cfg), range(3), progress=False
    )
    assert (pv.votes == pg.votes).all() and pv.votes.sum() == 3 * N


def test_grouped_refuses_models_it_cannot_hold():
    bad = nn.Sequential(nn.Conv2d(1, 4, 3), nn.GroupNorm(2, 4), nn.Flatten(), nn.Linear(4 * 36, 2))
    assert "GroupNorm" in unsupported_modules(bad)
    assert unsupported_modules(factory("preact_resnet32")[0]()) == ""

    class Mixer(nn.Module):  # supported layers, but the forward reverses the channel order
        def __init__(self):
            super().__init__()
            self.conv, self.fc = nn.Conv2d(1, 4, 3), nn.Linear(4 * 36, 2)

        def forward(self, x):
            return self.fc(self.conv(x).flip(1).flatten(1))

    with pytest.raises(ConfigError, match="mixes"):
        verify_grouped(Mixer, (1, 8, 8))
    verify_grouped(factory("digits_cnn")[0], (1, 8, 8))  # passes


def test_grouped_is_a_parse_time_error_for_an_unsupported_model():
    model = SimpleNamespace(name="odd", build=lambda shape, k: nn.Sequential(nn.Conv2d(1, 2, 3), nn.LayerNorm(6)))
    run = SimpleNamespace(model=model, dataset=SimpleNamespace(input_shape=(1, 8, 8), num_classes=lambda: 2),
                          sigma_optimiser=None)
    with pytest.raises(ConfigError) as err:
        ensemble_settings(vectorise="grouped").check(run)
    assert "vectorise=grouped cannot stack model=odd" in str(err.value) and "\n" not in str(err.value)


# --- the default is the reference path, bit for bit ----------------------------------------------

@pytest.mark.parametrize("name", ["digits_cnn", "preact_resnet32"])
def test_group_trainer_with_defaults_is_fit_group_bit_for_bit(name):
    f, shape = factory(name)
    x, y, s = data(shape)
    jobs = [member_job(4, k) for k in range(3)]
    ref = fit_group(f, jobs, TrainingData(x, y, s), FitSpec(2, 16, 1e-2, CPU))
    out = train(f, jobs, x, y, s, Speed())
    assert all(torch.equal(a[k], b[k]) for a, b in zip(ref, out) for k in a)


# --- Adam implementations ------------------------------------------------------------------------

@pytest.mark.parametrize("adam", ["foreach", "fused"])
def test_adam_implementations_equal_the_default(adam, float64):
    f, shape = factory("digits_cnn")
    x, y, s = data(shape, torch.float64)
    jobs = [member_job(0, k) for k in range(3)]
    ref, out = train(f, jobs, x, y, s, Speed()), train(f, jobs, x, y, s, Speed(adam=adam))
    assert max_diff(ref, out) < 1e-12
    assert max_diff(ref, train(f, jobs, x, y, s, Speed(), lr=2e-2)) > 1e-4  # the comparison can fail


@pytest.mark.parametrize("adam", ["foreach", "fused"])
def test_adam_implementations_one_step_float32(adam):
    f, shape = factory("mnist_cnn")
    x, y, s = data(shape)
    jobs = [member_job(0, k) for k in range(2)]
    ref = train(f, jobs, x, y, s, Speed(), epochs=1, batch=N)
    assert_one_adam_step_close(ref, train(f, jobs, x, y, s, Speed(adam=adam), epochs=1, batch=N), lr=1e-2)


# --- padded batches -------------------------------------------------------------------------------

def test_masked_batch_norm_is_batch_norm_of_the_real_rows(float64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 4, 3, 3, generator=g)
    w, b = torch.randn(4, generator=g), torch.randn(4, generator=g)
    rm, rv = torch.randn(4, generator=g), torch.rand(4, generator=g) + 0.5
    rm2, rv2 = rm.clone(), rv.clone()
    mask = torch.tensor([1, 1, 1, 1, 1, 0, 0.0])
    out = masked_batch_norm(x, mask, rm, rv, w, b, 0.1, 1e-5)
    ref = F.batch_norm(x[:5], rm2, rv2, w, b, True, 0.1, 1e-5)
    torch.testing.assert_close(out[:5], ref, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(rm, rm2, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(rv, rv2, atol=1e-12, rtol=1e-12)
    assert not torch.allclose(F.batch_norm(x, None, None, w, b, True)[:5], ref)  # padding would change it


def test_padded_order_has_one_shape_and_masks_the_padding():
    order = torch.arange(2 * 10).view(2, 10)
    steps = list(padded_order(order, [0, 4, 8], 4))
    assert [tuple(i.shape) for i, _ in steps] == [(2, 4)] * 3
    idx, mask = steps[-1]
    assert idx[:, :2].tolist() == [[8, 9], [18, 19]] and mask.tolist() == [1, 1, 0, 0]
    assert all(m.tolist() == [1, 1, 1, 1] for _, m in steps[:2])


@pytest.mark.parametrize("engine", ["vmap", "grouped"])
@pytest.mark.parametrize("name", ["preact_resnet32", "digits_cnn"])
def test_padding_changes_no_model_float64(float64, engine, name):
    """40 samples in batches of 16: the last batch of 8 is padded to 16 (BatchNorm included)."""
    f, shape = factory(name)
    x, y, s = data(shape, torch.float64)
    jobs = [member_job(1, k) for k in range(2)]
    ref = train(f, jobs, x, y, s, Speed(engine))
    trainer = GroupTrainer(f, jobs, x, y, s, FitSpec(2, 16, 1e-2, CPU, speed=Speed(engine, pad=True)))
    assert {tuple(i.shape) for i, _ in trainer.batches(0)} == {(2, 16)}
    assert max_diff(ref, trainer.run()) < 1e-10


def test_padding_without_its_mask_would_change_the_models(float64, monkeypatch):
    """The comparison above can fail: padding samples treated as real ones change the models."""
    import certssb.ensemble.group_trainer as gt
    f, shape = factory("digits_cnn")
    x, y, s = data(shape, torch.float64)
    jobs = [member_job(1, k) for k in range(2)]
    ref = train(f, jobs, x, y, s, Speed())
    monkeypatch.setattr(gt, "padded_order", lambda *a: ((i, None) for i, _ in padded_order(*a)))
    assert max_diff(ref, train(f, jobs, x, y, s, Speed(pad=True))) > 1e-4


def test_padding_through_train_members_within_tolerance(tmp_path):
    f, shape = factory("preact_resnet32")
    x, y, s = data(shape)
    cfg = dict(epochs=1, batch_size=N, lr=1e-2, device="cpu", vectorise="true", group_size=2, n_members=2)
    a, b = CheckpointStore(tmp_path / "a", "fp"), CheckpointStore(tmp_path / "b", "fp")
    train_members(f, TrainingData(x[:-3], y[:-3], s[:-3]), ensemble_settings(**cfg), 0, range(2), a, progress=False)
    train_members(
        f,
        TrainingData(x[:-3], y[:-3], s[:-3]),
        ensemble_settings(pad_batches=True, **cfg),
        0,
        range(2),
        b,
        progress=False,
    )
    assert b.load_meta(0)["speed"]["pad"] is True
    assert_one_adam_step_close([a.load(k) for k in range(2)], [b.load(k) for k in range(2)], lr=1e-2)


# --- compile / CUDA graphs: switches that run or are refused in one line -------------------------

def test_cudagraphs_is_refused_in_one_line_without_cuda(tmp_path):
    with pytest.raises(ConfigError) as err:
        ensemble_settings(compile="cudagraphs", device="cpu").check(None)
    assert "needs ensemble.device=cuda" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="vectorise=false"):
        ensemble_settings(compile="inductor", vectorise="false").check(None)
    if torch.cuda.is_available():
        pytest.skip("the run-time refusal is for machines without CUDA")
    f, shape = factory("mlp")
    x, y, s = data(shape)
    cfg = ensemble_settings(compile="cudagraphs", device="auto", vectorise="true", epochs=1, n_members=2)
    with pytest.raises(ConfigError) as err:
        train_members(f, TrainingData(x, y, s), cfg, 0, range(2), CheckpointStore(tmp_path, "fp"), progress=False)
    assert "cudagraphs needs a CUDA device" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow
def test_compile_inductor_runs_or_is_refused_in_one_line(tmp_path):
    """torch.compile on the CPU (30-60 s: it needs a C++ compiler): trains the models the eager
    path trains (float32 rounding: one step), or stops with one line."""
    f, shape = factory("mlp")
    x, y, s = data(shape)
    cfg = dict(epochs=1, batch_size=N, lr=1e-2, device="cpu", vectorise="true", group_size=2, n_members=2)
    a, b = CheckpointStore(tmp_path / "a", "fp"), CheckpointStore(tmp_path / "b", "fp")
    train_members(f, TrainingData(x, y, s), ensemble_settings(**cfg), 0, range(2), a, progress=False)
    try:
        train_members(
            f, TrainingData(x, y, s), ensemble_settings(compile="inductor", **cfg), 0, range(2), b, progress=False
        )
    except ConfigError as exc:
        assert str(exc).startswith("ensemble.compile=inductor failed on cpu") and "\n" not in str(exc)
        return
    assert b.load_meta(0)["speed"]["compile"] == "inductor"
    assert_one_adam_step_close([a.load(k) for k in range(2)], [b.load(k) for k in range(2)], lr=1e-2)


# --- settings, engine choice, fingerprints -------------------------------------------------------

def test_speed_settings_are_checked_in_one_line():
    for bad, key in ((dict(adam="fast"), "ensemble.adam"), (dict(compile="yes"), "ensemble.compile"),
                     (dict(shuffle="gpu"), "ensemble.shuffle"), (dict(vectorise="maybe"), "ensemble.vectorise")):
        with pytest.raises(ConfigError) as err:
            ensemble_settings(**bad).check(None)
        assert str(err.value).startswith(key) and "\n" not in str(err.value)
    for ok in ("vmap", "grouped", "measure", "auto", True, False):
        ensemble_settings(vectorise=ok).check(None)


def test_engine_choice():
    probe = factory("mlp")[0]()
    pick = lambda mode, device: choose_engine(ensemble_settings(vectorise=mode), probe, (1, 8, 8), device)  # noqa: E731
    assert [pick(m, "cpu") for m in ("true", "vmap", "grouped", "false", "auto", "measure")] == \
           ["vmap", "vmap", "grouped", "loop", "vmap", "vmap"]
    assert pick("measure", "cuda") == "measure" and pick("auto", "cuda") == "vmap"
    det = ensemble_settings(vectorise="measure", deterministic=True)
    assert choose_engine(det, probe, (1, 8, 8), "cuda") == "vmap"  # a measured choice could differ between runs
    assert choose_vectorise(ensemble_settings(vectorise="grouped"), probe, (1, 8, 8), "cpu") is True


def test_new_keys_leave_the_fingerprints_of_default_runs_unchanged():
    from certssb.resume import training_settings
    ens = ensemble_settings()
    plain = ens.results_plain()
    assert not {"adam", "pad_batches", "compile", "shuffle"} & set(plain)  # as before the keys existed
    assert ensemble_settings(adam="fused", pad_batches=True, compile="inductor").results_plain() == plain
    assert ensemble_settings(shuffle="device").results_plain()["shuffle"] == "device"
    run = SimpleNamespace(ensemble=ens)
    assert training_settings(run) == {"epochs": ens.epochs, "batch_size": ens.batch_size, "lr": ens.lr}
    assert training_settings(SimpleNamespace(ensemble=ensemble_settings(shuffle="device")))["shuffle"] == "device"


# --- device shuffle ------------------------------------------------------------------------------

def test_hashed_orders_are_permutations_from_exact_integer_arithmetic():
    from certssb.ensemble.shuffle import _epoch_term, hashed_orders
    from test_ensemble_noise import _U64, _mix_exact, _signed
    keys = torch.tensor([3, -7, 2 ** 62 + 5])
    a = hashed_orders(keys, 0, 500)
    assert all(sorted(row.tolist()) == list(range(500)) for row in a)
    assert torch.equal(a, hashed_orders(keys, 0, 500))  # a pure function
    assert not torch.equal(a, hashed_orders(keys, 1, 500)) and not torch.equal(a[0], a[1])
    # the sort keys, from exact Python integers: same order (distinct keys, so no ties)
    g = 0x9E3779B97F4A7C15
    for r, key in enumerate(keys.tolist()):
        stream = _mix_exact((key + _epoch_term(0)) & _U64)
        h = [_signed(_mix_exact((stream + p * g) & _U64)) for p in range(1, 501)]
        assert len(set(h)) == 500 and a[r].tolist() == sorted(range(500), key=h.__getitem__)


def test_device_shuffle_orders_each_subset_and_trains_other_models(tmp_path):
    from certssb.ensemble.shuffle import DeviceShuffler
    subsets = [torch.tensor([1, 5, 9, 13]), torch.tensor([0, 2, 4, 6])]
    jobs = [member_job(0, k, subsets[k], "device") for k in range(2)]
    orders = DeviceShuffler(jobs, 20, CPU).orders(3)
    assert [sorted(o.tolist()) for o in orders] == [s.tolist() for s in subsets]
    assert torch.equal(jobs[1].order(3, 20, CPU), orders[1])  # one model alone: the same order
    f, shape = factory("mlp")
    x, y, s = data(shape)
    cfg = dict(epochs=1, batch_size=8, device="cpu", vectorise="true", n_members=2)
    host, dev = CheckpointStore(tmp_path / "h", "fp"), CheckpointStore(tmp_path / "d", "fp")
    train_members(f, TrainingData(x, y, s), ensemble_settings(**cfg), 0, range(2), host, progress=False)
    train_members(
        f, TrainingData(x, y, s), ensemble_settings(shuffle="device", **cfg), 0, range(2), dev, progress=False
    )
    assert max_diff([host.load(0)], [dev.load(0)]) > 1e-3


def test_device_shuffle_vectorised_equals_one_at_a_time_float64(float64):
    from certssb.ensemble.train import _fit_one
    f, shape = factory("digits_cnn")
    x, y, s = data(shape, torch.float64)
    jobs = [member_job(2, k, None, "device") for k in range(2)]
    vec = train(f, jobs, x, y, s, Speed())
    ones = [_fit_one(f, job, TrainingData(x, y, s), FitSpec(2, 16, 1e-2, CPU)).state_dict() for job in jobs]
    assert max_diff(vec, ones) < 1e-10
    host = train(f, [member_job(2, k) for k in range(2)], x, y, s, Speed())
    assert max_diff(vec, host) > 1e-4
