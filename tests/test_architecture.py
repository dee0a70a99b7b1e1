"""The import rules of docs/architecture.md, checked on app/'s source with `ast`.

Nothing under app/ is imported, so the check runs even while app/ does not, and it is fast.
Every import counts: at module level, inside functions, under `if TYPE_CHECKING:` — a deferred
import hides a dependency from Python's import machinery, not from the design.
"""

import ast
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Top-level modules that assemble the app: they may import any domain. Every other top-level
# module of app/ is plumbing. Every sub-package of app/ is a domain.
ASSEMBLING = frozenset(
    {"main", "cli", "demo", "models", "health", "scheduler", "metrics", "rekey", "migrations"}
)
# Domains of pages for people: they may import any domain, its API schemas included.
PAGES = frozenset({"dashboard"})
# What a domain keeps to itself: its HTTP surface.
FACING = frozenset({"router", "schemas"})


@dataclass(frozen=True, order=True)
class Import:
    importer: str
    imported: str
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.imported}"


@dataclass(frozen=True)
class Tree:
    """The imports between app/'s modules, and which part each module belongs to."""

    packages: frozenset[str]
    imports: tuple[Import, ...]

    def domain(self, module: str) -> str | None:
        parts = module.split(".")
        if len(parts) > 1 and f"app.{parts[1]}" in self.packages:
            return parts[1]
        return None

    def is_assembling(self, module: str) -> bool:
        parts = module.split(".")
        return len(parts) == 2 and self.domain(module) is None and parts[1] in ASSEMBLING

    def is_plumbing(self, module: str) -> bool:
        return self.domain(module) is None and not self.is_assembling(module)


