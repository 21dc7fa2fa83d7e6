"""Progress bars only on a terminal; plain log lines (no carriage returns) anywhere else."""

from __future__ import annotations

import io
import logging
import subprocess
import sys


from certssb import progress
from certssb.progress import LogProgress, progress_bar
from conftest import REPO


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_log_lines_when_not_a_terminal(caplog, capsys):
    with caplog.at_level(logging.INFO, logger="certssb"):
        bar = progress_bar(total=20, desc="train members", unit="member")
        assert isinstance(bar, LogProgress)
        for _ in range(20):
            bar.update(1)
        bar.close()
        assert list(progress_bar(range(5), desc="loop")) == [0, 1, 2, 3, 4]
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("train members")]
    assert lines[-1] == "train members: 20/20 member" and len(lines) == 10  # one per tenth


def test_disabled_is_silent(caplog):
    with caplog.at_level(logging.INFO, logger="certssb"):
        bar = progress_bar(total=3, desc="quiet", enabled=False)
        bar.update(3)
    assert "quiet" not in caplog.text


def test_tqdm_on_a_terminal(monkeypatch):
    term = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", term)
    bar = progress_bar(total=4, desc="train members", unit="member")
    assert not isinstance(bar, LogProgress)
    bar.update(4)
    bar.close()
    assert "\r" in term.getvalue()  # what a terminal gets: tqdm's redrawn line
    assert progress.on_terminal(term) and not progress.on_terminal(io.StringIO())


def test_sga_progress_in_a_non_terminal_log_has_no_carriage_returns():
    """The case of the report: SGA's bar in a redirected log (a real child process, stderr a pipe)."""
    code = (
        "import logging, sys, torch\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stderr)\n"
        "from certssb.sigma_optimiser import optimise_sigmas\n"
        "net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))\n"
        "from certssb.config import load_option\n"
        "cfg = load_option('sigma_optimiser', 'sga', device='cpu', n_draws=4, iterations=2, batch_size=2)\n"
        "optimise_sigmas(cfg, net, torch.rand(6, 1, 4, 4), 0, 'train', progress=True)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "\r" not in proc.stderr
    assert "sigma[sga] train: 3/3 batch" in proc.stderr
