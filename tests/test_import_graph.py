"""The import graph of ``detect`` (src/detect and drivers/, installed as detect.drivers).

Every ``import``/``from ... import`` statement of every module is an edge, wherever it sits:
at module level, inside a function, under ``if TYPE_CHECKING``. An import inside a function
hides a cycle from Python at import time but not from the design, so it counts the same.

Edges go to the module named: ``from detect.io import dzt`` is an edge to ``detect.io.dzt``,
``from detect.io.base import GprFile`` one to ``detect.io.base``. Importing a submodule also
runs its parent packages' ``__init__``, but that is not counted as an edge (else every
package that re-exports a submodule would be a cycle); ``from detect import __version__``
is an edge to the root package ``detect``.

Two checks: no cycle at all, and the direction rules of :data:`ALLOWED_IMPORTS` for the
packages that table lists (the lead extends it layer by layer, see DESIGN.md).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Package name -> its folder (pyproject's package-dir).
ROOTS: dict[str, Path] = {
    "detect": REPO / "src" / "detect",
    "detect.drivers": REPO / "drivers",
}

ROOT_PACKAGE = "detect"

#: The core types every layer may use.
CORE: tuple[str, ...] = ("detect.blocks", "detect.errors", "detect.geo")

#: The base modules under every layer: core types, settings, and the small shared pieces
#: (alignment, alarms, coverage, windows, health, metrics, the DSP steps).
BASE: tuple[str, ...] = (
    *CORE,
    "detect._version",
    "detect.conf_schema",
    "detect.config",
    "detect.align",
    "detect.alarms",
    "detect.coverage",
    "detect.windows",
    "detect.health",
    "detect.metrics",
    "detect.dsp",
)

#: The GPR file readers (one module per format, chosen through detect.io.registry).
IO_READERS: tuple[str, ...] = (
    "detect.io.dzt",
    "detect.io.dt1",
    "detect.io.rd3",
    "detect.io.segy",
    "detect.io.gprmax",
    "detect.io.session",
)

#: Import direction, checked only for the modules this table lists. A module named by a
#: key, or inside the package a key names, may import among ``detect.*`` only modules that
#: one of the value's entries covers (and modules of its own key). An entry covers itself
#: and everything under it, except the root package ``detect`` (its ``__init__``: the
#: version and the public API), which covers only itself. Extend it one layer at a time:
#: a key per layer, its value the lower layers it may use.
ALLOWED_IMPORTS: dict[str, tuple[str, ...]] = {
    # A reader sees the shared base and small parsing helpers, never the registry or the
    # entry point (detect.io.formats), which are what choose and import the readers.
    # ``detect._version`` (a leaf): session.py records ``__version__``; the root package
    # ``detect`` is the public API (it imports the layers above), so readers never import it.
    **{
        reader: (*CORE, "detect.io.base", "detect.io.nmea", "detect.coverage", "detect._version")
        for reader in IO_READERS
    },
    "detect.io.base": CORE,
    "detect.io.registry": ("detect.io.base",),
    # Sources (the Source contract, replay, files, transports) sit below the engine and
    # the commands: they read files and recordings, never the pipeline that consumes them.
    "detect.sources": (
        *CORE,
        "detect.io",
        "detect.dsp",
        "detect.align",
        "detect.health",
        "detect.coverage",
        "detect.windows",
    ),
    # The layers (DESIGN.md): commands (detect.app, detect.cli, detect.api) on top, then
    # evaluation, the engine, sinks, model, sim, sources, io, and the base modules. Each
    # may import only what lies below it: never the commands, never a layer above.
    "detect.engine": (*BASE, "detect.io", "detect.sources", "detect.sim", "detect.model",
                      "detect.sinks"),
    "detect.sinks": (*BASE, "detect.io"),
    "detect.model": (*BASE, "detect.io", "detect.sources", "detect.sim"),
    "detect.sim": (*BASE, "detect.io", "detect.sources"),
    "detect.io": (*BASE,),
    "detect.dsp": (*BASE,),
    "detect.drivers": (*CORE, "detect.sources", "detect.health", "detect.sim", "detect.io"),
    **{mod: (*CORE, "detect.conf_schema") for mod in ("detect.alarms", "detect.windows")},
    **{mod: CORE for mod in ("detect.coverage", "detect.health", "detect.metrics")},
}  # fmt: skip


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    path: Path
    line: int
    in_function: bool

    def where(self) -> str:
        kind = "function-level" if self.in_function else "module-level"
        return f"{self.src} -> {self.dst} ({self.path.relative_to(REPO)}:{self.line}, {kind})"


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package roots."""
    out: dict[str, Path] = {}
    for pkg, folder in ROOTS.items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if any(not p.isidentifier() for p in parts):
                continue  # not importable (e.g. a scratch file)
            out[".".join([pkg, *parts])] = path
    return out


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _known(name: str, modules: Iterable[str]) -> str | None:
    """The module ``name`` refers to, or its nearest enclosing package we know."""
    mods = set(modules)
    while name:
        if name in mods:
            return name
        name = name.rpartition(".")[0]
    return None