def _module_name(path: str) -> tuple[str, bool]:
    """`app/shops/service.py` → (`app.shops.service`, False); `__init__.py` names its package."""
    parts = path.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> Iterator[str]:
    """Dotted names an import statement asks for; `from x import y` yields `x.y`."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        package = module if is_package else module.rpartition(".")[0]
        anchor = package.rsplit(".", node.level - 1)[0]
        base = f"{anchor}.{base}" if base else anchor
    yield from (f"{base}.{alias.name}" for alias in node.names)


def _resolve(target: str, known: set[str]) -> str | None:
    """The longest known module or package that `target` starts with."""
    parts = target.split(".")
    for end in range(len(parts), 0, -1):
        if (name := ".".join(parts[:end])) in known:
            return name
    return None


def parse_tree(sources: Mapping[str, str]) -> Tree:
    """Every import between modules of app/, from `{"app/x/y.py": source}`.

    A target resolves to the longest known module or package it names: `from app.shops import
    schemas` to `app.shops.schemas`, `from app.shops.schemas import ShopSettings` to the same.
    """
    names = {path: _module_name(path) for path in sources}
    known = {name for name, _ in names.values()}
    packages = {
        ".".join(name.split(".")[:i]) for name in known for i in range(1, name.count(".") + 1)
    }
    packages |= {name for name, is_package in names.values() if is_package}
    known |= packages
    imports: set[Import] = set()
    for path in sorted(sources):
        module, is_package = names[path]
        for node in ast.walk(ast.parse(sources[path], filename=path)):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in _targets(node, module, is_package):
                resolved = _resolve(target, known)
                if resolved is not None and resolved != module:
                    imports.add(Import(module, resolved, path, node.lineno))
    return Tree(frozenset(packages), tuple(sorted(imports)))


def plumbing_violations(tree: Tree) -> list[str]:
    found = []
    for imp in tree.imports:
        if not tree.is_plumbing(imp.importer):
            continue
        if (domain := tree.domain(imp.imported)) is not None:
            found.append(f"{imp} — plumbing imports no domain (here: {domain})")
        elif tree.is_assembling(imp.imported):
            found.append(f"{imp} — plumbing imports no assembling module (they import domains)")
    return found


def facing_violations(tree: Tree) -> list[str]:
    found = []
    for imp in tree.imports:
        importer, imported = tree.domain(imp.importer), tree.domain(imp.imported)
        if importer is None or imported is None or importer == imported or importer in PAGES:
            continue
        parts = imp.imported.split(".")
        if len(parts) > 2 and parts[2] in FACING:
            found.append(f"{imp} — a domain never imports another domain's {parts[2]}")
    return found


Edges = Mapping[str, Mapping[str, list[Import]]]


def _edges(tree: Tree, node_of: Mapping[str, str]) -> dict[str, dict[str, list[Import]]]:
    """node → node it imports → the imports that make the edge (for the message)."""
    edges: dict[str, dict[str, list[Import]]] = {}
    for imp in tree.imports:
        source, target = node_of.get(imp.importer), node_of.get(imp.imported)
        if source is not None and target is not None and source != target:
            edges.setdefault(source, {}).setdefault(target, []).append(imp)
    return edges


def _cycles(edges: Edges, limit: int = 50) -> list[list[str]]:
    """Elementary cycles, each starting at its smallest node, in sorted order (small graphs)."""
    found: list[list[str]] = []

    def walk(start: str, path: list[str]) -> None:
        for target in sorted(edges.get(path[-1], {})):
            if len(found) >= limit:
                return
            if target == start:
                found.append([*path, start])
            elif target > start and target not in path:
                walk(start, [*path, target])

    for start in sorted(edges):
        walk(start, [start])
    return found


def _describe(cycle: list[str], edges: Edges) -> str:
    steps = "; ".join(", ".join(map(str, edges[a][b])) for a, b in pairwise(cycle))
    return f"{' → '.join(cycle)} ({steps})"


def package_cycles(tree: Tree) -> list[str]:
    modules = {name for imp in tree.imports for name in (imp.importer, imp.imported)}
    node_of = {name: d for name in modules if (d := tree.domain(name)) is not None}
    edges = _edges(tree, node_of)
    return [f"package cycle {_describe(cycle, edges)}" for cycle in _cycles(edges)]


def _components(edges: Edges) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges.get(node, {})):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while (member := stack.pop()) != node:
                component.append(member)
            if component:
                found.append(sorted([*component, node]))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def _shortest_cycle(start: str, members: set[str], edges: Edges) -> list[str]:
    paths = {start: [start]}
    queue = [start]
    for node in queue:
        for target in sorted(edges.get(node, {})):
            if target == start:
                return [*paths[node], start]
            if target in members and target not in paths:
                paths[target] = [*paths[node], target]
                queue.append(target)
    raise AssertionError(f"{start} is in a component without a cycle through it")


def module_cycles(tree: Tree) -> list[str]:
    modules = {name for imp in tree.imports for name in (imp.importer, imp.imported)}
    edges = _edges(tree, {name: name for name in modules})
    return [
        f"module cycle among {', '.join(members)}: "
        + _describe(_shortest_cycle(members[0], set(members), edges), edges)
        for members in _components(edges)
    ]


@cache
def app_tree() -> Tree:
    files = sorted((ROOT / "app").rglob("*.py"))
    return parse_tree({p.relative_to(ROOT).as_posix(): p.read_text("utf-8") for p in files})


RULES = [plumbing_violations, facing_violations, package_cycles, module_cycles]


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.__name__)
def test_app_follows_the_import_rules(rule: Callable[[Tree], list[str]]) -> None:
    found = rule(app_tree())
    assert not found, "docs/architecture.md is broken:\n" + "\n".join(found)


# The checker checked: a fake tree with one violation of each kind, and allowed forms beside.

FAKE = {
    "app/__init__.py": "",
    "app/config.py": "import os\nfrom app import secret_file\n",
    "app/secret_file.py": "",
    "app/deps.py": "from .shops import service as shops\n",
    "app/logs.py": "def f():\n    from app.main import create_app\n",
    "app/main.py": "from app.shops.router import router\nfrom app import orders, deps\n",
    "app/a.py": "from app import b\n",
    "app/b.py": "from . import a\n",
    "app/shops/__init__.py": "",
    "app/shops/router.py": "from . import schemas, service\nfrom app.deps import X\n",
    "app/shops/schemas.py": "",
    "app/shops/service.py": "def f() -> None:\n    import app.orders.service\n",
    "app/orders/__init__.py": "",
    "app/orders/service.py": "from ..shops import schemas\nfrom app.shops.service import get\n",
    "app/orders/models.py": "from app.shops.models import Shop\n",
    "app/orders/router.py": "",
    "app/mail/__init__.py": "",
    "app/mail/message.py": "from app.orders import router as orders\n",
    "app/shops/models.py": "",
    "app/dashboard/__init__.py": "",
    "app/dashboard/pages.py": "from app.shops.schemas import A\nfrom app.orders import router\n",
}


def test_the_checker_resolves_relative_and_from_app_imports() -> None:
    pairs = {(imp.importer, imp.imported) for imp in parse_tree(FAKE).imports}
    assert {
        ("app.deps", "app.shops.service"),
        ("app.main", "app.orders"),
        ("app.main", "app.deps"),
        ("app.b", "app.a"),
        ("app.mail.message", "app.orders.router"),
        ("app.dashboard.pages", "app.orders.router"),
        ("app.shops.router", "app.shops.schemas"),
        ("app.orders.service", "app.shops.schemas"),
        ("app.orders.service", "app.shops.service"),
        ("app.shops.service", "app.orders.service"),
    } <= pairs
    assert not any(imported == "os" for _, imported in pairs)


def test_the_checker_reports_each_broken_rule() -> None:
    tree = parse_tree(FAKE)
    assert plumbing_violations(tree) == [
        "app/deps.py:1: app.deps imports app.shops.service — plumbing imports no domain "
        "(here: shops)",
        "app/logs.py:2: app.logs imports app.main — plumbing imports no assembling module "
        "(they import domains)",
    ]
    assert facing_violations(tree) == [
        "app/mail/message.py:1: app.mail.message imports app.orders.router — "
        "a domain never imports another domain's router",
        "app/orders/service.py:1: app.orders.service imports app.shops.schemas — "
        "a domain never imports another domain's schemas",
    ]
    assert package_cycles(tree) == [
        "package cycle orders → shops → orders (app/orders/models.py:1: app.orders.models "
        "imports app.shops.models, app/orders/service.py:1: app.orders.service imports "
        "app.shops.schemas, app/orders/service.py:2: app.orders.service imports "
        "app.shops.service; app/shops/service.py:2: app.shops.service imports "
        "app.orders.service)"
    ]
    assert module_cycles(tree) == [
        "module cycle among app.a, app.b: app.a → app.b → app.a (app/a.py:1: app.a imports "
        "app.b; app/b.py:1: app.b imports app.a)",
        "module cycle among app.orders.service, app.shops.service: app.orders.service → "
        "app.shops.service → app.orders.service (app/orders/service.py:2: app.orders.service "
        "imports app.shops.service; app/shops/service.py:2: app.shops.service imports "
        "app.orders.service)",
    ]


def test_the_checker_passes_a_clean_tree() -> None:
    broken = {
        "app/deps.py",
        "app/logs.py",
        "app/b.py",
        "app/orders/service.py",
        "app/mail/message.py",
    }
    clean = {path: source for path, source in FAKE.items() if path not in broken}
    clean["app/shops/service.py"] = ""
    tree = parse_tree(clean)
    assert [rule(tree) for rule in RULES] == [[], [], [], []]
