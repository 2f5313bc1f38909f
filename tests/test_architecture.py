"""The pipeline runs one way: a stage imports only from itself and earlier stages."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "accord"
# simulate generates partner exports from the standard; it sits beside ingest, not after it.
STAGES = ("standard", "simulate", "ingest", "protect", "store", "link", "release", "research")


def _imported_stages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                 [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        for name in names:
            parts = name.split(".")
            if len(parts) > 1 and parts[0] == "accord" and parts[1] in STAGES:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("stage", STAGES)
def test_stage_imports_no_later_stage(stage: str) -> None:
    later = set(STAGES[STAGES.index(stage) + 1:])
    wrong = [f"{path.relative_to(SRC)} imports {sorted(_imported_stages(path) & later)}"
             for path in sorted((SRC / stage).rglob("*.py")) if _imported_stages(path) & later]
    assert not wrong


def test_the_checker_sees_a_later_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from accord.link.match import match_sets\nimport accord.research.stats\n")
    assert _imported_stages(bad) == {"link", "research"}
