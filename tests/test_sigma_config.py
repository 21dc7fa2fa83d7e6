"""Validation of the sigma_optimiser config and sigma_stats."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from certssb.errors import ConfigError
from certssb.sigma_optimiser import optimise_sigmas, parse_sigma_config, sigma_stats

GOOD = dict(name="sga", sigma_0=0.25, n_draws=8, lr=0.04, iterations=2, clip_low=0.02, clip_high=0.98,
            sigma_min=0.05, sigma_max=1.0, batch_size=4)


def _cfg(**over):
    d = dict(GOOD)
    d.update(over)
    return SimpleNamespace(**d)


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
        (dict(name="adam"), "name"),
        (dict(name=None), "name"),
    ],
)
def test_invalid_config_raises_one_line_naming_key(over, key):
    with pytest.raises(ConfigError) as info:
        parse_sigma_config(_cfg(**over))
    msg = str(info.value)
    assert f"sigma_optimiser.{key}" in msg
    assert "\n" not in msg


def test_error_message_format():
    with pytest.raises(ConfigError, match=r"^sigma_optimiser\.sigma_0 must be > 0, got -1$"):
        parse_sigma_config(_cfg(sigma_0=-1))


def test_optimise_sigmas_validates_before_work():
    with pytest.raises(ConfigError, match="lr"):
        optimise_sigmas(_cfg(lr=-1), None, torch.zeros(3, 1, 2, 2), 0, "train", progress=False)
    with pytest.raises(ConfigError, match="model"):
        optimise_sigmas(_cfg(), None, torch.zeros(3, 1, 2, 2), 0, "train", progress=False)


def test_defaults_and_dictconfig():
    sc = parse_sigma_config(SimpleNamespace(name="sga", sigma_0=0.25))
    assert (sc.n_draws, sc.lr, sc.iterations, sc.clip_low, sc.clip_high) == (32, 0.04, 100, 0.02, 0.98)
    assert (sc.sigma_min, sc.sigma_max) == (0.05, 1.0)
    dc = OmegaConf.create(GOOD)
    OmegaConf.set_struct(dc, True)
    assert parse_sigma_config(dc).sigma_0 == 0.25
    partial = OmegaConf.create({"name": "released", "sigma_0": 0.5})
    OmegaConf.set_struct(partial, True)  # missing keys -> defaults, no exception
    assert parse_sigma_config(partial).n_draws == 32
    with pytest.raises(ConfigError, match="sigma_optimiser.sigma_0"):
        parse_sigma_config(OmegaConf.create({"name": "sga", "sigma_0": "???"}))


def test_fixed_needs_only_sigma_0():
    sc = parse_sigma_config(SimpleNamespace(name="fixed", sigma_0=2.0, sigma_max=1.0, lr=-1))  # unused keys
    assert sc.sigma_0 == 2.0 and sc.sigma_max is None
    with pytest.raises(ConfigError, match="sigma_0"):
        parse_sigma_config(SimpleNamespace(name="fixed", sigma_0=0.0))


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


def test_grid_ensembles_candidates():
    base = dict(name="grid_ensembles", sigma_0=0.25, sigma_trains=[0.25, 0.5, 1.0], selection="union")
    sc = parse_sigma_config(SimpleNamespace(**base, test_sigmas=None))
    assert sc.candidates == ((0.25, 0.25), (0.5, 0.5), (1.0, 1.0)) and sc.sigma_train == 0.25
    sc = parse_sigma_config(SimpleNamespace(**base, test_sigmas=[0.25, 0.5]))
    assert sc.candidates == ((0.25, 0.25), (0.5, 0.25), (0.5, 0.5), (1.0, 0.25), (1.0, 0.5))
    grid = parse_sigma_config(SimpleNamespace(name="grid", sigma_0=0.5, sigma_train=0.5, test_sigmas=[0.25, 0.5]))
    assert grid.candidates == ((0.5, 0.25), (0.5, 0.5))
