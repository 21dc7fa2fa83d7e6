"""ensemble.precision: bf16 autocast (forced, so it runs on the CPU too), fp32, auto; channels-last."""

import numpy as np
import pytest
import torch

from certssb.config import parse_run
from certssb.ensemble.settings import PRECISIONS
from certssb.ensemble import CheckpointStore, predict_members, train_members, train_single
from certssb.ensemble.jobs import member_job
from certssb.ensemble.precision import Precision, resolve_precision
from certssb.ensemble.train import _fit_one
from certssb.ensemble.vectorised import fit_group, stack_models
from certssb.errors import ConfigError
from certssb.model import model_factory
from certssb.ensemble.training_data import TrainingData
from certssb.ensemble.predict import EvalInputs
from certssb.ensemble.speed import FitSpec
from tolerances import assert_one_adam_step_close

from conftest import ensemble_settings, model_option

MODELS = {"digits_cnn": model_option("digits_cnn"), "mlp": model_option("mlp", hidden=[32])}



@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    d = load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(d.target, dtype=torch.int64)
    return x[:480], y[:480], x[1400:1700], y[1400:1700]


def cfg(**kw):
    base = dict(epochs=3, batch_size=32, lr=1e-2, vectorise="auto", group_size=None, eval_batch_size=128,
                device="cpu", precision="auto")
    base.update(kw)
    return ensemble_settings(**base)


def train_and_predict(tmp_path, name, digits, **kw):
    x, y, xt, _ = digits
    f = model_factory(MODELS[name], (1, 8, 8), 10)
    store = CheckpointStore(tmp_path / f"{name}-{'-'.join(f'{k}{v}' for k, v in kw.items())}", "fp")
    c = cfg(**kw)
    train_members(f, TrainingData(x, y, torch.full((len(x),), 0.1)), c, 0, range(3), store, progress=False)
    votes = predict_members(
        f, store, EvalInputs(xt, torch.full((len(xt),), 0.1), torch.arange(len(xt)), 0), c, range(3), progress=False
    )
    return store, votes


def test_resolve_precision_on_cpu():
    cnn, mlp = (model_factory(MODELS[n], (1, 8, 8), 10)() for n in ("digits_cnn", "mlp"))
    for model in (cnn, mlp):
        for mode in ("auto", "fp32"):
            p = resolve_precision(mode, model, "cpu")
            assert p.autocast_dtype is None and not p.channels_last and p.name == "fp32"
        p = resolve_precision("bf16", model, "cpu")
        assert p.autocast_dtype == torch.bfloat16 and not p.channels_last and p.name == "bf16"


def test_bf16_forward_is_autocast_on_both_paths():
    f = model_factory(MODELS["digits_cnn"], (1, 8, 8), 10)
    bf16 = resolve_precision("bf16", f(), "cpu")
    x = torch.rand(5, 1, 8, 8)
    model = f()
    with bf16.autocast():
        assert model(x).dtype == torch.bfloat16
    assert model(x).dtype == torch.float32
    # vmap path: conv and linear operands are cast explicitly (CPU autocast misses vmapped convs)
    for prec, dtype in ((bf16, torch.bfloat16), (Precision("cpu"), torch.float32)):
        params, buffers, _, call = stack_models([f(), f()], prec)
        assert all(p.dtype == torch.float32 for p in params.values())  # master weights stay fp32
        with prec.autocast():
            out = call(params, buffers, x.unsqueeze(0).expand(2, -1, -1, -1, -1))
        assert out.dtype == dtype
        out.float().sum().backward()
        assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in params.values())


@pytest.mark.parametrize("name", ["digits_cnn", "mlp"])
@pytest.mark.parametrize("vectorise", ["true", "false"])
def test_bf16_close_to_fp32_but_not_identical(tmp_path, digits, name, vectorise):
    kw = dict(vectorise=vectorise, group_size=3)
    s32, v32 = train_and_predict(tmp_path, name, digits, precision="fp32", **kw)
    s16, v16 = train_and_predict(tmp_path, name, digits, precision="bf16", **kw)
    assert s16.load_meta(0)["precision"] == "bf16" and s32.load_meta(0)["precision"] == "fp32"
    a, b = s32.load(0), s16.load(0)
    assert all(b[k].dtype == torch.float32 for k in b)  # checkpoints stay float32
    assert any(not torch.equal(a[k], b[k]) for k in a)  # autocast was active
    for v in (v32, v16):
        assert v.prob_sum.dtype == np.float64 and v.votes.dtype == np.int64 and v.n_members == 3
        np.testing.assert_allclose(v.prob_sum.sum(1), 3.0, atol=1e-9)
        assert (v.votes.sum(1) == 3).all()
    agree = (v32.prob_sum.argmax(1) == v16.prob_sum.argmax(1)).mean()
    assert agree >= 0.9, agree
    assert not np.array_equal(v32.prob_sum, v16.prob_sum)


