"""RLVR algorithms behind one LightningModule interface, and their pure math.

An algorithm is registered by being there, in verl's `core_algos` manner, with no list to edit:
- in-tree: a module `algorithms/<file>.py` with a top-level class that sets `name = "<name>"`
  (found by reading the package's sources, so `names()` imports no algorithm and no Lightning);
- installed plugins: the entry-point group `rlvr_bench.algorithms` (`name = "package.module:Class"`);
- out-of-tree, unregistered: `get("package.module:Class")`, e.g. `--algorithm mypkg.algo:MyAlgo`.
"""

from __future__ import annotations

import ast
import functools
import importlib
from importlib import metadata
from pathlib import Path

from algorithms import losses

ENTRY_POINT_GROUP = "rlvr_bench.algorithms"
_PACKAGE_DIR = Path(__file__).parent


def _declared_names(path: Path) -> list[tuple[str, str]]:
    """(name, class) of the top-level classes in `path` that assign a string to `name`."""
    found = []
    for node in ast.parse(path.read_text(), str(path)).body:
        if not isinstance(node, ast.ClassDef):
            continue
        for stmt in node.body:
            target = stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else (
                stmt.target if isinstance(stmt, ast.AnnAssign) else None)
            value = getattr(stmt, "value", None)
            if (isinstance(target, ast.Name) and target.id == "name" and isinstance(value, ast.Constant)
                    and isinstance(value.value, str)):
                found.append((value.value, node.name))
    return found


@functools.cache
def _registry() -> dict[str, str]:
    """name -> "module:Class", from the package's files, then the installed entry points."""
    registry: dict[str, str] = {}
    for path in sorted(_PACKAGE_DIR.glob("*.py")):
        if path.name.startswith("_"):
            continue
        for name, cls in _declared_names(path):
            target = f"algorithms.{path.stem}:{cls}"
            if name in registry:
                raise ValueError(f"algorithm name {name!r} is declared twice: {registry[name]} and {target}")
            registry[name] = target
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in registry and registry[entry.name] != entry.value:
            raise ValueError(f"entry point {entry.name!r} = {entry.value} ({ENTRY_POINT_GROUP}) takes the name of "
                             f"{registry[entry.name]}")
        registry[entry.name] = entry.value
    return registry


def names() -> list[str]:
    """Every registered algorithm name, sorted."""
    return sorted(_registry())


def load(target: str):
    """The class at "package.module:Class"; an error names what is missing."""
    module_name, _, class_name = target.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"algorithm {target!r}: expected a registered name or package.module:ClassName")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"algorithm {target!r}: cannot import module {module_name!r}: {err}") from None
    cls = getattr(module, class_name, None)
    from algorithms.base import RLModule

    if not (isinstance(cls, type) and issubclass(cls, RLModule)):
        raise ValueError(f"algorithm {target!r}: {module_name}.{class_name} is not an algorithms.base.RLModule subclass")
    return cls


def get(name: str):
    """The LightningModule subclass for a registered `name` or a "package.module:Class" path;
    unknown names raise ValueError listing the known ones."""
    if ":" in name:
        return load(name)
    registry = _registry()
    if name not in registry:
        raise ValueError(f"unknown algorithm {name!r}; known algorithms: {', '.join(names())} "
                         f"(or package.module:ClassName)")
    return load(registry[name])


def __getattr__(attr: str):
    # `algorithms.grpo.group_advantages` etc. without importing every module up front.
    if not attr.startswith("_") and (_PACKAGE_DIR / f"{attr}.py").exists():
        return importlib.import_module(f"algorithms.{attr}")
    raise AttributeError(attr)


__all__ = ["names", "get", "load", "losses", "ENTRY_POINT_GROUP"]
