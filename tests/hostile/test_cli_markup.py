"""Paths and names the user gives, holding rich markup, are printed as typed.

The CLI prints with rich; read as markup, `k[/b]/partner.key` ended in 'unexpected MarkupError'
(exit 70) after the key was written, and `k[final].key` was reported as `k.key` (the user told the
wrong file). Each case runs a real command (in-process, through the CLI's click tree) with bracketed
paths, partner, organisation and column names, and checks the exit code and that the exact text is
in what it printed. A guard below checks the rule in the sources: the console reads no markup
unless a call says `markup=True`, and then every value in it goes through `plain`.
"""

from __future__ import annotations

import ast
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from accord.cli.main import make_app

CLI = Path(__file__).resolve().parents[2] / "src/accord/cli"


def run(*args: str) -> Result:
    result = CliRunner().invoke(make_app(), list(args), catch_exceptions=True)
    # An exception the CLI did not turn into a message (a MarkupError) is the bug itself.
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"accord {' '.join(args)}: {type(result.exception).__name__}: {result.exception}")
    return result


def said(result: Result, *texts: str) -> None:
    # Rich wraps at the console width: compare with the line breaks taken out.
    out = result.output.replace("\n", "")
    for text in texts:
        assert text in out, f"{text!r} not in the output:\n{result.output}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A small simulated world in a folder whose name is markup, made once for the module."""
    root = tmp_path_factory.mktemp("markup")
    cwd = Path.cwd()
    try:
        import os

        os.chdir(root)
        res = run("simulate", "--people", "60", "--partners", "2", "--seed", "3", "--out", "sim[final]")
        assert res.exit_code == 0, res.output
        said(res, "sim[final]")
        yield root
    finally:
        os.chdir(cwd)


