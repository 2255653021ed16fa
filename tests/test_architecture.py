"""The package layout holds: no module reaches into another package's private names.

Parsed with ``ast`` (nothing is imported), so a forbidden import fails here
before any behaviour does.
"""

from __future__ import annotations

import ast
from pathlib import Path

import localchat

ROOT = Path(localchat.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (``localchat.search.index``)."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ["localchat", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _imports(module: str, path: Path) -> list[tuple[int, str, str]]:
    """``(line, imported module, imported name or "")`` for every import of the module."""
    package = _package_of(module, path)
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name, "") for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            out.extend((node.lineno, source, alias.name) for alias in node.names)
    return out


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_crossings() -> list[str]:
    modules = _modules()
    bad = []
    for module, path in modules.items():
        package = _package_of(module, path)
        for line, source, name in _imports(module, path):
            if not source.startswith("localchat"):
                continue
            target = f"{source}.{name}" if f"{source}.{name}" in modules else source
            target_path = modules.get(target)
            if target_path is None:
                continue
            target_package = _package_of(target, target_path)
            private_module = any(_private(p) for p in target.split("."))
            private_name = target == source and _private(name)
            if target_package != package and (private_module or private_name):
                bad.append(f"{path.relative_to(ROOT.parent)}:{line} imports {source} {name}")
            elif target != module and target_package == package and private_name:
                bad.append(f"{path.relative_to(ROOT.parent)}:{line} imports {source} {name}")
    return bad


def test_no_module_imports_private_names_of_another_package_or_module():
    assert _private_crossings() == []


def _imported_modules(module: str) -> set[str]:
    modules = _modules()
    found = set()
    for _, source, name in _imports(module, modules[module]):
        found.add(f"{source}.{name}" if f"{source}.{name}" in modules else source)
    return found


def test_schema_does_not_call_back_into_the_database_module():
    assert "localchat.schema" in _imported_modules("localchat.database")
    assert "localchat.database" not in _imported_modules("localchat.schema")


def test_files_do_not_depend_on_the_database_module():
    assert "localchat.database" not in _imported_modules("localchat.files")
    assert "localchat.database" not in _imported_modules("localchat.files.disk")


def test_one_module_owns_argument_checks_and_keys():
    from localchat import checks

    names = {"check_json", "check_text", "check_page", "check_count", "get_row", "id_of"}
    for module, path in _modules().items():
        if module == "localchat.checks":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert not defined & names, f"{module} defines its own {sorted(defined & names)}"
    assert names <= set(vars(checks))


def test_the_search_index_keeps_its_first_import_path():
    import localchat.search_index as old
    from localchat.search import index

    assert old.keep_triggers is index.keep_triggers
    assert old.rebuild_search_index is index.rebuild_search_index


def test_the_architecture_page_names_every_module():
    text = (ROOT.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for module, path in _modules().items():
        if module == "localchat" or "._" in module or module.endswith(".__init__"):
            continue
        if path.parent == ROOT:
            assert f"`{path.name}`" in text, module
        elif path.name == "__init__.py":
            assert f"`{path.parent.name}/`" in text, module
        elif path.parent.parent == ROOT and path.parent.name in {"search", "files"}:
            assert f"`{path.name}`" in text, module


#: The layers of docs/architecture.md, lowest first: a module imports only its own
#: layer or lower ones (the package root and the old-path re-exports aside).
LAYERS = [
    {"localchat.errors", "localchat.config"},
    {"localchat.storefile"},
    {"localchat.schema"},
    {"localchat.models", "localchat.database"},
    {"localchat.checks", "localchat.operations", "localchat.fastsql"},
    {"localchat.files", "localchat.repository"},
    {"localchat.search", "localchat.export"},
    {"localchat.maintenance"},
    {"localchat.aio", "localchat.web", "localchat.schemas"},
    {"localchat.app"},
    {"localchat.cli", "localchat.factories", "localchat.pytest_plugin", "localchat.fixtures"},
]
SHIMS = {"localchat", "localchat.search_index", "localchat.repository.file_store"}


def _layer(module: str) -> int | None:
    for rank, layer in enumerate(LAYERS):
        if any(module == top or module.startswith(top + ".") for top in layer):
            return rank
    return None


def test_every_module_imports_only_its_own_layer_or_lower_ones():
    upward = []
    for module in _modules():
        rank = _layer(module)
        if module in SHIMS or rank is None:
            continue
        for imported in _imported_modules(module):
            other = _layer(imported)
            if imported not in SHIMS and other is not None and other > rank:
                upward.append(f"{module} imports {imported}")
    assert upward == []


def test_only_the_chat_app_screens_import_textual():
    """The `app` extra's packages stay optional: the library, the CLI and the app's data
    layer import without them (the CLI imports the screens only inside `localchat chat`)."""
    screens = {"localchat.app.ui", "localchat.app.screens", "localchat.app.widgets"}
    users = {
        module
        for module, path in _modules().items()
        for _, source, _ in _imports(module, path)
        if source.split(".")[0] in ("textual", "rich")
    }
    assert users == screens
    tree = ast.parse((ROOT / "cli.py").read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not any(
        n.module and "app" in n.module.split(".") for n in top if isinstance(n, ast.ImportFrom)
    )
