"""The count family's falsification check (certssb.tools.falsify --family count).

DPA (partition, key index), Finite Aggregation, and run-off election on the same models: for inputs with certificate c, c training samples placed in the parts
that voted for the prediction (labels flipped to the runner-up, features replaced by the input),
only those parts retrained with the same seeds: no prediction may change; beyond c (c + 1, 2c + 2)
some must. Bagging: the same with an attacker blind to the bags, and the bound on the expected
number of flips within the certificate.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.stats import binom

from certssb.certifier.dpa import dpa_certificate
from certssb.errors import ConfigError
from certssb.tools.falsify import CountFalsifyConfig, main, run_count_falsification
from certssb.tools.falsify.config import count_name, parse_count
from certssb.tools.falsify.count_attack import (affected_models, bagging_samples, partition_samples,
                                                poisoned_copy, runner_up)
from certssb.tools.falsify.count_report import flip_bound
from certssb.tools.falsify.count_runner import model_votes

# ------------------------------------------------------------------------------------ units


@pytest.mark.parametrize("expr, ab", [("c", (1, 0)), ("c+1", (1, 1)), ("2c+2", (2, 2)), ("3c", (3, 0)),
                                      ("2c-1", (2, -1)), (" 4 c + 4 ", (4, 4))])
def test_parse_count(expr, ab):
    assert parse_count(expr) == ab
    assert parse_count(count_name(*ab)) == ab


@pytest.mark.parametrize("bad", ["c+", "k+1", "2", "c*2", ""])
def test_parse_count_rejects(bad):
    with pytest.raises(ConfigError, match="--power-counts"):
        parse_count(bad)


@pytest.mark.parametrize("counts", [("c",), ("c-1",), ("0c+5",), ("2c-1",)])
def test_power_counts_must_exceed_the_certificate(counts):
    """k = a*c + b must exceed c for every c >= 1, or the 'power check' tests nothing beyond c."""
    with pytest.raises(ConfigError, match="not beyond the certificate"):
        CountFalsifyConfig(power_counts=counts).validate()
    CountFalsifyConfig(power_counts=("c+1", "2c")).validate()  # 2c > c for c >= 1


def test_runner_up_is_the_binding_class_of_dpa():
    """The class whose gap n_y - n_c - [c < y] is smallest: exactly the one DPA's certificate binds on."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        votes = rng.multinomial(15, rng.dirichlet(np.ones(5)))
        y, parts = dpa_certificate(votes[None, :])
        r = runner_up(votes, int(y[0]))
        assert r != y[0]
        gap = votes[y[0]] - votes[r] - int(r < y[0])
        assert parts[0] == gap // 2


def test_partition_samples_spread_over_parts_nearest_own_class_first():
    g = torch.Generator().manual_seed(0)
    x_train = torch.rand((12, 1, 2, 2), generator=g)
    y_train = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1])
    parts = [np.array([0, 1, 2, 3]), np.array([4, 5, 6, 7]), np.array([8, 9, 10, 11])]
    x = x_train[6].clone()  # sample 6 (class 0, part 1) is at distance 0
    chosen = partition_samples(5, parts, np.array([1, 2, 0]), y_train, x_train, x, 0)
    assert chosen[0] == 6  # part 1 first, its nearest class-0 sample first
    assert [int(np.flatnonzero([c in p for p in parts])[0]) for c in chosen] == [1, 2, 0, 1, 2]  # round robin
    assert all(y_train[c] == 0 for c in chosen[:3])  # own class first in every part
    assert len(set(chosen.tolist())) == 5
    assert len(partition_samples(99, parts, np.array([0]), y_train, x_train, x, 0)) == 4  # a part runs out


def test_bagging_samples_ignore_the_bags_and_take_the_nearest_own_class():
    x_train = torch.arange(10, dtype=torch.float32).view(10, 1, 1, 1)
    y_train = torch.tensor([0, 0, 1, 1, 0, 1, 0, 1, 0, 1])
    chosen = bagging_samples(4, y_train, x_train, torch.tensor([[[4.2]]]), 0)
    assert chosen.tolist() == [4, 6, 1, 8]  # class 0 by distance to 4.2 (4, 6 at 1.8, 1 at 3.2, 8 at 3.8)


