"""certssb.attack: the RAB triggers (one-pixel, four-pixel, blending) and BadNets."""

import math

import pytest
import torch

from certssb.attack import BadNetsTrigger, Trigger, build_trigger, default_positions
from certssb.config import load_option, parse_run
from certssb.errors import ConfigError
from certssb.seeding import make_generator

MNIST, CIFAR, DIGITS = (1, 28, 28), (3, 32, 32), (1, 8, 8)


def acfg(name, **kw):
    return load_option("attack", name, **kw)


def l2(a, b):
    return (a.double() - b.double()).flatten(1).norm(dim=1)


def nonzero_positions(diff):
    """(channel, row, col) triples where a [1, C, H, W] difference is non-zero."""
    return sorted(tuple(i) for i in torch.nonzero(diff[0]).tolist())


# ----------------------------------------------------------------------------- one-pixel


@pytest.mark.parametrize("delta", [0.3, 1.0])
def test_onepixel_mnist(delta):
    trig = build_trigger(acfg("onepixel", delta=delta), MNIST, "mnist")
    assert isinstance(trig, Trigger) and trig.name == "onepixel"
    zero = torch.zeros(1, *MNIST)
    out = trig.apply(zero)
    assert nonzero_positions(out - zero) == [(0, 23, 23)]
    assert out[0, 0, 23, 23].item() == pytest.approx(delta)
    assert l2(out, zero).item() == pytest.approx(delta, rel=1e-6)


def test_onepixel_cifar_all_channels():
    trig = build_trigger(acfg("onepixel", delta=1.0), CIFAR, "cifar10")
    zero = torch.zeros(1, *CIFAR)
    out = trig.apply(zero)
    assert nonzero_positions(out) == [(0, 15, 15), (1, 15, 15), (2, 15, 15)]
    assert torch.allclose(out[0, :, 15, 15], torch.full((3,), 1 / math.sqrt(3)))
    assert l2(out, zero).item() == pytest.approx(1.0, rel=1e-6)


def test_onepixel_digits_default_and_custom_position():
    zero = torch.zeros(1, *DIGITS)
    out = build_trigger(acfg("onepixel"), DIGITS, "digits").apply(zero)
    assert nonzero_positions(out) == [(0, 6, 6)]
    out = build_trigger(acfg("onepixel", positions=[[1, 2]]), DIGITS, "digits").apply(zero)
    assert nonzero_positions(out) == [(0, 1, 2)]
    out = build_trigger(acfg("onepixel", positions=[3, 4]), DIGITS, "digits").apply(zero)  # bare pair
    assert nonzero_positions(out) == [(0, 3, 4)]


def test_clipping_keeps_range_and_shrinks_size():
    trig = build_trigger(acfg("onepixel", delta=1.0), MNIST, "mnist")
    x = torch.full((3, *MNIST), 0.0)
    x[0, 0, 23, 23] = 1.0  # fully clipped
    x[1, 0, 23, 23] = 0.6  # partly clipped
    out = trig.apply(x)
    assert out.min() >= 0 and out.max() <= 1
    sizes = l2(out, x)
    assert sizes.tolist() == pytest.approx([0.0, 0.4, 1.0], abs=1e-6)
    assert (sizes <= 1.0 + 1e-6).all()
    assert torch.equal(x[0, 0, 23, 23], torch.tensor(1.0))  # input not modified


# ----------------------------------------------------------------------------- four-pixel


def test_fourpixel_mnist_rab_positions():
    trig = build_trigger(acfg("fourpixel", delta=1.0), MNIST, "mnist")
    zero = torch.zeros(1, *MNIST)
    out = trig.apply(zero)
    assert nonzero_positions(out) == [(0, 18, 20), (0, 19, 19), (0, 20, 18), (0, 20, 20)]
    assert torch.allclose(out[out > 0], torch.full((4,), 0.5))
    assert l2(out, zero).item() == pytest.approx(1.0, rel=1e-6)


def test_fourpixel_cifar():
    zero = torch.zeros(1, *CIFAR)
    out = build_trigger(acfg("fourpixel", delta=2.0), CIFAR, "cifar10").apply(zero)
    pixels = sorted({(r, c) for _, r, c in nonzero_positions(out)})
    assert pixels == [(14, 16), (15, 15), (16, 14), (16, 16)]
    assert len(nonzero_positions(out)) == 12
    assert torch.allclose(out[out > 0], torch.full((12,), 2.0 / math.sqrt(12)))
    assert l2(out, zero).item() == pytest.approx(2.0, rel=1e-6)


def test_fourpixel_clipped_size_at_most_delta():
    x = torch.rand(50, *MNIST, generator=make_generator(0, "test"))
    out = build_trigger(acfg("fourpixel", delta=1.0), MNIST, "mnist").apply(x)
    sizes = l2(out, x)
    assert (sizes <= 1.0 + 1e-6).all() and (sizes < 1.0 - 1e-3).any()
    assert out.min() >= 0 and out.max() <= 1


def test_default_positions_scale_with_image_size():
    assert default_positions("onepixel", (1, 8, 8)) == [(6, 6)]
    assert default_positions("onepixel", (1, 16, 16)) == [(13, 13)]
    assert default_positions("onepixel", (3, 224, 224)) == [(111, 111)]
    assert default_positions("fourpixel", (1, 8, 8)) == [(4, 6), (5, 5), (6, 4), (6, 6)]
    assert default_positions("fourpixel", (3, 64, 48)) == [(30, 24), (31, 23), (32, 22), (32, 24)]
    for shape in [(1, 3, 3), (1, 5, 7), (3, 4, 4), (1, 100, 60)]:
        for kind in ("onepixel", "fourpixel"):
            pos = default_positions(kind, shape)
            assert len(set(pos)) == len(pos) == (1 if kind == "onepixel" else 4)
            assert all(0 <= r < shape[1] and 0 <= c < shape[2] for r, c in pos)


