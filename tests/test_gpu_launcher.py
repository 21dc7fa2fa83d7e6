"""The ``certssb_gpu`` Hydra launcher: slot pool (fake GPUs) and real multiruns (subprocess)."""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hydra_plugins.certssb_gpu_launcher.slots import (
    Slot,
    SlotPool,
    discover_gpus,
    parse_cuda_visible_devices,
    slot_environment,
    slot_executor_parameters,
)

REPO = Path(__file__).resolve().parents[1]


def _no_torch():
    return None


def _no_smi():
    return None


# --------------------------------------------------------------------------- GPU discovery
@pytest.mark.parametrize(
    "value, expected",
    [
        ("", []),
        ("-1", []),
        ("0", [0]),
        ("0,2", [0, 2]),
        (" 3 , 1 ", [3, 1]),
        ("1,-1,2", [1]),
        ("GPU-aaaa,GPU-bbbb", ["GPU-aaaa", "GPU-bbbb"]),
        ("MIG-1234", ["MIG-1234"]),
    ],
)
def test_parse_cuda_visible_devices(value, expected):
    assert parse_cuda_visible_devices(value) == expected


def test_discover_respects_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    # torch / nvidia-smi must not be consulted when the variable is set
    boom = lambda: pytest.fail("should not count GPUs")  # noqa: E731
    assert discover_gpus(None, torch_count=boom, smi_count=boom) == ([2, 3], "CUDA_VISIBLE_DEVICES")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert discover_gpus(None, torch_count=boom, smi_count=boom)[0] == []


def test_discover_explicit_list_wins(monkeypatch, caplog):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    with caplog.at_level(logging.WARNING):
        assert discover_gpus([0, 2])[0] == [0, 2]
    assert "does not" in caplog.text  # 0 is outside CUDA_VISIBLE_DEVICES: warned, used as given
    assert discover_gpus(["1", "GPU-x"], environ={})[0] == [1, "GPU-x"]
    assert discover_gpus([], environ={})[0] == []  # [] forces CPU
    with pytest.raises(ValueError):
        discover_gpus([0, 0], environ={})


def test_discover_fallbacks_torch_then_nvidia_smi():
    assert discover_gpus(None, environ={}, torch_count=lambda: 3, smi_count=_no_smi) == (
        [0, 1, 2],
        "torch.cuda.device_count()",
    )
    assert discover_gpus(None, environ={}, torch_count=lambda: 0, smi_count=lambda: 2)[0] == [0, 1]
    assert discover_gpus(None, environ={}, torch_count=_no_torch, smi_count=lambda: 1)[0] == [0]
    assert discover_gpus(None, environ={}, torch_count=_no_torch, smi_count=_no_smi)[0] == []


# --------------------------------------------------------------------------- slot pool
def test_pool_one_job_per_gpu():
    pool = SlotPool([0, 1, 2])
    slots = [pool.acquire() for _ in range(3)]
    assert sorted(s.gpus for s in slots) == [(0,), (1,), (2,)]
    assert pool.acquire() is None and not pool.has_free()
    pool.release(slots[1])
    again = pool.acquire()
    assert again.gpus == slots[1].gpus  # the freed GPU, and only that one
    assert pool.acquire() is None
    with pytest.raises(ValueError):
        pool.release(Slot(group=0, index=5, gpus=(0,)))


def test_pool_jobs_per_gpu_spreads_then_shares():
    pool = SlotPool(["GPU-a", "GPU-b"], jobs_per_gpu=2)
    assert pool.capacity == 4
    first, second = pool.acquire(), pool.acquire()
    assert {first.gpus, second.gpus} == {("GPU-a",), ("GPU-b",)}  # spread before sharing
    third, fourth = pool.acquire(), pool.acquire()
    assert pool.acquire() is None
    assert pool.load() == {"GPU-a": 2, "GPU-b": 2}


