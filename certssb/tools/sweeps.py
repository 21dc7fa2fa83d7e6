"""List the sweep files with what they sweep and how many jobs they make.

    python -m certssb.tools.sweeps                      # every file in multirun_sweeps/
    python -m certssb.tools.sweeps digits_offline --jobs   # one sweep, each job's overrides
    python -m certssb.tools.sweeps --check              # header comments against the params

For each ``multirun_sweeps/NAME.yaml`` (run it with ``python -m certssb.run sweep=NAME``): the
header comment's first sentence, the swept parameters with their values and the number of jobs,
expanded from the composed ``hydra.sweeper.params`` exactly as Hydra's basic sweeper does (the
product of the value lists; command-line overrides replace a param of the same key). A sweep run
by another sweeper (Optuna: ``hparams_search=...``) is named as such, with its search space and
trial count instead.

``--check`` reads every count the header comment states in words or digits next to a noun that
names a swept parameter ("four noise levels", "three seeds", "eleven methods", "four jobs"; see
:data:`COUNTED`) and fails (exit 1) when it differs from the file's params. Nothing imports torch.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field

from certssb import catalog
from certssb.errors import CertSSBError, ConfigError

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"

NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                "ten": 10, "eleven": 11, "twelve": 12}

#: nouns whose stated count is checked, and the swept key they count (None: the number of jobs)
COUNTED: list[tuple[str, str | None]] = [
    (r"seeds?", "seed"),
    (r"noise levels?|sigma_0s?|sigma_0 values?", "sigma_optimiser.sigma_0"),
    (r"methods?", "method"),
    (r"attacks?", "attack"),
    (r"poisoning rates?|poison rates?", "attack.poison_rate"),
    (r"trigger sizes?", "attack.delta"),
    (r"patch sizes?", "attack.patch_size"),
    (r"experiments?", "experiment"),
    (r"member ranges?", "ensemble.member_range"),
    (r"jobs?", None),
]
_NUMBER = r"(?P<n>\d+|" + "|".join(NUMBER_WORDS) + r")"
_COUNT_RE = re.compile(
    _NUMBER + r"\s+(?:[\w'-]+\s+)?(?P<noun>" + "|".join(f"(?:{n})" for n, _ in COUNTED) + r")\b"
    r"(?!\s+(?:per|each|at a time|of)\b)", re.IGNORECASE)


@dataclass
class Sweep:
    """A sweep's jobs as Hydra would launch them."""

    name: str
    description: str
    sweeper: str  # the sweeper's _target_
    params: dict[str, list[str]] = field(default_factory=dict)  # swept key -> its values (as strings)
    jobs: list[list[str]] = field(default_factory=list)  # each job's overrides (basic sweeper only)
    settings: dict = field(default_factory=dict)  # a non-basic sweeper's own settings (n_trials, ...)

    @property
    def basic(self) -> bool:
        return self.sweeper == BASIC_SWEEPER

    def swept(self) -> dict[str, list[str]]:
        """The params with more than one value (what varies between jobs)."""
        return {k: v for k, v in self.params.items() if len(v) > 1}