def test_affected_models_and_poisoned_copy():
    subsets = [torch.tensor([0, 1, 2]), torch.tensor([3, 4]), torch.tensor([2, 5, 5])]
    assert affected_models(subsets, np.array([2])).tolist() == [0, 2]
    assert affected_models(subsets, np.array([4, 9])).tolist() == [1]
    assert affected_models(subsets, np.array([], dtype=np.int64)).tolist() == []
    x = torch.zeros((6, 1, 2, 2))
    y = torch.zeros(6, dtype=torch.int64)
    xp, yp = poisoned_copy(x, y, np.array([1, 4]), torch.ones((1, 2, 2)), 3)
    assert yp.tolist() == [0, 3, 0, 0, 3, 0] and float(xp[1].sum()) == 4 and float(xp[0].sum()) == 0
    assert float(x.sum()) == 0 and int(y.sum()) == 0  # the clean set is untouched


def test_model_votes_from_ranks():
    ranks = np.array([[[1, 0, 2], [0, 2, 1]]], dtype=np.int8)  # 1 input, 2 models, 3 classes
    assert model_votes(ranks).tolist() == [[1, 0]]


def test_flip_bound_is_the_binomial_tail():
    votes = np.array([60, 30, 10])  # y = 0: gap to class 1 is 30 -> 16 models must be reached
    a_min, p = flip_bound(votes, 0, k=5, n=1000, s=30)
    reach = 1 - (1 - 5 / 1000) ** 30
    assert a_min == 16 and p == pytest.approx(binom.sf(15, 100, reach))
    assert flip_bound(votes, 0, k=400, n=1000, s=30)[1] > 0.99  # nearly every bag reached


