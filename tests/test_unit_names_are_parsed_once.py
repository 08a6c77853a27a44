"""Unit names are written and read in one place: ``nilearn_vlm.units``.

Walks the source of the core, the built-in plugins and the documentation's
Python files (tests excluded: they build expected names independently) with
``ast`` and fails on

- a ``split``/``rsplit``/``partition``/``rpartition`` call (``re.split``
  included) whose separator contains ``"."``,
- a ``"." .join(...)`` call,
- an f-string made only of three or more fields joined by ``"."`` (a site or
  unit name written by hand),
- any use of ``parse_unit_name``,

outside ``nilearn_vlm/units/``, unless the call is listed below with what it
splits (none of them is a unit name). Consumers read the units table
(``stream``, ``layer``, ``kind``, ``site``, ``depth`` columns) instead.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: (file, source of the object split): why it is not a unit name
NOT_UNIT_NAMES = {
    ("nilearn_vlm/stimuli/_images.py", "type(value).__module__"): "a Python module path",
    ("nilearn_vlm/adapters/_pooling.py", "type(x).__module__"): "a Python module path",
    ("nilearn_vlm/stimuli/_hcp.py", "s"): "a WordNet synset name (dog.n.01)",
    ("nilearn_vlm/plugins.py", "attr"): "the object path of an entry point",
    ("nilearn_vlm/datasets/_images.py", 'filename.rsplit("/", 1)[-1]'): "a file name and its extension",
    ("nilearn_vlm/study/_bids.py", "Path(filename).name"): "a BIDS file name and its extension",
    ("plugins/nilearn-vlm-meter/nilearn_vlm_meter/checkpoint.py", "k"): "a torch state-dict key",
    ("nilearn_vlm/settings/_schema.py", "text"): "a settings target 'role.parameter'",
    ("nilearn_vlm/_layers.py", "module"): "a Python module path",
    ("nilearn_vlm/_store.py", "module"): "a Python module path",
    ("nilearn_vlm/spaces/_tr.py", "key"): "a settings key (section.key)",
}
#: the one re-export of the parser, kept for plugins written against the adapter contract
REEXPORTS = {"nilearn_vlm/adapters/__init__.py"}
_SPLITS = {"split", "rsplit", "partition", "rpartition"}


def _sources():
    files = [p for p in (ROOT / "nilearn_vlm").rglob("*.py") if "units" not in p.relative_to(ROOT).parts[1:2]]
    files += list((ROOT / "plugins").glob("*/nilearn_vlm_*/**/*.py"))
    files += list((ROOT / "docs").rglob("*.py"))
    return sorted(p for p in files if "tests" not in p.relative_to(ROOT).parts and p.name != "conf.py")


def _const(node):
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _separator(call):
    for kw in call.keywords:
        if kw.arg in ("sep", "pattern"):
            return _const(kw.value)
    return _const(call.args[0]) if call.args else None


def _is_dotted_fstring(node):
    if not isinstance(node, ast.JoinedStr) or len(node.values) < 5:
        return False
    for i, part in enumerate(node.values):
        if i % 2 == 0 and not isinstance(part, ast.FormattedValue):
            return False
        if i % 2 == 1 and _const(part) != ".":
            return False
    return len(node.values) % 2 == 1


def violations(path, text):
    rel = path.relative_to(ROOT).as_posix()
    found = []
    for node in ast.walk(ast.parse(text)):
        where = f"{rel}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            attr, owner = node.func.attr, node.func.value
            if attr in _SPLITS:
                sep = _separator(node)
                receiver = ast.get_source_segment(text, owner)
                if sep is not None and "." in sep and (rel, receiver) not in NOT_UNIT_NAMES:
                    found.append(f"{where}: {receiver}.{attr}({sep!r}) splits a dotted name by hand")
            if attr == "join" and _const(owner) is not None and "." in _const(owner):
                found.append(f"{where}: {_const(owner)!r}.join(...) builds a dotted name by hand")
        if _is_dotted_fstring(node):
            found.append(f"{where}: {ast.get_source_segment(text, node)} writes a site or unit name by hand")
        name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
        if isinstance(node, ast.alias):
            name = node.name
        if name == "parse_unit_name" and rel not in REEXPORTS:
            found.append(f"{where}: parse_unit_name used outside nilearn_vlm.units; read the units table")
    return found


def test_the_check_catches_hand_parsing():
    probe = ROOT / "nilearn_vlm" / "probe.py"
    code = (
        "stream, layer, kind, i = name.split('.')\n"
        "site = name.rsplit('.', 1)[0]\n"
        "parts = re.split(r'\\.', name)\n"
        "label = '.'.join(parts[:2])\n"
        "unit = f'{stream}.{layer}.{kind}.{i}'\n"
        "from nilearn_vlm.units import parse_unit_name\n"
        "ok = text.split(';'), f'{a}.{b}', name.split()\n"
    )
    got = violations(probe, code)
    assert sorted(int(g.split(":")[1]) for g in got) == [1, 2, 3, 4, 5, 6], got


def test_no_module_outside_units_parses_or_writes_unit_names():
    sources = _sources()
    rels = {p.relative_to(ROOT).as_posix() for p in sources}
    # the walk covers the core, every built-in plugin and the docs, and skips the units package
    assert {"nilearn_vlm/results.py", "nilearn_vlm/pipeline.py", "docs/examples/atoms_glm_networks.py",
            "plugins/nilearn-vlm-polarity/nilearn_vlm_polarity/_analysis.py"} <= rels
    assert not any(r.startswith("nilearn_vlm/units/") or "/tests/" in r for r in rels)
    found = []
    for path in sources:
        found += violations(path, path.read_text())
    assert not found, "hand-written unit names (use nilearn_vlm.units):\n" + "\n".join(found)


def test_every_allowed_split_still_exists():
    # a stale entry would let a unit-name split in under an old name
    seen = set()
    for path in _sources():
        text = path.read_text()
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _SPLITS:
                seen.add((rel, ast.get_source_segment(text, node.func.value)))
    assert set(NOT_UNIT_NAMES) <= seen, set(NOT_UNIT_NAMES) - seen
