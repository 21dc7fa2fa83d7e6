"""The commands the docs show still compose and parse.

Every ``python -m certssb.run ...`` (any interpreter path in front: ``.venv/bin/python``,
``PYTHONPATH=. python``) and every ``make TARGET [ARGS="..."]`` whose Makefile recipe runs
``certssb.run`` is taken from ``README.md`` and ``docs/*.md``: fenced code blocks (lines joined
at a trailing ``\\``, ``# comments`` dropped) and inline code spans (which may wrap across lines).
Each one is composed in this process with Hydra's compose API, as the command line would compose
it (``sweep=NAME`` and ``--config-dir multirun_sweeps`` resolved as ``certssb.run`` does), and
parsed with ``certssb.config.parse_run``, so a stale option, key or value fails the test:

- a single run: its config;
- a sweep (``-m``, a sweep file, ``sweep=NAME``): every job, expanded from ``hydra.sweeper.params``
  plus the command's overrides as Hydra's basic sweeper does (``certssb.tools.sweeps.expand``);
  under another sweeper (Optuna) the base config, whose search space the sweeper samples;
- flags that do not run a job (``--cfg job``, ``--help``) do not change what is composed.

Substitutions: ``$VAR`` / ``${VAR}`` from a ``VAR="..."`` assignment earlier in the same code
block; ``dataset.root=PATH`` of an ``image_folder`` run that does not exist here becomes a small
image folder written by the test (its classes are read when the config is parsed; no image is
opened). Skipped, and counted as skipped: commands with a placeholder (``<...>``, an all-caps
word such as ``NAME`` or ``DIR``, ``...``) or a ``$VAR`` defined nowhere in the block (``$PWD``).
Parsing never loads data, so commands whose data is absent here are checked too.

The comment that introduces a sweep command in a code block (the ``#`` lines just above it and
its trailing comment) and a parenthesis right after a sweep file's name in prose must state the
sweep's counts truly ("four noise levels", "three seeds": ``certssb.tools.sweeps.count_mismatches``).
"""

from __future__ import annotations

