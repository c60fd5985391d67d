"""The file list is the request path: private subpackages by step, no import cycles, and a
test tree that mirrors the package."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "wsgidev"


def _module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _imports_at_load(path: Path, name: str, is_package: bool, known: set[str]) -> set[str]:
    """The wsgidev modules ``path`` imports when it is loaded (not for type checking only, not
    inside functions)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.update(t for t in [target] if t in known)
            found.update(f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
    return found


def test_no_module_imports_itself_back_through_others() -> None:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = {name for name, _ in modules}
    graph = {
        name: _imports_at_load(path, name, is_package, known)
        for (name, is_package), path in modules.items()
    }
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for dep in sorted(graph[name]):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_the_private_layers_are_subpackages_and_the_tests_mirror_them() -> None:
    for layer, tests in (("_http", "http"), ("_server", "server"), ("_reload", "reload")):
        assert (PACKAGE / layer / "__init__.py").is_file(), layer
        assert not (PACKAGE / f"{layer}.py").exists(), f"{layer}.py beside {layer}/"
        assert any((ROOT / "tests" / tests).glob("test_*.py")), f"tests/{tests}/ has no tests"
    assert (PACKAGE / "_reload" / "watch" / "__init__.py").is_file()
    backends = {p.stem for p in (PACKAGE / "_reload" / "watch").glob("*.py")}
    assert {"stat", "watchfiles", "watchdog"} <= backends
    stray = sorted(
        p.name
        for p in PACKAGE.glob("_*.py")
        if p.stem.startswith(("_http", "_server", "_reload", "_watch", "_handler"))
    )
    assert stray == []
