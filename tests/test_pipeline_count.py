"""The count-certified family end to end: DPA, Finite Aggregation, run-off election and bagging on
the same data, attacks and outputs as the Gaussian family (docs/METHOD.md section 8)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from certssb.certifier import dpa_certificate
from certssb.config import load_option, parse_run
from certssb.dataset import load_dataset
from certssb.ensemble import CheckpointStore, train_members
from certssb.errors import ConfigError
from certssb.model import model_factory
from certssb.ensemble.training_data import TrainingData
from tolerances import assert_one_adam_step_close

from conftest import compose_cfg, model_option

# BadNets at 0.5% of the digits training set: 7 relabelled samples, small parts that learn quickly
SMALL = ["attack.poison_rate=0.005", "ensemble.epochs=30", "ensemble.batch_size=16", "undefended.enabled=false"]


@pytest.fixture(scope="module")
def dpa_run(tmp_path_factory):
    from certssb import pipeline

    out = tmp_path_factory.mktemp("dpa")
    cfg = compose_cfg(["ensemble=partition", "ensemble.n_parts=20", *SMALL, "logger=none"])
    return out, pipeline.run(cfg, output_dir=out, progress=False)


def test_ensemble_partition_is_dpa_with_no_noise(dpa_run):
    out, summary = dpa_run
    assert (summary["method"], summary["family"], summary["n_members"]) == ("dpa", "count", 20)
    assert summary["sigma"]["optimiser"] == "none" and summary["alpha"] is None
    assert summary["attack"]["relabels"] and summary["metrics"]["clean"]["attack_changed_samples"] == 7
    for name in ("summary.json", "certificates.csv", "votes.npz", "certified_any_count.png"):
        assert (out / name).is_file(), name
    assert not (out / "certified_accuracy.png").exists()  # no L2 radius in this family
    assert not (out / "sigmas.npz").exists()  # and no noise


def test_certificates_recompute_from_votes_npz(dpa_run):
    """The DPA certificate of every input equals the one computed again from votes.npz alone; the
    attack as run is certified exactly where the input is correct and certified against 7 samples."""
    out, summary = dpa_run
    table = pd.read_csv(out / "certificates.csv")
    votes = np.load(out / "votes.npz")
    assert set(votes.files) == {"clean", "triggered", "triggered_all"}
    for split in ("clean", "triggered", "triggered_all"):
        rows = table[table["split"] == split]
        v = votes[split]
        assert v.shape == (len(rows), 10) and (v.sum(1) == 20).all()
        prediction, parts = dpa_certificate(v)
        np.testing.assert_array_equal(rows["prediction"], prediction)
        np.testing.assert_array_equal(rows["certified_any_count"], parts)  # key index: one part per sample
        expected = (rows["prediction"] == rows["label"]) & (rows["certified_any_count"] >= 7)
        np.testing.assert_array_equal(rows["realised_attack_certified"], expected)
        share = summary["metrics"][split]["realised_attack_certified"]
        assert share == pytest.approx(expected.mean())
    curve = summary["curves"]["clean"]["any_count"]
    clean = table[table["split"] == "clean"]
    for k, ca in zip(curve["counts"], curve["certified_accuracy"]):
        assert ca == pytest.approx(np.mean(clean["correct"] & (clean["certified_any_count"] >= k)))


def test_the_verdict_says_what_the_count_family_certified(dpa_run):
    _, summary = dpa_run
    lines = summary["verdict"]["lines"]
    assert lines[0].startswith("ran: dpa (count family: any k training samples changed arbitrarily, labels included)")
    assert "20 models on disjoint parts, key index" in lines[0]
    assert lines[-1].startswith("attack as run (changed 7 training samples): certified for clean ")
    assert summary["metrics"]["clean"]["realised_attack_certified"] > 0.3  # measured 0.6-0.8 at 20 parts
    assert "as many as the attack changed" in summary["certified_statement"]["clean"]


@pytest.mark.parametrize("overrides, family", [
    (["ensemble=finite_aggregation", "ensemble.n_parts=10", "ensemble.spread=2"], "fa"),
    (["ensemble=partition", "ensemble.n_parts=10", "certifier=roe"], "dpa+roe"),
    (["ensemble=finite_aggregation", "ensemble.n_parts=10", "ensemble.spread=2", "certifier=roe"], "fa+roe"),
    (["ensemble=bagging", "ensemble.n_members=20", "ensemble.bag_size=100"], "bagging"),
])
def test_every_count_option_runs_and_stores_what_recomputes_it(tmp_path, overrides, family):
    from certssb import pipeline

    summary = pipeline.run(compose_cfg([*overrides, *SMALL, "logger=none"]), output_dir=tmp_path, progress=False)
    assert summary["method"] == family and summary["family"] == "count"
    votes = np.load(tmp_path / "votes.npz")
    table = pd.read_csv(tmp_path / "certificates.csv")
    assert len(votes["clean"]) == (table["split"] == "clean").sum()
    if family != "bagging" and family != "dpa+roe":
        assert votes["clean_ranks"].shape[1:] == (summary["n_members"], 10)
    if family == "bagging":  # probabilistic: the bounds are in the table
        assert {"p_a_lower", "p_b_upper"} <= set(table.columns) and summary["alpha"] == 0.001
    assert (table["certified_any_count"] >= -1).all()


@pytest.mark.parametrize("overrides, message", [
    (["ensemble=partition", "sigma_optimiser=sga"], "ensemble=partition trains its models without noise"),
    (["sigma_optimiser=none"], "ensemble=gaussian trains members with Gaussian noise"),
    (["certifier=dpa"], "certifier=dpa certifies a number of changed training samples"),
    (["ensemble=partition", "certifier=cohen"], "certifier=cohen certifies an L2 radius"),
    (["ensemble=partition", "certifier=fa"], "certifier=fa reads buckets, but ensemble=partition"),
    (["ensemble=bagging", "certifier=roe"], "certifier=roe reads parts or buckets, but ensemble=bagging"),
    (["ensemble=partition", "ensemble.n_parts=0"], "ensemble.n_parts must be in [1, inf]"),
    (["ensemble=partition", "ensemble.key=position"], "ensemble.key must be one of index, hash"),
])
def test_combinations_that_make_no_sense_end_before_any_work(overrides, message):
    with pytest.raises(ConfigError) as err:
        parse_run(compose_cfg(overrides))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_ensemble_partition_chooses_no_noise_and_dpa_unless_told_otherwise():
    cfg = compose_cfg(["ensemble=partition"])
    assert (cfg.sigma_optimiser.name, cfg.certifier.name) == ("none", "dpa")
    cfg = compose_cfg(["ensemble=partition", "certifier=roe"])
    assert cfg.certifier.name == "roe"
    assert compose_cfg(["ensemble=bagging"]).certifier.name == "bagging"


def test_the_hash_key_follows_the_samples_not_their_positions():
    """Reordering the training set changes no sample's part (key hash); key index follows positions."""
    data = load_dataset(load_option("dataset", "digits"), 0)
    x, y = data.x_train, data.y_train
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(3))
    hashed = load_option("ensemble", "partition", n_parts=7, key="hash")
    parts = hashed.training_subsets(x, y, seed=0)
    moved = hashed.training_subsets(x.subset(perm), y[perm], seed=0)
    for a, b in zip(parts, moved):
        assert torch.equal(a, torch.sort(perm[b]).values)  # the same samples, wherever they stand
    assert sum(len(p) for p in parts) == len(y)
    by_index = load_option("ensemble", "partition", n_parts=7, key="index").training_subsets(x, y, seed=0)
    sizes = sorted(len(p) for p in by_index)
    assert sizes[-1] - sizes[0] <= 1 and sum(sizes) == len(y)


