"""No import cycles among the project's modules: each module can be read, imported and tested after
the ones it uses. The graph counts every `import` in a file, those inside functions included (a
lazy import still ties the two modules together), and finds its strongly connected components."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("harness", "algorithms", "sweeps", "tasks", "rlvr_bench")

def modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of :data:`PACKAGES` (a package by its name)."""
    found = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def import_graph(root: Path = ROOT, sources: dict[str, str] | None = None) -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its file. `sources` replaces some
    modules' text (to check that the test sees a cycle when one is added)."""
    files = modules(root)
    sources = sources or {}

    def resolve(name: str) -> str | None:
        # `from harness.x import f` names harness.x.f: the longest prefix that is a module.
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in files}
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(sources.get(module) or path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from its package, `level - 1` packages up
                    parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                resolved = resolve(target)
                if resolved and resolved != module:
                    graph[module].add(resolved)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_project_has_no_import_cycle():
    graph = import_graph()
    assert {"harness.train", "harness.checkpoint", "harness.errors", "harness.paths"} <= set(graph)
    assert "harness.errors" in graph["harness.checkpoint"]  # the graph sees the imports
    assert cycles(graph) == []


def test_an_import_inside_a_function_that_closes_a_cycle_is_caught():
    """harness.train imports harness.checkpoint; a lazy import back (the kind that held the old
    cycles together) makes the two one component, and the test above would fail."""
    path = ROOT / "harness" / "checkpoint.py"
    lazy = path.read_text() + "\n\ndef _later():\n    from harness.train import run_training\n\n    return run_training\n"
    found = cycles(import_graph(sources={"harness.checkpoint": lazy}))
    assert any({"harness.checkpoint", "harness.train"} <= set(cycle) for cycle in found), found


def test_relative_imports_resolve_to_their_package():
    graph = import_graph(sources={"harness.paths": "from .errors import RunFailed\nfrom . import records\n"})
    assert {"harness.errors", "harness.records"} <= graph["harness.paths"]
