"""Layer rules of the code base, checked on the source (every import, wherever it stands).

Packages form a stack; a module may import its own package and the packages below it, never
one above. ``policies`` is pure: no Redis, HTTP, server or LLM client code. litellm is
imported by one module only.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LAYERS: tuple[tuple[str, ...], ...] = (
    ("policies",),
    ("storage",),
    ("proxy.wire", "proxy.simulator"),
    ("proxy.config",),
    ("proxy.forwarding",),
    ("proxy.pipeline",),
    ("proxy.responses_api",),
    ("proxy.tracking",),
    ("proxy.runtime",),
    ("proxy.http",),
    ("proxy.dashboard",),
    ("proxy",),
    ("proxy.cli",),
    ("proxy.__main__",),
)
"""Lowest first. A module belongs to the longest package prefix listed."""

IMPURE = ("redis", "aiohttp", "httpx", "starlette", "uvicorn", "litellm", "storage", "proxy")
"""What the pure policy package may not import."""

LITELLM_MODULE = "proxy.forwarding.litellm_upstream"


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(root: Path = ROOT) -> list[Path]:
    return sorted(p for pkg in ("policies", "storage", "proxy") for p in (root / pkg).rglob("*.py"))


def imports_of(path: Path, root: Path = ROOT) -> Iterator[tuple[int, str]]:
    """(line, absolute module) for every import in the file, relative ones resolved."""
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            yield node.lineno, module
            for alias in node.names:  # ``from proxy import cli`` imports proxy.cli
                yield node.lineno, f"{module}.{alias.name}"


def own_package(module: str) -> str | None:
    """The longest package listed in LAYERS that contains ``module`` (None: third-party)."""
    listed = [p for ps in LAYERS for p in ps if module == p or module.startswith(p + ".")]
    return max(listed, key=len, default=None)


def layer_of(module: str) -> int | None:
    """Index in LAYERS of the module's own package (None: third-party)."""
    package = own_package(module)
    return next((i for i, ps in enumerate(LAYERS) if package in ps), None)


def upward_imports(root: Path = ROOT) -> list[str]:
    """One line per import of a higher layer or a sibling package, naming file, line and target."""
    found: dict[str, str] = {}
    for path in source_files(root):
        importer = module_name(path, root)
        mine = layer_of(importer)
        assert mine is not None, f"{importer} is in no layer: add its package to LAYERS"
        for line, target in imports_of(path, root):
            theirs = layer_of(target)
            if theirs is None or own_package(target) == own_package(importer):
                continue
            where = f"{path.relative_to(root)}:{line}"
            if theirs > mine:
                found.setdefault(where, f"{where} imports {target} (a higher layer)")
            elif theirs == mine:
                found.setdefault(where, f"{where} imports {target} (a sibling package)")
    return list(found.values())


def test_no_package_imports_one_above_it() -> None:
    assert upward_imports() == []


def test_policies_are_pure() -> None:
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for path in (ROOT / "policies").rglob("*.py")
        for line, target in imports_of(path)
        if target.split(".")[0] in IMPURE
    ]
    assert offending == []


def test_storage_imports_no_proxy_code() -> None:
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for path in (ROOT / "storage").rglob("*.py")
        for line, target in imports_of(path)
        if target.split(".")[0] == "proxy"
    ]
    assert offending == []


def test_litellm_is_imported_in_one_module() -> None:
    importers = {
        module_name(path)
        for path in source_files()
        for _, target in imports_of(path)
        if target.split(".")[0] == "litellm"
    }
    assert importers == {LITELLM_MODULE}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from proxy.http import routes\n", "proxy/pipeline/planted.py:1 imports proxy.http (a higher"),
        ("def f():\n    from ..tracking import x\n", "proxy/pipeline/planted.py:2 imports proxy.tracking"),
        ("from proxy.wire import errors\nimport redis\n", None),
    ],
)
def test_the_check_names_the_offending_import(tmp_path: Path, source: str, expected: str | None) -> None:
    """The rule itself can fail: an upward import planted in a pipeline module is reported."""
    (tmp_path / "proxy" / "pipeline").mkdir(parents=True)
    (tmp_path / "proxy" / "pipeline" / "planted.py").write_text(source)
    found = upward_imports(tmp_path)
    if expected is None:
        assert found == []
    else:
        assert len(found) >= 1
        assert found[0].startswith(expected)
