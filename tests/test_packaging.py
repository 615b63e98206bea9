"""The wheel ships every sub-package: pyproject's explicit package list must name them all."""

from __future__ import annotations

import re
from pathlib import Path

ROOTS = {"adaptive_router": "adaptive_router", "integrations": "adaptive_router.integrations",
         "training": "adaptive_router.training"}


def test_every_subpackage_is_listed_in_pyproject(repo_root: Path) -> None:
    text = (repo_root / "pyproject.toml").read_text(encoding="utf-8")  # (tomllib is 3.11+)
    line = re.search(r"^packages = \[(.*)\]$", text, re.M)
    assert line, "pyproject.toml has no one-line [tool.setuptools] packages list"
    listed = set(re.findall(r'"([^"]+)"', line.group(1)))
    found = set()
    for folder, dotted in ROOTS.items():
        for init in (repo_root / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(repo_root / folder)
            found.add(".".join([dotted, *rel.parts]))
    missing = found - listed
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml"
    assert not listed - found, f"pyproject lists packages that do not exist: {sorted(listed - found)}"
