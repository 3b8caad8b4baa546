"""Imports run flows -> transforms -> schemas, never back; pure layers import no I/O clients."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
FORBIDDEN = {
    "schemas": {"transforms", "flows", "prefect", "boto3", "botocore", "s3fs", "fsspec"},
    "transforms": {"flows", "prefect", "boto3", "botocore", "s3fs", "fsspec"},
}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize(
    "module", sorted(p for layer in FORBIDDEN for p in (ROOT / layer).rglob("*.py")), ids=str
)
def test_pure_layers_do_not_import_upward_or_do_io(module):
    layer = module.relative_to(ROOT).parts[0]
    assert not imported_roots(module) & FORBIDDEN[layer]