def test_cli_rejects_options_of_the_other_family(tmp_path, capsys):
    assert main(["--family", "count", "--sigma", "grid", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == "error: --sigma applies to --family gaussian only, not to --family count\n"
    assert main(["--parts", "10", "--bag-size", "5", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == "error: --parts, --bag-size apply to --family count only, not to --family gaussian\n"
    assert main(["--family", "count", "--power-counts", "c", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: --power-counts: c is not beyond the certificate")
    assert main(["--family", "count", "--alpha", "2", "--ensemble", "bagging", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["--family", "count", "--ensemble", "bagging", "--certifier", "roe", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == ("error: --certifier roe does not apply to --ensemble bagging "
                                       "(partition: dpa or roe; finite_aggregation: fa or roe; bagging: none)\n")
    assert main(["--certifier", "roe", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "error: --certifier applies to --family count only, not to --family gaussian\n"
    assert not (tmp_path / "falsify.json").exists()


# ------------------------------------------------------------------------------------ real checks


@pytest.mark.slow
def test_dpa_no_flip_within_the_certificate_and_power_check_flips(tmp_path):
    cfg = CountFalsifyConfig(ensemble="partition", parts=30, attacks=6, seed=0, epochs=60, threads=1)
    report = run_count_falsification(cfg, out=tmp_path)
    assert json.loads((tmp_path / "falsify.json").read_text())["summary"] == report["summary"]
    assert report["family"] == "count" and report["defence"] == "dpa"
    assert report["clean"]["n_models"] == 30 and report["clean"]["accuracy"] > 0.8
    assert report["control_votes_identical"] is True  # same seeds and subsets -> the same models
    within = report["within"]
    assert within["tried"] >= 5
    for p in within["pairs"]:
        assert p["k"] == p["certificate"] >= 1 and len(set(p["samples"])) == p["k"]
        assert p["models_retrained"] <= p["k"]  # key index: one part per changed sample
        assert p["models_moved"] <= p["models_retrained"]  # the untouched parts are reused as they were
    assert within["flipped"] == 0, [p for p in within["pairs"] if p["flipped"]]
    assert [p["counts"] for p in report["power"]] == ["c+1", "2c+2"]
    power = report["power"][-1]
    assert power["tried"] == within["tried"]
    assert all(p["k"] == 2 * p["certificate"] + 2 for p in power["pairs"])
    assert power["flipped"] >= 1, "the power check never flips: the falsification test has no power"
    assert report["summary"] == (f"falsification: tried={within['tried']} flipped=0 (k <= certificate); "
                                 f"power check: tried={power['tried']} flipped={power['flipped']} (k = 2c+2)")


@pytest.mark.slow
def test_runoff_election_no_flip_within_its_certificate_and_power_check_flips(tmp_path):
    """Run-off election on DPA's models: its own prediction (round two reads every model's ranking,
    so the retrained models' rankings, not only their votes, decide) against its own certificate."""
    from certssb.certifier.runoff import roe_dpa_certificate
    from certssb.tools.falsify.count_runner import CountRunner
    from certssb.tools.falsify.session import session

    cfg = CountFalsifyConfig(ensemble="partition", certifier="roe", parts=30, attacks=6, seed=0, epochs=60, threads=1)
    report = run_count_falsification(cfg, out=tmp_path)
    assert report["defence"] == "dpa+roe" and report["clean"]["accuracy"] > 0.8
    within = report["within"]
    assert within["tried"] >= 5 and within["flipped"] == 0, [p for p in within["pairs"] if p["flipped"]]
    assert all(p["k"] == p["certificate"] for p in within["pairs"])
    assert report["power"][-1]["flipped"] >= 1, "the power check never flips: no power"
    with session(1, None, tmp_path / "again") as work:  # the runner predicts as the certifier does
        r = CountRunner(CountFalsifyConfig(ensemble="partition", certifier="roe", parts=10, epochs=5), work)
        roe_prediction, _ = roe_dpa_certificate(r.votes.ranks)
        assert np.array_equal(r.prediction, roe_prediction)
        assert [r.predict(r.votes.ranks[i]) for i in range(40)] == roe_prediction[:40].tolist()


@pytest.mark.slow
@pytest.mark.parametrize("certifier", [None, "roe"])
def test_finite_aggregation_no_flip_within_the_certificate_and_power_check_flips(tmp_path, certifier):
    """Finite Aggregation (15 x 2 buckets, 30 models) and run-off election on its models: samples
    placed in the buckets that feed the most models voting for the prediction, one bucket each."""
    from certssb.certifier.finite_aggregation import fa_model_buckets
    from certssb.tools.falsify.count_runner import CountRunner
    from certssb.tools.falsify.session import session

    cfg = CountFalsifyConfig(ensemble="finite_aggregation", certifier=certifier, parts=15, spread=2, attacks=6,
                             seed=0, epochs=60, threads=1)
    report = run_count_falsification(cfg, out=tmp_path)
    assert report["defence"] == ("fa+roe" if certifier else "fa") and report["clean"]["n_models"] == 30
    within = report["within"]
    assert within["tried"] >= 5 and within["flipped"] == 0, [p for p in within["pairs"] if p["flipped"]]
    for p in within["pairs"]:
        assert p["k"] == p["certificate"] and p["models_retrained"] <= 2 * p["k"]  # a bucket feeds 2 models
    assert report["power"][-1]["flipped"] >= 1, "the power check never flips: no power"
    with session(1, None, tmp_path / "again") as work:  # the attack's buckets are the ensemble's
        r = CountRunner(CountFalsifyConfig(ensemble="finite_aggregation", parts=5, spread=2, epochs=2), work)
        for j, buckets in enumerate(fa_model_buckets(5, 2)):
            expected = np.sort(np.concatenate([r.buckets[h] for h in buckets]))
            assert np.array_equal(np.sort(r.subsets[j].numpy()), expected)


@pytest.mark.slow
def test_bagging_no_flip_within_the_certificate_and_power_check_flips(tmp_path):
    cfg = CountFalsifyConfig(ensemble="bagging", members=100, bag_size=30, attacks=5, seed=0, epochs=60, threads=1,
                             power_counts=("8c+8",))
    report = run_count_falsification(cfg, out=tmp_path)
    assert report["defence"] == "bagging" and report["alpha"] == 0.001
    within = report["within"]
    assert within["tried"] >= 4
    assert within["expected_flips_at_most"] < 0.05  # what the certificate leaves to chance, for this attacker
    assert within["flipped"] == 0, [p for p in within["pairs"] if p["flipped"]]
    assert report["power"][-1]["flipped"] >= 1, "the power check never flips: no power"


@pytest.mark.slow
def test_cli_count_family(tmp_path, capsys):
    rc = main(["--family", "count", "--parts", "20", "--attacks", "3", "--epochs", "40", "--power-counts", "2c+2",
               "--out", str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("dpa: 20 models, clean accuracy ")
    assert out[-1].startswith("falsification: tried=3 flipped=0 (k <= certificate); power check: tried=3 flipped=")
    report = json.loads((tmp_path / "falsify.json").read_text())
    assert report["config"]["parts"] == 20 and report["config"]["power_counts"] == ["2c+2"]
