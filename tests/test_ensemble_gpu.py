"""CUDA paths (skipped without CUDA; run by ``make gpu-check``): vmap + bf16 + BatchNorm, layouts,
prediction on the GPU against the CPU, the measured group size."""


import numpy as np
import pytest
import torch

from certssb.ensemble import CheckpointStore, predict_members, train_members
from certssb.ensemble.group_size import CudaMemoryProbe, size_from_trial
from certssb.ensemble.vectorised import trial_step
from certssb.model import model_factory
from certssb.ensemble.training_data import TrainingData
from certssb.ensemble.predict import EvalInputs
from certssb.ensemble.speed import FitSpec

from conftest import ensemble_settings, model_option

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

N, C = 96, 3


def data(shape=(1, 8, 8), seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(N) % C
    x = (torch.rand((N,) + shape, generator=g) * 0.5 + (y.view(-1, 1, 1, 1) / C) * 0.5).clamp(0, 1)
    return x, y, 0.1 + 0.2 * torch.rand(N, generator=g)


def cfg(**kw):
    base = dict(epochs=1, batch_size=32, lr=1e-3, vectorise="auto", group_size=None, eval_batch_size=64,
                device="cuda", precision="auto", n_members=4, deterministic=False)
    base.update(kw)
    return ensemble_settings(**base)


def test_batchnorm_resnet_vectorises_in_bf16_on_cuda(tmp_path):
    """auto on CUDA: vmap for the BatchNorm ResNet, bf16; close to the one-at-a-time bf16 members
    (bf16 rounding: parameters within 0.05 after one epoch at lr 1e-3)."""
    x, y, s = data((3, 8, 8))
    f = model_factory(model_option("preact_resnet32", blocks_per_stage=1), (3, 8, 8), C)
    vec, loop = CheckpointStore(tmp_path / "v", "fp"), CheckpointStore(tmp_path / "l", "fp")
    train_members(f, TrainingData(x, y, s), cfg(), 0, range(4), vec, progress=False)
    meta = vec.load_meta(0)
    assert meta["vectorised"] is True and meta["precision"] == "bf16"
    train_members(f, TrainingData(x, y, s), cfg(vectorise=False), 0, range(4), loop, progress=False)
    assert loop.load_meta(0)["precision"] == "bf16+channels_last"
    for k in range(4):
        a, b = loop.load(k), vec.load(k)
        for name in a:
            torch.testing.assert_close(b[name].float(), a[name].float(), atol=0.05, rtol=0.05)
    assert not torch.allclose(vec.load(0)["bn.running_mean"], vec.load(1)["bn.running_mean"])


def test_cuda_prediction_matches_cpu_fp32(tmp_path):
    """The same fp32 MLP members predict the same on both devices (noise is device-independent;
    float32 forward rounding: probabilities within 1e-4)."""
    x, y, s = data()
    f = model_factory(model_option("mlp", hidden=[32]), (1, 8, 8), C)
    store = CheckpointStore(tmp_path / "m", "fp")
    train_members(
        f,
        TrainingData(x, y, s),
        cfg(precision="fp32", device="cpu", vectorise="true", group_size=4),
        0,
        range(4),
        store,
        progress=False,
    )
    idx = torch.arange(N)
    cpu = predict_members(
        f, store, EvalInputs(x, s, idx, 0), cfg(precision="fp32", device="cpu"), range(4), progress=False
    )
    gpu = predict_members(f, store, EvalInputs(x, s, idx, 0), cfg(precision="fp32"), range(4), progress=False)
    np.testing.assert_allclose(gpu.prob_sum, cpu.prob_sum, atol=1e-4)


def test_measured_group_size_on_cuda():
    x, y, s = data((1, 28, 28))
    f = model_factory(model_option("mnist_cnn"), (1, 28, 28), C)
    dev = torch.device("cuda")
    x, y, s = x.to(dev), y.to(dev), s.to(dev)
    sizing = size_from_trial(
        lambda g: trial_step(f, g, TrainingData(x, y, s), FitSpec(1, 32, 1e-3, dev)), CudaMemoryProbe(dev), 10_000
    )
    assert sizing.per_member_bytes > 0 and 1 <= sizing.group_size <= 1024
    # what one member's parameters, gradients and Adam moments take at least
    n_params = sum(p.numel() for p in f().parameters())
    assert sizing.per_member_bytes >= 4 * 4 * n_params * 0.9