@pytest.mark.parametrize("name, positions", [
    ("onepixel", [[28, 0]]), ("onepixel", [[1, 1], [2, 2]]), ("fourpixel", [[1, 1]]),
    ("fourpixel", [[1, 1], [1, 1], [2, 2], [3, 3]]), ("onepixel", "centre"), ("onepixel", [[1.5, 2]]),
])
def test_bad_positions(name, positions):
    with pytest.raises(ConfigError, match="attack.positions") as info:
        build_trigger(acfg(name, positions=positions), MNIST, "mnist")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("delta", [0.0, -1.0, float("nan"), "big"])
def test_bad_delta(delta):
    from conftest import compose_cfg

    with pytest.raises(ConfigError, match="^attack.delta "):
        parse_run(compose_cfg(["attack=onepixel", f"attack.delta={delta}"]))


# ----------------------------------------------------------------------------- blending


def test_blending_unclipped_exact_size():
    trig = build_trigger(acfg("blending", delta=1.5), MNIST, "mnist")
    x = torch.rand(20, *MNIST, generator=make_generator(1, "test"))
    x[0] = 1.0
    out = trig.apply(x)
    assert torch.allclose(l2(out, x), torch.full((20,), 1.5, dtype=torch.float64), atol=1e-5)
    assert out.max() > 1.0 or out.min() < 0.0  # not clipped
    assert trig.pattern.double().norm().item() == pytest.approx(1.5, rel=1e-6)


def test_blending_fixed_seed0_pattern_independent_of_run_seed():
    a = build_trigger(acfg("blending"), CIFAR, "cifar10")
    b = build_trigger(acfg("blending"), CIFAR, "cifar10")
    assert torch.equal(a.pattern, b.pattern)
    noise = torch.randn(CIFAR, generator=make_generator(0, "blending-pattern"), dtype=torch.float64)
    assert torch.allclose(a.pattern.double(), noise / noise.norm(), atol=1e-6)
    c = build_trigger(acfg("blending", pattern_seed=1), CIFAR, "cifar10")
    assert not torch.equal(a.pattern, c.pattern)


# ----------------------------------------------------------------------------- BadNets


def test_badnets_white_patch_bottom_right_exact():
    trig = build_trigger(acfg("badnets"), MNIST, "mnist")
    assert isinstance(trig, BadNetsTrigger)
    x = torch.rand(4, *MNIST, generator=make_generator(2, "test")) * 0.5
    out = trig.apply(x)
    assert torch.equal(out[:, :, 25:, 25:], torch.ones(4, 1, 3, 3))
    mask = torch.zeros(MNIST, dtype=torch.bool)
    mask[:, 25:, 25:] = True
    assert torch.equal(out[:, ~mask], x[:, ~mask])
    assert torch.allclose(l2(out, x), (1 - x[:, mask].double()).norm(dim=1))


@pytest.mark.parametrize("corner, rows, cols", [
    ("top_left", slice(0, 2), slice(0, 2)), ("top_right", slice(0, 2), slice(30, 32)),
    ("bottom_left", slice(30, 32), slice(0, 2)), ("bottom_right", slice(30, 32), slice(30, 32)),
])
def test_badnets_corners_and_colours(corner, rows, cols):
    trig = build_trigger(acfg("badnets", corner=corner, patch_size=2, color=[1.0, 0.0, 0.5]), CIFAR, "cifar10")
    x = torch.full((2, *CIFAR), 0.25)
    out = trig.apply(x)
    expected = torch.tensor([1.0, 0.0, 0.5]).view(1, 3, 1, 1).expand(2, 3, 2, 2)
    assert torch.equal(out[:, :, rows, cols], expected)
    assert (out != 0.25).sum() == 2 * 3 * 2 * 2  # 2 images x 3 channels x 2x2 patch
    out[:, :, rows, cols] = 0.25
    assert torch.equal(out, x)


def test_badnets_random_pattern_seeded():
    a = build_trigger(acfg("badnets", color="random"), CIFAR, "cifar10")
    b = build_trigger(acfg("badnets", color="random"), CIFAR, "cifar10")
    c = build_trigger(acfg("badnets", color="random", pattern_seed=1), CIFAR, "cifar10")
    assert a.patch.shape == (3, 3, 3) and torch.equal(a.patch, b.patch) and not torch.equal(a.patch, c.patch)
    assert a.patch.min() >= 0 and a.patch.max() <= 1
    out = a.apply(torch.zeros(1, *CIFAR))
    assert torch.equal(out[0, :, 29:, 29:], a.patch)


@pytest.mark.parametrize("kw, key", [
    (dict(patch_size=0), "patch_size"), (dict(patch_size=29), "patch_size"), (dict(corner="middle"), "corner"),
    (dict(color=[1.5]), "color"), (dict(color=[1.0, 1.0]), "color"), (dict(color="red"), "color"),
])
def test_badnets_bad_config(kw, key):
    with pytest.raises(ConfigError, match=f"attack.{key}"):
        build_trigger(acfg("badnets", **kw), MNIST, "mnist")


def test_none_and_unknown():
    assert build_trigger(acfg("none"), MNIST, "mnist") is None
    with pytest.raises(ConfigError, match="attack=nosuch is not an option"):
        acfg("nosuch")


def test_apply_checks_shape():
    trig = build_trigger(acfg("onepixel"), MNIST, "mnist")
    with pytest.raises(ValueError):
        trig.apply(torch.zeros(1, *CIFAR))
