"""The docs' commands run as written: README's worked example and every shell block in docs/*.md.

A fenced block without a language (or marked sh/shell/console/bash) is a command block: each of its
commands is run in order, in a fresh directory per document, with this environment's `accord`, and
must exit 0. A block that only shows syntax or output is fenced as ```text and is not run (its
`accord X` lines must still name real commands). `make` lines are the repository's own targets
(`make test` is this suite; CI runs it) and are not run from here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from accord.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN_LANGS = {"", "sh", "shell", "console", "bash"}
SKIP_LANGS = {"text", "yaml", "python", "json", "csv", "html"}
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w-]*)\s*$")


def blocks(path: Path) -> list[tuple[str, int, list[str]]]:
    """(language, first line number, lines) of every fenced block."""
    out: list[tuple[str, int, list[str]]] = []
    current: tuple[str, int, list[str]] | None = None
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        m = FENCE.match(line)
        if m and current is None:
            current = (m.group("lang"), n, [])
        elif m and current is not None and not m.group("lang"):
            out.append(current)
            current = None
        elif current is not None:
            current[2].append(line.strip())
    assert current is None, f"{path.name}: unclosed code block at line {current[1] if current else 0}"
    return out


def commands(lines: list[str]) -> list[str]:
    """Logical commands: continuation lines joined, comments dropped."""
    out: list[str] = []
    pending = ""
    for line in lines:
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        # A trailing comment starts with " #" outside quotes; shlex handles quotes and comments.
        out.append(" ".join(shlex.quote(t) for t in shlex.split(full, comments=True)))
    return [c for c in out if c]


def _command_names() -> set[str]:
    root = typer.main.get_command(app)
    return set(getattr(root, "commands", {}))


def test_every_block_is_marked() -> None:
    """A block is either run or declared as text/yaml/python: nothing is silently skipped."""
    names = _command_names()
    for doc in DOCS:
        for lang, line, body in blocks(doc):
            assert lang in RUN_LANGS | SKIP_LANGS, f"{doc.name}:{line}: unknown block language '{lang}'"
            if lang == "text":
                for text in body:
                    if text.startswith("accord "):
                        assert text.split()[1] in names, f"{doc.name}:{line}: no command `{text.split()[1]}`"


def _runnable() -> list[tuple[str, list[str]]]:
    out = []
    for doc in DOCS:
        cmds = [c for lang, _, body in blocks(doc) if lang in RUN_LANGS for c in commands(body)
                if not c.startswith("make ")]
        if cmds:
            out.append((doc.name, cmds))
    return out


def test_readme_worked_example_is_collected() -> None:
    names = dict(_runnable())
    readme = names.get("README.md", [])
    assert any(c.startswith("accord ingest") and "partner_b" in c for c in readme)
    assert any(c.startswith("accord report") for c in readme)


@pytest.mark.slow
@pytest.mark.parametrize(("doc", "cmds"), _runnable(), ids=[d for d, _ in _runnable()])
def test_doc_commands_run_as_written(doc: str, cmds: list[str], tmp_path: Path) -> None:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "COLUMNS": "200"}
    for var in ("ACCORD_HUB", "ACCORD_KEY_FILE", "ACCORD_LINKAGE_SECRET", "ACCORD_DEBUG"):
        env.pop(var, None)
    for cmd in cmds:
        assert cmd.startswith("accord "), f"{doc}: only accord commands are run from the docs: {cmd}"
        done = subprocess.run(cmd, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=1800)
        assert done.returncode == 0, f"{doc}: `{cmd}` exited {done.returncode}:\n{done.stderr[-3000:]}"
