"""certssb.attack.poison: who is poisoned, relabelling, realised sizes and joint_l2."""

import math

import pytest
import torch

from certssb.attack import PoisonedData, poison
from certssb.dataset import DatasetSplits, load_dataset
from certssb.config import load_option, parse_run
from certssb.errors import ConfigError
from certssb.seeding import make_generator


def acfg(name="onepixel", **kw):
    return load_option("attack", name, **kw)


def synthetic(n_train=200, n_test=40, shape=(1, 28, 28), num_classes=3, name="mnist"):
    gen = make_generator(0, "synthetic")
    return DatasetSplits(
        name=name,
        x_train=torch.rand(n_train, *shape, generator=gen),
        y_train=torch.arange(n_train) % num_classes,
        x_test=torch.rand(n_test, *shape, generator=gen),
        y_test=torch.arange(n_test) % num_classes,
        num_classes=num_classes,
        class_names=[str(i) for i in range(num_classes)],
    )


@pytest.fixture(scope="module")
def splits():
    return synthetic()


def test_poison_count_choice_and_labels(splits):
    p = poison(splits, acfg(poison_rate=0.1, target=1), seed=0)
    assert isinstance(p, PoisonedData) and p.target == 1 and p.name == "onepixel"
    assert p.poisoned_index.dtype == torch.int64 and p.num_poisoned == 20
    idx = p.poisoned_index
    assert torch.equal(idx, idx.sort().values) and idx.unique().numel() == 20
    assert (splits.y_train[idx] != 1).all()  # only non-target samples were chosen
    assert (p.y_train[idx] == 1).all()
    others = torch.ones(len(splits.y_train), dtype=torch.bool)
    others[idx] = False
    assert torch.equal(p.x_train[others], splits.x_train[others])  # untouched
    assert torch.equal(p.y_train[others], splits.y_train[others])
    assert torch.equal(p.x_train[idx], p.trigger.apply(splits.x_train[idx]))
    # the clean splits are not modified in place
    assert not torch.equal(p.x_train[idx], splits.x_train[idx])


@pytest.mark.parametrize("rate, expected", [(0.0, 0), (0.02, 4), (0.0125, 3), (0.0175, 4), (0.5, 100)])
def test_poison_count_rounds(splits, rate, expected):
    assert poison(splits, acfg(poison_rate=rate), seed=0).num_poisoned == expected


def test_poisoning_seeded(splits):
    a = poison(splits, acfg(), seed=3)
    b = poison(splits, acfg(), seed=3)
    c = poison(splits, acfg(), seed=4)
    assert torch.equal(a.poisoned_index, b.poisoned_index) and torch.equal(a.x_train, b.x_train)
    assert not torch.equal(a.poisoned_index, c.poisoned_index)


def test_realised_sizes(splits):
    p = poison(splits, acfg(delta=0.7), seed=0)
    idx = p.poisoned_index
    expected = (p.x_train[idx].double() - splits.x_train[idx].double()).flatten(1).norm(dim=1)
    assert p.train_delta_l2.dtype == torch.float64 and torch.allclose(p.train_delta_l2, expected)
    assert (p.train_delta_l2 <= 0.7 + 1e-6).all()
    test_expected = (p.x_test_triggered.double() - splits.x_test.double()).flatten(1).norm(dim=1)
    assert p.test_delta_l2.shape == (40,) and torch.allclose(p.test_delta_l2, test_expected)
    # one-pixel on [0,1] data: realised size = min(delta, 1 - x[23, 23])
    hand = torch.clamp(1 - splits.x_test[:, 0, 23, 23].double(), max=0.7)
    assert torch.allclose(p.test_delta_l2, hand, atol=1e-6)


def test_joint_l2_hand_computation():
    p = PoisonedData(
        x_train=torch.zeros(3, 1, 2, 2), y_train=torch.zeros(3, dtype=torch.int64),
        poisoned_index=torch.tensor([0, 2]), train_delta_l2=torch.tensor([3.0, 4.0], dtype=torch.float64),
        x_test_triggered=torch.zeros(2, 1, 2, 2), test_delta_l2=torch.tensor([0.0, 1.0], dtype=torch.float64),
        target=0,
    )
    assert p.joint_l2().tolist() == pytest.approx([5.0, math.sqrt(26.0)])


