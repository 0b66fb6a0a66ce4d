"""Imports run one way: use cases and adapters depend on the domain, never on each other.

- `domain/` (and `models`, `errors`) import nothing of the adapters or the use cases;
- `pipeline/` (use cases) imports no adapter (`github/`, `aws/`);
- adapters (`aws/`, `github/`) import no use case (`pipeline/`, `admin/`);
- `pipeline/ports.py` imports models only (shapes from `models` and `domain.records`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "shared" / "license_sync"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("license_sync")}


def _modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).glob("*.py"))


FORBIDDEN = {
    "domain": (
        "license_sync.pipeline",
        "license_sync.aws",
        "license_sync.github",
        "license_sync.admin",
    ),
    "pipeline": ("license_sync.github", "license_sync.aws", "license_sync.runtime"),
    "aws": ("license_sync.pipeline", "license_sync.admin"),
    "github": ("license_sync.pipeline", "license_sync.admin", "license_sync.aws"),
}


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_no_import_runs_the_wrong_way(folder: str) -> None:
    wrong = {
        f"{path.name} imports {name}"
        for path in _modules(folder)
        for name in _imports(path)
        if name.startswith(FORBIDDEN[folder])
    }
    assert not wrong, sorted(wrong)


def test_ports_import_models_only() -> None:
    allowed = {"license_sync.models", "license_sync.domain.records"}
    assert _imports(PACKAGE / "pipeline" / "ports.py") <= allowed


def test_the_checks_see_the_package() -> None:
    assert len(_modules("pipeline")) > 10
    assert len(_modules("domain")) > 10