def test_bf16_vectorised_matches_loop(tmp_path, digits):
    _, loop = train_and_predict(tmp_path, "digits_cnn", digits, precision="bf16", vectorise="false")
    _, vec = train_and_predict(tmp_path, "digits_cnn", digits, precision="bf16", vectorise="true", group_size=3)
    assert (loop.prob_sum.argmax(1) == vec.prob_sum.argmax(1)).mean() >= 0.9


@pytest.mark.parametrize("vectorise", ["true", "false"])
def test_auto_equals_fp32_exactly_on_cpu(tmp_path, digits, vectorise):
    kw = dict(vectorise=vectorise, group_size=3, epochs=1)
    sa, va = train_and_predict(tmp_path, "digits_cnn", digits, precision="auto", **kw)
    sf, vf = train_and_predict(tmp_path, "digits_cnn", digits, precision="fp32", **kw)
    for k in range(3):
        a, b = sa.load(k), sf.load(k)
        assert all(torch.equal(a[n], b[n]) for n in a)
    assert np.array_equal(va.prob_sum, vf.prob_sum) and np.array_equal(va.votes, vf.votes)


def test_channels_last_path_matches_default_layout(digits):
    """The CUDA `auto` memory format, exercised on the CPU (float32, so only the layout changes)."""
    x, y, _, _ = digits
    x, y = x[:96], y[:96]
    s = torch.full((len(x),), 0.1)
    f = model_factory(MODELS["digits_cnn"], (1, 8, 8), 10)
    cl = Precision("cpu", None, True)
    assert cl.name == "fp32+channels_last"
    dev = torch.device("cpu")
    jobs = [member_job(0, k) for k in range(2)]
    # one full-batch Adam step: the layouts' kernels round apart, see tests/tolerances.py
    ref = fit_group(f, jobs, TrainingData(x, y, s), FitSpec(1, len(x), 1e-2, dev))
    got = fit_group(f, jobs, TrainingData(x, y, s), FitSpec(1, len(x), 1e-2, dev, cl))
    assert all(b[k].is_contiguous() for b in got for k in b)
    assert_one_adam_step_close(ref, got, lr=1e-2)
    one = _fit_one(f, jobs[0], TrainingData(x, y, s), FitSpec(1, len(x), 1e-2, dev, cl)).state_dict()
    assert_one_adam_step_close([one], ref[:1], lr=1e-2)
    raw = torch.rand(2, 4, 3, 8, 8)  # [G, b, C, H, W]
    # the vmapped path runs in the default layout (channels-last does not survive vmap's rules)
    assert cl.for_vmap() == Precision("cpu", None, False) and cl.batch(raw) is raw
    assert cl.batch(raw[0]).is_contiguous(memory_format=torch.channels_last)


def test_train_single_bf16(digits):
    x, y, _, _ = digits
    f = model_factory(MODELS["digits_cnn"], (1, 8, 8), 10)
    a = train_single(f, x[:96], y[:96], 0.0, cfg(epochs=1, precision="fp32"), 0, "reference", "cpu")
    b = train_single(f, x[:96], y[:96], 0.0, cfg(epochs=1, precision="bf16"), 0, "reference", "cpu")
    assert all(p.dtype == torch.float32 for p in b.parameters())
    assert any(not torch.equal(pa, pb) for pa, pb in zip(a.parameters(), b.parameters()))


def test_bad_precision_is_a_config_error():
    for bad in ("fp16", "half", "bfloat16"):  # checked once, when the settings are parsed
        with pytest.raises(ConfigError, match=r"ensemble\.precision.*auto, fp32, bf16"):
            cfg(precision=bad).check(None)


def test_config_schema_and_validate():
    from conftest import compose_cfg
    assert PRECISIONS == ("auto", "fp32", "bf16")
    good = compose_cfg(["ensemble.precision=bf16"])
    assert parse_run(good).ensemble.precision == "bf16"
    assert good.ensemble.precision == "bf16" and compose_cfg([]).ensemble.precision == "auto"
    with pytest.raises(ConfigError, match=r"^ensemble\.precision must be one of auto, fp32, bf16; got 'fp16'$"):
        parse_run(compose_cfg(["ensemble.precision=fp16"]))
