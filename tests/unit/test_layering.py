"""The layering of DESIGN.md ("Dependency rules"), checked over the import graph.

Drawn from the source with `ast` (every import, lazy ones inside functions too), nothing is
imported. From the bottom up:

- pure modules (contracts, planning, status, errors, messages, naming, records, render, limits)
  import only the standard library, pydantic and other pure modules: no I/O, no framework;
- workflows import, transitively, only the standard library, temporalio, pydantic and pure
  parts of greenshift (activity input shapes included): never the registry's SQL, nor I/O;
  nothing they reach calls `open`, `input` or `breakpoint` (the sandbox leaves builtins alone);
- activities never import workflows, nor the API or the CLI;
- the serving package (`greenshift/fleet/serving/`) imports nothing of greenshift;
- nothing below the API imports it (the API is a door, not a library), and the product package
  never imports tests or bench.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("greenshift", "activities", "workflows", "worker")
PURE = (
    "greenshift.contracts",
    "greenshift.planning",
    "greenshift.status",
    "greenshift.errors",
    "greenshift.messages",
    "greenshift.naming",
    "greenshift.names",
    "greenshift.registry.records",
    "greenshift.render",
    "greenshift.limits",
)
# botocore: the contracts audit SageMaker's own service model (data files, no network).
PURE_THIRD_PARTY = {"pydantic", "pydantic_core", "regex", "typing_extensions", "botocore"}
# Settings is configuration (a pydantic-settings shape): pure rules may take it as input.
PURE_MAY_USE = (*PURE, "greenshift.settings")
WORKFLOW_THIRD_PARTY = PURE_THIRD_PARTY | {"temporalio"}
# Where the workflows may reach in greenshift and activities: data shapes and names only.
WORKFLOW_MAY_REACH = (
    *PURE,
    "greenshift.groups.model",
    "greenshift.hosts.messages",  # the host activities' input shapes (pydantic only)
    "greenshift.hosts.replacement",  # the replacement's backoff and event words (pure)
    "greenshift.metrics.verdicts",  # the judging activity's shapes and the bake rule (pure)
    "greenshift.ports",
    "greenshift.registry.api",
    "greenshift.contracts",
    "activities.models",
    "activities.groups",
    "activities.errors",
)
# Above the API: the processes that run it (the test harness lives in tests/harness/).
MAY_IMPORT_API = (
    "greenshift.api",
    "greenshift.cli",
    "greenshift.supervisor",
    "greenshift.demo",
    "greenshift.simulate",
    "greenshift.__main__",
)


def _within(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def graph() -> dict[str, frozenset[str]]:
    """Module -> the modules it names (for `from a import b`: `a.b` when that is a module of
    ours, else `a`). A package's `__init__` that runs on the way is not counted: the rules are
    about what each module asks for."""
    modules = {_module_of(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    edges: dict[str, frozenset[str]] = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                names = [f"{base}.{a.name}" for a in node.names]
                found.update(n for n in names if n in modules)
                if not all(n in modules for n in names):
                    found.add(base)
        edges[module] = frozenset(found)
    return edges


def _ours(module: str) -> bool:
    return module.split(".")[0] in PACKAGES


def _third_party(module: str) -> bool:
    top = module.split(".")[0]
    return not _ours(module) and top not in sys.stdlib_module_names and top != "__future__"


def _reach(start: Iterable[str]) -> set[str]:
    edges = graph()
    seen: set[str] = set()
    todo = [m for m in start]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(t for t in edges.get(module, ()) if t in edges)
    return seen


def _violations(sources: Iterable[str], bad: object) -> list[tuple[str, str]]:
    edges = graph()
    return sorted((s, t) for s in sources for t in edges[s] if bad(s, t))  # type: ignore[operator]


def test_the_graph_holds_the_layers_it_reasons_about() -> None:
    modules = set(graph())
    for prefix in ("workflows", "activities", "greenshift.api", "greenshift.fleet.serving"):
        assert any(_within(m, [prefix]) for m in modules), prefix
    for prefix in PURE:
        assert any(_within(m, [prefix]) for m in modules), prefix
    assert "greenshift.admission" in graph()["greenshift.api.endpoints"]
    assert "greenshift.admission" in graph()["activities.prepare"]


def test_pure_modules_import_only_pure_modules() -> None:
    pure = [m for m in graph() if _within(m, PURE)]
    bad = _violations(
        pure,
        lambda s, t: (
            (_ours(t) and not _within(t, PURE_MAY_USE))
            or (_third_party(t) and t.split(".")[0] not in PURE_THIRD_PARTY)
        ),
    )
    assert bad == []


def test_workflows_reach_only_the_pure_parts() -> None:
    reached = _reach(m for m in graph() if _within(m, ["workflows"]))
    ours = sorted(m for m in reached if not _within(m, ["workflows", *WORKFLOW_MAY_REACH]))
    assert ours == []
    third = sorted(
        (s, t)
        for s in reached
        for t in graph()[s]
        if _third_party(t) and t.split(".")[0] not in WORKFLOW_THIRD_PARTY
    )
    assert third == []


# The builtins Temporal's sandbox refuses in workflow code, which worker/build.py leaves to
# this test (the sandbox's way to refuse them costs every thread of the worker).
SANDBOX_BUILTINS = frozenset({"open", "input", "breakpoint"})


def _builtin_calls(module: str) -> list[tuple[str, int, str]]:
    path = ROOT / Path(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    return [
        (module, node.lineno, node.func.id)
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in SANDBOX_BUILTINS
    ]


def test_nothing_the_workflows_reach_calls_a_builtin_the_sandbox_refuses() -> None:
    reached = sorted(_reach(m for m in graph() if _within(m, ["workflows"])))
    assert "workflows.deployment" in reached and "greenshift.planning.model" in reached
    assert [call for module in reached for call in _builtin_calls(module)] == []
    # The check sees such a call where there is one.
    assert _builtin_calls("greenshift.logs.shipper") != []


def test_activities_never_import_workflows_nor_the_doors() -> None:
    acts = [m for m in graph() if _within(m, ["activities"])]
    bad = _violations(
        acts, lambda s, t: _within(t, ["workflows", "worker", "greenshift.api", "greenshift.cli"])
    )
    assert bad == []


def test_the_serving_package_imports_nothing_of_greenshift() -> None:
    serving = [m for m in graph() if _within(m, ["greenshift.fleet.serving"])]
    bad = _violations(
        serving, lambda s, t: _ours(t) and not _within(t, ["greenshift.fleet.serving"])
    )
    assert bad == []


def test_nothing_below_the_api_imports_it() -> None:
    below = [m for m in graph() if not _within(m, MAY_IMPORT_API) and _ours(m)]
    bad = _violations(below, lambda s, t: _within(t, ["greenshift.api"]))
    assert bad == []


def test_the_product_never_imports_tests_or_bench() -> None:
    product = [m for m in graph() if _within(m, ["greenshift"])]
    bad = _violations(product, lambda s, t: _within(t, ["tests", "bench"]))
    assert bad == []
