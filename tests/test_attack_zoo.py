"""Blended, WaNet, SIG, label-consistent and the label policies (all-to-one, all-to-all,
clean-label): trigger shapes and sizes against closed forms, seeding, poisoned counts, labels."""

import numpy as np
import pytest
import torch
from torch import nn

from certssb.attack import poison
from certssb.attack.badnets import BadNetsTrigger
from certssb.attack.blended import blended_pattern, blended_trigger
from certssb.attack.label_consistent import (checkerboard_patch, label_consistent_prepare, label_consistent_trigger,
                                             pgd_harden)
from certssb.attack.poisoning import PoisonExtras, poison_with_policy
from certssb.attack.policy import (LabelPolicy, attack_labels, attack_success_mask, attack_success_rate,
                                   badnets_policy, poison_candidates)
from certssb.attack.sig import sig_trigger
from certssb.attack.wanet import wanet_trigger, warping_grid
from certssb.config import load_option
from certssb.dataset import DatasetSplits
from certssb.errors import ConfigError
from certssb.seeding import make_generator

MNIST, CIFAR, DIGITS = (1, 28, 28), (3, 32, 32), (1, 8, 8)


def l2(a, b):
    return (a.double() - b.double()).flatten(1).norm(dim=1)


def images(n, shape, key="x"):
    return torch.rand(n, *shape, generator=make_generator(0, "zoo-test", key))


def synthetic(n_train=200, n_test=40, shape=(1, 12, 12), num_classes=4):
    return DatasetSplits(name="synthetic", x_train=images(n_train, shape, "train"),
                         y_train=torch.arange(n_train) % num_classes, x_test=images(n_test, shape, "test"),
                         y_test=torch.arange(n_test) % num_classes, num_classes=num_classes,
                         class_names=[str(i) for i in range(num_classes)])


@pytest.fixture(scope="module")
def splits():
    return synthetic()


def one_line_error(fn, match):
    with pytest.raises(ConfigError, match=match) as info:
        fn()
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- Blended


