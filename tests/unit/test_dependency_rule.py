"""The core imports only the standard library and two pure helpers (STYLE R1, R15)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import conversations

CORE = Path(conversations.__file__).parent
# Pure readers of free text (reading.py): no I/O, no state.
PURE_HELPERS = frozenset({"phonenumbers", "stdnum", "text_to_num", "rapidfuzz"})
# Named explicitly so that the rule holds even if one of them ever ships with Python.
FORBIDDEN = frozenset({
    "bot", "adapters", "storage", "telegram", "twilio", "stripe", "sqlmodel", "sqlalchemy",
    "httpx", "aiohttp", "starlette", "uvicorn", "pydantic", "pydantic_settings",
})  # fmt: skip


def _imported_modules(tree: ast.AST) -> list[str]:
    """Absolute module names imported anywhere in the tree (relative imports stay inside)."""
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    return found


def forbidden_imports(source: str) -> list[str]:
    """Imports of a core module that break the dependency rule."""

    def allowed(module: str) -> bool:
        root = module.partition(".")[0]
        if root in FORBIDDEN:
            return False
        return root == "conversations" or root in PURE_HELPERS or root in sys.stdlib_module_names

    return [module for module in _imported_modules(ast.parse(source)) if not allowed(module)]


CORE_FILES = sorted(CORE.rglob("*.py"))


def test_the_rule_is_checked_on_the_core_modules() -> None:
    assert {"machine.py", "catalog.py", "session.py"} <= {path.name for path in CORE_FILES}


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda path: str(path.relative_to(CORE)))
def test_core_module_imports_only_the_stdlib_and_pure_helpers(path: Path) -> None:
    assert forbidden_imports(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ("import stripe", "stripe"),
        ("import sqlalchemy.orm", "sqlalchemy.orm"),
        ("from adapters.stripe_payments import StripePayments", "adapters.stripe_payments"),
        ("from bot import app", "bot"),
        ("from pydantic_settings import BaseSettings", "pydantic_settings"),
        ("from telegram.ext import Application", "telegram.ext"),
        ("import requests", "requests"),
        ("def f():\n    import httpx", "httpx"),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from storage import db",
            "storage",
        ),
    ],
)
def test_checker_flags_a_forbidden_import(source: str, flagged: str) -> None:
    assert forbidden_imports(source) == [flagged]


def test_checker_accepts_the_stdlib_the_pure_helpers_and_the_core_itself() -> None:
    source = (
        "from __future__ import annotations\nimport json\nfrom datetime import datetime\n"
        "import phonenumbers\nfrom stdnum.pe import cui\nfrom conversations.model import Line\n"
        "from . import model\n"
    )

    assert forbidden_imports(source) == []
