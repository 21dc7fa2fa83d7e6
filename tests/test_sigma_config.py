"""Validation of the sigma_optimiser options (one path: each option's class, at parse time), the
options' own behaviour, and sigma_stats."""

import dataclasses

import numpy as np
import pytest
import torch

from certssb.config import load_option, parse_run
from certssb.errors import ConfigError
from certssb.sigma_optimiser import optimise_sigmas, sigma_stats

from conftest import compose_cfg, sigma_settings

GOOD = dict(sigma_0=0.25, n_draws=8, lr=0.04, iterations=2, clip_low=0.02, clip_high=0.98, sigma_min=0.05,
            sigma_max=1.0, batch_size=4)


@pytest.mark.parametrize(
    "over, key",
    [
        (dict(sigma_0=-1), "sigma_0"),
        (dict(sigma_0=0), "sigma_0"),
        (dict(sigma_0=None), "sigma_0"),
        (dict(sigma_0="abc"), "sigma_0"),
        (dict(sigma_0=float("nan")), "sigma_0"),
        (dict(sigma_min=0), "sigma_min"),
        (dict(sigma_min=-0.1), "sigma_min"),
        (dict(sigma_0=0.01), "sigma_0"),  # below sigma_min
        (dict(sigma_0=2.0), "sigma_0"),  # above sigma_max
        (dict(sigma_max=0.01), "sigma_max"),  # below sigma_min
        (dict(clip_low=0), "clip_low"),
        (dict(clip_low=0.5), "clip_low"),
        (dict(clip_high=0.5), "clip_high"),
        (dict(clip_high=1.0), "clip_high"),
        (dict(n_draws=0), "n_draws"),
        (dict(n_draws=2.5), "n_draws"),
        (dict(iterations=-1), "iterations"),
        (dict(lr=-0.1), "lr"),
        (dict(batch_size=0), "batch_size"),
        (dict(surrogate_epochs=0), "surrogate_epochs"),
        (dict(objective="sound"), "objective"),
        (dict(objective="joint"), "sigma_train_floor"),  # joint needs a floor
        (dict(sigma_train_floor=2.0), "sigma_train_floor"),  # above sigma_max
    ],
)
def test_invalid_sga_settings_raise_one_line_naming_key(over, key):
    with pytest.raises(ConfigError) as info:
        sigma_settings("sga", **{**GOOD, **over})
    msg = str(info.value)
    assert msg.startswith(f"sigma_optimiser.{key}"), msg
    assert "\n" not in msg


def test_error_message_format():
    with pytest.raises(ConfigError, match=r"^sigma_optimiser\.sigma_0 must be in \[0\.05, 1\.0\]; got -1\.0$"):
        sigma_settings("sga", **{**GOOD, "sigma_0": -1})


def test_released_refuses_the_joint_objective():
    with pytest.raises(ConfigError, match=r"^sigma_optimiser\.objective must be paper"):
        sigma_settings("released", objective="joint", sigma_train_floor=0.25)


def test_the_sga_loop_runs_sga_settings_only():
    with pytest.raises(ConfigError, match="surrogate"):
        optimise_sigmas(sigma_settings("sga", **GOOD), None, torch.zeros(3, 1, 2, 2), 0, "train", progress=False)
    with pytest.raises(TypeError, match="FixedSigmaSettings"):
        optimise_sigmas(sigma_settings("fixed"), None, torch.zeros(3, 1, 2, 2), 0, "train", progress=False)


def test_variants_inherit_sga_through_the_defaults_list():
    sga, joint, released, light, long_ = (sigma_settings(n) for n in ("sga", "sga_joint", "released", "sga_light",
                                                                       "sga_long"))
    assert joint.objective == "joint" and joint.sigma_train_floor == joint.sigma_0
    assert type(released).__name__ == "ReleasedSettings"
    for variant in (joint, released, light, long_):
        same = {f.name for f in dataclasses.fields(sga)} - {"objective", "sigma_train_floor", "n_draws", "iterations",
                                                            "name"}
        assert all(getattr(variant, k) == getattr(sga, k) for k in same)
    assert (light.iterations, light.n_draws, long_.iterations, long_.n_draws) == (15, 8, 100, 32)


