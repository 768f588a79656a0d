"""The layout shows the architecture: no import cycle, arrows point inward, small modules.

Everything here reads ``src/incidentflow`` with :mod:`ast`; nothing is imported,
so a cycle that would only bite at import time in some order is still caught.

- An import counts wherever it is written, inside functions too; an import under
  ``if TYPE_CHECKING:`` does not, as it never runs.
- ``from package import name`` is an edge to ``package.name`` when that is a
  module, else to ``package`` itself. Importing ``a.b`` also runs ``a/__init__``,
  but that implicit edge is not counted (no package could hold a module otherwise).
"""

from __future__ import annotations

import ast
import functools
import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import attrs
import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "incidentflow"
MAX_LINES = 600

#: The pure core: no I/O, and nothing from the engine or the edges.
CORE = (
    "_model",
    "_events",
    "_lifecycle",
    "_decide",
    "_policy",
    "_authz",
    "_policy_checks",
    "_policy_toml",
    "_toml",
    "_process",
    "_fields",
    "_sequences",
    "_reasons",
    "_validate",
    "exceptions",
    "_serialization",
    "commands",  # the package and everything in it
)
#: The engine and the edges, which the core must never reach.
OUTER = (
    "stores",
    "notifiers",
    "delivery",
    "config",
    "cli",
    "render",
    "collectors",
    "testing",
    "web",
    "_flow",
    "_worker",
    "_delivery",
    "_config",
    "_transfer",
    "_metrics",
    "_similar",
    "_deadlines",
)


@attrs.frozen
class Edge:
    """One import: ``source`` imports ``target`` at ``line``."""

    source: str
    target: str
    line: int


@attrs.frozen
class Module:
    """One source file: its dotted name, path, and whether it is a package's ``__init__``."""

    name: str
    path: Path
    is_package: bool

    @property
    def package(self) -> str:
        """The package a relative import with one dot starts from."""
        return self.name if self.is_package else self.name.rpartition(".")[0]


@functools.cache  # read once per process: the checks below share one parse of src
def modules(root: Path, package: str = PACKAGE) -> Mapping[str, Module]:
    """Every module under ``root / package``, by dotted name."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        found[name] = Module(name, path, is_package)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: inside functions too, not under TYPE_CHECKING."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _known(name: str, known: Mapping[str, Module]) -> str | None:
    """``name`` or its longest prefix that is a module of ours; None outside the package."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def import_edges(known: Mapping[str, Module]) -> list[Edge]:
    """Every import between our modules, with the line it is written on."""
    return list(_edges(tuple(known.values())))


