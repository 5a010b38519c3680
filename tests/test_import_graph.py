"""The package's import graph, read from the source with ``ast``: no circles, ``mapping`` below ``exporter``.

Every ``import`` / ``from ... import`` of a ``statsd_instrument`` module is an arrow, wherever it is written:
at module level, and also inside a function (an import put there to hold a circle apart is still a circle,
only one that shows up later, at the first call). ``from package import name`` points at the submodule
``package.name`` when there is one, else at the package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "statsd_instrument"


def module_files(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the package (``__init__`` names its package)."""
    files = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


def imports_of(source: str, modules: set[str], module: str = "") -> tuple[set[str], set[str]]:
    """(modules imported at module level, modules imported only inside functions) among ``modules``.

    >>> source = "import a.b\\nfrom a import c\\ndef f():\\n    from a.b import x"
    >>> top, inner = imports_of(source, {"a", "a.b", "a.c"})
    >>> sorted(top), inner
    (['a.b', 'a.c'], set())
    >>> imports_of("from . import c\\ndef f():\\n    import a", {"a", "a.c"}, module="a.m")
    ({'a.c'}, {'a'})
    """
    top: set[str] = set()
    inner: set[str] = set()

    def targets(node: ast.AST) -> set[str]:
        if isinstance(node, ast.Import):
            return {alias.name for alias in node.names if alias.name in modules}
        if not isinstance(node, ast.ImportFrom):
            return set()
        base = node.module or ""
        if node.level:  # relative: from the importing module's package
            package = module.split(".")[: -node.level] if module else []
            base = ".".join([*package, *([base] if base else [])])
        found = set()
        for alias in node.names:
            if f"{base}.{alias.name}" in modules:
                found.add(f"{base}.{alias.name}")
            elif base in modules:
                found.add(base)
        return found

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            (inner if in_function else top).update(targets(child))
            visit(
                child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            )

    visit(ast.parse(source), False)
    return top, inner - top


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import circle of ``graph`` (``[a, b, ..., a]``), or ``[]`` when there is none.

    >>> find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}})
    ['a', 'b', 'c', 'a']
    >>> find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}})
    []
    """
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                cycle = walk(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state:
            cycle = walk(start)
            if cycle:
                return cycle
    return []


def import_graph(include_function_imports: bool) -> dict[str, set[str]]:
    files = module_files()
    graph = {}
    for module, path in files.items():
        top, inner = imports_of(path.read_text(encoding="utf-8"), set(files), module)
        graph[module] = (top | inner if include_function_imports else top) - {module}
    return graph


def test_the_graph_sees_every_module_and_the_known_arrows():
    graph = import_graph(include_function_imports=True)
    assert len(graph) > 50 and "statsd_instrument.exporter.lineparser" in graph
    assert "statsd_instrument.client" in graph["statsd_instrument.instrumentation"]
    assert "statsd_instrument.measure" in graph["statsd_instrument.client"]
    assert "statsd_instrument.mapping.resolve" in graph["statsd_instrument.exporter.ingest"]


@pytest.mark.parametrize(
    "include_function_imports", [False, True], ids=["module_level", "with_function_level"]
)
def test_no_import_circles(include_function_imports):
    cycle = find_cycle(import_graph(include_function_imports))
    assert cycle == [], "import circle: " + " -> ".join(cycle)


def test_mapping_never_imports_the_exporter():
    """The mapping is below the exporter (the exporter maps lines; a mapping knows no exporter)."""
    graph = import_graph(include_function_imports=True)
    upward = {
        (module, target)
        for module, targets in graph.items()
        if module == "statsd_instrument.mapping" or module.startswith("statsd_instrument.mapping.")
        for target in targets
        if target == "statsd_instrument.exporter" or target.startswith("statsd_instrument.exporter.")
    }
    assert upward == set()


def test_a_circle_or_an_upward_arrow_would_be_found():
    # the checks above can fail: the old circle, written as the modules had it, is found
    graph = {
        "statsd_instrument.client": {"statsd_instrument.dogstatsd_compat"},
        "statsd_instrument.dogstatsd_compat": {"statsd_instrument.instrument"},
        "statsd_instrument.instrument": {"statsd_instrument.client"},
    }
    assert find_cycle(graph) == [
        "statsd_instrument.client",
        "statsd_instrument.dogstatsd_compat",
        "statsd_instrument.instrument",
        "statsd_instrument.client",
    ]
    source = "def explain_line():\n    from statsd_instrument.exporter.lineparser import parse_line\n"
    top, inner = imports_of(source, {"statsd_instrument.exporter.lineparser"})
    assert (top, inner) == (set(), {"statsd_instrument.exporter.lineparser"})
