"""The product never imports the development tools nor the tests (issue 13 items 5 and 6).

Walks the syntax tree of every module of the product (domain/, ports/, adapters/, bootstrap/):
no import of `devtools` or `tests`, except the lazy entries of the `evse` CLI named in
LAZY_CLI_ENTRIES (one public name per tool, imported inside the function that needs it).
The tools use the product only through public names, and tests/domain/ never imports
bootstrap (the domain tests, in `make test-fast`, run without the composition root).
"""
from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PRODUCT = ("domain", "ports", "adapters", "bootstrap")

# (module file, enclosing function, imported module, imported name)
LAZY_CLI_ENTRIES = {
    ("bootstrap/cli.py", "cmd_demo", "devtools.demo", "main"),
    ("bootstrap/cli.py", "main", "devtools.sim_cli", "add_parser"),
}


def imports(path: Path, package: tuple[str, ...] | None = None
            ) -> Iterator[tuple[str | None, str, tuple[str, ...], int]]:
    """(enclosing function or None, imported module, imported names, line) of every import
    in `path`; relative imports are resolved against `package` (default: the file's own)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    if package is None:
        package = path.relative_to(REPO).parent.parts

    def walk(node: ast.AST, function: str | None):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield function, alias.name, (), child.lineno
            elif isinstance(child, ast.ImportFrom):
                base = package[: len(package) - child.level + 1] if child.level else ()
                module = ".".join([*base, *([child.module] if child.module else [])])
                yield function, module, tuple(a.name for a in child.names), child.lineno
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            yield from walk(child, inner)

    yield from walk(tree, None)


def modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (REPO / folder).rglob("*.py"))


def top(module: str) -> str:
    return module.split(".")[0]


def test_the_product_imports_neither_devtools_nor_tests():
    found = []
    for path in modules(*PRODUCT):
        rel = path.relative_to(REPO).as_posix()
        for function, module, names, line in imports(path):
            if top(module) not in ("devtools", "tests"):
                continue
            if len(names) == 1 and (rel, function, module, names[0]) in LAZY_CLI_ENTRIES:
                continue
            found.append(f"{rel}:{line}: {module} {names or ''}")
    assert not found, "the product imports development tools or tests:\n" + "\n".join(found)


def test_the_cli_entries_are_there_and_lazy():
    """The allowed entries are what bootstrap/cli.py really does (so the exception list
    cannot go stale), each inside its function, never at module level."""
    seen = {("bootstrap/cli.py", function, module, name)
            for function, module, names, _ in imports(REPO / "bootstrap" / "cli.py")
            if top(module) == "devtools" for name in names}
    assert seen == LAZY_CLI_ENTRIES


def test_the_tools_use_only_public_names_of_the_product():
    found = []
    for path in modules("devtools"):
        for _, module, names, line in imports(path):
            private = [n for n in names if n.startswith("_")]
            if top(module) in PRODUCT and private:
                found.append(f"{path.relative_to(REPO)}:{line}: from {module} import {', '.join(private)}")
    assert not found, "development tools import private names of the product:\n" + "\n".join(found)


def test_domain_tests_do_not_import_bootstrap():
    found = [f"{path.relative_to(REPO)}:{line}: {module}"
             for path in modules("tests/domain")
             for _, module, _, line in imports(path) if top(module) in ("bootstrap", "devtools")]
    assert not found, "domain tests import the composition root:\n" + "\n".join(found)


def test_the_walk_sees_imports_at_every_depth(tmp_path):
    """The checker itself: module-level, nested and relative imports are all found."""
    probe = tmp_path / "probe.py"
    probe.write_text("import devtools\n"
                     "def f():\n"
                     "    class C:\n"
                     "        async def g(self):\n"
                     "            from devtools.demo import main\n"
                     "    from . import conftest\n", encoding="utf-8")
    found = list(imports(probe, package=("tests",)))
    assert found == [(None, "devtools", (), 1), ("g", "devtools.demo", ("main",), 5),
                     ("f", "tests", ("conftest",), 6)]
