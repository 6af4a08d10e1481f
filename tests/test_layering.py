"""The package's layers (README "Architecture", shared/docs/architecture.md), checked on the AST.

Every import statement of ``mast_cli`` is read, those inside functions included, and:

* no module imports from a higher layer;
* the module graph has no cycle;
* no private name (``_x``) or private module is imported from another subpackage;
* no module outside ``core/objective.py`` reaches into an objective's private state;
* nothing inside ``mast_cli`` imports a deprecated compatibility alias.

``test_scan_catches_planted_violations`` plants one of each in a copy of the package and
checks that the scan reports it (a check that cannot fail is a defect).
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "mast_cli"

#: Layer of each subpackage or top-level module (a module is looked up by its longest
#: prefix).  A new module must be placed here.
LAYERS = {
    "mast_cli": 0,                  # the root package (version only)
    "mast_cli.io": 0,
    "mast_cli.core": 1,
    "mast_cli.solvers": 2,
    "mast_cli.algorithms": 2,
    "mast_cli.reference": 3,
    "mast_cli.constants": 3,
    "mast_cli.shifts": 3,
    "mast_cli.experiments": 4,
    "mast_cli.plotting": 4,
    "mast_cli.verify": 5,
    "mast_cli.cli": 6,
}

#: Deprecated aliases of moved modules, kept for one release for tests, benchmarks and
#: users; nothing inside mast_cli may import them.
COMPAT = {"mast_cli.data", "mast_cli.errors", "mast_cli.store", "mast_cli.sketches", "mast_cli.theory",
          "mast_cli.objectives", "mast_cli.pruning", "mast_cli.delta", "mast_cli.suite",
          "mast_cli.experiments_alg23"}


def module_name(root, path):
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(root, name):
    """True when ``name`` (dotted, starting with the package name) is a module or package."""
    rel = Path(*name.split(".")[1:]) if "." in name else Path()
    base = root / rel
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def layer_of(name):
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        key = ".".join(parts[:k])
        if key in LAYERS:
            return LAYERS[key]
    return None


def subpackage(name):
    """'mast_cli.core.pool' -> 'mast_cli.core'; a top-level module is its own subpackage."""
    return ".".join(name.split(".")[:2])


def imports_of(root, path):
    """(line, imported module, imported names) of every import in a file, lazy ones included."""
    me = module_name(root, path)
    pkg = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((node.lineno, mod, [a.name for a in node.names]))
    return me, out


#: The modules that own an objective's state (its data term and the composition).
OBJECTIVE_MODULES = ("core/objective.py", "core/datafit.py")


def private_members(root):
    """The private attributes and methods of the objective and datafit classes (``self._x``)."""
    names = set()
    for node in (n for m in OBJECTIVE_MODULES for n in ast.walk(ast.parse((root / m).read_text(encoding="utf-8")))):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                names.add(node.attr)
        if isinstance(node, ast.FunctionDef) and node.name.startswith("_") and not node.name.startswith("__"):
            names.add(node.name)
    return names


def scan(root):
    """All violations of the layering rules in the package at ``root``, as strings."""
    pkg = root.name
    files = sorted(root.rglob("*.py"))
    graph, bad = {}, []
    hidden = private_members(root)
    for path in files:
        me, imps = imports_of(root, path)
        if me in COMPAT:
            continue
        mine = layer_of(me)
        if mine is None:
            bad.append(f"{me}: not in LAYERS (tests/test_layering.py); place it in a layer")
            continue
        ancestors = {".".join(me.split(".")[:k]) for k in range(1, me.count(".") + 1)}
        edges = graph.setdefault(me, set())
        for line, mod, names in imps:
            if not (mod == pkg or mod.startswith(pkg + ".")):
                continue
            targets = [mod] + [f"{mod}.{n}" for n in names if is_module(root, f"{mod}.{n}")]
            for target in targets:
                where = f"{me}:{line} imports {target}"
                if target in COMPAT:
                    bad.append(f"{where}: a deprecated alias; import the module it points to")
                    continue
                if target in ancestors or target == me:
                    continue
                edges.add(target)
                theirs = layer_of(target)
                if theirs is not None and theirs > mine:
                    bad.append(f"{where}: upward (layer {mine} imports layer {theirs})")
                if subpackage(target) != subpackage(me):
                    if any(p.startswith("_") and not p.startswith("__") for p in target.split(".")):
                        bad.append(f"{where}: a private module of another subpackage")
            if subpackage(mod) != subpackage(me):
                for n in names:
                    if n.startswith("_") and not n.startswith("__"):
                        bad.append(f"{me}:{line} imports private name {n} from {mod}")
        if me not in (f"{pkg}.core.objective", f"{pkg}.core.datafit"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Attribute) and node.attr in hidden and not (
                        isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                    bad.append(f"{me}:{node.lineno} reaches into an objective's private {node.attr}")
    bad += [f"import cycle: {' -> '.join(c)}" for c in cycles(graph)]
    return bad


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_layers_hold():
    assert scan(ROOT) == []


def test_every_import_is_seen(tmp_path):
    """The scan reads the graph it claims to: known edges, lazy ones included, are present."""
    _, imps = imports_of(ROOT, ROOT / "cli" / "info.py")
    assert ("mast_cli.core.objective", ["make_objective"]) in [(m, n) for _, m, n in imps]  # lazy import


@pytest.mark.parametrize("plant, expected", [
    ("core/kernels.py", "upward"),                 # core imports experiments, lazily
    ("io/store.py", "import cycle"),               # io.store <-> io.outputs
    ("experiments/delta.py", "private name"),      # a private name from another subpackage
    ("reference.py", "reaches into"),              # obj._gram
    ("plotting.py", "deprecated alias"),           # an old module path
])
def test_scan_catches_planted_violations(tmp_path, plant, expected):
    copy = tmp_path / "mast_cli"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    code = {
        "upward": "\n\ndef _planted():\n    from ..experiments import run  # noqa\n",
        "import cycle": "\n\ndef _planted():\n    from .outputs import json_default  # noqa\n",
        "private name": "\n\ndef _planted():\n    from ..io.outputs import _git_info  # noqa\n",
        "reaches into": "\n\ndef _planted(obj):\n    return obj._gram\n",
        "deprecated alias": "\n\ndef _planted():\n    from .data import load_dataset  # noqa\n",
    }[expected]
    if expected == "import cycle":
        (copy / "io" / "outputs.py").write_text((copy / "io" / "outputs.py").read_text()
                                                + "\n\ndef _back():\n    from .store import unit_key  # noqa\n")
    target = copy / plant
    target.write_text(target.read_text() + code)
    found = scan(copy)
    assert any(expected in b for b in found), found
