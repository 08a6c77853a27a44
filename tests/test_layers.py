"""The core's import floors, and the plugin boundary.

Walks every module of ``nilearn_vlm`` (tests excluded) with :mod:`ast` and
collects its imports of core modules, wherever they are written (module
level, inside functions, under ``if TYPE_CHECKING``):

- ``import nilearn_vlm.x.y`` and ``from nilearn_vlm.x import y`` (``y`` a
  submodule counts as importing that submodule), relative imports included;
- ``importlib.import_module("nilearn_vlm.x")`` with a literal name;
- any other string literal that is exactly a core module's name: the lazy
  table of ``nilearn_vlm/__init__.py``, the CLI's subcommand table;
- ``nilearn_vlm.Name`` where ``Name`` is no submodule (after ``import
  nilearn_vlm.x``, ``nilearn_vlm.Results`` reaches the package facade).

Importing ``nilearn_vlm.x.y`` first runs the package ``nilearn_vlm.x``: the
cycle check counts that edge too. The floors and the other rules are the
table of :mod:`nilearn_vlm._layers` (also the source of the docs'
architecture page). The checks run on the real tree and, to show they can
fail, on a small tree with one planted violation of each kind.
"""

import ast
import functools
import textwrap
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

import pytest

from nilearn_vlm._layers import (
    DATA_PATH,
    FACADE,
    FLOORS,
    ONLY_IMPORTED_BY,
    architecture_tables,
    floor_names,
    floor_of,
)

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    path: str
    line: int
    how: str

    def __str__(self):
        return f"{self.source} -> {self.target} ({self.path}:{self.line}, {self.how})"


def core_modules(root=ROOT):
    """Dotted name -> file of every core module, tests excluded."""
    modules = {}
    for path in sorted((root / FACADE).rglob("*.py")):
        rel = path.relative_to(root)
        if "tests" in rel.parts or path.name == "conftest.py":
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _in_core(name):
    return name == FACADE or name.startswith(FACADE + ".")


def _from_base(module, is_package, node):
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_import_module(func):
    return (isinstance(func, ast.Name) and func.id == "import_module") or (
        isinstance(func, ast.Attribute) and func.attr == "import_module"
    )


