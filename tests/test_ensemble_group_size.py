"""Group sizing from a measured trial step (fake memory probe), group plans, deterministic blocks."""


import pytest
import torch

from conftest import ensemble_settings, model_option

from certssb.ensemble import CheckpointStore, train_members
from certssb.ensemble.determinism import deterministic_kernels
from certssb.ensemble.group_size import TRIAL_LARGE, jobs_per_gpu, plan_groups, size_from_trial
from certssb.model import model_factory
from certssb.ensemble.training_data import TrainingData

MiB = 1 << 20


class FakeProbe:
    """A device of ``total`` bytes holding ``held`` bytes; a trial of g members peaks at
    ``held + fixed + g * per``."""

    def __init__(self, total, held, fixed, per):
        self.total_, self.held, self.fixed, self.per = total, held, fixed, per
        self.current_peak = held
        self.trials = []

    def total(self):
        return self.total_

    def allocated(self):
        return self.held

    def reset_peak(self):
        self.current_peak = self.held

    def peak(self):
        return self.current_peak

    def run(self, g):
        self.trials.append(g)
        self.current_peak = self.held + self.fixed + g * self.per


def test_size_from_trial_arithmetic():
    probe = FakeProbe(total=1000 * MiB, held=100 * MiB, fixed=50 * MiB, per=3 * MiB)
    s = size_from_trial(probe.run, probe, n_members=10_000)
    assert probe.trials == [1, TRIAL_LARGE]
    assert s.per_member_bytes == 3 * MiB and s.fixed_bytes == 50 * MiB
    # budget: 0.8 * 1000 MiB - 100 MiB held = 700 MiB; (700 - 50) // 3 = 216
    assert s.budget_bytes == int(0.8 * 1000 * MiB) - 100 * MiB
    assert s.group_size == (s.budget_bytes - 50 * MiB) // (3 * MiB) == 216


def test_size_from_trial_share_extra_and_caps():
    probe = FakeProbe(total=1000 * MiB, held=0, fixed=0, per=2 * MiB)
    # two jobs on the GPU: each gets half of the 80%
    assert size_from_trial(probe.run, probe, 10_000, share=2).group_size == 400 * MiB // (2 * MiB)
    # a materialised noisy copy of 2 MiB per member halves it again
    assert size_from_trial(probe.run, probe, 10_000, share=2, extra_per_member=2 * MiB).group_size == 100
    assert size_from_trial(probe.run, probe, 7).group_size == 7  # never more than the members
    assert size_from_trial(probe.run, probe, 10_000, cap=50).group_size == 50
    tiny = FakeProbe(total=10 * MiB, held=9 * MiB, fixed=5 * MiB, per=1 * MiB)
    assert size_from_trial(tiny.run, tiny, 100).group_size == 1  # at least one


def test_deterministic_sizing_ignores_held_memory_and_rounds():
    a = FakeProbe(total=1000 * MiB, held=0, fixed=0, per=3 * MiB)
    b = FakeProbe(total=1000 * MiB, held=40 * MiB, fixed=0, per=3 * MiB)  # a resumed run holding more
    ga = size_from_trial(a.run, a, 1000, deterministic=True).group_size
    gb = size_from_trial(b.run, b, 1000, deterministic=True).group_size
    assert ga == gb == 256  # 800 // 3 = 266 -> 256
    assert size_from_trial(b.run, b, 1000).group_size == 253  # (800 - 40) // 3 without


def test_jobs_per_gpu_env():
    assert jobs_per_gpu({}) == 1
    assert jobs_per_gpu({"CERTSSB_JOBS_PER_GPU": "3"}) == 3
    assert jobs_per_gpu({"CERTSSB_JOBS_PER_GPU": "x"}) == 1


def test_plan_groups():
    assert plan_groups([0, 1, 2, 3, 4], 2) == [([0, 1], [0, 1]), ([2, 3], [2, 3]), ([4], [4])]
    assert plan_groups([3, 4, 5], 2) == [([3, 4], [3, 4]), ([5], [5])]
    # deterministic: whole blocks, only the missing members saved, the last block cut at n_members
    assert plan_groups([3, 4, 5], 2, True, 6) == [([2, 3], [3]), ([4, 5], [4, 5])]
    assert plan_groups([5, 6], 4, True, 7) == [([4, 5, 6], [5, 6])]
    assert plan_groups([9], 4, True, None) == [([8, 9], [9])]