def _value_lists(overrides: list[str]) -> dict[str, list[str]]:
    """``key -> [values]`` of override strings, later ones replacing earlier ones (Hydra's rule)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    out: dict[str, list[str]] = {}
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.get_key_element()
        if override.is_sweep_override() and override.is_discrete_sweep():
            out[key] = [str(v) for v in override.sweep_string_iterator()]
        elif override.is_sweep_override():
            out[key] = [override.input_line.split("=", 1)[1] if override.input_line else "?"]
        else:
            out[key] = [override.get_value_element_as_str()]
    return out


def is_sweep_value(override: str) -> bool:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_overrides([override])[0].is_sweep_override()


def expand(config_dir: str, config_name: str, overrides: list[str] = (), compose_fn=None) -> Sweep:
    """The sweep of ``config_name`` (in ``config_dir``) with the command line's ``overrides``.

    Composes the base config once (Hydra's compose API, sweep overrides left out as Hydra does
    in multirun mode), reads ``hydra.sweeper``, and for the basic sweeper expands params plus
    overrides into the job override lists with Hydra's own ``BasicSweeper.split_arguments``.
    ``compose_fn(config_name, overrides)`` replaces a fresh ``initialize_config_dir`` + compose.
    """
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    overrides = list(overrides)
    fixed = [o for o in overrides if not is_sweep_value(o)]
    cfg = (compose_fn or _compose_in(config_dir))(config_name, fixed)
    sweeper_cfg = cfg.hydra.sweeper
    target = str(sweeper_cfg.get("_target_", BASIC_SWEEPER))
    params_node = sweeper_cfg.get("params") or OmegaConf.create({})
    params = [f"{k}={v}" for k, v in OmegaConf.to_container(params_node, resolve=False).items()]
    path = catalog.sweep_path(config_name) if config_dir == str(catalog.sweeps_dir()) else None
    description = catalog.first_sentence(path) if path is not None and path.exists() else ""
    sweep = Sweep(config_name, description, target)
    if target != BASIC_SWEEPER:
        sweep.params = {k: [str(v)] for k, v in OmegaConf.to_container(params_node, resolve=False).items()}
        sweep.settings = {k: sweeper_cfg.get(k) for k in ("n_trials", "direction", "n_jobs") if k in sweeper_cfg}
        return sweep
    args = params + overrides
    sweep.params = _value_lists(args)
    parsed = OverridesParser.create().parse_overrides(args)
    sweep.jobs = [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
    return sweep


def _compose_in(config_dir: str):
    def compose_fn(config_name: str, overrides: list[str]):
        from hydra import compose, initialize_config_dir
        from hydra.core.global_hydra import GlobalHydra

        GlobalHydra.instance().clear()
        try:
            with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
                return compose(config_name=config_name, overrides=list(overrides), return_hydra_config=True)
        finally:
            GlobalHydra.instance().clear()

    return compose_fn


def sweep_file(name: str) -> Sweep:
    """``multirun_sweeps/NAME.yaml`` expanded; a one-line ConfigError for an unknown name."""
    names = catalog.sweep_names()
    if name not in names:
        hint = catalog.did_you_mean(name, names)
        raise ConfigError(f"{name} is not a sweep file{hint} (sweeps: {', '.join(names)})")
    try:
        return expand(str(catalog.sweeps_dir()), name)
    except CertSSBError:
        raise
    except Exception as exc:  # a sweep file that does not compose: one line naming it
        from certssb.config import first_line

        raise ConfigError(f"sweep {name} does not compose: {first_line(exc)}") from None


# ---------------------------------------------------------------------------------------------
# stated counts


def stated_counts(text: str) -> list[tuple[int, str, str | None]]:
    """Every ``(count, phrase, counted key)`` the text states ("four noise levels" ->
    ``(4, 'four noise levels', 'sigma_optimiser.sigma_0')``; key None = the number of jobs)."""
    found = []
    for match in _COUNT_RE.finditer(" ".join(text.split())):
        raw = match.group("n").lower()
        n = int(raw) if raw.isdigit() else NUMBER_WORDS[raw]
        noun = match.group("noun").lower()
        key = next(k for pattern, k in COUNTED if re.fullmatch(pattern, noun))
        found.append((n, match.group(0), key))
    return found


def count_mismatches(sweep: Sweep, text: str) -> list[str]:
    """What ``text`` (a description of ``sweep``) states wrongly about its counts, one line each."""
    problems = []
    for n, phrase, key in stated_counts(text):
        if key is None:
            if sweep.basic and n != len(sweep.jobs):
                problems.append(f"says '{phrase}' but makes {len(sweep.jobs)} jobs")
            continue
        values = sweep.params.get(key)
        if values is None:
            problems.append(f"says '{phrase}' but does not sweep {key}")
        elif sweep.basic and len(values) != n:
            problems.append(f"says '{phrase}' but sweeps {len(values)} values of {key} ({', '.join(values)})")
    return problems


def header_text(name: str) -> str:
    return " ".join(catalog.comment_lines(catalog.sweep_path(name)))


# ---------------------------------------------------------------------------------------------
# output


def describe(sweep: Sweep, jobs: bool = False) -> str:
    lines = []
    if sweep.basic:
        lines.append(f"{sweep.name}: {len(sweep.jobs)} job{'s' * (len(sweep.jobs) != 1)}")
    else:
        kind = sweep.sweeper.rsplit(".", 1)[-1]
        trials = sweep.settings.get("n_trials")
        lines.append(f"{sweep.name}: {kind} (not the basic sweeper)" + (f", {trials} trials" if trials else ""))
    if sweep.description:
        lines.append(f"  {sweep.description}")
    swept = sweep.swept() if sweep.basic else sweep.params
    if swept:
        parts = [f"{k} ({len(v)}: {', '.join(v)})" if sweep.basic else f"{k}: {v[0]}" for k, v in swept.items()]
        lines.append("  swept: " + (" x ".join(parts) if sweep.basic else "; ".join(parts)))
    fixed = {k: v[0] for k, v in sweep.params.items() if len(v) == 1} if sweep.basic else {}
    if fixed:
        lines.append("  fixed by its params: " + ", ".join(f"{k}={v}" for k, v in fixed.items()))
    if jobs and sweep.basic:
        lines.extend(f"    {i}: {' '.join(job)}" for i, job in enumerate(sweep.jobs))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m certssb.tools.sweeps",
        description=("List certssb's sweep files (multirun_sweeps/*.yaml): each one's description (the header "
                     "comment's first sentence), the swept parameters and the number of jobs, expanded from "
                     "hydra.sweeper.params as Hydra's basic sweeper does. Run one with "
                     "python -m certssb.run sweep=NAME. Example: python -m certssb.tools.sweeps digits_offline --jobs"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="sweep files to show (default: all of multirun_sweeps/)")
    parser.add_argument("--jobs", action="store_true", help="also list each job's overrides")
    parser.add_argument("--check", action="store_true",
                        help="check the counts each header comment states (e.g. 'four noise levels') against its "
                             "params; exit 1 on a mismatch")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    names = args.names or catalog.sweep_names()
    blocks, problems = [], []
    try:
        for name in names:
            sweep = sweep_file(name)
            blocks.append(describe(sweep, jobs=args.jobs))
            if args.check:
                problems += [f"{name}.yaml header {p}" for p in count_mismatches(sweep, header_text(name))]
    except CertSSBError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Sweep files in {catalog.sweeps_dir()} (run one with: python -m certssb.run sweep=NAME)\n")
    print("\n\n".join(blocks))
    if args.check:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        if problems:
            return 1
        print(f"\nheader comments agree with the params of {len(names)} sweep file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
