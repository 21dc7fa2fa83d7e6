"""The zoo's config options: attack=blended|wanet|sig|label_consistent, attack.mode for badnets,
model=preact_resnet18|resnet18. Each composes and parses, routes its knobs to the library
functions, fails on bad values with one line, and runs end to end; the ASR follows the attack's
definition of success (all-to-all: label (y + 1) mod C, counted on every input)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from certssb.attack import poison
from certssb.attack.badnets import BadNetsTrigger
from certssb.attack.blended import BlendedSettings, blended_trigger
from certssb.attack.label_consistent import LabelConsistentSettings, label_consistent_prepare, label_consistent_trigger
from certssb.attack.poisoning import PoisonedData, PoisonExtras, poison_with_policy
from certssb.attack.policy import LabelPolicy
from certssb.attack.sig import SIGSettings, sig_trigger
from certssb.attack.wanet import WaNetSettings, wanet_trigger
from certssb.config import load_option, parse_run
from certssb.dataset import DatasetSplits
from certssb.errors import ConfigError
from certssb.model.preact_resnet18 import PreActResNet18Settings
from certssb.model.resnet18 import ResNet18Settings
from certssb.run import main
from certssb.seeding import make_generator
from certssb.testsets import predicted_sets, rab_triggered

from conftest import compose_cfg


def synthetic(n_train=200, n_test=40, shape=(1, 12, 12), num_classes=4):
    gen = make_generator(0, "zoo-config-test")
    return DatasetSplits(name="synthetic", x_train=torch.rand(n_train, *shape, generator=gen),
                         y_train=torch.arange(n_train) % num_classes, x_test=torch.rand(n_test, *shape, generator=gen),
                         y_test=torch.arange(n_test) % num_classes, num_classes=num_classes,
                         class_names=[str(i) for i in range(num_classes)])


@pytest.fixture(scope="module")
def splits():
    return synthetic()


# ----------------------------------------------------------------------------- compose and parse


@pytest.mark.parametrize("overrides, group, cls, values", [
    (["attack=blended"], "attack", BlendedSettings, dict(alpha=0.2, pattern="random", poison_rate=0.1)),
    (["attack=wanet"], "attack", WaNetSettings, dict(k=4, s=0.5, grid_rescale=1.0, cross_ratio=2.0)),
    (["attack=sig"], "attack", SIGSettings, dict(delta=pytest.approx(40 / 255), frequency=6.0)),
    (["attack=label_consistent"], "attack", LabelConsistentSettings,
     dict(eps=pytest.approx(8 / 255), steps=10, step_size=pytest.approx(2 / 255), clean_epochs=None)),
    (["attack=badnets", "attack.mode=all_to_all"], "attack", None, dict(mode="all_to_all")),
    (["attack=badnets"], "attack", None, dict(mode="all_to_one")),
    (["model=preact_resnet18"], "model", PreActResNet18Settings, dict(stem="cifar")),
    (["model=resnet18"], "model", ResNet18Settings, dict(weights=None)),
])
def test_new_options_compose_and_parse(overrides, group, cls, values):
    run = parse_run(compose_cfg(overrides))
    option = run.option(group)
    if cls is not None:
        assert type(option) is cls
    for key, value in values.items():
        assert getattr(option, key) == value, key


def test_label_policies_of_the_options():
    assert load_option("attack", "blended").label_policy() is LabelPolicy.ALL_TO_ONE
    assert load_option("attack", "wanet").label_policy() is LabelPolicy.ALL_TO_ONE
    assert load_option("attack", "sig").label_policy() is LabelPolicy.CLEAN_LABEL
    assert load_option("attack", "label_consistent").label_policy() is LabelPolicy.CLEAN_LABEL
    assert load_option("attack", "badnets", mode="all_to_all").label_policy() is LabelPolicy.ALL_TO_ALL


# ----------------------------------------------------------------------------- the settings route their knobs


def _same(a: PoisonedData, b: PoisonedData):
    for key in ("poisoned_index", "x_train", "y_train", "train_delta_l2", "x_test_triggered", "test_delta_l2",
                "cross_index", "cross_delta_l2"):
        assert torch.equal(getattr(a, key), getattr(b, key)), key
    assert a.policy == b.policy and a.name == b.name


def test_blended_settings_poison_like_the_library(splits):
    p = poison(splits, load_option("attack", "blended", alpha=0.3, pattern="checkerboard", cell=2, target=2), seed=4)
    trig = blended_trigger(splits.input_shape, alpha=0.3, pattern="checkerboard", cell=2)
    _same(p, poison_with_policy(splits, trig, target=2, poison_rate=0.1, seed=4, name="blended"))


def test_wanet_settings_use_the_noise_mode(splits):
    p = poison(splits, load_option("attack", "wanet", s=0.8, cross_ratio=1.5), seed=2)
    trig = wanet_trigger(splits.input_shape, s=0.8)
    _same(p, poison_with_policy(splits, trig, target=0, poison_rate=0.1, seed=2, name="wanet",
                                extras=PoisonExtras(cross=trig.apply_cross, cross_ratio=1.5)))
    assert p.num_poisoned == 20 and p.cross_index.numel() == 30  # round(1.5 * 20)
    off = poison(splits, load_option("attack", "wanet", cross_ratio=0.0), seed=2)
    assert off.cross_index.numel() == 0


def test_wanet_cross_samples_count_in_the_realised_attack(splits):
    """The certifier's ``RealisedAttack`` is built from every changed training sample (poisoned and
    noise-mode), so its joint size equals ``joint_l2`` and its count includes the cross samples."""
    from certssb.certifier import RealisedAttack

    p = poison(splits, load_option("attack", "wanet"), seed=0)
    idx, sizes = p.changed_index(), p.changed_delta_l2()
    assert torch.equal(idx, torch.cat([p.poisoned_index, p.cross_index])) and len(idx) == 20 + 40
    assert len(set(idx.tolist())) == 60  # the cross samples are not poisoned ones
    assert torch.allclose(sizes, (p.x_train[idx] - splits.x_train[idx]).double().flatten(1).norm(dim=1))
    attack = RealisedAttack(idx.numpy(), sizes.numpy(), p.test_delta_l2.numpy())
    assert np.allclose(attack.joint_l2(np.arange(40)), p.joint_l2().numpy())
    hand = np.sqrt(p.test_delta_l2.numpy() ** 2 + (p.train_delta_l2.numpy() ** 2).sum()
                   + (p.cross_delta_l2.numpy() ** 2).sum())
    assert np.allclose(p.joint_l2().numpy(), hand) and (p.cross_delta_l2 > 0).all()


def test_sig_settings_poison_the_target_class_only(splits):
    p = poison(splits, load_option("attack", "sig", target=3, delta=0.2), seed=1)
    _same(p, poison_with_policy(splits, sig_trigger(splits.input_shape, delta=0.2), target=3, poison_rate=0.05, seed=1,
                                policy=LabelPolicy.CLEAN_LABEL, name="sig"))
    assert p.num_poisoned == 10 and (splits.y_train[p.poisoned_index] == 3).all()
    assert torch.equal(p.y_train, splits.y_train)  # labels untouched


def test_clean_label_rate_above_the_target_share_is_one_line(splits):
    with pytest.raises(ConfigError, match="attack.poison_rate") as info:
        poison(splits, load_option("attack", "sig", poison_rate=0.3), seed=0)  # 60 > the 50 target-class samples
    assert "\n" not in str(info.value)


def test_badnets_all_to_all_settings(splits):
    p = poison(splits, load_option("attack", "badnets", mode="all_to_all"), seed=0)
    trig = BadNetsTrigger(splits.input_shape, torch.ones(1, 3, 3), "bottom_right")
    _same(p, poison_with_policy(splits, trig, target=0, poison_rate=0.1, seed=0, policy=LabelPolicy.ALL_TO_ALL,
                                name="badnets"))
    assert torch.equal(p.y_train[p.poisoned_index], (splits.y_train[p.poisoned_index] + 1) % 4)


# ----------------------------------------------------------------------------- label-consistent's clean model


def test_label_consistent_without_context_is_one_line(splits):
    with pytest.raises(ConfigError, match="label_consistent") as info:
        poison(splits, load_option("attack", "label_consistent"), seed=0)
    assert "\n" not in str(info.value)


def test_label_consistent_trains_a_clean_model_and_hardens(splits, monkeypatch):
    """The poisoning step trains the run's model on the CLEAN data (sigma 0, the run's training
    settings, clean_epochs) and PGD-hardens the chosen target-class inputs against it; recomputed
    here through the library calls (same code path and process: identical up to float noise)."""
    import certssb.attack.label_consistent as lc
    from certssb.ensemble import train_single
    from certssb.model import model_factory

    run = parse_run(compose_cfg(["attack=label_consistent", "attack.clean_epochs=2", "ensemble.epochs=5",
                                 "model=mlp"]))
    seen = {}
    real = lc.train_clean_model

    def spy(splits_, context, seed, epochs=None):
        seen.update(x=splits_.x_train, y=splits_.y_train, epochs=epochs, seed=seed)
        return real(splits_, context, seed, epochs)

    monkeypatch.setattr(lc, "train_clean_model", spy)
    settings = run.attack
    p = poison(splits, settings, seed=3, context=run)
    assert seen["epochs"] == 2 and seen["seed"] == 3
    assert torch.equal(seen["x"], splits.x_train) and torch.equal(seen["y"], splits.y_train)  # the CLEAN set

    ens = dataclasses.replace(run.ensemble, epochs=2)
    model = train_single(model_factory(run.model, splits.input_shape, 4), splits.x_train, splits.y_train, 0.0, ens, 3,
                         "label-consistent-clean", "cpu")
    trig = label_consistent_trigger(splits.input_shape)
    expected = poison_with_policy(splits, trig, target=0, poison_rate=0.05, seed=3, policy=LabelPolicy.CLEAN_LABEL,
                                  extras=PoisonExtras(label_consistent_prepare(model, 8 / 255, 10, 2 / 255)))
    assert torch.equal(p.poisoned_index, expected.poisoned_index)
    assert torch.allclose(p.x_train, expected.x_train, atol=1e-6)
    idx = p.poisoned_index
    outside = torch.ones(splits.input_shape, dtype=torch.bool)
    outside[:, -3:, -3:] = False  # the patch
    change = (p.x_train[idx] - splits.x_train[idx])[:, outside]
    assert change.abs().max() <= 8 / 255 + 1e-6 and change.abs().max() > 4 / 255  # PGD moved, within eps
    assert torch.allclose(p.train_delta_l2, (p.x_train[idx] - splits.x_train[idx]).double().flatten(1).norm(dim=1))


def test_label_consistent_without_hardening_trains_nothing(splits, monkeypatch):
    import certssb.attack.label_consistent as lc

    monkeypatch.setattr(lc, "train_clean_model", lambda *a, **k: pytest.fail("no model is needed at eps 0"))
    p = poison(splits, load_option("attack", "label_consistent", eps=0.0), seed=0)
    trig = label_consistent_trigger(splits.input_shape)
    assert torch.equal(p.x_train[p.poisoned_index], trig.apply(splits.x_train[p.poisoned_index]))


# ----------------------------------------------------------------------------- the attack's definition of success


def test_attack_labels_and_counted_inputs_by_hand():
    y = torch.tensor([0, 1, 2, 3, 0])
    base = dict(x_train=torch.zeros(1, 1, 2, 2), y_train=torch.zeros(1, dtype=torch.int64),
                poisoned_index=torch.zeros(0, dtype=torch.int64), train_delta_l2=torch.zeros(0, dtype=torch.float64),
                x_test_triggered=torch.zeros(5, 1, 2, 2), test_delta_l2=torch.zeros(5, dtype=torch.float64), target=2,
                num_classes=4)
    one = PoisonedData(**base)
    assert one.attack_labels(y).tolist() == [2] * 5 and one.counts_for_asr(y).tolist() == [1, 1, 0, 1, 1]
    every = PoisonedData(**base, policy="all_to_all")
    assert every.attack_labels(y).tolist() == [1, 2, 3, 0, 1] and every.counts_for_asr(y).all()
    clean = PoisonedData(**base, policy="clean_label")
    assert clean.attack_labels(y).tolist() == [2] * 5 and clean.counts_for_asr(y).tolist() == [1, 1, 0, 1, 1]


def test_test_sets_follow_the_policy(splits):
    p = poison(splits, load_option("attack", "badnets", mode="all_to_all"), seed=0)
    sig = torch.ones(40)
    sets = predicted_sets(splits, p, sig, sig)
    assert sets["triggered_all"].labels.tolist() == ((splits.y_test + 1) % 4).tolist()
    rab = rab_triggered(splits, p, sig)
    assert rab.indices.tolist() == list(range(40)) and rab.labels.tolist() == splits.y_test.tolist()
    q = poison(splits, load_option("attack", "badnets", target=1), seed=0)
    assert set(predicted_sets(splits, q, sig, sig)["triggered_all"].labels.tolist()) == {1}
    assert rab_triggered(splits, q, sig).indices.tolist() == [i for i in range(40) if i % 4 != 1]


def test_undefended_asr_uses_the_attack_labels(splits, monkeypatch):
    import certssb.ensemble.undefended as und

    p = poison(splits, load_option("attack", "badnets", mode="all_to_all"), seed=0)
    y = splits.y_test
    pred_trig = ((y + 1) % 4).numpy().copy()
    pred_trig[:10] = y[:10].numpy()  # 10 of 40 inputs resist the trigger
    calls = iter([y.numpy(), pred_trig])
    monkeypatch.setattr(und, "train_single", lambda *a, **k: None)
    monkeypatch.setattr(und, "predict_single", lambda *a, **k: next(calls))
    ens = load_option("ensemble", "gaussian")
    out = und.undefended_reference(None, splits, p, ens, 0, "cpu")
    assert out["undefended_clean_accuracy"] == 1.0 and out["undefended_asr"] == pytest.approx(30 / 40)


# ----------------------------------------------------------------------------- bad values: one line through the CLI


@pytest.mark.parametrize("overrides, key", [
    (["attack=blended", "attack.alpha=0"], "attack.alpha"),
    (["attack=blended", "attack.alpha=abc"], "attack.alpha"),
    (["attack=blended", "attack.pattern=kitty"], "attack.pattern"),
    (["attack=blended", "attack.cell=0"], "attack.cell"),
    (["attack=wanet", "attack.k=1"], "attack.k"),
    (["attack=wanet", "attack.s=0"], "attack.s"),
    (["attack=wanet", "attack.cross_ratio=-1"], "attack.cross_ratio"),
    (["attack=sig", "attack.delta=2"], "attack.delta"),
    (["attack=sig", "attack.frequency=0"], "attack.frequency"),
    (["attack=label_consistent", "attack.corners=three"], "attack.corners"),
    (["attack=label_consistent", "attack.patch_size=5", "attack.corners=four"], "attack.patch_size"),
    (["attack=label_consistent", "attack.eps=2"], "attack.eps"),
    (["attack=label_consistent", "attack.clean_epochs=0"], "attack.clean_epochs"),
    (["attack=badnets", "attack.mode=one_to_one"], "attack.mode"),
    (["model=preact_resnet18", "model.stem=tiny"], "model.stem"),
    (["model=resnet18", "model.weights=/nonexistent/resnet18.pt"], "model.weights"),
])
def test_bad_zoo_values_are_one_line(capsys, overrides, key):
    with pytest.raises(SystemExit) as info:
        main(overrides)
    err = capsys.readouterr().err.strip()
    assert info.value.code != 0 and len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and key in err


def test_clean_label_rate_too_high_stops_the_run_in_one_line(capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["attack=sig", "attack.poison_rate=0.5", "logger=none", f"hydra.run.dir={tmp_path}/run"])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and len(err.splitlines()) == 1 and "attack.poison_rate" in err, err


# ----------------------------------------------------------------------------- resnet18 weights


def test_resnet18_weights_fingerprint_follows_the_file(tmp_path):
    import torchvision

    path = tmp_path / "w.pt"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), path)
    a = load_option("model", "resnet18", weights=str(path)).plain()
    torch.manual_seed(1)
    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), path)
    b = load_option("model", "resnet18", weights=str(path)).plain()
    assert len(a["weights_sha256"]) == 64 and a["weights_sha256"] != b["weights_sha256"]
    assert "weights_sha256" not in load_option("model", "resnet18").plain()
    model = load_option("model", "resnet18", weights=str(path)).build((3, 16, 16), 3)
    assert torch.equal(model.state_dict()["fc.weight"], torch.load(path)["fc.weight"])  # the new file is read


# ----------------------------------------------------------------------------- end to end on digits


def _asr_from_certificates(out, num_classes):
    table = pd.read_csv(out / "certificates.csv")
    trig = table[table.split == "triggered"]
    return trig, float(np.mean(trig.prediction.to_numpy() == (trig.label.to_numpy() + 1) % num_classes))


def test_badnets_all_to_all_end_to_end(tmp_path, run_pipeline):
    """The smoothed ASR counts every triggered input and success is (y + 1) mod C (recomputed
    from certificates.csv); triggered_all is labelled the same way."""
    summary = run_pipeline(tmp_path, ["attack.mode=all_to_all", "ensemble.n_members=2", "ensemble.epochs=2",
                                      "undefended.epochs=2"])
    assert summary["attack"]["policy"] == "all_to_all" and summary["attack"]["n_poisoned"] == 144
    trig, asr = _asr_from_certificates(tmp_path, 10)
    assert len(trig) == summary["dataset"]["n_test"]  # every test input counts
    assert summary["metrics"]["asr"] == pytest.approx(asr)
    table = pd.read_csv(tmp_path / "certificates.csv")
    every = table[table.split == "triggered_all"]
    clean = table[table.split == "clean"]
    assert (every.label.to_numpy() == (clean.label.to_numpy() + 1) % 10).all()
    assert 0.0 <= summary["metrics"]["undefended_asr"] <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize("attack, policy", [("blended", "all_to_one"), ("wanet", "all_to_one"), ("sig", "clean_label"),
                                            ("label_consistent", "clean_label")])
def test_new_attack_end_to_end(tmp_path, run_pipeline, attack, policy):
    summary = run_pipeline(tmp_path, [f"attack={attack}", "ensemble.n_members=2", "ensemble.epochs=2",
                                      "undefended.epochs=2"])
    info = summary["attack"]
    assert info["name"] == attack and info["policy"] == policy and info["n_poisoned"] > 0
    assert (info["n_cross"] > 0) == (attack == "wanet")
    counted = summary["curves"]["clean"]["poison_count"]["n_poisoned"]  # every changed sample
    assert counted == info["n_poisoned"] + info["n_cross"]
    table = pd.read_csv(tmp_path / "certificates.csv")
    trig = table[table.split == "triggered"]
    assert (trig.label != 0).all()  # non-target inputs, true labels
    assert summary["metrics"]["asr"] == pytest.approx(float(np.mean(trig.prediction == 0)))
    # joint size^2 = test delta^2 + the recorded training sum (cross samples included): the test
    # deltas recovered from certificates.csv have the summary's median
    joint = table[table.split == "triggered_all"].attack_joint_l2.to_numpy()
    train_sq = summary["attack"]["train_delta_l2_sum_sq"]
    test_delta = np.sqrt(np.clip(joint ** 2 - train_sq, 0.0, None))
    assert train_sq > 0 and joint.min() ** 2 >= train_sq - 1e-6 * train_sq
    assert float(np.median(test_delta)) == pytest.approx(info["test_delta_l2_median"], rel=1e-4, abs=1e-4)
    assert float(joint.max()) == pytest.approx(summary["metrics"]["attack_joint_l2"])


@pytest.mark.slow
@pytest.mark.parametrize("model", ["preact_resnet18", "resnet18"])
def test_new_models_end_to_end(tmp_path, run_pipeline, model):
    extra = []
    if model == "resnet18":
        import torchvision

        torch.manual_seed(0)
        torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "imagenet_like.pt")  # 3 ch, 1000 classes
        extra = [f"model.weights={tmp_path / 'imagenet_like.pt'}"]
    summary = run_pipeline(tmp_path / "run", [f"model={model}", *extra, "sigma_optimiser=fixed", "certifier=rab",
                                              "dataset.train_size=120", "dataset.test_size=20",
                                              "ensemble.n_members=2", "ensemble.epochs=1", "undefended.epochs=1"])
    assert summary["status"] == "complete" and summary["n_members"] == 2
    assert 0.0 <= summary["metrics"]["clean_accuracy"] <= 1.0
