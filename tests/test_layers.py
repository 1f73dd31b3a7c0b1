"""The package's layers, checked on its source: imports point down only, and no module cycle.

dacli's import-linter contract, run by CI with the rest of the suite. Every module of ``dacli/`` is
parsed with :mod:`ast` (imports at module level and inside functions, relative imports resolved),
mapped to its layer by the first name under ``dacli``, and the test fails with a readable list on:

* an upward import: a module importing one of a higher layer (``io`` importing the engine);
* an import cycle between modules (function-level imports included: a lazy import hides a cycle
  from the file headers, not from Python);
* a library a layer must not use (the engine never imports typer, rich, tomllib or xarray);
* an import inside a function in ``build``, the engine, ``io`` or the bottom: their dependencies are
  read from the file headers (the process environment the libraries read on import is set once, by
  :mod:`dacli.__main__`; lazy imports belong in the command bodies, for an instant ``--help``).

Layers, top to bottom (a module may import its own layer or lower ones)::

    cli, __main__  ->  run  ->  build  ->  config  ->  engine  ->  io  ->  bottom

``build`` may import ``config``, not the reverse. The engine packages may import each other, with
no module cycle. ``io`` imports only the bottom, which holds plain records and errors (no JAX).
A new top-level module or package must be given a layer in :data:`LAYERS`.

The self-tests below plant an upward import and a cycle in a throw-away package and check that
both are caught, so the contract cannot pass by finding nothing.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "dacli"

ENGINE = (
    "models",
    "observations",
    "covariances",
    "methods",
    "learned",
    "adjoints",
    "diagnostics",
    "tuning",
    "parallel",
)

# Top to bottom: (layer name, first names under the package that belong to it).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cli", ("cli", "__main__")),
    ("run", ("run",)),
    ("build", ("build",)),
    ("config", ("config",)),
    ("engine", ENGINE),
    ("io", ("io",)),
    ("bottom", ("__init__", "errors", "stop_signals", "layout")),
)

# Libraries a layer never imports (by their top-level name).
INTERFACE_LIBRARIES = frozenset({"typer", "rich", "tomllib"})
FORBIDDEN_LIBRARIES: dict[str, frozenset[str]] = {
    "engine": INTERFACE_LIBRARIES | {"xarray"},
    "io": INTERFACE_LIBRARIES,
    "bottom": INTERFACE_LIBRARIES | {"xarray", "jax", "equinox", "diffrax", "optimistix", "lineax"},
}

# Layers whose modules import only at their heads (module level, ``if TYPE_CHECKING`` included).
HEAD_IMPORTS_ONLY = ("build", "engine", "io", "bottom")


@dataclass(frozen=True)
class Import:
    """One import statement's target inside the package (or a third-party library), where it is."""

    source: str  # importing module, e.g. "dacli.io.observations"
    target: str  # imported module (inside the package) or top-level library name
    path: Path
    line: int

    def where(self) -> str:
        """``dacli/io/observations.py:27``: the file from the package's folder on, and the line."""
        root = self.source.split(".")[0]
        package = next(folder for folder in self.path.parents if folder.name == root)
        return f"{self.path.relative_to(package.parent)}:{self.line}"