def _targets(node: ast.Import | ast.ImportFrom, package: str, modules: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [t for a in node.names if (t := _known(a.name, modules))]
    if node.level:
        base_parts = package.split(".")
        base_parts = base_parts[: len(base_parts) - (node.level - 1)]
        base = ".".join(base_parts + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    out = []
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        target = sub if sub in modules else _known(base, modules)
        if target:
            out.append(target)
    return out


def import_edges(modules: dict[str, Path] | None = None) -> list[Edge]:
    """Every import of a ``detect`` module by a ``detect`` module (self-imports dropped)."""
    modules = module_files() if modules is None else modules
    names = set(modules)
    edges: list[Edge] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        package = _package_of(name, path)
        funcs: list[tuple[int, int]] = [
            (n.lineno, n.end_lineno or n.lineno)
            for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        ]
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            inside = any(a < node.lineno <= b for a, b in funcs)
            for dst in dict.fromkeys(_targets(node, package, names)):
                if dst != name:
                    edges.append(Edge(name, dst, path, node.lineno, inside))
    return edges


def find_cycles(edges: Iterable[Edge]) -> list[tuple[list[str], list[Edge]]]:
    """(modules, one shortest cycle as its edges) per strongly connected component with
    more than one module: the modules all reach one another."""
    graph: dict[str, dict[str, Edge]] = {}
    for e in edges:
        graph.setdefault(e.src, {}).setdefault(e.dst, e)
        graph.setdefault(e.dst, {})
    # Tarjan, iterative (the graph is small, but recursion depth should not be a worry).
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    sccs: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    sccs.append(sorted(comp))
    cycles = []
    for comp in sccs:
        members = set(comp)
        # Shortest cycle through the component's first module (breadth-first).
        start = comp[0]
        prev: dict[str, Edge] = {}
        frontier = [start]
        found: Edge | None = None
        while frontier and found is None:
            nxt = []
            for node in frontier:
                for dst, e in sorted(graph[node].items()):
                    if dst not in members:
                        continue
                    if dst == start:
                        found = e
                        break
                    if dst not in prev:
                        prev[dst] = e
                        nxt.append(dst)
                if found:
                    break
            frontier = nxt
        assert found is not None
        cycle = [found]
        while cycle[0].src != start:
            cycle.insert(0, prev[cycle[0].src])
        cycles.append((comp, cycle))
    return cycles


def _covers(entry: str, module: str) -> bool:
    if entry == ROOT_PACKAGE:
        return module == ROOT_PACKAGE
    return module == entry or module.startswith(entry + ".")


def direction_violations(
    edges: Iterable[Edge], allowed: dict[str, tuple[str, ...]] = ALLOWED_IMPORTS
) -> list[Edge]:
    """The edges that :data:`ALLOWED_IMPORTS` (or ``allowed``) forbids."""
    bad = []
    for e in edges:
        # The most specific key that covers the importing module rules it.
        keys = [k for k in allowed if _covers(k, e.src)]
        if not keys:
            continue
        key = max(keys, key=len)
        if _covers(key, e.dst) or any(_covers(a, e.dst) for a in allowed[key]):
            continue
        bad.append(e)
    return bad


# ------------------------------------------------------------------ the checks


def test_no_import_cycles() -> None:
    cycles = find_cycles(import_edges())
    text = "\n\n".join(
        "import cycle:\n  "
        + "\n  ".join(e.where() for e in cycle)
        + "\n  (a shortest cycle of the tangle: "
        + ", ".join(members)
        + ")"
        for members, cycle in cycles
    )
    assert not cycles, text


def test_imports_run_in_the_allowed_directions() -> None:
    bad = direction_violations(import_edges())
    assert not bad, "imports against ALLOWED_IMPORTS:\n  " + "\n  ".join(e.where() for e in bad)


def test_every_rule_names_existing_modules() -> None:
    """A misspelt key would silently check nothing."""
    names = set(module_files())
    for key, entries in ALLOWED_IMPORTS.items():
        assert any(_covers(key, m) for m in names), f"ALLOWED_IMPORTS key {key} matches no module"
        for entry in entries:
            assert any(_covers(entry, m) for m in names), f"{key}: {entry} matches no module"


# ------------------------------------------------------------------ the checker itself


def _fake_tree(tmp_path: Path, packages: set[str], files: dict[str, str]) -> dict[str, Path]:
    """Write a small tree of modules (``packages`` are folders with an ``__init__``)."""
    modules = {}
    for name, text in files.items():
        parts = name.split(".")
        if name in packages:
            path = tmp_path.joinpath(*parts, "__init__.py")
        else:
            path = tmp_path.joinpath(*parts[:-1], parts[-1] + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        modules[name] = path
    return modules


def test_checker_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    """A cycle closed only by an import inside a function, and one through a relative
    import, are both found; a package re-exporting its submodule is no cycle."""
    mods = _fake_tree(
        tmp_path,
        {"detect", "detect.io", "detect.drivers"},
        {
            "detect": "from detect.io import formats\n",
            "detect.io": "",
            "detect.io.formats": "from detect.io.base import X\n",
            "detect.io.base": "X = 1\n",
            "detect.io.dzt": "from detect.io.base import X\n",
            "detect.drivers": "",
            "detect.drivers.a": "from .b import f\n",
            "detect.drivers.b": "def f():\n    from . import a\n",
        },
    )
    edges = import_edges(mods)
    pairs = {(e.src, e.dst, e.in_function) for e in edges}
    assert ("detect.drivers.b", "detect.drivers.a", True) in pairs
    assert ("detect.drivers.a", "detect.drivers.b", False) in pairs
    assert ("detect", "detect.io.formats", False) in pairs
    cycles = find_cycles(edges)
    assert [sorted(e.src for e in c) for _, c in cycles] == [
        ["detect.drivers.a", "detect.drivers.b"]
    ]

    # A reader importing the entry point breaks the direction rule; the base does not.
    mods["detect.io.dzt"].write_text("def sniff():\n    from detect.io.formats import Y\n")
    bad = direction_violations(
        import_edges(mods), {"detect.io.dzt": ("detect.io.base",), "detect.io.base": ()}
    )
    assert [(e.src, e.dst) for e in bad] == [("detect.io.dzt", "detect.io.formats")]


@pytest.mark.parametrize(
    ("entry", "module", "covered"),
    [
        ("detect.io", "detect.io.dzt", True),
        ("detect.io", "detect.iox", False),
        ("detect", "detect", True),
        ("detect", "detect.pipeline", False),
    ],
)
def test_rule_entries_cover_their_subtree_and_the_root_only_itself(
    entry: str, module: str, covered: bool
) -> None:
    assert _covers(entry, module) is covered