def _data(n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = (torch.rand(n, 1, 8, 8, generator=g) * 0.5 + (y.view(-1, 1, 1, 1) / 3) * 0.5).clamp(0, 1)
    return x, y, 0.1 + 0.2 * torch.rand(n, generator=g)


def _cfg(**kw):
    base = dict(epochs=1, batch_size=16, lr=1e-2, vectorise="true", group_size=3, eval_batch_size=32,
                device="cpu", n_members=6, deterministic=True)
    base.update(kw)
    return ensemble_settings(**base)


def test_deterministic_resume_and_split_equal_uninterrupted(tmp_path):
    """Same code path (vmap, group of 3 = blocks {0,1,2}, {3,4,5}), so bit-equality is expected."""
    x, y, s = _data()
    f = model_factory(model_option("digits_cnn"), (1, 8, 8), 3)
    full = CheckpointStore(tmp_path / "full", "fp")
    assert train_members(f, TrainingData(x, y, s), _cfg(), 0, range(6), full, progress=False) == list(range(6))
    split = CheckpointStore(tmp_path / "split", "fp")
    # member_range [0, 4] then [4, 6]: block {3,4,5} is trained whole twice, member 3 saved first
    assert train_members(f, TrainingData(x, y, s), _cfg(), 0, range(0, 4), split, progress=False) == [0, 1, 2, 3]
    assert split.load_meta(3)["group_size"] == 3 and split.load_meta(3)["group_first"] == 3
    assert train_members(f, TrainingData(x, y, s), _cfg(), 0, range(4, 6), split, progress=False) == [4, 5]
    resumed = CheckpointStore(tmp_path / "resumed", "fp")
    train_members(
        f, TrainingData(x, y, s), _cfg(), 0, [1, 4], resumed, progress=False
    )  # an interrupted run's leftovers
    assert train_members(f, TrainingData(x, y, s), _cfg(), 0, range(6), resumed, progress=False) == [0, 2, 3, 5]
    for k in range(6):
        a = full.load(k)
        for store in (split, resumed):
            b = store.load(k)
            assert all(torch.equal(a[n], b[n]) for n in a), (k, store.directory)
    assert full.load_meta(0)["deterministic"] is True


def test_without_deterministic_groups_follow_the_todo_list(tmp_path):
    """The default groups are consecutive to-do members, so a resumed run may train a member
    with other companions; on the CPU the results then agree to float rounding (not bitwise)."""
    x, y, s = _data()
    f = model_factory(model_option("digits_cnn"), (1, 8, 8), 3)
    full, resumed = CheckpointStore(tmp_path / "a", "fp"), CheckpointStore(tmp_path / "b", "fp")
    train_members(f, TrainingData(x, y, s), _cfg(deterministic=False), 0, range(6), full, progress=False)
    train_members(f, TrainingData(x, y, s), _cfg(deterministic=False), 0, [1], resumed, progress=False)
    train_members(f, TrainingData(x, y, s), _cfg(deterministic=False), 0, range(6), resumed, progress=False)
    assert resumed.load_meta(0)["group_first"] == 0 and resumed.load_meta(3)["group_first"] == 0
    for k in range(6):
        a, b = full.load(k), resumed.load(k)
        for n in a:
            torch.testing.assert_close(a[n], b[n], atol=1e-5, rtol=1e-4)


def test_deterministic_kernels_restore_switches():
    before = (torch.backends.cudnn.deterministic, torch.backends.cuda.matmul.allow_tf32,
              torch.are_deterministic_algorithms_enabled())
    with deterministic_kernels(True):
        assert torch.backends.cudnn.deterministic and not torch.backends.cuda.matmul.allow_tf32
        assert torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.benchmark
    assert (torch.backends.cudnn.deterministic, torch.backends.cuda.matmul.allow_tf32,
            torch.are_deterministic_algorithms_enabled()) == before


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_trial_sizing_and_deterministic_resume(tmp_path):
    """On a GPU: the measured sizing gives a usable group, and a resumed deterministic run of a
    convolutional model in auto precision (bf16) equals the uninterrupted one bit for bit."""
    x, y, s = _data(256)
    f = model_factory(model_option("digits_cnn"), (1, 8, 8), 3)
    c = _cfg(device="cuda", group_size=None, precision="auto", n_members=8)
    full, resumed = CheckpointStore(tmp_path / "a", "fp"), CheckpointStore(tmp_path / "b", "fp")
    train_members(f, TrainingData(x, y, s), c, 0, range(8), full, progress=False)
    g = full.load_meta(0)["group_size"]
    assert 1 <= g <= 8
    train_members(f, TrainingData(x, y, s), c, 0, [2, 7], resumed, progress=False)
    train_members(f, TrainingData(x, y, s), c, 0, range(8), resumed, progress=False)
    for k in range(8):
        a, b = full.load(k), resumed.load(k)
        assert all(torch.equal(a[n], b[n]) for n in a), k
