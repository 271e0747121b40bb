"""The mechanism knows no pages: import-linter checks packages, this checks names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SECURITY = Path(__file__).resolve().parent.parent / "webapp" / "security"
FORBIDDEN_MODULES = ("webapp.auth", "webapp.account", "webapp.admin", "webapp.mail")


def _imports(path: Path) -> list[tuple[str, str]]:
    """Return (module, name) for every import in a file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
    return found


@pytest.mark.parametrize("path", sorted(SECURITY.glob("*.py")), ids=lambda p: p.name)
def test_the_mechanism_imports_no_page_mail_or_template(path):
    for module, name in _imports(path):
        assert not module.startswith(FORBIDDEN_MODULES), f"{path.name} imports {module}"
        assert name != "render_template", f"{path.name} renders a template"