@functools.cache
def _edges(known_modules: tuple[Module, ...]) -> tuple[Edge, ...]:
    known = {module.name: module for module in known_modules}
    edges = []
    for module in known_modules:
        tree = ast.parse(module.path.read_text(encoding="utf-8"), str(module.path))
        for node in _imports(tree):
            targets: list[str | None] = []
            if isinstance(node, ast.Import):
                targets = [_known(alias.name, known) for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    package = module.package.split(".")
                    anchor = ".".join(package[: len(package) - node.level + 1])
                    base = f"{anchor}.{base}" if base else anchor
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.append(full if full in known else _known(base, known))
            edges += [
                Edge(module.name, target, node.lineno)
                for target in targets
                if target is not None and target != module.name
            ]
    return tuple(edges)


def _graph(edges: Iterable[Edge]) -> dict[str, dict[str, Edge]]:
    graph: dict[str, dict[str, Edge]] = {}
    for edge in edges:
        graph.setdefault(edge.source, {}).setdefault(edge.target, edge)
    return graph


def _components(graph: Mapping[str, Mapping[str, Edge]]) -> list[list[str]]:
    """The strongly connected components (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, {}))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
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
                found.append(sorted(component))
    return found


def _path(
    graph: Mapping[str, Mapping[str, Edge]], start: str, goal: set[str], within: set[str] | None
) -> list[Edge] | None:
    """The shortest chain of imports from ``start`` to a module in ``goal`` (BFS)."""
    came: dict[str, Edge | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target, edge in sorted(graph.get(node, {}).items()):
            if within is not None and target not in within:
                continue
            if target in goal:
                chain = [edge]
                while (previous := came[edge.source]) is not None:
                    chain.append(previous)
                    edge = previous
                return chain[::-1]
            if target not in came:
                came[target] = edge
                queue.append(target)
    return None


def _show(chain: Iterable[Edge], known: Mapping[str, Module], root: Path) -> str:
    return "\n".join(
        f"    {edge.source} -> {edge.target}  "
        f"({known[edge.source].path.relative_to(root).as_posix()}:{edge.line})"
        for edge in chain
    )


def cycles(root: Path, package: str = PACKAGE) -> list[str]:
    """One import cycle per tangle of modules, each shown edge by edge."""
    known = modules(root, package)
    graph = _graph(import_edges(known))
    shown = []
    for component in _components(graph):
        members = set(component)
        if len(component) == 1 and component[0] not in graph.get(component[0], {}):
            continue
        chain = _path(graph, component[0], {component[0]}, members)
        assert chain is not None
        names = " -> ".join([component[0], *(edge.target for edge in chain)])
        shown.append(
            f"{len(component)} modules import each other, e.g. {names}:\n"
            f"{_show(chain, known, root)}"
        )
    return shown


def _under(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def core_reaching_outer(root: Path, package: str = PACKAGE) -> list[str]:
    """Each core module that reaches an outer one, with the chain of imports."""
    known = modules(root, package)
    graph = _graph(import_edges(known))
    core = [f"{package}.{name}" for name in CORE]
    outer = {name for name in known if _under(name, [f"{package}.{o}" for o in OUTER])}
    found = []
    for name in sorted(known):
        if _under(name, core):
            chain = _path(graph, name, outer, None)
            if chain is not None:
                found.append(f"{name} reaches {chain[-1].target}:\n{_show(chain, known, root)}")
    return found


# -- public names ------------------------------------------------------------------


def _isort_key(name: str) -> tuple[int, list[int | str]]:
    """The order ruff's RUF022 keeps ``__all__`` in: CONSTANTS, Classes, functions; naturally."""
    if len(name) > 1 and name.upper() == name:
        kind = 0
    elif name[:1].isupper():
        kind = 1
    else:
        kind = 2
    return kind, [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _bound_names(tree: ast.Module) -> set[str]:
    """The names a module binds at run time (top level, also inside if/try, not TYPE_CHECKING)."""
    bound: set[str] = set()
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If):
            stack.extend(node.orelse if _is_type_checking(node.test) else node.body + node.orelse)
        elif isinstance(node, ast.Try):
            stack.extend([*node.body, *node.orelse, *node.finalbody])
            for handler in node.handlers:
                stack.extend(handler.body)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound.add(alias.asname or alias.name.partition(".")[0])
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                bound.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    if "__getattr__" in bound:  # a lazy package: the names it maps count as bound
        bound.update(
            n.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str)
        )
    return bound