def module_names(package: Path) -> dict[str, Path]:
    """Every module of ``package`` by dotted name (a package by its own name, not ``.__init__``)."""
    names = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _resolved_base(node: ast.ImportFrom, module: str, path: Path) -> str:
    """The absolute module a ``from ... import`` reads from (relative levels resolved)."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    anchor = package[: len(package) - (node.level - 1)]
    return ".".join(anchor + ([node.module] if node.module else []))


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """Every import in ``path``, at any depth: package modules by dotted name, libraries by their
    top-level name."""
    root = module.split(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolved_base(node, module, path)
            if (
                base.split(".")[0] == root
            ):  # a name may be a submodule (from dacli.io import atomic)
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                    for a in node.names
                ]
            else:
                targets = [base]
        else:
            continue
        for target in targets:
            if target.split(".")[0] == root:
                while target not in modules and "." in target:  # import dacli.x.name -> dacli.x
                    target = target.rsplit(".", 1)[0]
                if target != module:
                    found.append(Import(module, target, path, node.lineno))
            elif target:
                found.append(Import(module, target.split(".")[0], path, node.lineno))
    return found


def layer_of(module: str, layers=LAYERS) -> str | None:
    parts = module.split(".")
    first = parts[1] if len(parts) > 1 else "__init__"
    return next((name for name, members in layers if first in members), None)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return components


def _cycle_path(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """One closed path through the component, from its first module back to it (breadth-first)."""
    start, members = component[0], set(component)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for successor in sorted(graph[node] & members):
                if successor == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start] if node != start else [start, start]
                if successor not in previous:
                    previous[successor] = node
                    following.append(successor)
        frontier = following
    return component + [start]


def layer_violations(package: Path, layers=LAYERS, forbidden=FORBIDDEN_LIBRARIES) -> list[str]:
    """Readable lines, one per upward import, cycle, forbidden library or module without a layer."""
    modules = module_names(package)
    order = {name: rank for rank, (name, _) in enumerate(layers)}
    problems = []
    graph: dict[str, set[str]] = {module: set() for module in modules}
    lines: dict[tuple[str, str], Import] = {}
    for module, path in modules.items():
        layer = layer_of(module, layers)
        if layer is None:
            problems.append(
                f"no layer: {module} ({path.name}); give its first name a layer in LAYERS "
                "(tests/test_layers.py)"
            )
            continue
        for found in imports_of(module, path, modules):
            if found.target not in modules:
                if found.target in forbidden.get(layer, ()):
                    problems.append(
                        f"forbidden library: {found.where()} {module} ({layer}) imports "
                            f"{found.target}"
                    )
                continue
            graph[module].add(found.target)
            lines.setdefault((module, found.target), found)
            target_layer = layer_of(found.target, layers)
            if target_layer is not None and order[target_layer] < order[layer]:
                problems.append(
                    f"upward import: {found.where()} {module} ({layer}) -> {found.target} "
                    f"({target_layer})"
                )
    for component in _cycles(graph):
        path = _cycle_path(component, graph)
        steps = ", ".join(f"{lines[a, b].where()} imports {b}" for a, b in zip(path, path[1:]))
        problems.append(f"import cycle: {' -> '.join(path)} ({steps})")
    return problems


def imports_inside_functions(package: Path, layers=LAYERS, strict=HEAD_IMPORTS_ONLY) -> list[str]:
    """Readable lines, one per import statement inside a function or class of a ``strict`` layer."""
    problems = []
    for module, path in module_names(package).items():
        if layer_of(module, layers) not in strict:
            continue
        tree = ast.parse(path.read_text(), str(path))
        nested = [
            node
            for statement in tree.body
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            for node in ast.walk(statement)
            if isinstance(node, (ast.Import, ast.ImportFrom))
        ]
        problems += [
            f"import inside a function: {Import(module, '', path, node.lineno).where()} "
            f"{ast.unparse(node)}"
            for node in nested
        ]
    return problems


def test_dacli_imports_point_down_without_cycles():
    problems = layer_violations(PACKAGE)
    assert not problems, f"{len(problems)} layer violation(s) in dacli/:\n" + "\n".join(problems)


def test_dacli_imports_at_file_heads_below_the_commands():
    problems = imports_inside_functions(PACKAGE)
    assert not problems, f"{len(problems)} import(s) hidden in functions:\n" + "\n".join(problems)


# --- self-tests: the checker catches what it must ---------------------------------------------

FAKE_LAYERS = (("top", ("front",)), ("middle", ("engine",)), ("bottom", ("__init__", "errors")))
FAKE_FORBIDDEN = {"middle": frozenset({"xarray"})}


def _fake_package(root: Path, files: dict[str, str]) -> Path:
    package = root / "fakepkg"
    for name, text in {
        "__init__.py": "",
        "errors.py": "",
        "front/__init__.py": "",
        "engine/__init__.py": "",
        **files,
    }.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    return package


def test_checker_passes_a_clean_package(tmp_path):
    package = _fake_package(
        tmp_path,
        {
            "front/app.py": "from fakepkg.engine import solver\nfrom fakepkg import errors\n",
            "engine/solver.py": "from . import helpers\nfrom ..errors import *\n",
            "engine/helpers.py": "import numpy\n\ndef lazy():\n    from fakepkg.errors import x\n",
        },
    )
    assert layer_violations(package, FAKE_LAYERS, FAKE_FORBIDDEN) == []


def test_checker_catches_an_upward_import_inside_a_function(tmp_path):
    package = _fake_package(
        tmp_path,
        {
            "front/app.py": "from fakepkg.engine import solver\n",
            "engine/solver.py": "def run():\n    from ..front import app\n",
        },
    )
    problems = layer_violations(package, FAKE_LAYERS, FAKE_FORBIDDEN)
    assert any(
        p.startswith(
            "upward import: fakepkg/engine/solver.py:2 fakepkg.engine.solver (middle) -> "
            "fakepkg.front.app (top)"
        )
        for p in problems
    ), problems


def test_checker_catches_a_cycle_hidden_by_a_lazy_import(tmp_path):
    package = _fake_package(
        tmp_path,
        {
            "engine/a.py": "from fakepkg.engine.b import thing\n",
            "engine/b.py": "import numpy\n\ndef thing():\n    from fakepkg.engine import a\n",
        },
    )
    problems = layer_violations(package, FAKE_LAYERS, FAKE_FORBIDDEN)
    assert [p for p in problems if p.startswith("import cycle:")] == [
        "import cycle: fakepkg.engine.a -> fakepkg.engine.b -> fakepkg.engine.a "
        "(fakepkg/engine/a.py:1 imports fakepkg.engine.b, "
        "fakepkg/engine/b.py:4 imports fakepkg.engine.a)"
    ], problems


def test_checker_catches_a_forbidden_library_and_a_module_without_layer(tmp_path):
    package = _fake_package(
        tmp_path,
        {
            "engine/plot.py": "import xarray as xr\n",
            "stray.py": "",
        },
    )
    problems = layer_violations(package, FAKE_LAYERS, FAKE_FORBIDDEN)
    assert (
        "forbidden library: fakepkg/engine/plot.py:1 fakepkg.engine.plot (middle) imports xarray"
        in problems
    )
    assert any(p.startswith("no layer: fakepkg.stray") for p in problems), problems


def test_checker_catches_an_import_inside_a_function(tmp_path):
    package = _fake_package(
        tmp_path,
        {
            "front/app.py": "def command():\n    from fakepkg.engine import solver\n",
            "engine/solver.py": (
                "import numpy\n\n\nclass Solver:\n    def run(self):\n        import math\n"
            ),
        },
    )
    assert imports_inside_functions(package, FAKE_LAYERS, ("middle",)) == [
        "import inside a function: fakepkg/engine/solver.py:6 import math"
    ]