@pytest.fixture()
def here(world: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(world)
    return world


@pytest.mark.parametrize("key", ["k[/b]/partner.key", "k[final].key", "[bold]k.key"])
def test_keys_init_names_the_key_it_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.chdir(tmp_path)
    res = run("keys", "init", "--key-file", key)
    assert res.exit_code == 0, res.output
    assert (tmp_path / key).is_file()
    said(res, f"created pseudonym key {key}")


def test_keys_init_linkage_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = run("keys", "init", "--linkage", "--key-file", "s[/b].secret")
    assert res.exit_code == 0, res.output
    said(res, "created linkage secret s[/b].secret")


def test_ingest_and_hub_with_bracketed_files_and_partner(here: Path) -> None:
    """Export file name, contribution and hub paths, through ingest and the hub."""
    assert run("keys", "init", "--key-file", "p[final].key").exit_code == 0
    export = here / "in[/b]/b[final].csv"
    export.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(here / "sim[final]/partner_b.csv", export)
    args = ["ingest", "in[/b]/b[final].csv", "--mapping", "sim[final]/partner_b.mapping.yaml",
            "--out", "c[final]", "--key-file", "p[final].key", "--quarantine", "q[final].csv"]
    # A partner id is letters, digits, '-' and '_': a bracketed one is refused, named as typed.
    res = run(*args, "--partner", "p[/b]")
    assert res.exit_code == 2, res.output
    said(res, "partner id 'p[/b]' is not valid")
    res = run(*args, "--partner", "p-b")
    assert res.exit_code == 0, res.output
    said(res, "b[final].csv -> c[final]", "(partner p-b)")

    res = run("hub", "add", "c[final]", "--hub", "h[final].duckdb")
    assert res.exit_code == 0, res.output
    said(res, "c[final]: added", "from p-b")

    res = run("hub", "status", "--hub", "h[final].duckdb")
    assert res.exit_code == 0, res.output
    said(res, "hub h[final].duckdb", "p-b")

    res = run("hub", "audit", "--hub", "h[final].duckdb")
    assert res.exit_code == 0, res.output
    said(res, "audit trail of h[final].duckdb")

    res = run("budget", "set", "--epsilon", "5", "--hub", "h[final].duckdb")
    assert res.exit_code == 0, res.output
    said(res, "lifetime budget")

    # Organisation names are lower-case letters, digits, '-', '_' and '.': refused, not a crash.
    assert run("hub", "org", "add", "ngo[/b]", "--hub", "h[final].duckdb").exit_code == 2

    # A refusal names the path as typed too (fail() was escaped already; kept under the new console).
    res = run("stats", "--hub", "none[/b].duckdb")
    assert res.exit_code == 2, res.output
    said(res, "none[/b].duckdb")


def test_bracketed_column_names(here: Path) -> None:
    """Column names are the user's text: estimate's lists, anonymise's fields and its output file."""
    counts = here / "counts[final].csv"
    counts.write_text("[/b],x[final],c,count\n1,0,0,40\n0,1,0,35\n0,0,1,30\n1,1,0,8\n1,0,1,7\n0,1,1,6\n1,1,1,2\n",
                      encoding="utf-8")
    res = run("estimate", "mse", "counts[final].csv")
    assert res.exit_code == 0, res.output
    said(res, "lists: [/b], x[final], c")

    micro = here / "micro[final].csv"
    micro.write_text("sex[/b],age[final],case_type\n" + "F,18-24,VOT\nM,25-59,GBV\nF,25-59,VOT\n" * 20,
                     encoding="utf-8")
    # A hierarchy file is named after its column, so no '/' in these; the folder has one.
    (here / "anon.csv").write_text(micro.read_text(encoding="utf-8").replace("sex[/b]", "[bold]sex"),
                                   encoding="utf-8")
    (here / "hier[/b]").mkdir(parents=True, exist_ok=True)
    (here / "hier[/b]/[bold]sex.csv").write_text("F;*\nM;*\n", encoding="utf-8")
    (here / "hier[/b]/age[final].csv").write_text("18-24;*\n25-59;*\n", encoding="utf-8")
    res = run("anonymise", "anon.csv", "--qi", "[bold]sex,age[final]", "--hierarchies", "hier[/b]",
              "--k", "2", "--out", "a[final].csv")
    assert res.exit_code == 0, res.output
    said(res, "a[final].csv", "level of [bold]sex", "level of age[final]")

    res = run("risk", "--data", "micro[final].csv", "--qi", "sex[/b],age[final]")
    assert res.exit_code == 0, res.output
    said(res, "quasi-identifiers used (2): sex[/b], age[final]")


def test_demo_out_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = run("demo", "--people", "120", "--partners", "2", "--out", "d[final]")
    assert res.exit_code == 0, res.output
    said(res, "report: d[final]/report.html")
    assert (tmp_path / "d[final]/report.html").is_file()


# --- the rule in the sources -------------------------------------------------------------------

TAG = re.compile(r"\[/?[a-z][a-z .]*\]|\[/\]")


def _print_calls() -> Iterator[tuple[str, ast.Call]]:
    for path in sorted(CLI.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "print":
                yield f"{path.name}:{node.lineno}", node


def _unescaped(node: ast.AST) -> Iterator[str]:
    """Values interpolated into a markup string that do not go through `plain` (numbers formatted
    with a format spec are code-made, not the user's)."""
    if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "plain":
        return
    if isinstance(node, ast.FormattedValue) and node.format_spec is None:
        if not (isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "plain"):
            yield ast.unparse(node.value)
        return
    for child in ast.iter_child_nodes(node):
        yield from _unescaped(child)


def test_markup_is_asked_for_and_its_values_are_escaped() -> None:
    problems = []
    for where, call in _print_calls():
        markup = any(k.arg == "markup" and isinstance(k.value, ast.Constant) and k.value.value is True
                     for k in call.keywords)
        texts = [n.value for a in call.args for n in ast.walk(a)
                 if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        styled = any(TAG.search(t) for t in texts)
        if styled and not markup:
            problems.append(f"{where}: styling without markup=True (it would print as text)")
        if markup:
            problems += [f"{where}: {{{v}}} in a markup string, not through plain()"
                         for a in call.args for v in _unescaped(a)]
    # escape()d text outside a markup=True call would print its backslashes.
    for path in sorted(CLI.glob("*.py")):
        if path.name != "common.py" and "rich.markup" in path.read_text(encoding="utf-8"):
            problems.append(f"{path.name}: use common.plain inside markup=True calls, not rich.markup")
    assert not problems, "\n".join(problems)


def _help_texts(cmd: object, path: list[str]) -> Iterator[tuple[list[str], str]]:
    """Every command's path and each help text it shows (its own first paragraph, its options')."""
    yield path, str(getattr(cmd, "help", "") or "").split("\n\n")[0]
    for p in getattr(cmd, "params", []):
        if getattr(p, "help", None) and not getattr(p, "hidden", False):
            yield path, str(p.help)
    for name, sub in sorted(getattr(cmd, "commands", {}).items()):
        if not getattr(sub, "hidden", False):
            yield from _help_texts(sub, [*path, name])


def test_every_help_shows_its_brackets() -> None:
    """Help is text, not markup: `accord risk --help` said "needs accord and Java 17" for
    "needs accord[spark] and Java 17" (typer read [spark] as a style). Every help text holding a
    bracket, of every command and of `accord --help`'s list, is shown whole (whitespace aside:
    click wraps it)."""
    import typer

    from accord.cli.main import index_app

    def squeezed(text: str) -> str:
        return re.sub(r"\s+", "", text)

    apps = [([], index_app()), ([], make_app())]
    checked, missing = 0, []
    for _, app in apps:
        shown: dict[tuple[str, ...], str] = {}
        for path, text in _help_texts(typer.main.get_command(app), []):
            if "[" not in text:
                continue
            if tuple(path) not in shown:
                res = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
                assert res.exit_code == 0, (path, res.output)
                shown[tuple(path)] = squeezed(res.output)
            checked += 1
            if squeezed(text) not in shown[tuple(path)]:
                missing.append(f"accord {' '.join(path)}: {text}")
    assert checked >= 5  # the extras ('accord[spark]'), defaults and examples with brackets
    assert not missing, "\n".join(missing)