import re
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra._internal.utils import get_args_parser
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from certssb import catalog
from certssb.config import parse_run
from certssb.run import expand_sweep
from certssb.resources import conf_dir, sweeps_dir
from certssb.tools import sweeps as sweep_tool

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`([^`\n]+(?:\n[^`\n]+)*)`")
ASSIGN = re.compile(r"^\s*(?:export\s+)?([A-Za-z_]\w*)=(.*)$")
VAR = re.compile(r"\$\{?([A-Za-z_]\w*)\}?")
PLACEHOLDER = re.compile(r"\.\.\.|(?:^|=)[A-Z][A-Z0-9_]+$")
SWEEP_MENTION = re.compile(r"`(\w+)`\s*\(([^()]*(?:\([^()]*\)[^()]*)*)\)")


@dataclass
class Command:
    where: str  # file:line
    text: str  # as written (joined)
    args: list[str] = field(default_factory=list)  # arguments of certssb.run
    comment: str = ""  # the comment introducing it (code blocks)
    skip: str = ""  # why it is not composed


def _makefile_recipes() -> dict[str, str]:
    """``target -> the certssb.run arguments of its recipe`` (``$(ARGS)`` kept as a marker)."""
    recipes, target = {}, None
    for line in (REPO / "Makefile").read_text().splitlines():
        head = re.match(r"^([\w-]+):", line)
        if head:
            target = head.group(1)
        elif line.startswith("\t") and target and "-m certssb.run" in line:
            recipes[target] = line.split("-m certssb.run", 1)[1].strip()
    return recipes


RECIPES = _makefile_recipes()


def _run_args(text: str, variables: dict[str, str]) -> tuple[list[str] | None, str]:
    """The certssb.run arguments of a shell command (None if it runs no certssb.run) and a skip reason."""
    undefined = [v for v in VAR.findall(text) if v not in variables]
    text = VAR.sub(lambda m: variables.get(m.group(1), m.group(0)), text)
    try:
        tokens = shlex.split(text, comments=True)
    except ValueError as exc:
        return None, f"cannot be split ({exc})"
    if "certssb.run" in tokens:
        args = tokens[tokens.index("certssb.run") + 1:]
    elif len(tokens) >= 2 and tokens[0] == "make" and tokens[1] in RECIPES:
        make_args = next((t.split("=", 1)[1] for t in tokens[2:] if t.startswith("ARGS=")), "")
        args = shlex.split(RECIPES[tokens[1]].replace("$(ARGS)", make_args))
    else:
        return None, ""
    if undefined:
        return args, f"uses ${undefined[0]}, defined nowhere in its code block"
    angle = re.search(r"<[^<>]*>", text.split(" # ", 1)[0])
    if angle:
        return args, f"has a placeholder ({angle.group(0)})"
    bad = [t for t in args if PLACEHOLDER.search(t)]
    if bad:
        return args, f"has a placeholder ({bad[0]})"
    return args, ""


def extract(path: Path) -> list[Command]:
    text = path.read_text()
    commands: list[Command] = []
    name = path.relative_to(REPO)

    def line_of(offset: int) -> int:
        return text.count("\n", 0, offset) + 1

    # fenced code blocks
    for block in FENCE.finditer(text):
        variables: dict[str, str] = {}
        comment: list[str] = []
        lines = block.group(1).split("\n")
        start = line_of(block.start(1))
        i = 0
        while i < len(lines):
            first = i
            line = lines[i]
            while line.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line.rstrip()[:-1] + " " + lines[i].strip()
            i += 1
            stripped = line.strip()
            if not stripped:
                comment = []
                continue
            if stripped.startswith("#"):
                comment.append(stripped.lstrip("#").strip())
                continue
            assign = ASSIGN.match(stripped)
            if assign and " " not in assign.group(2).strip().strip("\"'") or (assign and assign.group(2)[:1] in "\"'"):
                variables[assign.group(1)] = shlex.split(assign.group(2))[0] if assign.group(2).strip() else ""
                comment = []
                continue
            args, skip = _run_args(stripped, variables)
            if args is not None:
                trailing = stripped.split(" # ", 1)[1] if " # " in stripped else ""
                commands.append(Command(f"{name}:{start + first}", stripped, args, " ".join([*comment, trailing]), skip))
            comment = []
    # inline code outside the fences
    prose = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    for span in INLINE.finditer(prose):
        code = " ".join(span.group(1).split())
        if "certssb.run" not in code and not code.startswith("make "):
            continue
        args, skip = _run_args(code, {})
        if args is not None:
            commands.append(Command(f"{name}:{line_of(span.start())}", code, args, "", skip))
    return commands


# ---------------------------------------------------------------------------------------------
# composing


class Composer:
    """Compose and parse configs fast: one Hydra initialisation per config dir, one composition per
    distinct set of config-group overrides (cached), and key overrides applied to a copy of it with
    Hydra's own ``_apply_overrides_to_config`` (what ``compose`` does after building the defaults
    tree: the same values, the same struct-mode errors for unknown keys)."""

    def __init__(self, image_root: Path):
        self.image_root = image_root
        self.cache: dict = {}
        self.parsed: set = set()
        self.compositions = 0
        self._dir: str | None = None

    def _enter(self, config_dir: str) -> None:
        if self._dir != config_dir:
            GlobalHydra.instance().clear()
            initialize_config_dir(config_dir=config_dir, version_base="1.3").__enter__()
            self._dir = config_dir

    def close(self) -> None:
        GlobalHydra.instance().clear()
        self._dir = None

    def _is_group(self, override: str) -> bool:
        key = override.split("=", 1)[0].lstrip("+~")
        return GlobalHydra.instance().config_loader().repository.group_exists(key)

    def compose(self, config_dir: str, name: str, overrides: tuple[str, ...], hydra: bool = False):
        """The config of ``overrides``; without its ``hydra`` node unless ``hydra`` or an override sets it."""
        import copy

        from hydra._internal.config_loader_impl import ConfigLoaderImpl
        from hydra.core.override_parser.overrides_parser import OverridesParser

        self._enter(config_dir)
        groups = tuple(o for o in overrides if self._is_group(o))
        values = [o for o in overrides if not self._is_group(o)]
        key = (config_dir, name, groups)
        if key not in self.cache:
            full = compose(config_name=name, overrides=list(groups), return_hydra_config=True)
            task = OmegaConf.masked_copy(full, [k for k in full if k != "hydra"])  # what parse_run reads
            OmegaConf.set_struct(task, True)
            self.cache[key] = (full, task)
            self.compositions += 1
        full, task = self.cache[key]
        if not values:
            return full
        hydra = hydra or any(o.lstrip("+~").startswith("hydra.") for o in values)
        cfg = copy.deepcopy(full if hydra else task)  # the hydra node is large: copied only when set
        ConfigLoaderImpl._apply_overrides_to_config(OverridesParser.create().parse_overrides(values), cfg)
        return cfg

    def _parse(self, config_dir: str, name: str, overrides: tuple[str, ...]) -> None:
        key = (config_dir, name, overrides)
        if key not in self.parsed:
            parse_run(self.compose(config_dir, name, overrides))
            self.parsed.add(key)

    def substitute(self, args: list[str]) -> list[str]:
        out = []
        for a in args:
            key, _, value = a.partition("=")
            if key.lstrip("+") == "dataset.root" and value and not Path(value).exists():
                a = f"{key}={self.image_root}"
            out.append(a)
        return out

    def check(self, command: Command) -> int:
        """Compose and parse ``command``; returns how many configs (jobs) it makes."""
        args = expand_sweep(self.substitute(command.args))
        parsed = get_args_parser().parse_args(args)
        config_dir = str(conf_dir())
        if parsed.config_dir:
            given = Path(parsed.config_dir)
            config_dir = str(given if given.is_absolute() else (REPO / given).resolve())
        name = parsed.config_name or "config"
        overrides = list(parsed.overrides)
        fixed = tuple(o for o in overrides if not sweep_tool.is_sweep_value(o))
        if parsed.multirun or str(self.compose(config_dir, name, fixed, hydra=True).hydra.mode) == "RunMode.MULTIRUN":
            sweep = sweep_tool.expand(config_dir, name, overrides,
                                      compose_fn=lambda n, o: self.compose(config_dir, n, tuple(o), hydra=True))
            if not sweep.basic:  # Optuna & co. sample the search space: the base config is what is fixed
                self._parse(config_dir, name, fixed)
                return 1
            for job in sweep.jobs:
                self._parse(config_dir, name, tuple(job))
            if command.comment:
                problems = sweep_tool.count_mismatches(sweep, command.comment)
                assert not problems, f"its comment {problems[0]}"
            return len(sweep.jobs)
        self._parse(config_dir, name, tuple(overrides))
        return 1


@pytest.fixture(scope="module")
def image_root(tmp_path_factory):
    """An image folder as dataset=image_folder expects it (class folders only: parsing lists them)."""
    root = tmp_path_factory.mktemp("image_folder")
    for split in ("train", "test"):
        for cls in ("cats", "dogs"):
            (root / split / cls).mkdir(parents=True)
    return root


def test_extraction_understands_the_docs_forms():
    found = {c.text: c for path in DOCS for c in extract(path)}
    texts = " | ".join(found)
    assert any(c.args == ["attack=onepixel", "ensemble.n_members=200"] for c in found.values())  # make run ARGS=
    assert any(c.text.startswith("make run ") and not c.args for c in found.values()), texts  # bare `make run`
    # a Makefile target that runs certssb.run, through its recipe
    assert _run_args("make sweep-digits", {})[0][:4] == ["--config-dir", "multirun_sweeps", "--config-name",
                                                         "digits_offline"]
    assert _run_args("make test", {})[0] is None
    joined = [c for c in found.values() if "selection_members=20" in c.text]
    assert joined and "sigma_optimiser=grid" in joined[0].args  # a '\' continuation, $B substituted
    assert "experiment=digits_onepixel_binary" in joined[0].args


@pytest.fixture
def composer(image_root):
    c = Composer(image_root)
    yield c
    c.close()


def test_every_command_in_the_docs_composes_and_parses(composer, capsys):
    started = time.perf_counter()
    checked, jobs, skipped, failed = 0, 0, [], []
    seen = set()
    for path in DOCS:
        for command in extract(path):
            if command.skip:
                skipped.append(f"{command.where}: {command.text} ({command.skip})")
                continue
            key = (tuple(command.args), command.comment)
            if key in seen:
                checked += 1
                continue
            seen.add(key)
            try:
                jobs += composer.check(command)
                checked += 1
            except Exception as exc:  # every failure is reported, not only the first
                from certssb.config import first_line

                failed.append(f"{command.where}: {command.text}\n    -> {type(exc).__name__}: {first_line(exc)}")
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(f"\ndocs commands: {checked} checked ({jobs} configs: {len(composer.parsed)} distinct ones parsed, "
              f"{composer.compositions} compositions), {len(skipped)} skipped, {len(failed)} failed, {elapsed:.1f} s")
        for line in skipped:
            print(f"  skipped {line}")
    assert not failed, "stale commands in the docs:\n" + "\n".join(failed)
    assert checked >= 30  # the README and RESULTS hold many; an extraction bug would find few


def test_sweep_descriptions_in_prose_state_true_counts():
    """``paper_members_split`` (one N = 1000 ensemble split over four jobs): the counts in a
    parenthesis right after a sweep file's name hold."""
    names = set(catalog.sweep_names())
    problems = []
    for path in DOCS:
        text = " ".join(path.read_text().split())
        for match in SWEEP_MENTION.finditer(text):
            if match.group(1) in names:
                sweep = sweep_tool.expand(str(sweeps_dir()), match.group(1))
                problems += [f"{path.name}: `{match.group(1)}` ({match.group(2)}) {p}"
                             for p in sweep_tool.count_mismatches(sweep, match.group(2))]
    assert not problems, "\n".join(problems)


def test_a_stale_command_fails(composer):
    for args, needle in [
        (["attack=badnet"], "badnet"),
        (["ensemble.n_member=3"], "n_member"),
        (["--config-dir", "multirun_sweeps", "--config-name", "digits_offline", "attack.delta=-1"], "attack.delta"),
        (["-m", "sigma_optimiser=fixed,sga", "sigma_optimiser.sigma_0=0.25,-1"], "sigma_0"),
        (["sweep=results_digits_badnets", "method=rab_s025,nosuch"], "nosuch"),
    ]:
        with pytest.raises(Exception, match=needle):
            composer.check(Command("test", " ".join(args), args))


def test_sweep_comment_with_a_wrong_count_fails(composer):
    command = Command("test", "", ["--config-dir", "multirun_sweeps", "--config-name", "digits_offline"],
                      comment="small offline grid on digits (RAB vs Cert-SSB x two sigma_0)")
    with pytest.raises(AssertionError, match="two sigma_0"):
        composer.check(command)
    command.comment = "RAB vs Cert-SSB x four sigma_0"
    assert composer.check(command) == 8
