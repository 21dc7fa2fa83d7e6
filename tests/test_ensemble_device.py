"""Device resolution: unusable CUDA is a one-line error, auto's fallback warns once, the report."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import certssb.ensemble.device as device_mod
from certssb.ensemble import device_report, resolve_device
from certssb.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without CUDA")


@no_cuda
def test_named_cuda_without_cuda_is_a_config_error():
    with pytest.raises(ConfigError, match=r"^ensemble\.device=cuda requested but CUDA is not available") as info:
        resolve_device("cuda")
    assert len(str(info.value).splitlines()) == 1
    with pytest.raises(ConfigError):
        resolve_device("cuda:1")


@no_cuda
@pytest.mark.parametrize("visible, warns", [("0", True), ("MIG-1234", True), ("", False), ("-1", False),
                                            (None, False)])
def test_auto_fallback_warns_once_when_handed_a_gpu(monkeypatch, capsys, visible, warns):
    monkeypatch.setattr(device_mod, "_warned", False)
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert resolve_device("auto").type == "cpu"
    assert resolve_device(None).type == "cpu"
    err = capsys.readouterr().err.strip().splitlines()
    if warns:
        assert len(err) == 1 and err[0].startswith("warning: device=auto runs on the CPU") and visible in err[0]
    else:
        assert err == []


def test_device_report_fields():
    rep = device_report(torch.device("cpu"), "fp32", True)
    assert rep["type"] == "cpu" and rep["name"].startswith("cpu (") and rep["precision"] == "fp32"
    assert rep["torch"] == torch.__version__ and rep["cuda"] == torch.version.cuda and rep["deterministic"] is True


@no_cuda
def test_cli_device_cuda_without_cuda_exits_2_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "certssb.run", "ensemble.device=cuda", "logger=none",
                           f"hydra.run.dir={tmp_path}/run"], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "WANDB_MODE": "disabled"})
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ensemble.device=cuda requested but") and "Traceback" not in proc.stderr


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_device_report_on_cuda():
    rep = device_report(resolve_device("cuda"), "bf16")
    assert rep["type"] == "cuda" and rep["name"] == torch.cuda.get_device_name(0) and rep["cuda"]