def test_pool_max_parallel_and_gpus_per_job(caplog):
    pool = SlotPool([0, 1, 2, 3], max_parallel=3)
    assert [pool.acquire() is not None for _ in range(4)] == [True, True, True, False]
    with caplog.at_level(logging.WARNING):
        pool = SlotPool([0, 1, 2, 3, 4], gpus_per_job=2)
    assert "left unused" in caplog.text
    a, b = pool.acquire(), pool.acquire()
    assert {a.gpus, b.gpus} == {(0, 1), (2, 3)} and pool.acquire() is None
    with pytest.raises(ValueError):
        SlotPool([0], gpus_per_job=2)
    with pytest.raises(ValueError):
        SlotPool([0], jobs_per_gpu=0)


def test_pool_cpu_mode():
    pool = SlotPool([])
    assert pool.capacity == 1
    slot = pool.acquire()
    assert slot.is_cpu and pool.acquire() is None
    assert slot_environment(slot) == {"CUDA_VISIBLE_DEVICES": ""}
    pool = SlotPool([], max_parallel=3)
    assert len([pool.acquire() for _ in range(3)]) == 3 and pool.acquire() is None


@pytest.mark.parametrize("gpus, jobs_per_gpu, max_parallel", [([0, 1, 2], 1, None), ([4, 7], 2, 3), ([5], 3, None)])
def test_pool_random_schedule_never_oversubscribes(gpus, jobs_per_gpu, max_parallel):
    rng = random.Random(0)
    pool = SlotPool(gpus, jobs_per_gpu=jobs_per_gpu, max_parallel=max_parallel)
    cap = len(gpus) * jobs_per_gpu if max_parallel is None else max_parallel
    running: list = []
    for _ in range(2000):
        if running and (rng.random() < 0.45 or not pool.has_free()):
            pool.release(running.pop(rng.randrange(len(running))))
        else:
            slot = pool.acquire()
            if slot is not None:
                running.append(slot)
        per_gpu = {}
        for s in running:
            for g in s.gpus:
                per_gpu[g] = per_gpu.get(g, 0) + 1
        assert all(n <= jobs_per_gpu for n in per_gpu.values())
        assert len(running) <= cap
        assert len(set(running)) == len(running)
    assert pool.n_busy == len(running)


def test_slot_executor_parameters():
    p = slot_executor_parameters(Slot(0, 0, (3,)))
    assert p["visible_gpus"] == (3,) and p["gpus_per_node"] == 1 and p["setup"] == []
    p = slot_executor_parameters(Slot(0, 0, ()), setup=["true"])
    assert p["gpus_per_node"] == 0 and p["visible_gpus"] == () and p["setup"] == ["true"]
    p = slot_executor_parameters(Slot(0, 0, ("GPU-ab",)))  # submitit takes only ints
    assert p["gpus_per_node"] == 0 and p["setup"] == ["export CUDA_VISIBLE_DEVICES=GPU-ab"]


def test_local_executor_sets_cuda_visible_devices(tmp_path, monkeypatch):
    """submitit's LocalExecutor turns our parameters into exactly the slot's CUDA_VISIBLE_DEVICES."""
    from submitit.local import local

    seen = []

    def fake_start_controller(**kwargs):
        seen.append(kwargs["cuda_devices"])
        raise RuntimeError("stop here")

    monkeypatch.setattr(local, "start_controller", fake_start_controller)
    ex = local.LocalExecutor(folder=tmp_path / "%j")
    for slot in [Slot(0, 0, (2,)), Slot(0, 0, (0, 3)), Slot(0, 0, ())]:
        ex.update_parameters(**slot_executor_parameters(slot))
        with pytest.raises(RuntimeError, match="stop here"):
            ex._submit_command("true")
    assert seen == ["2", "0,3", ""]