def imports_of(module, path, modules, root=ROOT):
    """Every import of a core module made by one module (see the module docstring)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    rel = path.relative_to(root).as_posix()
    is_package = path.name == "__init__.py"
    found = {}

    def add(target, node, how):
        found.setdefault((target, node.lineno), Import(module, target, rel, node.lineno, how))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _in_core(alias.name):
                    add(alias.name, node, "import")
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(module, is_package, node)
            if not _in_core(base):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                add(sub if sub in modules else base, node, "relative import" if node.level else "from-import")
        elif isinstance(node, ast.Call) and _is_import_module(node.func) and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and _in_core(arg.value):
                add(arg.value, node, "import_module")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value != FACADE and node.value in modules:
                add(node.value, node, "module named in a string")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == FACADE:
            if f"{FACADE}.{node.attr}" not in modules:
                add(FACADE, node, f"{FACADE}.{node.attr}")
    return sorted(found.values(), key=lambda i: (i.line, i.target))


def import_graph(root=ROOT):
    modules = core_modules(root)
    return modules, {m: imports_of(m, p, modules, root) for m, p in modules.items()}


def _packages_run(source, target):
    """Packages that importing ``target`` runs first (below the facade, not already running for ``source``)."""
    parts = target.split(".")
    running = {".".join(source.split(".")[:i]) for i in range(1, source.count(".") + 2)}
    return [".".join(parts[:i]) for i in range(2, len(parts)) if ".".join(parts[:i]) not in running]


def _edges(modules, graph):
    """module -> {module it runs on import: why (the import, and the package it runs)}."""
    edges = {m: {} for m in modules}
    for m, imports in graph.items():
        for imp in imports:
            edges[m].setdefault(imp.target, str(imp))
            for package in _packages_run(m, imp.target):
                edges[m].setdefault(package, f"{imp}, which runs the package {package}")
    for m in edges:
        edges[m] = {t: why for t, why in edges[m].items() if t != m and t in modules}
    return edges


def _components(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
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

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def _one_cycle(edges, comp):
    start = min(comp)
    paths = {start: []}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w, imp in sorted(edges[v].items()):
            if w == start:
                return [*paths[v], imp]
            if w in comp and w not in paths:
                paths[w] = [*paths[v], imp]
                queue.append(w)
    raise AssertionError("a component without a cycle")  # pragma: no cover


def cycles(modules, graph):
    edges = _edges(modules, graph)
    return ["\n    ".join(_one_cycle(edges, comp)) for comp in _components(edges)]


def facade_imports(graph):
    return [f"{imp}: import the submodule that defines the name"
            for m, imports in graph.items() if m != FACADE for imp in imports if imp.target == FACADE]


def upward_imports(graph):
    rank = {name: i for i, name in enumerate(floor_names())}
    found = []
    for m, imports in graph.items():
        source = floor_of(m)
        for imp in imports:
            target = floor_of(imp.target)
            if source and target and rank[target] > rank[source]:
                found.append(f"{imp}: the {source} floor imports the {target} floor")
    return found


def restricted_imports(graph):
    found = []
    for m, imports in graph.items():
        inside = m.split(".", 1)[1] if "." in m else ""
        for imp in imports:
            parts = imp.target.split(".")
            if len(parts) < 2 or parts[1] not in ONLY_IMPORTED_BY or inside.split(".")[0] == parts[1]:
                continue
            allowed = ONLY_IMPORTED_BY[parts[1]]
            if not any(inside == a or inside.startswith(a + ".") for a in allowed):
                found.append(f"{imp}: only {', '.join(allowed) or 'tests, docs and plugins'} may import {parts[1]}")
    return found


def unplaced_modules(modules, graph):
    found = [f"{m}: not on any floor of nilearn_vlm/_layers.py" for m in modules
             if m != FACADE and floor_of(m) is None]
    found += [f"{FACADE}.{m} (listed on the {name} floor) does not exist" for name, _, members in FLOORS
              for m in members if f"{FACADE}.{m}" not in modules]
    found += [f"{imp}: no such module" for imports in graph.values() for imp in imports
              if imp.target not in modules]
    return found


@functools.cache
def import_graph_cache():
    """The real tree's graph, walked once per session."""
    return import_graph()


def _report(found):
    return "\n  " + "\n  ".join(found)


# ---------------------------------------------------------------------------
# the core as it is


def test_every_core_module_is_on_a_floor():
    found = unplaced_modules(*import_graph_cache())
    assert not found, _report(found)
    placed = [m for _, _, members in FLOORS for m in members]
    assert len(placed) == len(set(placed)), "a module is on two floors"
    assert set(ONLY_IMPORTED_BY) <= set(placed)


def test_no_import_cycles():
    found = cycles(*import_graph_cache())
    assert not found, "import cycles:" + _report(found)


def test_nobody_imports_the_facade():
    found = facade_imports(import_graph_cache()[1])
    assert not found, _report(found)


def test_no_import_of_a_higher_floor():
    found = upward_imports(import_graph_cache()[1])
    assert not found, _report(found)


def test_restricted_modules_are_imported_by_their_users_only():
    found = restricted_imports(import_graph_cache()[1])
    assert not found, _report(found)


def test_the_walk_sees_every_kind_of_import():
    """Each kind of import the module docstring names is found in the real tree."""
    _, graph = import_graph_cache()
    targets = {(m, imp.target, imp.how) for m, imports in graph.items() for imp in imports}
    # the facade's lazy table and the CLI's subcommand table
    assert (FACADE, f"{FACADE}.extraction", "module named in a string") in targets
    assert ("nilearn_vlm.cli", "nilearn_vlm.cli.demo", "module named in a string") in targets
    # function-local imports (the CLI commands import the library when they run)
    assert any(m == "nilearn_vlm.cli.demo" and t == "nilearn_vlm.demo" for m, t, _ in targets)
    assert sum(len(imports) for imports in graph.values()) > 200


# ---------------------------------------------------------------------------
# plugins and example code import the public API only

PUBLIC_USERS = sorted(
    p for pattern in ("plugins/*/**/*.py", "docs/plugin-example/**/*.py", "docs/examples/*.py")
    for p in ROOT.glob(pattern) if "build" not in p.relative_to(ROOT).parts
)