def test_parts_train_vectorised_as_one_at_a_time(tmp_path):
    """Parts of unequal size train in groups of one size; after one Adam step every part equals the
    same part trained alone (tests/tolerances.py: one step bounds the float differences)."""
    data = load_dataset(load_option("dataset", "digits"), 0)
    x, y = data.x_train.to_float()[:200], data.y_train[:200]
    f = model_factory(model_option("mlp", hidden=[32]), (1, 8, 8), 10)
    ens = load_option("ensemble", "partition", n_parts=7, epochs=1, batch_size=64, lr=1e-2, device="cpu")
    subsets = ens.training_subsets(x, y, seed=0)
    assert len({len(s) for s in subsets}) == 2  # 200 = 4 x 29 + 3 x 28
    zeros = torch.zeros(len(x))
    stores = {}
    for mode in ("false", "true"):
        ens_mode = load_option("ensemble", "partition", n_parts=7, epochs=1, batch_size=64, lr=1e-2, device="cpu",
                               vectorise=mode, group_size=4)
        stores[mode] = CheckpointStore(tmp_path / mode, "fp")
        train_members(f, TrainingData(x, y, zeros, subsets), ens_mode, 0, range(7), stores[mode], progress=False)
    metas = [stores["true"].load_meta(k) for k in range(7)]
    assert {m["group_size"] for m in metas} == {3, 4} and all(m["vectorised"] for m in metas)
    assert_one_adam_step_close([stores["false"].load(k) for k in range(7)], [stores["true"].load(k) for k in range(7)],
                               lr=1e-2)
    # the subsets reach the training: model 0 on part 1 is another model than model 0 on part 0
    other = CheckpointStore(tmp_path / "other", "fp")
    train_members(f, TrainingData(x, y, zeros, subsets[1:]), ens, 0, range(1), other, progress=False)
    mine, theirs = other.load(0), stores["false"].load(0)
    assert any(not torch.equal(mine[k], theirs[k]) for k in mine)


def test_summary_json_keys_of_the_one_axis(dpa_run):
    out, _ = dpa_run
    summary = json.loads((out / "summary.json").read_text())
    for split in ("clean", "triggered", "triggered_all"):
        assert set(summary["curves"][split]["any_count"]) == {"counts", "certified_accuracy"}
        assert 0.0 <= summary["metrics"][split]["realised_attack_certified"] <= 1.0
