"""``python -m certssb.tools.falsify``: the options of both checks, ``--family`` choosing which."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from certssb.errors import CertSSBError, ConfigError

from .config import COUNT_ENSEMBLES, DEFAULT_POWER_COUNTS, SIGMA_RULES, CountFalsifyConfig, FalsifyConfig
from .count_report import run_count_falsification
from .gaussian_report import run_falsification

__all__ = ["build_parser", "main", "parse"]

#: options that only one family reads (argparse dest -> family)
GAUSSIAN_ONLY = ("sigma", "sigma_0", "objective", "floor", "test_sigmas", "sigma_trains", "sga_iterations", "k_poison",
                 "inputs_per_delta", "train_share", "power_scales", "test_attack", "pgd_steps")
COUNT_ONLY = ("ensemble", "certifier", "parts", "spread", "bag_size", "alpha", "power_counts", "batch_size")


def _gaussian_options(p: argparse.ArgumentParser) -> None:
    d = FalsifyConfig()
    g = p.add_argument_group("--family gaussian (RAB, Cert-SSB and the sound designs)")
    g.add_argument("--sigma", choices=SIGMA_RULES, default=None,
                   help="sga (Cert-SSB, default), fixed (RAB), grid (train at --sigma-0, test sigma from "
                        "--test-sigmas) or grid_ensembles (one ensemble per --sigma-trains value)")
    g.add_argument("--sigma-0", type=float, default=None,
                   help=f"sga: SGA's start and the surrogate's noise; fixed: the one sigma; grid: the training sigma "
                        f"(default {d.sigma_0})")
    g.add_argument("--objective", choices=("paper", "joint"), default=None,
                   help="sga objective: paper (sigma_x G/2, default) or joint (min(sigma_x, floor) G/2; needs --floor)")
    g.add_argument("--floor", type=float, default=None, help="sga: training sigmas >= floor, certified with it")
    g.add_argument("--test-sigmas", type=float, nargs="+", default=None,
                   help="grid: candidate test sigmas, each <= --sigma-0 (default 0.25 0.35 0.5); grid_ensembles: "
                        "each ensemble at every listed sigma <= its training sigma (default: at its own)")
    g.add_argument("--sigma-trains", type=float, nargs="+", default=None,
                   help="grid_ensembles: one ensemble per training sigma "
                        f"(default {' '.join(map(str, d.sigma_trains))})")
    g.add_argument("--sga-iterations", type=int, default=None,
                   help=f"sga: gradient-ascent steps on the sigmas (default {d.sga_iterations})")
    g.add_argument("--k-poison", type=int, default=None,
                   help=f"poisoned training samples per Delta (default {d.k_poison})")
    g.add_argument("--inputs-per-delta", type=int, default=None,
                   help="test inputs served by one training perturbation Delta (1, default: one retrain per attack)")
    g.add_argument("--train-share", type=float, default=None,
                   help="||Delta|| as a share of the smallest joint budget of its inputs "
                        f"(default {d.train_share:.3f})")
    g.add_argument("--power-scales", type=float, nargs="*", default=None,
                   help=f"attack sizes as multiples of R_joint for the power check (default "
                        f"{' '.join(f'{s:g}' for s in d.power_scales)})")
    g.add_argument("--test-attack", choices=("path", "pgd"), default=None,
                   help="test perturbation: path towards the target class, or that refined by PGD (default)")
    g.add_argument("--pgd-steps", type=int, default=None,
                   help=f"--test-attack pgd: L2 PGD steps against the retrained ensemble (default {d.pgd_steps})")


def _count_options(p: argparse.ArgumentParser) -> None:
    d = CountFalsifyConfig()
    g = p.add_argument_group("--family count (DPA, Finite Aggregation, run-off election, bagging)")
    g.add_argument("--ensemble", choices=COUNT_ENSEMBLES, default=None,
                   help="partition (DPA, key index, certifier dpa; default), finite_aggregation (key index, "
                        "certifier fa) or bagging (certifier bagging)")
    g.add_argument("--certifier", choices=("dpa", "fa", "roe"), default=None,
                   help="the ensemble's own (partition: dpa, finite_aggregation: fa; default) or roe (run-off "
                        "election on the same models: its prediction and certificate, the same attack)")
    g.add_argument("--parts", type=int, default=None,
                   help=f"partition: models, one per part; finite_aggregation: parts x spread buckets (default {d.parts})")
    g.add_argument("--spread", type=int, default=None,
                   help=f"finite_aggregation: buckets per model and models per bucket (default {d.spread})")
    g.add_argument("--bag-size", type=int, default=None, help=f"bagging: samples per bag (default {d.bag_size})")
    g.add_argument("--alpha", type=float, default=None,
                   help=f"bagging: the certificate holds with probability 1 - alpha (default {d.alpha})")
    g.add_argument("--batch-size", type=int, default=None, help=f"training batch size (default {d.batch_size})")
    g.add_argument("--power-counts", nargs="+", default=None,
                   help="changed samples k of the power check as a*c+b of each input's certificate c (default: "
                        + "; ".join(f"{e}: {' '.join(c)}" for e, c in DEFAULT_POWER_COUNTS.items()) + ")")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m certssb.tools.falsify",
        description=("Try to break the certificates. --family gaussian (default): real clean-label poisoning plus a "
                     "test perturbation of half the certified joint radius, the members retrained with the same "
                     "seeds and sigmas; --family count: k <= c training samples changed (features and labels) in the "
                     "models that voted for the prediction, those models retrained with the same seeds. Counts the "
                     "predictions that flip (expected: none); then a power check beyond the certificate, where "
                     "flips must appear. Writes OUT/falsify.json and prints one summary line. "
                     "Example: python -m certssb.tools.falsify --members 50 --attacks 10 --sigma grid; "
                     "python -m certssb.tools.falsify --family count --parts 30 --attacks 12"))
    p.add_argument("--family", choices=("gaussian", "count"), default="gaussian",
                   help="gaussian: RAB/Cert-SSB (L2 radius, labels held); count: DPA, FA, run-off election or bagging (any k samples)")
    p.add_argument("--members", type=int, default=None,
                   help="gaussian: ensemble size N (default 100); count: bagging's models (default 100)")
    p.add_argument("--attacks", type=int, default=None,
                   help="gaussian: (Delta, x) pairs per scale, at most (default 24); "
                        "count: attacked inputs (default 16)")
    p.add_argument("--out", type=Path, default=Path("falsify-out"), help="output directory")
    p.add_argument("--seed", type=int, default=0,
                   help="run seed: the data split, member seeds and noise, the attacked inputs (default 0)")
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs of every model (gaussian: and of the SGA surrogate; default 8; count: 60)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)")
    p.add_argument("--progress", action="store_true", help="show training progress (bars on a terminal)")
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="keep every retrained ensemble under OUT/work (about 2.6 MB per retrain at N=100)")
    _gaussian_options(p)
    _count_options(p)
    return p


def _given(a: argparse.Namespace, names) -> dict:
    return {k: getattr(a, k) for k in names if getattr(a, k) is not None}


def _gaussian_config(a: argparse.Namespace) -> FalsifyConfig:
    d = FalsifyConfig()
    kw = {**_given(a, ("members", "attacks", "epochs")), **_given(a, GAUSSIAN_ONLY)}
    sigma = kw.get("sigma", d.sigma)
    if "test_sigmas" not in kw:
        kw["test_sigmas"] = None if sigma == "grid_ensembles" else d.test_sigmas
    for key in ("test_sigmas", "sigma_trains", "power_scales"):
        if kw.get(key) is not None:
            kw[key] = tuple(kw[key])
    epochs = kw.get("epochs", d.epochs)
    return FalsifyConfig(**kw, surrogate_epochs=epochs, seed=a.seed, keep_checkpoints=a.keep_checkpoints,
                         threads=a.threads, progress=a.progress)


def _count_config(a: argparse.Namespace) -> CountFalsifyConfig:
    kw = {**_given(a, ("members", "attacks", "epochs")), **_given(a, COUNT_ONLY)}
    if "power_counts" in kw:
        kw["power_counts"] = tuple(kw["power_counts"])
    return CountFalsifyConfig(**kw, seed=a.seed, keep_checkpoints=a.keep_checkpoints, threads=a.threads,
                              progress=a.progress)


def parse(argv) -> tuple[FalsifyConfig | CountFalsifyConfig, Path]:
    """The check's settings and the output folder; an option of the other family is a ConfigError."""
    a = build_parser().parse_args(argv)
    other = COUNT_ONLY if a.family == "gaussian" else GAUSSIAN_ONLY
    wrong = [k for k in other if getattr(a, k) is not None]
    if wrong:
        flags = ", ".join("--" + k.replace("_", "-") for k in wrong)
        other_family = "count" if a.family == "gaussian" else "gaussian"
        verb = "applies" if len(wrong) == 1 else "apply"
        raise ConfigError(f"{flags} {verb} to --family {other_family} only, not to --family {a.family}")
    return (_gaussian_config(a) if a.family == "gaussian" else _count_config(a)), a.out


