"""The layers: the core (``letsbot``) knows nothing of databases, chat SDKs or the
composition root (``app``); ``storage`` and ``adapters`` never reach back into ``app``.

Read from the source with ``ast``, so nothing is imported: an import inside a
function or under ``TYPE_CHECKING`` counts as much as one at the top.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "letsbot": {
        "storage",
        "adapters",
        "app",
        "sqlalchemy",
        "alembic",
        "telegram",
        "nio",
        "psycopg",
    },
    "storage": {"app"},
    "adapters": {"app"},
}


def imported(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, top-level package) of every absolute import in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.partition(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.partition(".")[0]


def violations(package: str) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, name in imported(tree):
            if name in FORBIDDEN[package]:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_layer_imports_only_what_lies_beneath_it(package: str) -> None:
    found = violations(package)
    assert not found, "\n".join(found)


def test_the_check_sees_imports_inside_functions() -> None:
    source = "def f():\n    from storage.uow import SqlUnitOfWork\n    import sqlalchemy.orm\n"
    assert sorted(imported(ast.parse(source))) == [(2, "storage"), (3, "sqlalchemy")]


def calls_of(tree: ast.Module, method: str) -> Iterator[int]:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == method
        ):
            yield node.lineno


def test_only_the_posting_path_books_a_transfer() -> None:
    """``letsbot.posting.post`` locks, checks limits, books and moves the balances;
    a second caller of ``add_transfer`` would skip one of them."""
    callers = [
        f"{path.relative_to(ROOT)}:{line}"
        for package in ("letsbot", "storage", "adapters", "app")
        for path in sorted((ROOT / package).rglob("*.py"))
        for line in calls_of(ast.parse(path.read_text(encoding="utf-8")), "add_transfer")
    ]
    assert [caller.partition(":")[0] for caller in callers] == ["letsbot/posting.py"], callers


def test_only_the_ledger_module_inserts_transfers() -> None:
    """Besides storage/ledger.py, only the whole-database copy (rows copied verbatim,
    not booked) writes the transfers table."""
    writers = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "storage").rglob("*.py")
        if "insert(transfers)" in path.read_text(encoding="utf-8")
    )
    assert writers == ["storage/ledger.py"], writers
