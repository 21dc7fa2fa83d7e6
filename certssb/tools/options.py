"""Show config options with their comments: a group's options, or one option's yaml.

    python -m certssb.tools.options                   # the groups
    python -m certssb.tools.options attack            # attack's options, each with its first comment line
    python -m certssb.tools.options attack/onepixel   # conf/attack/onepixel.yaml as written, comments included

An option's yaml is printed as written (its comments say what each value means), preceded by the
files it extends through its own ``defaults`` list within the group, in merge order (later files
override earlier ones), each under a header with its path: ``sigma_optimiser/sga_joint`` shows
``sga.yaml`` then ``sga_joint.yaml``; an alias (``model/for_digits``) shows the option it stands
for, then itself. Entries that set other groups (an experiment's ``override /attack: ...``) are
part of the printed file and not followed. Groups and options are read from the files
(:mod:`certssb.catalog`), in a checkout or an installed wheel; nothing imports torch.
"""

from __future__ import annotations

import argparse
import sys

from certssb import catalog
from certssb.errors import CertSSBError

EXIT_USAGE = 2


class UnknownName(CertSSBError):
    """A group or option that does not exist (one line, with the closest names)."""


def _check_group(group: str) -> None:
    names = catalog.groups()
    if group not in names:
        hint = catalog.did_you_mean(group, names)
        raise UnknownName(f"{group} is not a config group{hint} (groups: {', '.join(names)})")


def _check_option(group: str, name: str) -> catalog.OptionFile:
    _check_group(group)
    try:
        return catalog.find(group, name)
    except KeyError:
        names = catalog.option_names(group)
        hint = catalog.did_you_mean(name, names, render=lambda c: f"{group}/{c}")
        raise UnknownName(f"{group}/{name} is not an option of {group}{hint} (options: {', '.join(names)})") from None


def _shown(default: str) -> str:
    """A default as a reader sees it: ``for_${dataset}`` -> ``for_<dataset>``."""
    return default.replace("${", "<").replace("}", ">")


def list_groups() -> str:
    defaults = catalog.default_choices()
    lines = ["Config groups (python -m certssb.tools.options GROUP lists a group's options):"]
    width = max(len(g) for g in catalog.groups())
    for group in catalog.groups():
        opts = catalog.options(group)
        n_alias = sum(f.kind == "alias" for f in opts)
        n_opt = len(opts) - n_alias
        count = f"{n_opt} option{'s' * (n_opt != 1)}" + (f" + {n_alias} alias{'es' * (n_alias != 1)}" if n_alias else "")
        default = defaults.get(group)
        where = "default " + _shown(default) if default else ("none by default" if group in defaults else f"+{group}=NAME")
        lines.append(f"  {group:<{width}}  {count}, {where}")
    return "\n".join(lines)


def list_group(group: str) -> str:
    """``group``'s options, aliases and base fragments, each with its first comment line."""
    _check_group(group)
    found = catalog.files(group)
    default = catalog.default_choices().get(group)
    folder = catalog.group_dir(group)
    head = f"{group} ({folder}/): pick one with {group}=NAME"
    if default:
        head += f"; default {_shown(default)}"
    lines = [head]

    def rows(items, label):
        if not items:
            return
        shown = [(f.name if f.kind != "alias" else f"{f.name} -> {f.alias_of}", f.comment) for f in items]
        width = max(len(s) for s, _ in shown)
        lines.append(f"{label}:")
        lines.extend(f"  {s:<{width}}  {c}".rstrip() for s, c in shown)

    rows([f for f in found if f.kind == "option"], "options")
    rows([f for f in found if f.kind == "alias"], "aliases (an alias stands for the option after ->)")
    rows([f for f in found if f.kind == "base"], "base fragments (merged into options through their defaults; not options)")
    lines.append(f"python -m certssb.tools.options {group}/NAME prints an option's yaml with its comments")
    return "\n".join(lines)


def show_option(group: str, name: str) -> str:
    """The files that make ``group/name`` in merge order, each as written under a path header."""
    own = _check_option(group, name)
    try:
        chain = catalog.merge_chain(group, name)
    except (KeyError, ValueError) as exc:
        raise UnknownName(f"{group}/{name}: its defaults list names a missing or circular file ({exc})") from None
    parts = []
    for i, f in enumerate(chain):
        if f is own or f.path == own.path:
            role = f"{group}/{name}"
            if len(chain) > 1:
                role += " (merged last: its values win)" if i == len(chain) - 1 else f" (merged {i + 1} of {len(chain)})"
        else:
            role = f"{f.qualified}, extended by {group}/{name} (merged {i + 1} of {len(chain)})"
        parts.append(f"# ==> {f.path}  [{role}]")
        parts.append(f.path.read_text().rstrip("\n"))
        parts.append("")
    if own.kind == "alias":
        parts.append(f"# {group}={name} is an alias of {group}={own.alias_of}.")
    elif own.kind == "base":
        parts.append(f"# {name} is a base fragment: options include it through their defaults list; "
                     f"it is not an option itself.")
    elif group == catalog.EXPERIMENT_GROUP:
        parts.append(f"# experiment={name} applies this bundle; python -m certssb.run --cfg job experiment={name} "
                     f"prints the composed result.")
    else:
        parts.append(f"# change a value with {group}.KEY=VALUE; python -m certssb.run --cfg job {group}={name} "
                     f"prints the composed config.")
    return "\n".join(parts)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m certssb.tools.options",
        description=("Show certssb's config options with their comments. Without an argument: the config groups. "
                     "With GROUP: its options (aliases and base fragments apart), each with its first comment "
                     "line. With GROUP/OPTION: the option's yaml as written, after the files it extends through "
                     "its defaults list, in merge order. Example: python -m certssb.tools.options attack/onepixel"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", default=None, metavar="GROUP[/OPTION]",
                        help="a config group (attack) or one option (attack/onepixel; attack=onepixel works too)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.what is None:
            text = list_groups()
        else:
            what = args.what.strip().strip("/").replace("=", "/", 1)
            if what.startswith("conf/"):
                what = what[len("conf/"):]
            if what.endswith(".yaml"):
                what = what[: -len(".yaml")]
            group, _, name = what.partition("/")
            text = show_option(group, name) if name else list_group(group)
    except CertSSBError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