def _print_gaussian(report: dict) -> None:
    c = report["clean"]
    print(f"clean accuracy {c['accuracy']:.3f}, certified {c['certified_fraction']:.3f}, "
          f"R_joint median {c['r_joint_median']:.3f} (min {c['r_joint_min']:.3f}), "
          f"sigma_train_min {report['sigma']['train_min']:.3f}; control retrain identical: "
          f"{report['control_votes_identical']}")
    for p in report["power"]:
        print(f"  power {p['scale']:g}x R: tried={p['tried']} flipped={p['flipped']}")


def _print_count(report: dict) -> None:
    c = report["clean"]
    print(f"{report['defence']}: {c['n_models']} models, clean accuracy {c['accuracy']:.3f}, certified (k >= 1) "
          f"{c['certified_fraction']:.3f}, certificate median {c['certificate_median']} (max {c['certificate_max']}); "
          f"control retrain identical: {report['control_votes_identical']}")
    for s in [report["within"]] + report["power"]:
        extra = (f", expected flips at most {s['expected_flips_at_most']:.3g}"
                 if "expected_flips_at_most" in s else "")
        print(f"  k = {s['counts']}: tried={s['tried']} flipped={s['flipped']}{extra}")


def main(argv=None) -> int:
    try:
        cfg, out = parse(argv)
        if isinstance(cfg, CountFalsifyConfig):
            report = run_count_falsification(cfg, out)
        else:
            report = run_falsification(cfg, out)
    except CertSSBError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    (_print_count if report["family"] == "count" else _print_gaussian)(report)
    print(f"report: {Path(out) / 'falsify.json'} ({report['timings']['total']:.1f} s)")
    print(report["summary"])
    return 0
