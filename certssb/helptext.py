"""The group listing of ``python -m certssb.run --help``, read from the config files.

``conf/config.yaml`` sets Hydra's help template (``hydra.help.template``): the examples and
where outputs go are written there; the groups come from ``${certssb_help:groups}`` (and ``${certssb_help:sweeps}``), an OmegaConf
resolver registered here (by :mod:`certssb.run` and by the Hydra plugin
``hydra_plugins.certssb_configs``), which lists each group's options from
:mod:`certssb.catalog`: aliases shown apart (``for_digits -> mlp``), base fragments (``_*.yaml``)
left out, the default marked. Options that Hydra sees on a user's extra search path are listed
too. Reading ~60 small yaml files keeps ``--help`` well under a second; nothing imports torch.
"""

from __future__ import annotations

import textwrap

RESOLVER = "certssb_help"
WIDTH = 100


def _hydra_options(group: str) -> list[str]:
    """Options Hydra itself finds for ``group`` (a user's search path included); [] outside Hydra."""
    try:
        from hydra.core.global_hydra import GlobalHydra

        hydra = GlobalHydra.instance()
        if not hydra.is_initialized():
            return []
        return list(hydra.config_loader().get_group_options(group))
    except Exception:  # listing is a courtesy: never break --help over it
        return []


def _wrap(head: str, items: list[str], indent: int) -> list[str]:
    return textwrap.wrap(", ".join(items), width=WIDTH, initial_indent=head,
                         subsequent_indent=" " * indent, break_on_hyphens=False, break_long_words=False)


def groups_text() -> str:
    """One block per group: ``group: a, b*, c`` (``*`` = the default; wrapped lines indented by
    4), then notes indented by 4 as ``    word: text`` (``aliases:``, ``default:``, ...; their
    wrapped lines indented by 6)."""
    from certssb import catalog

    defaults = catalog.default_choices()
    lines = []
    for group in catalog.groups():
        found = catalog.files(group)
        options = [f for f in found if f.kind == "option"]
        aliases = [f for f in found if f.kind == "alias"]
        known = {f.name for f in found}
        extra = [o for o in _hydra_options(group) if o not in known and not o.split("/")[-1].startswith("_")]
        default = defaults.get(group)
        names = [f"{f.name}*" if f.name == default else f.name for f in options] + [f"{o} (search path)" for o in extra]
        lines += _wrap(f"{group}: ", names, 4)
        notes = []
        if aliases:
            notes += _wrap("    aliases: ", [f"{a.name} -> {a.alias_of}" for a in aliases], 6)
        if default is not None and "${" in default:  # e.g. model: for_${dataset}
            pattern = default.replace("${", "<").replace("}", ">")
            notes.append(f"    default: {pattern}, the alias of the chosen {pattern[pattern.index('<') + 1:pattern.index('>')]}")
        if group == catalog.EXPERIMENT_GROUP:
            notes.append("    bundles: files of experiments/, none by default; experiment=NAME sets several groups")
        elif default is None and group in defaults:
            notes.append(f"    default: none; pick one with {group}=NAME")
        elif group not in defaults:
            notes.append(f"    use: not part of a run by default; add it with +{group}=NAME (with -m for a search)")
        lines += notes
    return "\n".join(lines)


def sweeps_text() -> str:
    """The sweep files' names (``multirun_sweeps/*.yaml``), wrapped."""
    from certssb import catalog

    return "\n".join(_wrap("", catalog.sweep_names(), 0))


def _resolve(part: str) -> str:
    text = {"groups": groups_text, "sweeps": sweeps_text}[str(part)]()
    # Hydra renders the template with string.Template: a literal '$' must be doubled
    return text.replace("$", "$$")


def register_resolvers() -> None:
    """Register ``${certssb_help:groups}`` and ``${certssb_help:sweeps}`` (idempotent)."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, _resolve, use_cache=False)