def test_joint_l2_blending_exact(splits):
    p = poison(splits, acfg("blending", poison_rate=0.05, delta=1.0), seed=0)
    assert p.num_poisoned == 10
    assert torch.allclose(p.train_delta_l2, torch.ones(10, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(p.joint_l2(), torch.full((40,), math.sqrt(11.0), dtype=torch.float64), atol=1e-4)
    assert (p.x_test_triggered.max() > 1) or (p.x_test_triggered.min() < 0)  # unclipped


def test_blending_identical_across_run_seeds(splits):
    a = poison(splits, acfg("blending"), seed=0)
    b = poison(splits, acfg("blending"), seed=1)
    assert torch.equal(a.x_test_triggered, b.x_test_triggered)  # same pattern
    assert not torch.equal(a.poisoned_index, b.poisoned_index)  # different poisoned samples


def test_badnets_poisoning(splits):
    p = poison(splits, acfg("badnets", poison_rate=0.05), seed=0)
    assert (p.x_train[p.poisoned_index, :, 25:, 25:] == 1).all()
    assert (p.x_test_triggered[:, :, 25:, 25:] == 1).all()


def test_none_attack(splits):
    p = poison(splits, acfg("none", poison_rate=0.0), seed=0)
    assert p.trigger is None and p.num_poisoned == 0 and p.train_delta_l2.numel() == 0
    assert torch.equal(p.x_test_triggered, splits.x_test) and torch.equal(p.y_train, splits.y_train)
    assert torch.equal(p.x_train, splits.x_train)
    assert torch.equal(p.test_delta_l2, torch.zeros(40, dtype=torch.float64))
    assert torch.equal(p.joint_l2(), torch.zeros(40, dtype=torch.float64))


def _parse(*overrides):
    from conftest import compose_cfg

    return parse_run(compose_cfg(["attack=onepixel", *overrides]))


@pytest.mark.parametrize("target", [3, -1, 1.5, "abc"])
def test_bad_target_is_rejected_at_parse_time(target):
    with pytest.raises(ConfigError, match="^attack.target ") as info:
        _parse("dataset.classes=[0,1,2]", f"attack.target={target}")
    assert "\n" not in str(info.value)
    if target == 3:
        assert "[0, 2]" in str(info.value)


@pytest.mark.parametrize("rate", [1.0, -0.1, 2, "half"])
def test_bad_rate_is_rejected_at_parse_time(rate):
    with pytest.raises(ConfigError, match="^attack.poison_rate "):
        _parse(f"attack.poison_rate={rate}")


def test_not_enough_non_target_samples():
    s = synthetic(n_train=10, num_classes=2)  # 5 per class
    assert poison(s, acfg(poison_rate=0.5), seed=0).num_poisoned == 5
    with pytest.raises(ConfigError, match="only 5 training samples"):
        poison(s, acfg(poison_rate=0.6), seed=0)


def test_end_to_end_digits_binary():
    d = load_dataset(load_option("dataset", "digits", classes=[1, 0]), seed=0)
    p = poison(d, acfg("onepixel", poison_rate=0.02, target=1), seed=0)
    assert p.num_poisoned == math.floor(0.02 * len(d.y_train) + 0.5) > 0
    assert (d.y_train[p.poisoned_index] == 0).all() and (p.y_train[p.poisoned_index] == 1).all()
    diff = p.x_test_triggered.to_float() - d.x_test.to_float()  # uint8 splits: triggered per batch
    changed = torch.nonzero(diff.abs().sum(dim=0) > 0).tolist()
    assert changed == [[0, 6, 6]]  # the digits default one-pixel position
    assert p.joint_l2().shape == (len(d.y_test),)


def _poison_rate_comment(path) -> str:
    """The comment of ``poison_rate`` in an attack yaml (its continuation lines included)."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("poison_rate:"))
    text = [lines[start].split("#", 1)[1]]
    for line in lines[start + 1:]:
        if not line.lstrip().startswith("#") or not line.startswith(" "):
            break
        text.append(line.split("#", 1)[1])
    return " ".join(" ".join(text).split())


def test_every_attack_yaml_describes_poison_rate_as_the_code_does(splits):
    """``round(poison_rate * n_train)`` of the WHOLE training set are poisoned, drawn among the
    samples the label mode allows; each attack yaml says so (not "a fraction of the non-target
    samples")."""
    from pathlib import Path

    from certssb.attack.policy import LabelPolicy
    from certssb.config import load_option

    conf = Path(__file__).resolve().parent.parent / "conf" / "attack"
    drawn = {LabelPolicy.ALL_TO_ONE: "drawn from the non-target ones", LabelPolicy.ALL_TO_ALL: "from every class",
             LabelPolicy.CLEAN_LABEL: "drawn from the target class"}
    for path in sorted(conf.glob("*.yaml")):
        comment = _poison_rate_comment(path)
        assert "share of the WHOLE training set poisoned" in comment, (path.name, comment)
        if path.stem == "none":
            continue
        assert "round(poison_rate * n_train) samples" in comment, (path.name, comment)
        assert drawn[load_option("attack", path.stem).label_policy()] in comment, (path.name, comment)
    # what the comments say: 0.5 of 200 training samples is 100, whatever the share of the target class
    settings = acfg(poison_rate=0.5)
    n_target = int((splits.y_train == settings.target).sum())
    assert poison(splits, settings, seed=0).num_poisoned == round(0.5 * len(splits.y_train)) != \
        round(0.5 * (len(splits.y_train) - n_target))