def _private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_core_imports(path, modules, root=ROOT):
    """Imports of private core modules or names in one file of a plugin or of the docs."""
    found = []
    rel = path.relative_to(root).as_posix()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        pairs = []
        if isinstance(node, ast.Import):
            pairs = [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            pairs = [(node.module, alias.name) for alias in node.names]
        for module, name in pairs:
            if not _in_core(module):
                continue
            where = f"{rel}:{node.lineno}"
            if any(_private(p) for p in module.split(".")):
                found.append(f"{where}: imports the private module {module}")
            elif name is not None and f"{module}.{name}" not in modules:
                public = getattr(import_module(module), "__all__", None)
                if _private(name) or (public is not None and name not in public):
                    found.append(f"{where}: imports {name} from {module}, which does not export it (__all__)")
    return found


def test_plugins_and_examples_import_the_public_core_api_only():
    assert len(PUBLIC_USERS) > 30
    modules, _ = import_graph_cache()
    found = [f for path in PUBLIC_USERS for f in private_core_imports(path, modules)]
    assert not found, "make the name public (and document it) or use a public one:" + _report(found)


# ---------------------------------------------------------------------------
# the checks fail on a tree with planted violations

PLANTED = {
    "__init__.py": '_LAZY = {"VoxelGLM": "nilearn_vlm.glm"}\n',
    "units/__init__.py": "from nilearn_vlm.units._names import name\n",
    "units/_names.py": """
        def name():
            from ..report import render  # function-local, relative, two floors up
        """,
    "spaces/__init__.py": "from nilearn_vlm.spaces._mask import mask\n",
    "spaces/_mask.py": "import nilearn_vlm.units._names\n",
    "adapters.py": "from nilearn_vlm.spaces._mask import mask  # runs spaces/__init__\n",
    "report/__init__.py": """
        from nilearn_vlm.units import name
        from nilearn_vlm import VoxelGLM
        """,
    "glm.py": "",
    "stats.py": "from nilearn_vlm.nowhere import thing\n",
    "maps.py": "import nilearn_vlm.units\n\nFIT = nilearn_vlm.VoxelEncoder\n",
    "cli.py": """
        import importlib

        def data():
            return importlib.import_module("nilearn_vlm.datasets")
        """,
    "datasets/__init__.py": "from nilearn_vlm import testing  # testing: only the demo\n",
    "testing.py": "",
    "demo.py": "from nilearn_vlm import datasets, testing  # both: yes\n",
    "newthing.py": "",
}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("planted")
    for rel, text in PLANTED.items():
        path = root / FACADE / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return import_graph(root)


def test_planted_imports_are_found(planted):
    _, graph = planted
    hows = {(imp.source, imp.target, imp.how) for imports in graph.values() for imp in imports}
    assert (FACADE, "nilearn_vlm.glm", "module named in a string") in hows
    assert ("nilearn_vlm.units._names", "nilearn_vlm.report", "relative import") in hows
    assert ("nilearn_vlm.cli", "nilearn_vlm.datasets", "import_module") in hows
    assert ("nilearn_vlm.demo", "nilearn_vlm.testing", "from-import") in hows


def test_planted_cycles_are_found(planted):
    found = cycles(*planted)
    assert len(found) == 1
    # units -> report -> units, and spaces._mask -> units._names -> report -> units/__init__ ...;
    # adapters -> spaces (package run) is no cycle
    for module in ("nilearn_vlm.units._names", "nilearn_vlm.report"):
        assert module in found[0]
    modules, graph = planted
    comps = _components(_edges(modules, graph))
    assert comps == [{"nilearn_vlm.units", "nilearn_vlm.units._names", "nilearn_vlm.report"}]


def test_a_cycle_through_a_package_init_is_found(tmp_path):
    files = {
        "__init__.py": "",
        "units/__init__.py": "from nilearn_vlm.units._names import name\n",
        "units/_names.py": "from nilearn_vlm.spaces._mask import mask\n",
        "spaces/__init__.py": "from nilearn_vlm.spaces._mask import mask\nfrom nilearn_vlm.spaces._io import io\n",
        "spaces/_mask.py": "",
        "spaces/_io.py": "from nilearn_vlm.units._names import name\n",
    }
    for rel, text in files.items():
        (tmp_path / FACADE / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / FACADE / rel).write_text(text)
    found = cycles(*import_graph(tmp_path))
    assert len(found) == 1 and "nilearn_vlm.spaces._io -> nilearn_vlm.units._names" in found[0]


def test_planted_floor_violations_are_found(planted):
    modules, graph = planted
    up = upward_imports(graph)
    assert up == [
        "nilearn_vlm.units._names -> nilearn_vlm.report (nilearn_vlm/units/_names.py:3, relative import): "
        "the ground floor imports the surface floor"
    ]
    assert facade_imports(graph) == [
        "nilearn_vlm.maps -> nilearn_vlm (nilearn_vlm/maps.py:3, nilearn_vlm.VoxelEncoder): "
        "import the submodule that defines the name",
        "nilearn_vlm.report -> nilearn_vlm (nilearn_vlm/report/__init__.py:3, from-import): "
        "import the submodule that defines the name",
    ]
    restricted = restricted_imports(graph)
    assert len(restricted) == 2
    assert "nilearn_vlm.datasets -> nilearn_vlm.testing" in restricted[1]
    assert "nilearn_vlm.cli -> nilearn_vlm.datasets" in restricted[0]
    assert [m for m in modules if m != FACADE and floor_of(m) is None] == ["nilearn_vlm.newthing"]
    unplaced = unplaced_modules(modules, graph)
    assert f"{FACADE}.extraction (listed on the estimators floor) does not exist" in unplaced
    assert "nilearn_vlm.stats -> nilearn_vlm.nowhere (nilearn_vlm/stats.py:1, from-import): no such module" in unplaced


def test_private_imports_of_a_plugin_are_found(tmp_path):
    modules, _ = import_graph_cache()
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        "from nilearn_vlm.adapters._base import BaseAdapter\n"
        "from nilearn_vlm.adapters import _jsonable, BaseAdapter, pool\n"
        "from nilearn_vlm.units import names_of_nothing\n"
        "import nilearn_vlm._cache\n"
        "from nilearn_vlm import hookimpl, __version__, testing\n"
    )
    found = [f.split(": ", 1)[1] for f in private_core_imports(plugin, modules, root=tmp_path)]
    assert found == [
        "imports the private module nilearn_vlm.adapters._base",
        "imports _jsonable from nilearn_vlm.adapters, which does not export it (__all__)",
        "imports names_of_nothing from nilearn_vlm.units, which does not export it (__all__)",
        "imports the private module nilearn_vlm._cache",
    ]


