"""Shared helpers: compose the project's real config with overrides, run the pipeline fast."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

os.environ.setdefault("WANDB_MODE", "disabled")

from certssb.run import CONF_DIR  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

# Small but real: digits, BadNets, a few members and epochs.
FAST = [
    "ensemble.n_members=4",
    "ensemble.epochs=3",
    "undefended.epochs=3",
    "logger=none",
]
# ... and a small SGA budget, for the SGA options (sga, sga_joint, released: the keys only they have)
FAST_SGA = ["sigma_optimiser.iterations=5", "sigma_optimiser.n_draws=8"]


def compose_cfg(overrides: list[str], config_dir: str = CONF_DIR, config_name: str = "config"):
    """Compose the real config (no Hydra runtime); clears Hydra's global state afterwards."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            return compose(config_name=config_name, overrides=overrides)
    finally:
        GlobalHydra.instance().clear()


def fast_cfg(overrides: list[str]):
    """The real config with the small settings of ``FAST`` (and ``FAST_SGA`` when the composed
    sigma optimiser runs SGA) under ``overrides`` (which win)."""
    cfg = compose_cfg([*FAST, *overrides])
    if "n_draws" in cfg.sigma_optimiser:
        given = {o.split("=", 1)[0] for o in overrides}
        cfg = compose_cfg([*FAST, *(o for o in FAST_SGA if o.split("=", 1)[0] not in given), *overrides])
    return cfg


def model_option(name: str, **kw):
    """The model option's settings from its yaml, with the ``kw`` that this option has."""
    import dataclasses

    from certssb.config import load_option

    known = {f.name for f in dataclasses.fields(load_option("model", name))}
    return load_option("model", name, **{k: v for k, v in kw.items() if k in known})


def ensemble_settings(**kw):
    """The ``ensemble=gaussian`` settings from its yaml with ``kw`` applied (typed, as a run parses them)."""
    from certssb.config import load_option

    return load_option("ensemble", "gaussian", **kw)


def sigma_settings(name: str = "sga", **kw):
    """A ``sigma_optimiser`` option's settings from its yaml with ``kw`` applied, checked (SGA-type
    options get ``device=cpu`` unless given)."""
    from certssb.config import load_option

    if name in ("sga", "sga_joint", "sga_light", "sga_long", "released"):
        kw.setdefault("device", "cpu")
    settings = load_option("sigma_optimiser", name, **kw)
    settings.check(None)
    return settings


@pytest.fixture
def run_pipeline():
    """Run the pipeline for overrides into a directory; returns the summary."""
    from certssb import pipeline

    def _run(out_dir: Path, overrides: list[str]) -> dict:
        return pipeline.run(fast_cfg(overrides), output_dir=out_dir, progress=False)

    return _run


@pytest.fixture
def float64():
    """torch's default dtype float64 for the test (restored afterwards): exact comparisons of code
    paths whose float32 results differ only by rounding."""
    import torch

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


TEST_THREADS = int(os.environ.get("CERTSSB_TEST_THREADS", "1"))


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The tests use small models: one intra-op thread is faster and robust on a loaded CPU.

    ``CERTSSB_TEST_THREADS=2`` runs them with two threads instead (the numerics must hold with
    either count; CI checks both)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(TEST_THREADS)
    yield
    torch.set_num_threads(before)


def flip_tensor_byte(path: Path) -> None:
    """Flip one bit inside the data of the largest tensor of a ``torch.save`` file, in place.

    The file still loads (the zip entries are stored uncompressed and torch does not check their
    CRC), so only a checksum of the tensors can tell.
    """
    import struct
    import zipfile

    with zipfile.ZipFile(path) as archive:
        entry = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = bytearray(Path(path).read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[entry.header_offset + 26: entry.header_offset + 30])
    start = entry.header_offset + 30 + name_len + extra_len  # the entry's data follows its local header
    raw[start + entry.file_size // 2] ^= 0x04
    Path(path).write_bytes(bytes(raw))
