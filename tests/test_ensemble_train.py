import numpy as np
import pytest
import torch
from torch import nn

import certssb.ensemble.training_data as source
from certssb.ensemble import (CheckpointStore, member_noise, predict_members, predict_single, resolve_device,
                              train_members, train_single)
from certssb.ensemble.jobs import member_job
from certssb.ensemble.train import CPU_VMAP_MAX_FWD_FLOPS, _fit_one, forward_flops
from certssb.ensemble.vectorised import fit_group
from certssb.errors import CertSSBError, ConfigError
from certssb.model import model_factory
from certssb.ensemble.training_data import TrainingData
from certssb.ensemble.predict import EvalInputs
from certssb.ensemble.speed import FitSpec
from tolerances import assert_one_adam_step_close, assert_predictions_agree

from conftest import ensemble_settings, model_option

N, C = 72, 4



def data(seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(N) % C
    x = (torch.rand(N, 1, 8, 8, generator=g) * 0.5 + (y.view(-1, 1, 1, 1) / C) * 0.5).clamp(0, 1)
    sigmas = 0.1 + 0.3 * torch.rand(N, generator=g)
    return x, y, sigmas


def cfg(**kw):
    base = dict(epochs=2, batch_size=16, lr=1e-2, vectorise="auto", group_size=None, eval_batch_size=32,
                device="cpu")
    base.update(kw)
    return ensemble_settings(**base)


def states(store, members):
    return [store.load(k) for k in members]


def assert_states_close(a, b, atol=1e-5):
    for sa, sb in zip(a, b):
        assert sa.keys() == sb.keys()
        for k in sa:
            torch.testing.assert_close(sa[k], sb[k], atol=atol, rtol=1e-4)


LAST = {"digits_cnn": "classifier.3.weight", "mlp": "net.3.weight"}


@pytest.mark.parametrize("model", ["digits_cnn", "mlp"])
def test_vectorised_equals_one_at_a_time_after_one_step(tmp_path, model):
    """Deterministic equivalence: one full-batch Adam step (tolerance in tests/tolerances.py)."""
    x, y, s = data()
    f = model_factory(model_option(model, hidden=[32]), (1, 8, 8), C)
    loop, vec = CheckpointStore(tmp_path / "loop", "fp"), CheckpointStore(tmp_path / "vec", "fp")
    one_step = dict(epochs=1, batch_size=N)
    assert train_members(
        f, TrainingData(x, y, s), cfg(vectorise="false", **one_step), 3, range(4), loop, progress=False
    ) == [0, 1, 2, 3]
    assert train_members(
        f, TrainingData(x, y, s), cfg(vectorise="true", group_size=3, **one_step), 3, range(4), vec, progress=False
    ) == [0, 1, 2, 3]
    assert loop.load_meta(0)["vectorised"] is False and vec.load_meta(0)["vectorised"] is True
    assert_one_adam_step_close(states(loop, range(4)), states(vec, range(4)), lr=cfg().lr)
    # members differ from each other (own init, shuffles and noise)
    assert not torch.allclose(loop.load(0)[LAST[model]], loop.load(1)[LAST[model]])


@pytest.mark.parametrize("model", ["digits_cnn", "mlp"])
def test_vectorised_and_one_at_a_time_predict_alike_after_epochs(tmp_path, model):
    """After several epochs the paths drift apart chaotically: compare predictions, not weights."""
    x, y, s = data()
    f = model_factory(model_option(model, hidden=[32]), (1, 8, 8), C)
    loop, vec, other = (CheckpointStore(tmp_path / d, "fp") for d in ("loop", "vec", "other"))
    train_members(f, TrainingData(x, y, s), cfg(vectorise="false"), 3, range(4), loop, progress=False)
    train_members(f, TrainingData(x, y, s), cfg(vectorise="true", group_size=3), 3, range(4), vec, progress=False)
    idx = torch.arange(100, 100 + N)
    pl = predict_members(f, loop, EvalInputs(x, s, idx, 3), cfg(vectorise="false"), range(4), progress=False)
    pv = predict_members(
        f, vec, EvalInputs(x, s, idx, 3), cfg(vectorise="true", group_size=3), range(4), progress=False
    )
    assert_predictions_agree(pl, pv)
    # the check can fail: an ensemble of other members (seed 4) is told apart
    train_members(f, TrainingData(x, y, s), cfg(vectorise="false"), 4, range(4), other, progress=False)
    po = predict_members(f, other, EvalInputs(x, s, idx, 4), cfg(vectorise="false"), range(4), progress=False)
    with pytest.raises(AssertionError):
        assert_predictions_agree(pl, po)


def test_resume_trains_only_missing_and_equals_uninterrupted(tmp_path):
    x, y, s = data(1)
    f = model_factory(model_option("digits_cnn"), (1, 8, 8), C)
    c = cfg(vectorise="true", group_size=4, epochs=1, batch_size=N)  # one step: groups of 4 vs 2 round apart
    full = CheckpointStore(tmp_path / "full", "fp")
    train_members(f, TrainingData(x, y, s), c, 11, range(4), full, progress=False)
    part = CheckpointStore(tmp_path / "part", "fp")
    assert train_members(f, TrainingData(x, y, s), c, 11, range(0, 2), part, progress=False) == [0, 1]
    before = states(part, range(2))
    assert train_members(f, TrainingData(x, y, s), c, 11, range(0, 4), part, progress=False) == [2, 3]
    assert train_members(f, TrainingData(x, y, s), c, 11, range(0, 4), part, progress=False) == []
    assert_states_close(before, states(part, range(2)), atol=0)
    assert_one_adam_step_close(states(full, range(4)), states(part, range(4)), lr=c.lr)


def test_fingerprint_mismatch_retrains(tmp_path, caplog):
    x, y, s = data()
    f = model_factory(model_option("mlp", hidden=[16]), (1, 8, 8), C)
    train_members(f, TrainingData(x, y, s), cfg(epochs=1), 0, range(2), CheckpointStore(tmp_path, "a"), progress=False)
    with caplog.at_level("WARNING", logger="certssb"):
        done = train_members(
            f, TrainingData(x, y, s), cfg(epochs=1), 0, range(2), CheckpointStore(tmp_path, "b"), progress=False
        )
    assert done == [0, 1] and "fingerprint" in caplog.text
    assert CheckpointStore(tmp_path, "b").missing(range(2)) == []


class Recorder(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(64, C)
        self.seen = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.lin(x.flatten(1))


@pytest.mark.parametrize("cached", [True, False])
def test_member_sees_same_noise_every_epoch(monkeypatch, cached):
    if not cached:
        monkeypatch.setattr(source, "cache_budget_bytes", lambda device: 0)
    x, y, s = data()
    job = member_job(5, 2)
    model = _fit_one(Recorder, job, TrainingData(x, y, s), FitSpec(3, 16, 1e-2, torch.device("cpu")))
    seen = torch.cat(model.seen)
    assert seen.shape[0] == 3 * N
    for e in range(3):
        perm = job.permutation(e, N)
        expected = x[perm] + s[perm].view(-1, 1, 1, 1) * member_noise(5, 2, perm, (1, 8, 8), "train")
        assert torch.equal(seen[e * N:(e + 1) * N], expected)


def test_noisy_source_cached_equals_generated(monkeypatch):
    x, y, s = data()
    jobs = [member_job(0, k) for k in (4, 1, 7)]
    idx = torch.stack([torch.randperm(N)[:10] for _ in jobs])
    cached = source.NoisySource(x, s, jobs, torch.device("cpu"))
    assert cached.cache is not None
    monkeypatch.setattr(source, "cache_budget_bytes", lambda device: 0)
    gen = source.NoisySource(x, s, jobs, torch.device("cpu"))
    assert gen.cache is None
    assert torch.equal(cached.batch(idx), gen.batch(idx))
    assert torch.equal(cached.batch_one(1, idx[1]), gen.batch(idx)[1])


def test_predict_sums_and_missing(tmp_path):
    x, y, s = data()
    f = model_factory(model_option("mlp", hidden=[16]), (1, 8, 8), C)
    store = CheckpointStore(tmp_path, "fp")
    train_members(f, TrainingData(x, y, s), cfg(epochs=1), 0, range(3), store, progress=False)
    out = predict_members(f, store, EvalInputs(x, s, torch.arange(N), 0), cfg(), range(3), progress=False)
    assert out.n_members == 3 and out.prob_sum.dtype == np.float64 and out.votes.dtype == np.int64
    assert out.prob_sum.shape == (N, C) and out.votes.shape == (N, C)
    np.testing.assert_allclose(out.prob_sum.sum(1), 3.0, atol=1e-9)
    assert (out.votes.sum(1) == 3).all()
    # noise is keyed by the global index: same inputs, other indices -> other noise
    other = predict_members(f, store, EvalInputs(x, s, torch.arange(N) + 1000, 0), cfg(), range(3), progress=False)
    assert not np.allclose(other.prob_sum, out.prob_sum)
    # a subset of the inputs reproduces the same rows
    sub = predict_members(f, store, EvalInputs(x[5:9], s[5:9], torch.arange(5, 9), 0), cfg(), range(3), progress=False)
    np.testing.assert_allclose(sub.prob_sum, out.prob_sum[5:9], atol=1e-6)
    with pytest.raises(CertSSBError, match="missing"):
        predict_members(f, store, EvalInputs(x, s, torch.arange(N), 0), cfg(), range(5), progress=False)


def test_train_single_deterministic_and_predict_single():
    x, y, s = data()
    f = model_factory(model_option("digits_cnn"), (1, 8, 8), C)
    a = train_single(f, x, y, 0.0, cfg(epochs=1), 0, "reference", "cpu")
    b = train_single(f, x, y, 0.0, cfg(epochs=1), 0, "reference", "cpu")
    c = train_single(f, x, y, 0.25, cfg(epochs=1), 0, "surrogate", "cpu")
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    assert not a.training
    pred = predict_single(a, x, 10, "cpu")
    assert pred.shape == (N,) and pred.dtype == np.int64 and pred.max() < C


def test_config_errors(tmp_path):
    x, y, s = data()
    f = model_factory(model_option("mlp"), (1, 8, 8), C)
    store = CheckpointStore(tmp_path, "fp")
    for bad in (dict(vectorise="maybe"), dict(epochs=0), dict(lr=-1.0), dict(batch_size=2.5)):
        with pytest.raises(ConfigError):  # at parse time: the settings' own check (or their type)
            cfg(**bad).check(None)
    with pytest.raises(ConfigError):
        train_members(f, TrainingData(x, y, -s), cfg(), 0, range(1), store, progress=False)
    with pytest.raises(ConfigError):
        train_members(f, TrainingData(x, y[:-1], s), cfg(), 0, range(1), store, progress=False)
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError):
            resolve_device("cuda")
    with pytest.raises(ConfigError):
        resolve_device("tpu-ish")


def test_batchnorm_model_auto_choice_and_forced_vmap(tmp_path):
    x, y, s = data()
    x3 = x.repeat(1, 3, 1, 1)
    f = model_factory(model_option("preact_resnet32", blocks_per_stage=1), (3, 8, 8), C)
    auto, forced = CheckpointStore(tmp_path / "a", "fp"), CheckpointStore(tmp_path / "f", "fp")
    one_step = dict(epochs=1, batch_size=N)  # deterministic comparison: see tests/tolerances.py
    train_members(f, TrainingData(x3, y, s), cfg(**one_step), 0, range(2), auto, progress=False)
    # on the CPU, auto follows the FLOPs rule (BatchNorm no longer excludes vmap)
    assert auto.load_meta(0)["vectorised"] is (forward_flops(f(), (3, 8, 8)) <= CPU_VMAP_MAX_FWD_FLOPS)
    train_members(
        f, TrainingData(x3, y, s), cfg(vectorise=True, group_size=2, **one_step), 0, range(2), forced, progress=False
    )
    assert forced.load_meta(0)["vectorised"] is True
    # weights and BatchNorm running statistics (one update from the same batch statistics)
    assert_one_adam_step_close(states(auto, range(2)), states(forced, range(2)), lr=cfg().lr)
    out = predict_members(
        f, forced, EvalInputs(x3, s, torch.arange(N), 0), cfg(vectorise=True, group_size=2), range(2), progress=False
    )
    assert (out.votes.sum(1) == 2).all()


def test_batchnorm_vmap_equals_one_at_a_time_in_float64():
    """vmapped BatchNorm (per-member running statistics) computes what one model does: checked in
    float64, where the two paths agree to 1e-10 after two epochs (in float32 Adam amplifies the
    rounding of near-zero parameters to ~1e-3, which says nothing about the semantics)."""
    x, y, s = data()
    x3, s = x.repeat(1, 3, 1, 1).double(), s.double()
    f = model_factory(model_option("preact_resnet32", blocks_per_stage=1), (3, 8, 8), C)
    dev = torch.device("cpu")
    jobs = [member_job(0, k) for k in range(2)]
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        vec = fit_group(f, jobs, TrainingData(x3, y, s), FitSpec(2, 24, 1e-2, dev))
        ones = [_fit_one(f, job, TrainingData(x3, y, s), FitSpec(2, 24, 1e-2, dev)).state_dict() for job in jobs]
    finally:
        torch.set_default_dtype(old)
    for one, v in zip(ones, vec):
        for k in one:
            torch.testing.assert_close(v[k].double(), one[k].double(), atol=1e-10, rtol=1e-10)
    # each member has its own statistics
    assert not torch.allclose(vec[0]["bn.running_mean"], vec[1]["bn.running_mean"])


def test_batchnorm_vmap_in_bf16(tmp_path):
    """bf16 autocast + vmap + BatchNorm (crashed with 'expected scalar type BFloat16 but found
    Float'): trains, keeps float32 statistics per member, and stays near the one-at-a-time bf16
    members (bf16 has 8 mantissa bits; after one epoch the parameters differ by well under 0.05)."""
    x, y, s = data()
    x3 = x.repeat(1, 3, 1, 1)
    f = model_factory(model_option("preact_resnet32", blocks_per_stage=1), (3, 8, 8), C)
    loop, vec = CheckpointStore(tmp_path / "l", "fp"), CheckpointStore(tmp_path / "v", "fp")
    kw = dict(epochs=1, batch_size=24, lr=1e-3, precision="bf16")
    train_members(f, TrainingData(x3, y, s), cfg(vectorise=False, **kw), 0, range(2), loop, progress=False)
    train_members(f, TrainingData(x3, y, s), cfg(vectorise=True, group_size=2, **kw), 0, range(2), vec, progress=False)
    assert vec.load_meta(0)["precision"] == "bf16" and vec.load_meta(0)["vectorised"] is True
    for k in range(2):
        a, b = loop.load(k), vec.load(k)
        assert b["bn.running_mean"].dtype == torch.float32
        for name in a:
            assert torch.isfinite(b[name].float()).all()
            torch.testing.assert_close(b[name].float(), a[name].float(), atol=0.05, rtol=0.05)
    assert not torch.allclose(vec.load(0)["bn.running_mean"], vec.load(1)["bn.running_mean"])