def test_config_registered():
    from hydra.core.config_store import ConfigStore
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    import hydra_plugins.certssb_gpu_launcher.config  # noqa: F401

    node = ConfigStore.instance().load("hydra/launcher/certssb_gpu.yaml").node
    cls = get_class(node._target_)
    assert cls.__name__ == "CertSSBGPULauncher"
    assert node.jobs_per_gpu == 1 and node.gpus is None and node.max_parallel is None
    assert OmegaConf.to_container(node)["submitit_folder"] == "${hydra.sweep.dir}/.submitit/%j"

    params = {k: v for k, v in OmegaConf.to_container(node, resolve=False).items() if k != "_target_"}
    launcher = cls(**params | {"gpus": [1, 3], "jobs_per_gpu": 2, "submitit_folder": "unused"})
    pool, source = launcher.make_pool()
    assert pool.gpus == (1, 3) and pool.capacity == 4 and source == "hydra.launcher.gpus"


# --------------------------------------------------------------------------- real multiruns
APP = textwrap.dedent(
    """
    import json, os, time
    import hydra
    from omegaconf import DictConfig

    @hydra.main(version_base="1.3", config_path=None, config_name=None)
    def main(cfg: DictConfig) -> None:
        start = time.time()
        if cfg.x == cfg.get("fail", -1):
            raise RuntimeError(f"job {cfg.x} fails on purpose")
        if cfg.x == cfg.get("crash", -1):
            os._exit(3)  # dies without a result: like an OOM kill
        time.sleep(cfg.get("sleep", 0.5))
        rec = {"x": cfg.x, "pid": os.getpid(), "cvd": os.environ.get("CUDA_VISIBLE_DEVICES"),
               "share": os.environ.get("CERTSSB_JOBS_PER_GPU"),
               "start": start, "end": time.time()}
        with open(os.path.join(cfg.out, f"job_{cfg.x}.json"), "w") as f:
            json.dump(rec, f)

    if __name__ == "__main__":
        main()
    """
)


def _run_app(tmp_path: Path, *overrides: str) -> tuple[subprocess.Popen, str, list[dict]]:
    app = tmp_path / "app.py"
    app.write_text(APP)
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    # find the plugin in this checkout whether or not (and however) certssb is pip-installed
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    cmd = [
        sys.executable,
        str(app),
        "-m",
        f"+out={out}",
        "hydra/launcher=certssb_gpu",
        "hydra.launcher.poll_interval_s=0.05",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        *overrides,
    ]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log, _ = proc.communicate(timeout=120)
    records = [json.loads(p.read_text()) for p in sorted(out.glob("job_*.json"))]
    return proc, log, records


def _max_concurrency(records: list[dict]) -> int:
    events = sorted([(r["start"], 1) for r in records] + [(r["end"], -1) for r in records], key=lambda e: (e[0], e[1]))
    now = peak = 0
    for _, d in events:
        now += d
        peak = max(peak, now)
    return peak


def test_multirun_pins_each_job_to_a_free_gpu(tmp_path):
    proc, log, records = _run_app(tmp_path, "+x=1,2,3,4", "hydra.launcher.gpus=[0,1]")
    assert proc.returncode == 0, log
    assert sorted(r["x"] for r in records) == [1, 2, 3, 4]  # all completed
    pids = [r["pid"] for r in records]
    assert len(set(pids)) == 4 and proc.pid not in pids and os.getpid() not in pids  # fresh processes
    for r in records:
        assert r["cvd"] in {"0", "1"}  # exactly one GPU id each
        assert r["share"] == "1"  # jobs size their groups for their share of the GPU
    for a, b in itertools.combinations(records, 2):
        if a["start"] < b["end"] and b["start"] < a["end"]:  # overlapping in time
            assert a["cvd"] != b["cvd"], (a, b)
    assert _max_concurrency(records) <= 2
    assert {r["cvd"] for r in records} == {"0", "1"}  # both GPUs were used
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.name.isdigit()) == ["0", "1", "2", "3"]
    assert "certssb_gpu: GPUs [0, 1]" in log