def test_fixed_carries_sigma_0_only():
    fixed = sigma_settings("fixed", sigma_0=2.0)
    assert {f.name for f in dataclasses.fields(fixed)} == {"name", "sigma_0"}
    with pytest.raises(ConfigError, match="sigma_0"):
        sigma_settings("fixed", sigma_0=0.0)
    with pytest.raises(ConfigError, match=r"sigma_optimiser\.iterations is not a setting"):
        load_option("sigma_optimiser", "fixed", iterations=3)


def test_an_sga_knob_with_fixed_is_one_line_naming_the_key():
    with pytest.raises(ConfigError, match=r"^sigma_optimiser\.n_draws is not a setting of this option"):
        parse_run(compose_cfg(["sigma_optimiser=fixed", "+sigma_optimiser.n_draws=4"]))


def test_sigma_stats_plain_floats():
    s = torch.tensor([0.1, 0.2, 0.3, 0.4, 1.0])
    st = sigma_stats(s, sigma_min=0.1, sigma_max=1.0)
    assert st["n"] == 5
    for k in ("min", "max", "mean", "std", "median", "q05", "q25", "q50", "q75", "q95", "frac_at_min", "frac_at_max"):
        assert type(st[k]) is float, k
    assert st["min"] == pytest.approx(0.1) and st["max"] == pytest.approx(1.0)
    assert st["median"] == pytest.approx(0.3) and st["mean"] == pytest.approx(0.4)
    assert st["q25"] == pytest.approx(0.2) and st["frac_at_max"] == pytest.approx(0.2)
    assert sigma_stats(np.array([0.5]))["q95"] == pytest.approx(0.5)
    assert sigma_stats([])["n"] == 0


def test_grid_candidates_and_ensembles():
    base = dict(sigma_trains=[0.25, 0.5, 1.0], selection="union")
    sc = sigma_settings("grid_ensembles", **base, test_sigmas=None)
    assert sc.candidates() == ((0.25, 0.25), (0.5, 0.5), (1.0, 1.0)) and sc.recorded_sigma_0() == 0.25
    sc = sigma_settings("grid_ensembles", **base, test_sigmas=[0.25, 0.5])
    assert sc.candidates() == ((0.25, 0.25), (0.5, 0.25), (0.5, 0.5), (1.0, 0.25), (1.0, 0.5))
    assert [float(t[0]) for t in sc.ensembles(torch.ones(3))] == [0.25, 0.5, 1.0]
    grid = sigma_settings("grid", sigma_train=0.5, test_sigmas=[0.25, 0.5])
    assert grid.candidates() == ((0.5, 0.25), (0.5, 0.5)) and len(grid.ensembles(torch.ones(3))) == 1


def test_each_option_says_what_the_certificate_assumes():
    train = torch.tensor([0.1, 0.4, 0.7])
    paper = sigma_settings("sga", **GOOD)
    floored = sigma_settings("sga", **{**GOOD, "sigma_train_floor": 0.3})
    assert torch.equal(paper.with_design(train, train, train).certificate_train_sigmas, train)
    design = floored.with_design(train, train, train)
    assert torch.equal(design.train, torch.tensor([0.3, 0.4, 0.7]))
    assert torch.equal(design.certificate_train_sigmas, torch.full((3,), 0.3))
    assert not paper.data_independent() and floored.data_independent()
    names = {n: sigma_settings(n).method_name() for n in ("none", "fixed", "sga", "sga_joint", "released", "grid",
                                                           "grid_ensembles")}
    assert names == {"none": "no-noise", "fixed": "rab", "sga": "cert-ssb", "sga_joint": "cert-ssb-joint",
                     "released": "cert-ssb-released", "grid": "cert-ssb-grid",
                     "grid_ensembles": "cert-ssb-grid-ensembles"}
