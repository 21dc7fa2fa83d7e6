"""Corrupt or partial state is detected (one log or error line) and recomputed exactly.

One uninterrupted run is the reference; each test copies its folder, damages one thing, reruns
and compares certificates.csv with the reference. Same code path, same seeds: the rerun
recomputes exactly what was bad, so equality (not closeness) is the right check here.
"""

from __future__ import annotations

import json
import logging
import os
import shutil

import pandas as pd
import pytest

from certssb import pipeline
from certssb.sigma_optimiser import cache as sigma_cache
from certssb.errors import CertSSBError
from conftest import compose_cfg, fast_cfg, flip_tensor_byte

OVERRIDES = ["sigma_optimiser=sga", "undefended.enabled=false", "ensemble.vectorise=false",
             "dataset.classes=[0,1]"]


def _run(out, *extra):
    return pipeline.run(fast_cfg([*OVERRIDES, *extra]), output_dir=out, progress=False)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "run"
    summary = _run(out)
    assert summary["status"] == "complete" and summary["members"]["trained_now"] == 4
    return out


def _copy(reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    return run


def _members(run):
    return sorted(run.glob("members/*/member_*.pt"))


def _same_certificates(run, reference):
    a = pd.read_csv(reference / "certificates.csv")
    b = pd.read_csv(run / "certificates.csv")
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def _one_line(caplog, text):
    lines = [r.getMessage() for r in caplog.records if text in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0], [r.getMessage() for r in caplog.records]


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "garbage", "flipped", "other_member", "other_config"])
def test_bad_member_checkpoint_is_retrained(reference, tmp_path, caplog, damage):
    run = _copy(reference, tmp_path)
    files = _members(run)
    assert len(files) == 4
    bad = files[2]
    if damage == "truncated":
        bad.write_bytes(bad.read_bytes()[:500])
    elif damage == "garbage":
        bad.write_bytes(os.urandom(2000))
    elif damage == "flipped":  # one bit of a weight changed on disk: the file still loads
        flip_tensor_byte(bad)
    elif damage == "other_member":
        shutil.copy(files[0], bad)  # a sound file of member 0 under member 2's name
    else:  # a sound checkpoint of another configuration (other seed)
        other = tmp_path / "other"
        _run(other, "seed=1", "ensemble.n_members=1", "sigma_optimiser=fixed")
        shutil.copy(_members(other)[0], bad)
    with caplog.at_level(logging.WARNING, logger="certssb"):
        summary = _run(run, "force=true")
    assert summary["members"]["trained_now"] == 1  # exactly the bad member
    _one_line(caplog, {"truncated": "unreadable checkpoint", "garbage": "unreadable checkpoint",
                       "flipped": "fails its checksum"}.get(damage, "mismatched members"))
    _same_certificates(run, reference)


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong_length"])
def test_corrupt_sigma_cache_is_recomputed(reference, tmp_path, caplog, damage):
    run = _copy(reference, tmp_path)
    (cache,) = run.glob("members/sigmas-*.npz")
    if damage == "garbage":
        cache.write_bytes(b"\x00" * 100)
    elif damage == "truncated":
        cache.write_bytes(cache.read_bytes()[:-200])
    else:
        import numpy as np

        with np.load(cache) as d:
            arrays = {k: d[k] for k in d.files}
        arrays["train"] = arrays["train"][:-1]
        np.savez(cache, **arrays)
    with caplog.at_level(logging.WARNING, logger="certssb"):
        summary = _run(run, "force=true")
    _one_line(caplog, "sigma cache")
    assert summary["members"]["trained_now"] == 0  # same sigmas again: the members are reused
    _same_certificates(run, reference)
    assert sigma_cache.load_sigmas(cache, *_fp_and_lengths(cache)) is not None  # rewritten


def _fp_and_lengths(cache):
    import numpy as np

    with np.load(cache) as d:
        return str(d["fingerprint"]), {k: len(d[k]) for k in ("train", "test_clean", "test_triggered")}


@pytest.mark.slow
def test_half_written_summary_reruns_the_job(reference, tmp_path, caplog):
    run = _copy(reference, tmp_path)
    text = (run / "summary.json").read_text()
    (run / "summary.json").write_text(text[: len(text) // 2])
    (run / "certificates.csv").unlink()
    with caplog.at_level(logging.WARNING, logger="certssb"):
        summary = _run(run)  # no force: an unreadable summary is not a complete run
    _one_line(caplog, "summary.json is unreadable")
    assert summary["status"] == "complete" and summary["members"]["trained_now"] == 0
    assert json.loads((run / "summary.json").read_text())["status"] == "complete"
    _same_certificates(run, reference)


@pytest.mark.slow
def test_running_marker_is_not_a_complete_run(reference, tmp_path):
    run = _copy(reference, tmp_path)
    (run / "summary.json").write_text(json.dumps({"status": "running"}))  # a killed run
    summary = _run(run)
    assert summary["status"] == "complete" and summary["members"]["trained_now"] == 0
    _same_certificates(run, reference)


def test_read_only_output_dir_is_one_error_line(tmp_path, monkeypatch):
    out = tmp_path / "ro"
    out.mkdir()
    if os.geteuid() == 0:  # root writes anywhere: make the write probe fail as it would for a user
        import certssb.run_record as record

        def denied(*a, **k):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(record.tempfile, "mkstemp", denied)
    else:
        out.chmod(0o555)
    try:
        with pytest.raises(CertSSBError, match="not writable") as err:
            _run(out)
        assert "\n" not in str(err.value) and "Permission denied" in str(err.value)
    finally:
        out.chmod(0o755)
    assert not (out / "summary.json").exists()


def test_output_dir_under_a_file_is_one_error_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CertSSBError, match="not writable"):
        _run(blocker / "run")


@pytest.mark.slow
@pytest.mark.parametrize("args", [["hydra.run.dir={d}/run"], ["-m", "seed=0,1", "hydra.sweep.dir={d}/sweep"]])
def test_cli_unwritable_output_dir_is_one_line_exit_2(tmp_path, args):
    import subprocess
    import sys

    from conftest import REPO

    if os.geteuid() == 0:  # root writes into read-only folders: block the path with a file instead
        blocked = tmp_path / "file"
        blocked.write_text("x")
    else:
        blocked = tmp_path / "ro"
        blocked.mkdir()
        blocked.chmod(0o555)
    proc = subprocess.run([sys.executable, "-m", "certssb.run", *[a.format(d=blocked) for a in args]], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "disabled"},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: output directory "), proc.stderr[-2000:]
