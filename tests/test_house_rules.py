"""The house rules, checked on the source (issue "The house"):

- no function longer than 80 lines (decorators and docstrings included) and none with more than 8
  parameters (``self``/``cls`` not counted) anywhere in ``certssb/`` and ``hydra_plugins/``;
- no import cycle between the modules of ``certssb`` (imports inside functions count too: a lazy
  import only hides a cycle);
- nothing outside a package imports another package's private (``_name``) functions or modules.

Each checker is also run on a small synthetic case, so that a broken checker cannot pass.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MAX_LINES, MAX_PARAMS = 80, 8
#: import cycles allowed (none)
KNOWN_CYCLES: list[set] = []


# ------------------------------------------------------------------------------------ checkers


def oversized_functions(source: str, name: str = "<source>") -> list[str]:
    """``name:line function (N lines, P parameters)`` for every function over the limits."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        start = min([node.lineno] + [d.lineno for d in node.decorator_list])
        lines = node.end_lineno - start + 1
        a = node.args
        params = [*a.posonlyargs, *a.args, *a.kwonlyargs] + [p for p in (a.vararg, a.kwarg) if p is not None]
        n_params = len([p for p in params if p.arg not in ("self", "cls")])
        if lines > MAX_LINES or n_params > MAX_PARAMS:
            out.append(f"{name}:{node.lineno} {node.name} ({lines} lines, {n_params} parameters)")
    return out


def module_names(root: Path, package: str) -> dict[str, tuple[Path, bool]]:
    """``dotted name -> (file, is a package)`` for every module under ``root/package``."""
    mods = {}
    for f in (root / package).rglob("*.py"):
        parts = list(f.relative_to(root).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        mods[".".join(parts[:-1] if is_pkg else parts)] = (f, is_pkg)
    return mods


def _imported(mod: str, is_pkg: bool, node, mods: dict) -> list[str]:
    """The modules of ``mods`` that an import statement of module ``mod`` loads (a name imported
    from a package counts as the submodule when there is one, else as the package)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in mods]
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    if node.level:
        base = base[:len(base) - (node.level - 1)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    found = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in mods else prefix for a in node.names]
    return [m for m in found if m in mods]


def import_graph(mods: dict) -> dict[str, set[str]]:
    graph = {}
    for mod, (path, is_pkg) in mods.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps.update(_imported(mod, is_pkg, node, mods))
        graph[mod] = deps - {mod}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = set()
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.add(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(comp)
    return out


def private_imports(mods: dict) -> list[str]:
    """``module:line from X import _y`` where ``X``'s package does not hold the importing module."""
    out = []
    for mod, (path, is_pkg) in mods.items():
        own = mod if is_pkg else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.level or not (node.module or "").startswith("certssb"):
                continue
            source_pkg = node.module if node.module in mods and mods[node.module][1] else \
                node.module.rpartition(".")[0]
            private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
            private += [p for p in node.module.split(".") if p.startswith("_") and not p.startswith("__")]
            if private and not (own + ".").startswith(source_pkg + "."):
                out.append(f"{mod}:{node.lineno} from {node.module} import {', '.join(a.name for a in node.names)}")
    return out


# ------------------------------------------------------------------------------------ the checkers work


def test_checkers_catch_synthetic_breaches(tmp_path):
    long_body = "\n".join(f"    x{i} = {i}" for i in range(80))
    src = f"def long():\n{long_body}\n\ndef many(a, b, c, d, e, f, g, h, i):\n    pass\n\n" \
          "class C:\n    def ok(self, a, b, c, d, e, f, g, h):\n        pass\n"
    found = oversized_functions(src)
    assert [f.split()[1] for f in found] == ["long", "many"]
    assert "(81 lines" in found[0] and "9 parameters" in found[1]
    pkg = tmp_path / "certssb"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("from .x import f\n")
    (pkg / "a" / "x.py").write_text("def f():\n    from certssb.b.y import g\n")
    (pkg / "b").mkdir()
    (pkg / "b" / "__init__.py").write_text("")
    (pkg / "b" / "y.py").write_text("from certssb.a.x import f\nfrom certssb.a.x import _hidden\n"
                                    "def _hidden():\n    pass\n")
    mods = module_names(tmp_path, "certssb")
    assert cycles(import_graph(mods)) == [{"certssb.a.x", "certssb.b.y"}]
    assert private_imports(mods) == ["certssb.b.y:2 from certssb.a.x import _hidden"]


# ------------------------------------------------------------------------------------ the rules hold


def _files_under_the_size_rules() -> list[Path]:
    return sorted([*(REPO / "certssb").rglob("*.py"), *(REPO / "hydra_plugins").rglob("*.py")])


@pytest.mark.parametrize("path", _files_under_the_size_rules(), ids=lambda p: str(p.relative_to(REPO)))
def test_functions_are_short_and_take_few_parameters(path):
    assert oversized_functions(path.read_text(), str(path.relative_to(REPO))) == []


def test_no_import_cycle_in_certssb():
    found = cycles(import_graph(module_names(REPO, "certssb")))
    assert [c for c in found if c not in KNOWN_CYCLES] == []


def test_no_private_import_across_packages():
    assert private_imports(module_names(REPO, "certssb")) == []


def test_falsify_and_report_are_split_by_concern():
    """The two tools that held several concerns are packages whose modules each hold one."""
    for name, modules in (("falsify", {"cli", "config", "count_attack", "count_runner", "count_report",
                                       "gaussian_attack", "gaussian_runner", "gaussian_report"}),
                          ("report", {"cli", "local_runs", "wandb_runs", "table", "markdown", "radius_plot"})):
        pkg = REPO / "certssb" / "tools" / name
        assert not (REPO / "certssb" / "tools" / f"{name}.py").exists()
        assert modules <= {p.stem for p in pkg.glob("*.py")} and (pkg / "__main__.py").is_file()
        for p in pkg.glob("*.py"):
            assert len(p.read_text().splitlines()) < 300, f"{p} holds too much for one concern"
