"""Start-up of the `accord` processes: what they import, not how long it takes (timings vary
with the machine's load; the modules loaded do not). Issue 11: `accord --help` took 2.3 s
loading every command's libraries; `encode` and `match` loaded numba, DuckDB and the pseudonym
pipeline before reading a row."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer.main

from accord.cli.main import COMMANDS, SUMMARIES, make_app

# Libraries that take a tenth of a second or more each to import.
HEAVY = ("numba", "scipy", "duckdb", "statsmodels", "pandas", "opendp", "sklearn")

_PROBE = """
import json, sys
from accord.cli.main import run
sys.argv = ["accord", *{args!r}]
try:
    run()
except SystemExit:
    pass
sys.stdout = sys.__stdout__
print("\\n@@" + json.dumps(sorted(sys.modules)))
"""


def _modules(*args: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", _PROBE.format(args=list(args))],
                         capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(out.stdout.rsplit("@@", 1)[1]))


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return [n for n in names if n in modules or any(m.startswith(n + ".") for m in modules)]


def test_help_imports_no_command() -> None:
    mods = _modules("--help")
    assert "typer" in mods  # the probe ran the CLI
    assert _loaded(mods, (*HEAVY, "numpy", "pyarrow", "pydantic")) == []
    assert not [m for m in mods if m.startswith("accord.") and m not in
                ("accord.cli", "accord.cli.main")]


@pytest.mark.parametrize("command", ["encode", "match"])
def test_encode_and_match_start_without_heavy_libraries(command: str) -> None:
    mods = _modules(command, "--help")
    assert f"accord.cli.{command}_cmd" in mods  # the command itself was loaded
    assert _loaded(mods, HEAVY) == []
    assert "accord.link.kernels" not in mods  # compiled kernels load when first used
    assert "accord.protect.pseudonym" not in mods
    # The encoder and linker load when the command runs, not for --help: pyarrow.parquet pulls
    # pyarrow.fs and ssl; yaml and the schema's models (issue 11: start-up under 0.5 s CPU).
    # (pydantic itself is loaded by typer's parameter adapters for any command's help.)
    assert _loaded(mods, ("pyarrow", "yaml", "numpy", "ssl")) == []
    assert "accord.protect.encoding" not in mods and "accord.link.match" not in mods


def test_encoding_module_defers_parquet_and_yaml() -> None:
    """Importing the encoder (as `accord encode` does before reading a row) loads neither
    pyarrow.parquet (and its pyarrow.fs / ssl) nor yaml; reading and writing still work."""
    probe = ("import sys\n"
             "import accord.protect.encoding as e\n"
             "assert 'pyarrow.parquet' not in sys.modules and 'yaml' not in sys.modules\n"
             "assert 'ssl' not in sys.modules, 'ssl'\n"
             "s = e.default_schema()\n"
             "assert 'yaml' in sys.modules and s.fields\n")
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=300)


def test_numba_kernels_load_when_used() -> None:
    """The deferred import still works: matching loads the kernels it needs."""
    probe = ("import sys, numpy as np\n"
             "from accord.link.assign import greedy_one_to_one\n"
             "assert 'accord.link.kernels' not in sys.modules\n"
             "keep = greedy_one_to_one(np.array([0, 0, 1]), np.array([0, 1, 1]),"
             " np.array([0.9, 0.8, 0.7]))\n"
             "assert sorted(keep.tolist()) == [0, 2] and 'numba' in sys.modules\n")
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=300)


def test_summaries_are_the_commands_own_help() -> None:
    """`accord --help` lists SUMMARIES; each must be the first paragraph of the command's help."""
    group = typer.main.get_command(make_app())
    assert set(SUMMARIES) == set(COMMANDS)
    for name in COMMANDS:
        help_text = getattr(group, "commands", {})[name].help or ""
        assert SUMMARIES[name] == " ".join(help_text.split("\n\n")[0].split()), name


def test_index_lists_every_command() -> None:
    out = subprocess.run([sys.executable, "-m", "accord.cli.main", "--help"],
                         capture_output=True, text=True, check=True, timeout=120,
                         env={"COLUMNS": "200", "PATH": ""})
    for name in COMMANDS:
        assert f" {name} " in out.stdout