def _dunder_all(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            assert node.value is not None
            value = ast.literal_eval(node.value)
            return list(value)
    return None


def public_packages(root: Path = SRC, package: str = PACKAGE) -> list[Module]:
    """The packages a user may import: no part of the dotted name starts with ``_``."""
    return [
        module
        for module in modules(root, package).values()
        if module.is_package and not any(part.startswith("_") for part in module.name.split("."))
    ]


def all_problems(module: Module) -> list[str]:
    """What is wrong with the package's ``__all__``: missing, unsorted, or naming nothing."""
    tree = ast.parse(module.path.read_text(encoding="utf-8"), str(module.path))
    names = _dunder_all(tree)
    if names is None:
        return [f"{module.name} has no __all__; list its public names in one, sorted"]
    problems = []
    wanted = sorted(names, key=_isort_key)
    if names != wanted:
        problems.append(
            f"{module.name}.__all__ is not sorted (ruff check --select RUF022 --fix sorts it); "
            f"first out of place: {next(a for a, b in zip(names, wanted, strict=True) if a != b)!r}"
        )
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        problems.append(f"{module.name}.__all__ lists {duplicates} more than once")
    bound = _bound_names(tree)
    folder = module.path.parent
    missing = [
        name
        for name in names
        if name not in bound
        and not (folder / f"{name}.py").exists()
        and not (folder / name / "__init__.py").exists()
    ]
    if missing:
        problems.append(
            f"{module.name}.__all__ names {missing}, which {module.name} does not define or "
            "import: import them in its __init__.py or drop them from __all__"
        )
    return problems


# -- the checks on src -------------------------------------------------------------


class TestImportGraph:
    def test_no_cycle(self) -> None:
        """No module imports itself through others, counting imports inside functions."""
        found = cycles(SRC)
        assert not found, "import cycles among src modules:\n" + "\n".join(found)

    def test_core_imports_no_outer_module(self) -> None:
        """The core (model, events, lifecycle, commands, decide, policy...) reaches no edge."""
        found = core_reaching_outer(SRC)
        assert not found, (
            "the core imports the engine or an edge (directly or through another module); "
            "move the shared piece into the core or pass it in:\n" + "\n".join(found)
        )

    def test_every_core_module_exists(self) -> None:
        """The core list names real modules, so the check above cannot pass by a typo."""
        known = modules(SRC)
        missing = [
            name for name in CORE if not any(_under(m, [f"{PACKAGE}.{name}"]) for m in known)
        ]
        assert not missing, f"no module for core entries {missing}"

    def test_the_graph_sees_real_imports(self) -> None:
        """The facade's import of the validators is found, so an empty graph cannot pass."""
        edges = import_edges(modules(SRC))
        assert any(
            e.source == f"{PACKAGE}._validate" and e.target == f"{PACKAGE}.exceptions"
            for e in edges
        )
        assert len(edges) > 50


class TestModuleSize:
    def test_no_module_over_600_lines(self) -> None:
        """Every module fits on a few screens: at most 600 lines."""
        sizes = {
            module.name: len(module.path.read_text(encoding="utf-8").splitlines())
            for module in modules(SRC).values()
        }
        over = {name: lines for name, lines in sorted(sizes.items()) if lines > MAX_LINES}
        assert not over, f"modules over {MAX_LINES} lines (split them by concern): " + ", ".join(
            f"{name} {lines}" for name, lines in over.items()
        )


@pytest.mark.parametrize("package", public_packages(), ids=lambda module: module.name)
class TestPublicNames:
    def test_all_is_sorted_and_resolves(self, package: Module) -> None:
        """The package's __all__ exists, is sorted, and every name in it is defined or imported."""
        problems = all_problems(package)
        assert not problems, "\n".join(problems)


# -- the checker itself, on packages made up for the purpose --------------------------


def _write(root: Path, files: Mapping[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


class TestTheChecker:
    def test_finds_a_cycle_through_a_function_level_import(self, tmp_path: Path) -> None:
        """An import inside a function closes a cycle; the message shows it with lines."""
        root = _write(
            tmp_path,
            {
                "pkg/__init__.py": "",
                "pkg/a.py": "from . import b\n",
                "pkg/b.py": "def late():\n    from .c import thing\n    return thing\n",
                "pkg/c.py": "import pkg.a\nthing = 1\n",
            },
        )
        (found,) = cycles(root, "pkg")
        assert "pkg.a -> pkg.b -> pkg.c -> pkg.a" in found
        assert "pkg/b.py:2" in found

    def test_type_checking_imports_do_not_count(self, tmp_path: Path) -> None:
        """An import only for annotations never runs, so it closes no cycle."""
        root = _write(
            tmp_path,
            {
                "pkg/__init__.py": "",
                "pkg/a.py": "from .b import B\n",
                "pkg/b.py": (
                    "from typing import TYPE_CHECKING\n"
                    "if TYPE_CHECKING:\n    from .a import A\nelse:\n    pass\nclass B: ...\n"
                ),
            },
        )
        assert cycles(root, "pkg") == []

    def test_relative_imports_from_a_package_init(self, tmp_path: Path) -> None:
        """``from .. import x`` in a subpackage's __init__ resolves to the right module."""
        root = _write(
            tmp_path,
            {
                "pkg/__init__.py": "",
                "pkg/x.py": "from .sub import y\n",
                "pkg/sub/__init__.py": "from .. import x\ny = 1\n",
            },
        )
        edges = {(e.source, e.target) for e in import_edges(modules(root, "pkg"))}
        assert edges == {("pkg.x", "pkg.sub"), ("pkg.sub", "pkg.x")}

    def test_unsorted_and_unknown_names_in_all(self, tmp_path: Path) -> None:
        """__all__ out of order, or naming something never bound, is reported."""
        root = _write(
            tmp_path,
            {
                "pkg/__init__.py": (
                    "from ._impl import Thing, make\n"
                    "VERSION = '1'\n"
                    "__all__ = ['Thing', 'VERSION', 'make', 'ghost', 'sub']\n"
                ),
                "pkg/sub.py": "",
            },
        )
        (package,) = public_packages(root, "pkg")
        problems = "\n".join(all_problems(package))
        assert "not sorted" in problems
        assert "'ghost'" in problems
        assert "'sub'" not in problems.split("names", 1)[1]