def test_blended_closed_form_and_size():
    trig = blended_trigger(CIFAR, alpha=0.2)
    x = images(8, CIFAR)
    out = trig.apply(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    pattern = torch.rand(CIFAR, generator=make_generator(0, "blended-pattern"))  # the documented draw
    assert torch.allclose(out, 0.8 * x + 0.2 * pattern, atol=1e-6)
    assert torch.allclose(l2(out, x), 0.2 * (pattern - x).double().flatten(1).norm(dim=1), atol=1e-5)


def test_blended_seeded_pattern_and_checkerboard():
    a, b = blended_pattern(CIFAR, "random", 0), blended_pattern(CIFAR, "random", 0)
    assert torch.equal(a, b) and not torch.equal(a, blended_pattern(CIFAR, "random", 1))
    board = blended_pattern((2, 4, 6), "checkerboard", cell=2)
    assert board[0].tolist()[0] == [0, 0, 1, 1, 0, 0] and board[1, 2].tolist() == [1, 1, 0, 0, 1, 1]
    assert torch.equal(blended_trigger(MNIST, alpha=1.0, pattern="checkerboard").apply(images(2, MNIST))[0],
                       blended_pattern(MNIST, "checkerboard"))


@pytest.mark.parametrize("kw, key", [(dict(alpha=0.0), "alpha"), (dict(alpha=1.5), "alpha"), (dict(alpha=float("nan")), "alpha"),
                                     (dict(alpha="0.2"), "alpha"), (dict(pattern="kitty"), "pattern"), (dict(cell=0), "cell"),
                                     (dict(pattern_seed=1.5), "pattern_seed")])
def test_blended_bad_knobs(kw, key):
    one_line_error(lambda: blended_trigger(MNIST, **kw), f"attack.{key}")


# ----------------------------------------------------------------------------- WaNet


def test_wanet_samples_where_the_grid_says():
    """On a horizontal ramp (pixel value = normalised column), bilinear sampling with
    align_corners returns the grid's own x coordinate: ``out = (grid_x + 1) / 2``."""
    h, w = 16, 20
    trig = wanet_trigger((1, h, w), k=4, s=0.5)
    ramp = torch.linspace(0, 1, w).view(1, 1, 1, w).expand(1, 1, h, w).contiguous()
    out = trig.apply(ramp)
    assert torch.allclose(out[0, 0], (trig.grid[0, :, :, 0] + 1) / 2, atol=1e-5)
    gy, gx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    offset = (trig.grid[0] - torch.stack((gx, gy), 2))
    # the offsets are s * noise / size with noise normalised to mean |.| = 1 on the k x k grid
    assert offset.abs().max() > 0 and (offset[..., 0].abs() * w).max() < 0.5 * 4 and (offset[..., 1].abs() * h).max() < 0.5 * 4


def test_wanet_small_strength_is_identity_and_sizes():
    x = images(6, MNIST)
    assert torch.allclose(wanet_trigger(MNIST, s=1e-6).apply(x), x, atol=1e-4)
    trig = wanet_trigger(MNIST)
    out = trig.apply(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert (l2(out, x) > 0.05).all()  # the warp moves real images


def test_wanet_seeded():
    assert torch.equal(warping_grid(CIFAR, pattern_seed=3), warping_grid(CIFAR, pattern_seed=3))
    assert not torch.equal(warping_grid(CIFAR, pattern_seed=3), warping_grid(CIFAR, pattern_seed=4))
    trig, x = wanet_trigger(CIFAR), images(3, CIFAR)
    a = trig.apply_cross(x, make_generator(0, "c"))
    assert torch.equal(a, trig.apply_cross(x, make_generator(0, "c")))
    assert not torch.equal(a, trig.apply(x)) and not torch.equal(a, trig.apply_cross(x, make_generator(1, "c")))


def test_wanet_cross_mode_poisoning(splits):
    trig = wanet_trigger(splits.input_shape)
    p = poison_with_policy(splits, trig, target=1, poison_rate=0.1, seed=0,
                           extras=PoisonExtras(cross=trig.apply_cross, cross_ratio=2.0))
    assert p.name == "wanet" and p.num_poisoned == 20 and p.cross_index.numel() == 40
    assert not set(p.cross_index.tolist()) & set(p.poisoned_index.tolist())
    assert torch.equal(p.y_train[p.cross_index], splits.y_train[p.cross_index])  # cross samples keep labels
    assert (p.y_train[p.poisoned_index] == 1).all() and (splits.y_train[p.poisoned_index] != 1).all()
    changed = torch.nonzero((p.x_train != splits.x_train).flatten(1).any(1)).flatten()
    assert set(changed.tolist()) <= set(p.cross_index.tolist()) | set(p.poisoned_index.tolist())
    hand = torch.sqrt(p.test_delta_l2 ** 2 + (p.train_delta_l2 ** 2).sum()
                      + (l2(p.x_train[p.cross_index], splits.x_train[p.cross_index]) ** 2).sum())
    assert torch.allclose(p.joint_l2(), hand)
    no_cross = poison_with_policy(splits, trig, target=1, poison_rate=0.1, seed=0)
    assert no_cross.cross_index.numel() == 0 and torch.equal(no_cross.poisoned_index, p.poisoned_index)
    assert (p.joint_l2() > no_cross.joint_l2()).all()


@pytest.mark.parametrize("kw, key", [(dict(k=1), "k"), (dict(k=2.5), "k"), (dict(s=0), "s"), (dict(grid_rescale=-1), "grid_rescale"),
                                     (dict(cross_ratio=-0.5), "cross_ratio"), (dict(s=float("inf")), "s")])
def test_wanet_bad_knobs(kw, key):
    one_line_error(lambda: wanet_trigger(MNIST, **kw), f"attack.{key}")


# ----------------------------------------------------------------------------- SIG


def test_sig_pattern_closed_form():
    shape = (3, 5, 24)
    trig = sig_trigger(shape)
    j = np.arange(24)
    expected = 40 / 255 * np.sin(2 * np.pi * j * 6 / 24)
    for c in range(3):
        for r in range(5):
            assert np.allclose(trig.pattern[c, r].numpy(), expected, atol=1e-6)
    x = torch.full((2, *shape), 0.5)  # |signal| <= 40/255 < 0.5: no clipping
    assert torch.allclose(l2(trig.apply(x), x), torch.full((2,), float(np.sqrt(15 * (expected ** 2).sum())), dtype=torch.float64))
    assert trig.delta == pytest.approx(float(np.sqrt(15 * (expected ** 2).sum())), rel=1e-6)


def test_sig_clipping_shrinks_size():
    trig, x = sig_trigger(MNIST), images(10, MNIST)
    out = trig.apply(x)
    assert out.min() >= 0 and out.max() <= 1
    assert (l2(out, x) <= trig.delta + 1e-6).all() and (l2(out, torch.zeros_like(x)) > 0).all()
    zero = torch.zeros(1, *MNIST)
    assert l2(trig.apply(zero), zero).item() < trig.delta - 1e-3  # negative half clipped away


def test_sig_clean_label_poisoning(splits):
    p = poison_with_policy(splits, sig_trigger(splits.input_shape), target=2, poison_rate=0.2, seed=0,
                           policy=LabelPolicy.CLEAN_LABEL)
    assert p.policy == "clean_label" and p.num_poisoned == 40  # round(0.2 * 200) of the 50 class-2 samples
    assert (splits.y_train[p.poisoned_index] == 2).all()
    assert torch.equal(p.y_train, splits.y_train)  # labels unchanged
    assert torch.equal(p.x_train[p.poisoned_index], p.trigger.apply(splits.x_train[p.poisoned_index]))
    one_line_error(lambda: poison_with_policy(splits, sig_trigger(splits.input_shape), target=2, poison_rate=0.3,
                                              seed=0, policy="clean_label"), "only 50 training samples")


@pytest.mark.parametrize("kw, key", [(dict(delta=0), "delta"), (dict(delta=2.0), "delta"), (dict(frequency=-1), "frequency")])
def test_sig_bad_knobs(kw, key):
    one_line_error(lambda: sig_trigger(MNIST, **kw), f"attack.{key}")


# ----------------------------------------------------------------------------- label-consistent


def test_label_consistent_trigger_corners_and_amplitude():
    x = torch.full((1, 2, 10, 12), 0.25)
    out = label_consistent_trigger((2, 10, 12)).apply(x)
    board = checkerboard_patch(2, 3)
    assert board[0].tolist() == [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
    assert torch.equal(out[0, :, 7:, 9:], board)
    rest = out.clone()
    rest[:, :, 7:, 9:] = 0.25
    assert torch.equal(rest, x)
    four = label_consistent_trigger((2, 10, 12), corners="four", amplitude=0.5).apply(x)
    for rows, cols in [(slice(0, 3), slice(0, 3)), (slice(0, 3), slice(9, 12)), (slice(7, 10), slice(0, 3)), (slice(7, 10), slice(9, 12))]:
        assert torch.allclose(four[0, :, rows, cols], 0.5 * 0.25 + 0.5 * board)
    assert (four != 0.25).sum() == 4 * 2 * 9


def test_pgd_on_a_linear_model_reaches_the_closed_form():
    """Two-class linear model: the CE gradient w.r.t. x has the constant sign of (w_other - w_true),
    so with steps * step_size >= eps PGD ends at clip(x + eps * sign(w_other - w_true), 0, 1)."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.randn(2, 16, generator=make_generator(0, "w")))
        model[1].bias.zero_()
    x = images(5, (1, 4, 4))
    y = torch.tensor([0, 1, 0, 1, 1])
    eps = 0.1
    adv = pgd_harden(model, x, y, eps=eps, steps=5, step_size=0.03)
    w = model[1].weight.detach()
    direction = torch.stack([torch.sign(w[1 - int(t)] - w[int(t)]) for t in y]).view(5, 1, 4, 4)
    assert torch.allclose(adv, (x + eps * direction).clamp(0, 1), atol=1e-6)
    assert ((adv - x).abs() <= eps + 1e-6).all() and adv.min() >= 0 and adv.max() <= 1
    loss = nn.functional.cross_entropy
    assert loss(model(adv), y) > loss(model(x), y)
    assert torch.equal(pgd_harden(model, x, y, eps, 5, 0.03), adv) and model.training


def test_label_consistent_poisoning_counts_the_perturbation(splits):
    model = nn.Sequential(nn.Flatten(), nn.Linear(144, 4))
    trig = label_consistent_trigger(splits.input_shape)
    prepare = label_consistent_prepare(model, eps=8 / 255, steps=3, step_size=4 / 255)
    p = poison_with_policy(splits, trig, target=0, poison_rate=0.1, seed=0, policy=LabelPolicy.CLEAN_LABEL,
                           extras=PoisonExtras(prepare))
    idx = p.poisoned_index
    assert p.num_poisoned == 20 and (splits.y_train[idx] == 0).all() and torch.equal(p.y_train, splits.y_train)
    hardened = pgd_harden(model, splits.x_train[idx], splits.y_train[idx], 8 / 255, 3, 4 / 255)
    assert torch.allclose(p.x_train[idx], trig.apply(hardened))
    assert torch.allclose(p.train_delta_l2, l2(trig.apply(hardened), splits.x_train[idx]))
    plain = poison_with_policy(splits, trig, target=0, poison_rate=0.1, seed=0, policy="clean_label")
    assert (p.train_delta_l2 > plain.train_delta_l2).all()  # PGD adds to the attacker's budget
    assert torch.equal(p.x_test_triggered, trig.apply(splits.x_test))  # test inputs: trigger only


@pytest.mark.parametrize("kw, key", [(dict(eps=-0.1), "eps"), (dict(steps=-1), "steps"), (dict(step_size=0), "step_size"),
                                     (dict(patch_size=13), "patch_size"), (dict(corners="left"), "corners"),
                                     (dict(corners="four", patch_size=7), "patch_size"), (dict(amplitude=0), "amplitude")])
def test_label_consistent_bad_knobs(kw, key):
    one_line_error(lambda: label_consistent_trigger((1, 12, 12), **kw), f"attack.{key}")


# ----------------------------------------------------------------------------- policies


def test_policy_definitions_by_hand():
    y = torch.tensor([0, 1, 2, 3, 0, 2])
    assert poison_candidates(y, 2, LabelPolicy.ALL_TO_ONE).tolist() == [0, 1, 3, 4]
    assert poison_candidates(y, 2, LabelPolicy.CLEAN_LABEL).tolist() == [2, 5]
    assert poison_candidates(y, 2, LabelPolicy.ALL_TO_ALL).tolist() == list(range(6))
    assert attack_labels(y, 2, 4, LabelPolicy.ALL_TO_ALL).tolist() == [1, 2, 3, 0, 1, 3]
    assert attack_labels(y, 2, 4, LabelPolicy.ALL_TO_ONE).tolist() == [2] * 6
    assert attack_success_mask(y, 2, LabelPolicy.CLEAN_LABEL).tolist() == [True, True, False, True, True, False]
    pred = torch.tensor([1, 2, 2, 2, 2, 3])
    assert attack_success_rate(pred, y, 2, 4, LabelPolicy.ALL_TO_ALL) == pytest.approx(3 / 6)
    assert attack_success_rate(pred, y, 2, 4, LabelPolicy.ALL_TO_ONE) == pytest.approx(3 / 4)
    assert attack_success_rate(pred[[2, 5]], y[[2, 5]], 2, 4, LabelPolicy.ALL_TO_ONE) is None
    assert badnets_policy() is LabelPolicy.ALL_TO_ONE and badnets_policy("all_to_all") is LabelPolicy.ALL_TO_ALL
    one_line_error(lambda: badnets_policy("clean_label"), "attack.mode")
    one_line_error(lambda: attack_labels(y, 2, 4, "one_to_one"), "attack.mode")


def test_badnets_all_to_all_labels(splits):
    trig = BadNetsTrigger(splits.input_shape, torch.ones(1, 3, 3), "bottom_right")
    p = poison_with_policy(splits, trig, target=0, poison_rate=0.25, seed=0, policy=badnets_policy("all_to_all"))
    idx = p.poisoned_index
    assert p.num_poisoned == 50 and p.policy == "all_to_all"
    assert set(splits.y_train[idx].tolist()) == {0, 1, 2, 3}  # every class, the target's included
    assert torch.equal(p.y_train[idx], (splits.y_train[idx] + 1) % 4)
    rest = torch.ones(200, dtype=torch.bool)
    rest[idx] = False
    assert torch.equal(p.y_train[rest], splits.y_train[rest]) and torch.equal(p.x_train[rest], splits.x_train[rest])


def test_configured_badnets_poisons_the_documented_draw(splits):
    """``poison`` with the badnets settings: round(rate * n) samples drawn by
    ``randperm(make_generator(seed, "poison"))`` among the non-target ones (recomputed here)."""
    cfg = load_option("attack", "badnets", poison_rate=0.1, target=1, patch_size=3, corner="bottom_right",
                      color=[1.0], pattern_seed=0, mode="all_to_one")
    p = poison(splits, cfg, seed=5)
    candidates = torch.nonzero(splits.y_train != 1).flatten()
    expected = candidates[torch.randperm(len(candidates), generator=make_generator(5, "poison"))[:20]].sort().values
    assert torch.equal(p.poisoned_index, expected) and (p.y_train[expected] == 1).all()
    assert (p.x_train[expected][:, :, -3:, -3:] == 1).all() and p.policy == "all_to_one"
    assert torch.allclose(p.train_delta_l2, l2(p.x_train[expected], splits.x_train[expected]))


@pytest.mark.parametrize("policy", list(LabelPolicy))
def test_policy_poisoning_seeded_and_counted(splits, policy):
    trig = blended_trigger(splits.input_shape)
    a = poison_with_policy(splits, trig, target=3, poison_rate=0.125, seed=1, policy=policy)
    b = poison_with_policy(splits, trig, target=3, poison_rate=0.125, seed=1, policy=policy)
    c = poison_with_policy(splits, trig, target=3, poison_rate=0.125, seed=2, policy=policy)
    assert a.num_poisoned == 25 and torch.equal(a.poisoned_index, b.poisoned_index) and torch.equal(a.x_train, b.x_train)
    assert not torch.equal(a.poisoned_index, c.poisoned_index)
    assert torch.allclose(a.train_delta_l2, l2(a.x_train[a.poisoned_index], splits.x_train[a.poisoned_index]))
    assert a.joint_l2().shape == (40,)


@pytest.mark.parametrize("kw, key", [(dict(target=4), "attack.target"), (dict(target=True), "attack.target"),
                                     (dict(poison_rate=1.0), "attack.poison_rate"), (dict(poison_rate="0.1"), "attack.poison_rate"),
                                     (dict(policy="both"), "attack.mode"), (dict(cross_ratio=-1.0), "attack.cross_ratio")])
def test_poison_with_policy_bad_arguments(splits, kw, key):
    args = dict(target=0, poison_rate=0.1, seed=0)
    args.update(kw)
    if "cross_ratio" in args:
        args["extras"] = PoisonExtras(cross_ratio=args.pop("cross_ratio"))
    one_line_error(lambda: poison_with_policy(splits, blended_trigger(splits.input_shape), **args), key)
