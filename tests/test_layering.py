"""The import graph of the project, read from the code with ``ast``: no cycle between modules,
no arrow against the layers of docs/ARCHITECTURE.md, and every project import kept inside a
function (outside the CLI) says why in a comment.

Every ``import`` statement counts, at module level or inside a function: a lazy import is still
a dependency, and one that closes a cycle only hides it. ``from package import name`` is an edge
to the submodule ``package.name`` when there is one, else to the package (its ``__init__``);
the implicit import of a package's ``__init__`` when one of its submodules is imported is not
an edge (Python runs it first, whatever the submodule needs).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("benchmark", "methods", "noise", "reports")

LAYERS: dict[str, set[str]] = {
    "cli": {"orchestration", "bench", "training", "plugins", "store", "models", "data", "config", "settings",
            "errors"},
    "orchestration": {"training", "plugins", "store", "config", "settings", "errors"},
    "bench": {"training", "store", "models", "data", "config", "errors"},
    "training": {"plugins", "store", "models", "data", "config", "settings", "errors"},
    "plugins": {"models", "data", "errors"},
    "store": {"data", "config", "settings", "errors"},
    "models": {"settings", "errors"},
    "data": {"settings", "errors"},
    "config": {"errors"},
    "settings": {"errors"},
    "errors": set(),
}
"""benchmark/'s layers: what each part (a subpackage, or a top-level module) may import besides
itself. The same table is in docs/ARCHITECTURE.md."""

OUTSIDE: dict[str, set[str]] = {
    "cli": {"methods", "noise"},
    "orchestration": {"methods", "reports"},
    "bench": {"methods"},
    "training": {"methods", "noise"},
    "plugins": {"methods"},
    "store": {"methods", "noise"},
    "models": set(),
    "data": {"methods"},
    "config": {"methods", "noise"},
    "settings": set(),
    "errors": set(),
}
"""Which of the other project packages each part of benchmark/ may import. methods/, noise/ and
reports/ import nothing of benchmark/ (checked below): the harness depends on them, never the
other way round."""


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


MODULES = _modules()


def _imports(path: Path) -> list[tuple[str, ast.stmt]]:
    """(imported project module, the statement) of every import in the file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, node) for a in node.names if a.name.split(".")[0] in PACKAGES]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module.split(".")[0] in PACKAGES:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.append((sub if sub in MODULES else node.module, node))
    return out


GRAPH = {m: sorted({t for t, _ in _imports(p) if t in MODULES and t != m}) for m, p in MODULES.items()}


def _part(module: str) -> str:
    """The part of benchmark/ a module belongs to: benchmark.data.files.pack -> data."""
    return module.split(".")[1] if module.count(".") >= 1 else ""


def test_the_modules_are_found():
    assert {"benchmark.cli", "benchmark.data.registry", "methods.base", "noise.spec", "reports.site"} <= set(MODULES)
    assert set(LAYERS) == {_part(m) for m in MODULES if m.startswith("benchmark.")} - {""}


def test_there_is_no_import_cycle():
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in GRAPH[m]:
            if state.get(t) == 1:
                cycles.append(path[path.index(t):] + [t])
            elif t not in state:
                visit(t, path + [t])
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("pkg", ["methods", "noise", "reports"])
def test_methods_noise_and_reports_never_import_the_harness(pkg):
    bad = [(m, t) for m in MODULES if m.split(".")[0] == pkg for t in GRAPH[m] if t.split(".")[0] == "benchmark"]
    assert not bad, f"{pkg}/ imports benchmark/: {bad}"


def test_the_harness_imports_follow_its_layers():
    bad = []
    for m in MODULES:
        if not m.startswith("benchmark.") or not _part(m):
            continue
        mine = _part(m)
        for t in GRAPH[m]:
            top = t.split(".")[0]
            if top != "benchmark":
                ok = top in OUTSIDE[mine]
            else:
                ok = t == "benchmark" or _part(t) in LAYERS[mine] | {mine}
            if not ok:
                bad.append(f"{m} -> {t}")
    assert not bad, "imports against the layers of docs/ARCHITECTURE.md: " + "; ".join(bad)


def test_a_lazy_project_import_in_the_harness_says_why():
    """Outside the CLI (whose commands import lazily to keep runner.py fast to start, as
    cli/commands.py says once), a project import inside a function carries a comment, on its
    line or the line above, saying why it is not at the top of the module."""
    silent = []
    for m, path in MODULES.items():
        if not m.startswith("benchmark.") or m.startswith("benchmark.cli"):
            continue
        lines = path.read_text(encoding="utf-8").split("\n")
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for st in ast.walk(node):
                    if isinstance(st, (ast.Import, ast.ImportFrom)) and any(
                            t.split(".")[0] in PACKAGES for t, s in _imports_of(st)):
                        here, above = lines[st.lineno - 1], lines[st.lineno - 2].strip()
                        if "#" not in here and not above.startswith("#"):
                            silent.append(f"{path.relative_to(ROOT)}:{st.lineno}")
    assert not silent, f"project imports inside functions without a comment saying why: {silent}"


def _imports_of(st: ast.stmt) -> list[tuple[str, ast.stmt]]:
    if isinstance(st, ast.Import):
        return [(a.name, st) for a in st.names]
    return [(st.module or "", st)] if st.level == 0 else []


def test_the_architecture_page_holds_the_layer_table():
    """docs/ARCHITECTURE.md states the same layers as LAYERS (a row per part: `part` | what it may import)."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    for part, allowed in LAYERS.items():
        row = next((ln for ln in text.splitlines() if ln.startswith(f"| `{part}` |")), None)
        assert row is not None, f"docs/ARCHITECTURE.md has no layer row for {part}"
        cells = row.split("|")[2]
        named = {w.strip("` ,") for w in cells.split() if w.strip("` ,") in LAYERS}
        assert named == allowed, (f"docs/ARCHITECTURE.md's row for {part} says {sorted(named)}, "
                                  f"the test {sorted(allowed)}")
