"""The speed switches on CUDA (skipped without CUDA; run by ``make gpu-check``): the grouped engine,
padding and whole-step CUDA graphs against the reference in float64, fused Adam, bf16 grouped,
torch.compile and the measured engine choice."""

from __future__ import annotations

import pytest
import torch

from certssb.ensemble.determinism import deterministic_kernels
from certssb.ensemble.group_trainer import FitSpec, GroupTrainer, measure_engine
from certssb.ensemble.jobs import member_job
from certssb.ensemble.precision import resolve_precision
from certssb.ensemble.speed import Speed
from certssb.model import model_factory
from tolerances import assert_one_adam_step_close

from conftest import model_option

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

CUDA = torch.device("cuda")
N, C = 96, 3


def setup(name="preact_resnet32", shape=(3, 8, 8), dtype=torch.float32):
    f = model_factory(model_option(name, blocks_per_stage=1, hidden=[32]), shape, C)
    g = torch.Generator().manual_seed(0)
    y = torch.arange(N) % C
    x = (torch.rand((N,) + shape, generator=g) * 0.5 + (y.view(-1, 1, 1, 1) / C) * 0.5).clamp(0, 1)
    s = 0.1 + 0.2 * torch.rand(N, generator=g)
    return f, x.to(CUDA, dtype), y.to(CUDA), s.to(CUDA, dtype)


def train(f, x, y, s, speed, epochs=2, batch=16, precision=None, members=3):
    jobs = [member_job(0, k) for k in range(members)]
    spec = FitSpec(epochs, batch, 1e-2, CUDA, precision or resolve_precision("fp32", f(), CUDA), speed)
    trainer = GroupTrainer(f, jobs, x, y, s, spec)
    return trainer.run(), trainer


def max_diff(a, b):
    return max(float((sa[k].double() - sb[k].double()).abs().max()) for sa, sb in zip(a, b) for k in sa)


@pytest.mark.parametrize("speed", [Speed("grouped"), Speed("vmap", pad=True), Speed("grouped", pad=True),
                                   Speed("vmap", "fused", compile="cudagraphs"),
                                   Speed("grouped", "fused", True, "cudagraphs")], ids=lambda s: s.label())
def test_switches_equal_the_reference_in_float64_on_cuda(float64, speed):
    """6 steps per epoch (the last of 6 samples padded where asked), 2 epochs: CUDA graphs are
    captured after 3 warm-up steps and replayed for the rest."""
    f, x, y, s = setup(dtype=torch.float64)
    x, y, s = x[:86], y[:86], s[:86]
    with deterministic_kernels(True):
        ref, _ = train(f, x, y, s, Speed())
        out, trainer = train(f, x, y, s, speed)
    if speed.compile == "cudagraphs":
        assert trainer.graphed.graph is not None
    assert max_diff(ref, out) < 1e-9


def test_fused_adam_one_step_on_cuda():
    f, x, y, s = setup("mnist_cnn", (1, 28, 28))
    with deterministic_kernels(True):
        ref, _ = train(f, x, y, s, Speed(), epochs=1, batch=N)
        out, _ = train(f, x, y, s, Speed(adam="fused"), epochs=1, batch=N)
    assert_one_adam_step_close(ref, out, lr=1e-2)


def test_grouped_bf16_channels_last_close_to_vmap_bf16():
    """``precision=auto`` on CUDA: bf16 autocast; grouped keeps channels-last (bf16 rounding:
    within 0.05 after one epoch, as the vmap-vs-loop bf16 test)."""
    f, x, y, s = setup()
    auto = resolve_precision("auto", f(), CUDA)
    vmap, _ = train(f, x, y, s, Speed(), epochs=1, batch=32, precision=auto)
    grouped, trainer = train(f, x, y, s, Speed("grouped"), epochs=1, batch=32, precision=auto)
    assert trainer.precision.channels_last == auto.channels_last
    for a, b in zip(vmap, grouped):
        for k in a:
            torch.testing.assert_close(b[k].float(), a[k].float(), atol=0.05, rtol=0.05)


def test_compile_inductor_on_cuda():
    f, x, y, s = setup("mlp", (1, 8, 8))
    with deterministic_kernels(True):
        ref, _ = train(f, x, y, s, Speed(), epochs=1, batch=N)
        out, _ = train(f, x, y, s, Speed(pad=True, compile="inductor"), epochs=1, batch=N)
    assert_one_adam_step_close(ref, out, lr=1e-2)


def test_measured_engine_choice():
    f, x, y, s = setup()
    spec = FitSpec(1, 32, 1e-3, CUDA, resolve_precision("auto", f(), CUDA))
    engine, timings = measure_engine(f, x, y, s, spec, 4, steps=2)
    assert engine in ("vmap", "grouped") and set(timings) == {"vmap", "grouped"}
    assert timings[engine] == min(timings.values()) > 0
