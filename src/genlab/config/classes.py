"""What a config's classes take and declare, read from their source files without importing them.

Importing a model or datamodule imports Lightning and torch (seconds), so the checks that should
answer at once (a misspelt key, a model given another kind of data) read the class definitions
instead: the parameters of `__init__` (following `**kwargs` into the base class) and the constant
class attributes (`data_kind = "images"`), inherited ones included.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ClassInfo:
    name: str
    # The keyword arguments `__init__` takes; None when it takes any (a **kwargs that could not
    # be followed).
    parameters: frozenset[str] | None
    attributes: dict[str, object] = field(default_factory=dict)


def _module_file(module: str) -> Path | None:
    """The source file of `module` (a.b.c), found from its top-level package without importing
    any of them."""
    top, *rest = module.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return Path(spec.origin) if spec and spec.origin and not rest else None
    for root in spec.submodule_search_locations:
        base = Path(root, *rest)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


@functools.lru_cache(maxsize=256)
def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None


def _imported_names(tree: ast.Module, module: str) -> dict[str, str]:
    """Name -> dotted path of what a module imports by `from x import Name [as Alias]`."""
    names = {}
    package = module.rpartition(".")[0]
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            source = node.module
            if node.level:  # relative: from .x import Name
                source = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], source]
                )
            for alias in node.names:
                names[alias.asname or alias.name] = f"{source}.{alias.name}"
    return names


@functools.lru_cache(maxsize=256)
def class_info(target: str, _depth: int = 0) -> ClassInfo | None:
    """The class `target` (a dotted path) as its source file defines it, or None when its file
    cannot be found or read, or the path names no class."""
    module, _, name = target.rpartition(".")
    path = _module_file(module) if module and _depth < 8 else None
    tree = _parse(path) if path else None
    if tree is None:
        return None
    definition = next(
        (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name), None
    )
    imported = _imported_names(tree, module)
    if definition is None:  # re-exported: `from x import Name`
        return class_info(imported[name], _depth + 1) if name in imported else None
    bases = [_base_path(base, module, imported) for base in definition.bases]
    base = next((class_info(b, _depth + 1) for b in bases if b), None)
    attributes = dict(base.attributes) if base else {}
    for node in definition.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target_node in node.targets:
                if isinstance(target_node, ast.Name):
                    attributes[target_node.id] = node.value.value
    init = next(
        (n for n in definition.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"),
        None,
    )
    if init is None:
        parameters = base.parameters if base else None
    else:
        args = init.args
        names = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs][1:]}
        if args.kwarg is None:
            parameters = frozenset(names)
        elif base is not None and base.parameters is not None:
            parameters = frozenset(names | base.parameters)
        else:
            parameters = None
    return ClassInfo(name, parameters, attributes)


def _base_path(node: ast.expr, module: str, imported: dict[str, str]) -> str | None:
    if isinstance(node, ast.Name):
        return imported.get(node.id, f"{module}.{node.id}")
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return f"{imported.get(node.value.id, node.value.id)}.{node.attr}"
    return None