# ---------------------------------------------------------------------------
# the architecture page


def test_architecture_page_is_generated_from_the_table():
    page = (ROOT / "docs" / "architecture.md").read_text()
    assert "<!-- floors -->" in page and "<!-- data-path -->" in page
    assert "\narchitecture\n" in (ROOT / "docs" / "index.md").read_text()
    assert "_architecture_tables" in (ROOT / "docs" / "conf.py").read_text()
    tables = architecture_tables()
    for name, _, members in FLOORS:
        assert f"**{name}**" in tables
        assert all(f"`{m}`" in tables for m in members)
    assert tables.index("**surface**") < tables.index("**ground**")


@pytest.mark.parametrize("step", DATA_PATH, ids=[module for _, module, _ in DATA_PATH])
def test_data_path_names_exist(step):
    """Each public name the data-path table shows is defined where it says."""
    _, module, names = step
    mod = import_module(f"{FACADE}.{module}")
    assert floor_of(mod.__name__) is not None
    for name in names:
        assert hasattr(mod, name), f"{mod.__name__} has no {name}: update DATA_PATH in nilearn_vlm/_layers.py"
    assert [module for _, module, _ in DATA_PATH].count(module) == 1


@pytest.mark.parametrize("module", ["nilearn_vlm._layers", "nilearn_vlm.adapters._base", "nilearn_vlm.networks._base"])
def test_examples_run(module):
    """The table's examples, and those of the names made public for the plugins (params_digest, make_lookup)."""
    import doctest

    result = doctest.testmod(import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
