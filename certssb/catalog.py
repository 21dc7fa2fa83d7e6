"""What the config trees offer, read from the files: groups, options, aliases, comments, sweeps.

Every list here comes from the yaml files that :mod:`certssb.resources` finds (a checkout or an
installed wheel), never from a list written in code, so an option added by dropping a yaml into
``conf/<group>/`` shows up in ``--help``, ``python -m certssb.tools.options`` and the
did-you-mean suggestions at once. Kinds of file in a group folder:

- an **option**: ``conf/<group>/<name>.yaml`` with a ``_target_`` (or its own values);
- an **alias**: a yaml without ``_target_`` whose only content is ``defaults: [<other option>]``
  (``model/for_digits.yaml`` -> ``mlp``: the dataset's default model);
- a **base fragment**: a file whose name starts with ``_`` (e.g. ``_training.yaml``), merged into
  options through their ``defaults`` lists and never an option itself.

The ``experiment`` group is served from the top-level ``experiments/`` folder; ``hydra/`` is
Hydra's and not listed. Nothing here imports torch or walks anything but these folders.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from certssb.resources import conf_dir, experiments_dir, sweeps_dir

#: the group served from experiments/ instead of conf/
EXPERIMENT_GROUP = "experiment"


@dataclass
class OptionFile:
    """One yaml of a group folder."""

    group: str
    name: str
    path: Path
    kind: str  # "option" | "alias" | "base"
    comment: str = ""  # the first comment line (without '#'; '@package' lines skipped)
    defaults: list = field(default_factory=list)  # the file's own defaults list, as written

    @property
    def alias_of(self) -> str | None:
        """The option an alias stands for (``for_digits`` -> ``mlp``); None for other kinds."""
        if self.kind != "alias":
            return None
        return next((str(d) for d in self.defaults if d != "_self_"), None)

    @property
    def qualified(self) -> str:
        return f"{self.group}/{self.name}"


def closest(word: str, choices: Iterable[str], n: int = 3, cutoff: float = 0.6) -> list[str]:
    """The choices closest to ``word`` (difflib ratio), best first: those within 0.05 of the best
    one; a choice that starts with ``word`` (or the reverse) counts when nothing is close."""
    choices = list(dict.fromkeys(str(c) for c in choices))
    scored = sorted(((difflib.SequenceMatcher(None, word, c).ratio(), c) for c in choices), key=lambda t: -t[0])
    scored = [(r, c) for r, c in scored if r >= cutoff]
    if scored:
        best = scored[0][0]
        return [c for r, c in scored if r >= best - 0.05][:n]
    return [c for c in choices if word and (c.startswith(word) or word.startswith(c))][:n]


def did_you_mean(word: str, choices: Iterable[str], render=lambda c: c) -> str:
    """``"; did you mean X?"`` (or ``X or Y``) for the closest choices; ``""`` if none is close."""
    found = closest(word, choices, n=2)
    if not found:
        return ""
    return "; did you mean " + " or ".join(render(c) for c in found) + "?"


# ---------------------------------------------------------------------------------------------
# reading files


def comment_lines(path: Path) -> list[str]:
    """The file's leading comment block, one entry per line, without ``#`` (``@package`` skipped)."""
    lines = []
    for raw in Path(path).read_text().splitlines():
        stripped = raw.strip()
        if not stripped:
            if lines:
                break
            continue
        if not stripped.startswith("#"):
            break
        text = stripped.lstrip("#").strip()
        if text.startswith("@package"):
            continue
        lines.append(text)
    return lines


def first_comment(path: Path) -> str:
    lines = comment_lines(path)
    return lines[0] if lines else ""


def first_sentence(path: Path, limit: int = 160) -> str:
    """The header comment's first sentence (its lines joined, up to a command line), shortened to
    ``limit`` characters."""
    text = ""
    for line in comment_lines(path):
        if line.startswith(("python ", "make ")):
            break
        text = f"{text} {line}".strip()
        end = re.search(r"\.(\s|$)", text)
        if end:
            text = text[: end.start() + 1]
            break
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError:
        return {}