def test_failing_jobs_do_not_stop_the_others_cpu_mode(tmp_path):
    proc, log, records = _run_app(
        tmp_path, "+x=1,2,3,4", "+fail=2", "+crash=3", "hydra.launcher.gpus=[]", "hydra.launcher.max_parallel=3"
    )
    assert proc.returncode == 1, log  # Hydra reports the failure at the end
    assert sorted(r["x"] for r in records) == [1, 4]  # the others ran to the end
    assert all(r["cvd"] == "" for r in records)  # CPU mode hides all GPUs
    assert "fails on purpose" in log


# --------------------------------------------------------------------------- MIG and gpus_per_job
DATA = Path(__file__).resolve().parent / "data"


def _listing(name):
    return (DATA / name).read_text()


def test_parse_nvidia_smi_listings():
    from hydra_plugins.certssb_gpu_launcher.slots import mig_devices, parse_nvidia_smi_listing

    mig = parse_nvidia_smi_listing(_listing("nvidia_smi_L_mig.txt"))
    assert [i for i, _ in mig] == [0, 1] and [len(m) for _, m in mig] == [3, 1]
    assert mig[0][1][0] == "MIG-2c5e0f4b-7d1a-5e3c-9b8a-0f1e2d3c4b5a"
    assert len(mig_devices(_listing("nvidia_smi_L_mig.txt"))) == 4
    old = mig_devices(_listing("nvidia_smi_L_mig_r450.txt"))  # older driver format; GPU 1 without MIG
    assert old == ["MIG-GPU-e91edf3b-b297-37c1-a2a7-7601c3238fa2/1/0",
                   "MIG-GPU-e91edf3b-b297-37c1-a2a7-7601c3238fa2/2/0", 1]
    assert mig_devices(_listing("nvidia_smi_L_plain.txt")) == [] and mig_devices(None) == []
    assert [i for i, m in parse_nvidia_smi_listing(_listing("nvidia_smi_L_plain.txt"))] == [0, 1]


def test_discover_counts_mig_devices_as_slots():
    listing = _listing("nvidia_smi_L_mig.txt")
    gpus, source = discover_gpus(None, environ={}, torch_count=lambda: 1, smi_count=_no_smi,
                                 smi_listing=lambda: listing)
    assert len(gpus) == 4 and all(g.startswith("MIG-") for g in gpus) and "MIG" in source
    pool = SlotPool(gpus)
    assert pool.capacity == 4
    # without MIG the torch count is used as before
    plain = _listing("nvidia_smi_L_plain.txt")
    assert discover_gpus(None, environ={}, torch_count=lambda: 2, smi_count=_no_smi,
                         smi_listing=lambda: plain) == ([0, 1], "torch.cuda.device_count()")
    # CUDA_VISIBLE_DEVICES still wins
    assert discover_gpus(None, environ={"CUDA_VISIBLE_DEVICES": "MIG-a"}, smi_listing=lambda: listing)[0] == ["MIG-a"]


def test_gpus_per_job_on_mig_is_rejected():
    with pytest.raises(ValueError, match="cannot be honoured on MIG"):
        SlotPool(["MIG-a", "MIG-b"], gpus_per_job=2)
    assert SlotPool(["MIG-a", "MIG-b"]).capacity == 2
    assert SlotPool([0, 1], gpus_per_job=2).capacity == 1  # whole GPUs: honoured


def test_multirun_rejects_gpus_per_job_on_mig_in_one_line(tmp_path):
    proc, log, records = _run_app(tmp_path, "+x=1,2", "hydra.launcher.gpus=[MIG-a,MIG-b]",
                                  "hydra.launcher.gpus_per_job=2")
    assert proc.returncode == 2, log
    assert records == []
    assert [line for line in log.splitlines() if line.startswith("error:")] == [
        "error: hydra.launcher: gpus_per_job=2 cannot be honoured on MIG devices: a CUDA process uses only one "
        "MIG device; use gpus_per_job=1 (each MIG device is a slot)"]
    assert "Traceback" not in log