def _classify(group: str, path: Path) -> OptionFile:
    name = path.stem
    node = _load_yaml(path)
    defaults = list(node.get("defaults") or []) if isinstance(node, dict) else []
    if name.startswith("_"):
        kind = "base"
    elif (isinstance(node, dict) and group != EXPERIMENT_GROUP and "_target_" not in node
          and set(node) == {"defaults"} and len([d for d in defaults if d != "_self_"]) == 1
          and isinstance(next(d for d in defaults if d != "_self_"), str)):
        kind = "alias"
    else:
        kind = "option"
    return OptionFile(group, name, path, kind, first_comment(path), defaults)


# ---------------------------------------------------------------------------------------------
# groups and options


def _primary_defaults() -> list:
    node = _load_yaml(conf_dir() / "config.yaml")
    return list(node.get("defaults") or []) if isinstance(node, dict) else []


def default_choices() -> dict[str, str | None]:
    """``group -> option`` as ``conf/config.yaml`` chooses them (``None``: nothing by default)."""
    choices: dict[str, str | None] = {}
    for entry in _primary_defaults():
        if isinstance(entry, dict):
            for key, value in entry.items():
                choices[str(key).lstrip("/")] = None if value is None else str(value)
    return choices


def groups() -> list[str]:
    """The config groups a user picks from, in ``conf/config.yaml``'s order, then the others."""
    folders = sorted(p.name for p in conf_dir().iterdir()
                     if p.is_dir() and p.name != "hydra" and not p.name.startswith(("_", ".")))
    if experiments_dir().is_dir():
        folders.append(EXPERIMENT_GROUP)
    ordered = [g for g in default_choices() if g in folders]
    return ordered + sorted(g for g in folders if g not in ordered)


def group_dir(group: str) -> Path:
    return experiments_dir() if group == EXPERIMENT_GROUP else conf_dir() / group


def files(group: str) -> list[OptionFile]:
    """Every yaml of a group folder (options, aliases and base fragments), sorted by name."""
    folder = group_dir(group)
    if not folder.is_dir() or group not in groups():
        raise KeyError(group)
    return [_classify(group, p) for p in sorted(folder.glob("*.yaml"))]


def options(group: str, kinds: tuple[str, ...] = ("option", "alias")) -> list[OptionFile]:
    return [f for f in files(group) if f.kind in kinds]


def option_names(group: str) -> list[str]:
    """What ``group=NAME`` accepts: options and aliases (not base fragments)."""
    return [f.name for f in options(group)]


def find(group: str, name: str) -> OptionFile:
    """The file of ``group/name`` (any kind); KeyError if absent."""
    for f in files(group):
        if f.name == name:
            return f
    raise KeyError(f"{group}/{name}")


def merge_chain(group: str, name: str, _seen: tuple = ()) -> list[OptionFile]:
    """The files that make ``group/name``, in merge order, following its own ``defaults`` within
    the group (``sga_joint`` -> ``[sga, sga_joint]``; an alias -> ``[mlp, for_digits]``).

    A ``defaults`` entry that names another group (``/dataset: x``, ``override ...``) is not
    followed (it is no part of this option's node); ``_self_`` places the file itself, last when
    absent (Hydra's rule).
    """
    if name in _seen:
        raise ValueError(f"{group}/{name}: its defaults list includes itself ({' -> '.join(_seen + (name,))})")
    own = find(group, name)
    chain: list[OptionFile] = []
    placed = False
    for entry in own.defaults:
        if entry == "_self_":
            chain.append(own)
            placed = True
        elif isinstance(entry, str) and not entry.startswith(("/", "override ", "optional ")):
            chain.extend(merge_chain(group, entry, _seen + (name,)))
    if not placed:
        chain.append(own)
    return chain


# ---------------------------------------------------------------------------------------------
# sweeps


def sweep_names() -> list[str]:
    """The primary sweep configs: ``multirun_sweeps/*.yaml`` (subfolders are their option groups)."""
    return sorted(p.stem for p in sweeps_dir().glob("*.yaml"))


def sweep_path(name: str) -> Path:
    return sweeps_dir() / f"{name}.yaml"
