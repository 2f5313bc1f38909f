"""Every command of the CLI with hostile option values: no traceback, no record value echoed.

The commands are read from `accord.cli.main.COMMANDS` (through the click tree typer builds), so a
new command or option is swept without editing this file; a command without a base invocation
below fails the completeness test. For each command a base invocation on a small demo world
(a hub, exports, keys, a microdata file) is changed one option at a time to a hostile value chosen
by the option's type: nan, inf, negative, zero and huge numbers; empty, control-character,
right-to-left and very long strings; a missing file, a directory, a non-hub text file holding
planted names, /dev/null for a path. Whatever the value, the command must end with exit 0, 2 or 3
(a result, a refusal, a refused release), never an unexpected exception (what the real entry
point turns into exit 70), and print none of the world's identifiers.

Runs in-process (the commands' imports are paid once) with a per-case alarm; `accord serve` gets a
stand-in for uvicorn.run (the validation before it is what is swept, not a server left running).
The default run gives each option one hostile value, the type's values in rotation over the options
(about 200 cases); the slow-marked run gives every option every value of its type (about 1,400).
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
import typer
from typer.testing import CliRunner

from accord.cli.main import COMMANDS, make_app
from tests.hostile.harness import Sensitive, identifier_columns

ACCORD = str(Path(sys.executable).with_name("accord"))
CASE_SECONDS = 120

# Hostile values per option type. "{...}" are paths of the world (see `World.fill`).
HOSTILE: dict[str, list[str]] = {
    "float": ["nan", "inf", "-inf", "-1", "0", "1e308", "-1e308", "1e-320", ""],
    "int": ["-1", "0", "-9999999999999999999999", "99999999999999999999999", "3.5", ""],
    "path": ["{missing}", "{dir}", "{textfile}", "/dev/null", "{weird}", ""],
    "str": ["", " ", "\x1b[2J\u202e\t\r\n", "x" * 5000, "Zainab Al-Hassan", "{textfile}", "名前,;=cmd|'/C calc'!A0"],
    "enum": ["", "nonsense"],
    "list": ["", ",,,", "nonsense:1:2", "=1+1"],
}
PLANTED = ("Zainab Al-Hassan", "Maria Lopez Ruiz", "+5215551234")


@dataclass(frozen=True)
class World:
    root: Path
    secrets: Sensitive

    def fill(self, arg: str, out: Path) -> str:
        paths = {
            "{hub}": self.root / "demo/hub/accord-hub.duckdb",
            "{export}": self.root / "demo/exports/partner_b.csv",
            "{mapping}": self.root / "demo/exports/partner_b.mapping.yaml",
            "{key}": self.root / "demo/partners/partner_b/partner.key",
            "{secret}": self.root / "demo/partners/shared/linkage.secret",
            "{contribution}": self.root / "demo/partners/partner_b/contribution",
            "{micro}": self.root / "micro.csv",
            "{ids}": self.root / "ids.csv",
            "{enc}": self.root / "enc.parquet",
            "{counts}": self.root / "counts.csv",
            "{hierarchies}": self.root / "hierarchies",
            "{published}": self.root / "published.json",
            "{aggregate}": self.root / "aggregate.csv",
            "{standard}": Path(__file__).resolve().parents[2] / "src/accord/standard/standard.yaml",
            "{token}": self.root / "token.txt",
            "{password}": self.root / "password.txt",
            # Per case (in the case's folder), so that a case writing to one cannot change the next.
            "{missing}": out.parent / "no-such-file.csv",
            "{dir}": out.parent / "a-directory",
            "{textfile}": out.parent / "names.csv",
            "{weird}": out.parent / "we\u202eird\x07 name\t.csv",
            "{out}": out,
            "{out2}": out.with_name(out.name + "-2"),
        }
        for k, v in paths.items():
            arg = arg.replace(k, str(v))
        return arg


# A base invocation per command: valid on the world, so that a hostile value reaches the code
# that handles its option. Keyed by the command's path in the CLI.
BASE: dict[str, list[str]] = {
    "simulate": ["--people", "60", "--partners", "2", "--out", "{out}"],
    "standard dictionary": ["--out", "{out}"],
    "standard xlsform": ["--out", "{out}.xlsx", "--mapping-out", "{out2}.yaml"],
    "standard validate": ["{standard}"],
    "standard diff": ["0.1", "0.2"],
    "keys init": ["--key-file", "{out}"],
    "mapping suggest": ["{export}", "--out", "{out}"],
    "tables export": ["{published}", "--out", "{out}", "--period", "2024"],
    "tables ingest": ["{aggregate}", "--source", "sweep", "--hub", "{hub}"],
    "tables rates": ["--hub", "{hub}", "--out", "{out}"],
    "kobo pull": ["--server", "http://127.0.0.1:9", "--token-file", "{token}", "--form", "aXb", "--out", "{out}"],
    "odk pull": ["--server", "http://127.0.0.1:9", "--token-file", "{token}", "--project", "1", "--form", "f",
                 "--out", "{out}"],
    "ingest": ["{export}", "--mapping", "{mapping}", "--partner", "p", "--out", "{out}", "--key-file", "{key}",
               "--quarantine", "{out2}"],
    "encode": ["{ids}", "--id", "case", "--fields", "name:name,dob:date", "--secret-file", "{secret}",
               "--out", "{out}"],
    "hub add": ["{contribution}", "--hub", "{out}"],
    "hub status": ["--hub", "{hub}"],
    "hub releases": ["--hub", "{hub}"],
    "hub audit": ["--hub", "{hub}"],
    "hub verify": ["--hub", "{hub}"],
    "hub org add": ["ngo-y", "--hub", "{hub}"],
    "hub user add": ["ben", "--org", "ngo-x", "--role", "analyst", "--password-file", "{password}", "--hub",
                     "{hub}"],
    "hub user list": ["--hub", "{hub}"],
    "hub user reset-password": ["ana", "--out", "{out}", "--hub", "{hub}"],
    "hub user disable": ["ana", "--hub", "{hub}"],
    "hub user reopen": ["ana", "--out", "{out}", "--hub", "{hub}"],
    "hub user unlock": ["ana", "--hub", "{hub}"],
    "hub user role": ["ana", "--role", "auditor", "--hub", "{hub}"],
    "hub token create": ["ana", "--out", "{out}", "--hub", "{hub}"],
    "hub token revoke": ["3f9c0a1b2c4d", "--hub", "{hub}"],
    "hub token list": ["--hub", "{hub}"],
    "push": ["{contribution}", "--server", "http://127.0.0.1:9", "--token-file", "{token}", "--timeout", "2"],
    "serve": ["--hub", "{hub}", "--bind", "127.0.0.1:8765"],
    "match": ["{enc}", "{enc}", "--out", "{out}"],
    "link": ["--hub", "{hub}"],
    "stats": ["--hub", "{hub}"],
    "risk": ["--hub", "{hub}"],
    "anonymise": ["{micro}", "--qi", "sex,age_group", "--hierarchies", "{hierarchies}", "--k", "2", "--out",
                  "{out}"],
    "synthesize": ["{micro}", "--epsilon", "1", "--rows", "50", "--out", "{out}"],
    "release tables": ["--epsilon", "0.5", "--hub", "{hub}", "--out", "{out}"],
    "release synthetic": ["--epsilon", "0.5", "--rows", "50", "--hub", "{hub}", "--out", "{out}"],
    "release microdata": ["--hub", "{hub}", "--out", "{out}", "--force"],
    "budget set": ["--epsilon", "5", "--hub", "{hub}"],
    "budget grant": ["--epsilon", "0.1", "--reason", "sweep", "--hub", "{hub}"],
    "budget quota": ["ngo-x", "--epsilon", "1", "--reason", "sweep", "--hub", "{hub}"],
    "estimate mse": ["{counts}"],
    "report": ["--out", "{out}", "--hub", "{hub}"],
    "demo": ["--people", "120", "--partners", "2", "--out", "{out}"],
    "tables combine": ["--hub", "{hub}", "--no-hub", "--out", "{out}"],
    "hub withdraw": ["--partner", "p", "--batch", "3f9c0a1b2c4d", "--hub", "{hub}"],
    "hub requests list": ["--hub", "{hub}"],
    "hub requests approve": ["rq-0123456789ab", "--hub", "{hub}"],
    "hub requests reject": ["rq-0123456789ab", "--reason", "sweep", "--hub", "{hub}"],
    "withdraw": ["--server", "http://127.0.0.1:9", "--token-file", "{token}", "--batch", "3f9c0a1b2c4d"],
    "request list": ["--server", "http://127.0.0.1:9", "--token-file", "{token}"],
    "request microdata": ["--server", "http://127.0.0.1:9", "--token-file", "{token}", "--k", "2"],
    "request synthetic": ["--server", "http://127.0.0.1:9", "--token-file", "{token}", "--epsilon", "0.5",
                          "--rows", "50"],
    "download": ["rq-0123456789ab", "--server", "http://127.0.0.1:9", "--token-file", "{token}", "--out", "{out}"],
}
# Options whose value is a flag or never user data worth sweeping.
SKIP_OPTIONS = {"--json", "--help"}


def leaf_commands() -> Iterator[tuple[str, Any]]:
    def walk(cmd: Any, path: list[str]) -> Iterator[tuple[str, Any]]:
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield " ".join(path), cmd

    yield from walk(typer.main.get_command(make_app()), [])


def kind_of(param: Any) -> str | None:
    if getattr(param, "is_flag", False):
        return None
    ann = param.type_descriptor.annotation
    if get_origin(ann) in (types.UnionType, typing.Union):
        ann = next(a for a in get_args(ann) if a is not type(None))
    if get_origin(ann) is list:
        return "list"
    if ann is bool:
        return None
    if ann is float:
        return "float"
    if ann is int:
        return "int"
    if isinstance(ann, type) and issubclass(ann, Enum):
        return "enum"
    if isinstance(ann, type) and issubclass(ann, Path):
        return "path"
    return "str"


@dataclass(frozen=True)
class Case:
    command: str
    option: str  # "--x" or the argument's name
    value: str

    @property
    def id(self) -> str:
        v = self.value if len(self.value) < 20 else self.value[:12] + "..."
        return f"{self.command}:{self.option}={v!r}"


def argv(case: Case, world: World, out: Path) -> list[str]:
    base = list(BASE[case.command])
    cmd = next(c for name, c in leaf_commands() if name == case.command)
    param = next(p for p in cmd.params if (p.opts[0] if p.opts else p.name) == case.option)
    value = case.value
    if param.opts and param.opts[0].startswith("-"):
        names = set(param.opts) | set(param.secondary_opts)
        if any(a in names for a in base):
            i = next(i for i, a in enumerate(base) if a in names)
            base[i + 1] = value
        else:
            base += [param.opts[0], value]
    else:  # a positional argument: BASE lists the positionals first, in order
        positionals = [p for p in cmd.params if not (p.opts and p.opts[0].startswith("-"))]
        base[positionals.index(param)] = value
    return [*case.command.split(), *(world.fill(a, out) for a in base)]


def all_cases(every_value: bool) -> list[Case]:
    cases: list[Case] = []
    rotation: dict[str, itertools.cycle[str]] = {k: itertools.cycle(v) for k, v in HOSTILE.items()}
    for name, cmd in sorted(leaf_commands(), key=lambda x: x[0]):
        for p in cmd.params:
            opt = p.opts[0] if p.opts else p.name
            kind = kind_of(p)
            if kind is None or opt in SKIP_OPTIONS:
                continue
            values = HOSTILE[kind] if every_value else [next(rotation[kind])]
            cases += [Case(name, opt, v) for v in values]
    return cases


# ---------------------------------------------------------------------------------------- world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("sweep"))


def build_world(root: Path) -> World:
    env = {**os.environ, "ACCORD_PROGRESS": "0"}
    if not (root / "demo").exists():
        run = subprocess.run([ACCORD, "demo", "--people", "300", "--partners", "2", "--out", "demo"], cwd=root,
                             env=env, capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, run.stderr
    run = subprocess.run([ACCORD, "release", "microdata", "--hub", "demo/hub/accord-hub.duckdb", "--k", "2",
                          "--out", "micro.csv"], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode in (0, 3), run.stderr
    if not (root / "micro.csv").exists():  # a refused release: a small table of the same shape
        (root / "micro.csv").write_text("sex,age_group,case_type\n" + "F,18-24,VOT\nM,25-59,GBV\n" * 30,
                                        encoding="utf-8")
    exports = root / "demo/exports"
    with (exports / "partner_b.csv").open(encoding="cp1252", newline="") as fh:
        rows = list(csv.reader(fh, delimiter=";"))
    header, body = rows[0], [r for r in rows[1:] if r]
    secrets = Sensitive()
    for column in identifier_columns(exports / "partner_b.mapping.yaml"):
        j = header.index(column)
        secrets.add(*(r[j] for r in body))
    secrets.add(*PLANTED)
    ids = root / "ids.csv"
    with ids.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["case", "name", "dob"])
        for r in body[:80]:
            w.writerow([r[header.index("CaseNo")], r[header.index("FirstName")] + " " + r[header.index("Surname")],
                        r[header.index("DOB")]])
    run = subprocess.run([ACCORD, "encode", str(ids), "--id", "case", "--fields", "name:name,dob:date",
                          "--secret-file", "demo/partners/shared/linkage.secret", "--out", "enc.parquet"],
                         cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    (root / "counts.csv").write_text("a,b,c,count\n1,0,0,40\n0,1,0,35\n0,0,1,30\n1,1,0,8\n1,0,1,7\n0,1,1,6\n1,1,1,2\n",
                                     encoding="utf-8")
    (root / "token.txt").write_text("not-a-real-token-0123456789\n", encoding="utf-8")
    (root / "password.txt").write_text("correct horse battery staple 42\n", encoding="utf-8")
    (root / "hierarchies").mkdir(exist_ok=True)
    (root / "hierarchies/sex.csv").write_text("F;*\nM;*\nX;*\nU;*\n", encoding="utf-8")
    ages = sorted({r.split(",")[1] for r in (root / "micro.csv").read_text(encoding="utf-8").splitlines()[1:] if r})
    (root / "hierarchies/age_group.csv").write_text("".join(f"{a};*\n" for a in ages), encoding="utf-8")
    (root / "aggregate.csv").write_text("country,year,sex,age_group,form_of_exploitation,count\n"
                                        "THA,2020,Total,Total,Total,210\nVNM,2021,Male,Total,Other forms of "
                                        "exploitation,12\n", encoding="utf-8")
    hub = "demo/hub/accord-hub.duckdb"
    for args in (["tables", "ingest", "aggregate.csv", "--source", "glotip", "--hub", hub],
                 ["hub", "org", "add", "ngo-x", "--hub", hub],
                 ["hub", "user", "add", "ana", "--org", "ngo-x", "--role", "analyst", "--password-file",
                  "password.txt", "--hub", hub]):
        run = subprocess.run([ACCORD, *args], cwd=root, env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, (args, run.stderr)
    run = subprocess.run([ACCORD, "stats", "--hub", hub, "--json"], cwd=root, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    (root / "published.json").write_text(run.stdout, encoding="utf-8")
    return World(root, secrets)


def hostile_files(folder: Path) -> None:
    """The hostile paths of one case: a directory, a text file of planted names, an odd file name."""
    (folder / "a-directory").mkdir(exist_ok=True)
    (folder / "names.csv").write_text("name,phone\n" + "\n".join(f"{p},x" for p in PLANTED) + "\n",
                                      encoding="utf-8")
    (folder / "we\u202eird\x07 name\t.csv").write_text("name\nZainab Al-Hassan\n", encoding="utf-8")


class _Alarm(Exception):
    pass


def _invoke(world: World, args: list[str], tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    def served(*_a: object, **_k: object) -> None:  # `accord serve` validated its options: it would serve now
        return None

    import uvicorn

    monkeypatch.setattr(uvicorn, "run", served)
    monkeypatch.chdir(tmp)
    monkeypatch.setenv("ACCORD_PROGRESS", "0")
    monkeypatch.delenv("ACCORD_HUB", raising=False)
    monkeypatch.delenv("ACCORD_DEBUG", raising=False)

    def on_alarm(_sig: int, _frame: object) -> None:
        raise _Alarm

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(CASE_SECONDS)
    try:
        return CliRunner().invoke(make_app(args[0]), args, input="", catch_exceptions=True)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def check_case(world: World, case: Case, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub_copy = tmp / "hub.duckdb"
    hostile_files(tmp)
    args = argv(case, world, tmp / "out")
    # Commands that write to the hub get a copy, so that one case cannot change the next one's world.
    hub = str(world.root / "demo/hub/accord-hub.duckdb")
    if hub in args:
        shutil.copy(hub, hub_copy)
        for suffix in (".key", ".key.head"):
            if Path(hub + suffix).exists():
                shutil.copy(hub + suffix, str(hub_copy) + suffix)
        args = [str(hub_copy) if a == hub else a for a in args]
    result = _invoke(world, args, tmp, monkeypatch)
    exc = result.exception
    if isinstance(exc, _Alarm):
        pytest.fail(f"{case.id}: still running after {CASE_SECONDS} s")
    if exc is not None and not isinstance(exc, SystemExit):
        pytest.fail(f"{case.id}: unexpected {type(exc).__name__} (exit 70 for a user)")
    assert result.exit_code in (0, 2, 3), f"{case.id}: exit {result.exit_code}\n{result.output[-2000:]}"
    # The user's own option value may be repeated back (a path, a column name); a record value may not.
    leaked = [v for v in world.secrets.found_in(result.output) if v not in case.value]
    assert not leaked, f"{case.id}: printed {len(leaked)} record value(s)"
    assert "Traceback" not in result.output


def test_every_command_has_a_base_invocation() -> None:
    names = {name for name, _ in leaf_commands()}
    assert names == set(BASE), (names - set(BASE), set(BASE) - names)
    assert {n.split()[0] for n in names} == set(COMMANDS)


def test_base_invocations_succeed(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep means something only if the unchanged invocations work."""
    # no server / no such token, request or batch
    expected_refusals = {"kobo pull", "odk pull", "push", "hub token revoke", "download", "request list",
                         "request microdata", "request synthetic", "withdraw", "hub requests approve",
                         "hub requests reject", "hub withdraw",
                         "hub user reopen"}  # ana's account is open: only a closed one reopens
    for name in sorted(BASE):
        if name == "demo":
            continue  # the world itself was made by it
        tmp = tmp_path / name.replace(" ", "-")
        tmp.mkdir()
        args = [*name.split(), *(world.fill(a, tmp / "out") for a in BASE[name])]
        hub = str(world.root / "demo/hub/accord-hub.duckdb")
        if hub in args:
            shutil.copy(hub, tmp / "hub.duckdb")
            for suffix in (".key", ".key.head"):
                shutil.copy(hub + suffix, str(tmp / "hub.duckdb") + suffix)
            args = [str(tmp / "hub.duckdb") if a == hub else a for a in args]
        result = _invoke(world, args, tmp, monkeypatch)
        want = (2,) if name in expected_refusals else (0,)
        assert result.exit_code in want, f"{name}: exit {result.exit_code}\n{result.output[-1500:]}"


def _run_cases(world: World, cases: list[Case], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failures: list[str] = []
    for i, case in enumerate(cases):
        tmp = tmp_path / f"c{i}"
        tmp.mkdir()
        try:
            check_case(world, case, tmp, monkeypatch)
        except AssertionError as exc:  # collect them all: one run shows every failing case
            failures.append(str(exc).splitlines()[0])
        except pytest.fail.Exception as exc:
            failures.append(str(exc).splitlines()[0])
        shutil.rmtree(tmp, ignore_errors=True)
    assert not failures, f"{len(failures)} of {len(cases)} cases failed:\n" + "\n".join(failures)


def test_hostile_option_values(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One hostile value per option (the type's values in rotation), every command."""
    cases = [c for c in all_cases(every_value=False) if c.command != "demo"]
    _run_cases(world, cases, tmp_path, monkeypatch)


@pytest.mark.slow
def test_every_hostile_value_of_every_option(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [c for c in all_cases(every_value=True) if c.command != "demo" or c.option != "--people"]
    _run_cases(world, cases, tmp_path, monkeypatch)



# ------------------------------------------------------------------------------ existing outputs

# Options naming what a command writes; base invocations for writers BASE runs without one.
OUTPUT_OPTIONS = ("--out", "--mapping-out", "--quarantine", "--persons-out", "--linkage-unit-out",
                  "--steward-report")
MORE_OUTPUTS: dict[str, list[str]] = {
    "stats": ["--hub", "{hub}", "--out", "{out}"],
    "synthesize --steward-report": ["{micro}", "--epsilon", "1", "--rows", "50", "--out", "{out}",
                                    "--steward-report", "{out2}"],
}
# Replaced by nothing, not even --overwrite: a contribution, a secret made for one user, a
# download (each refused in its own words). `demo --out` has its own rule (--fresh clears only a
# folder the demo made).
NEVER_REPLACED = {("ingest", "--out"), ("hub user reset-password", "--out"), ("hub token create", "--out"),
                  ("hub user reopen", "--out"),
                  ("download", "--out")}


def _hub_copy(world: World, args: list[str], tmp: Path) -> list[str]:
    hub = str(world.root / "demo/hub/accord-hub.duckdb")
    if hub not in args:
        return args
    for suffix in ("", ".key", ".key.head"):
        if Path(hub + suffix).exists():
            shutil.copy(hub + suffix, str(tmp / "hub.duckdb") + suffix)
    return [str(tmp / "hub.duckdb") if a == hub else a for a in args]


def _spent(hub: Path) -> object:
    result = CliRunner().invoke(make_app("budget"), ["budget", "--hub", str(hub), "--json"])
    return result.output if result.exit_code else json.loads(result.stdout)["budget"]


def test_no_output_is_replaced_without_overwrite(world: World, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`simulate --out` onto an earlier run's folder overwrote it silently, as did report, match,
    anonymise, synthesize, the releases, ... Now every output that exists (a file, or a folder
    holding anything) is refused with exit 2 before any work (a release spends no budget), left as
    it was, and the message names it and --overwrite; every writer has --overwrite."""
    commands = dict(leaf_commands())
    failures: list[str] = []
    checked = 0
    for name, base in sorted({**BASE, **MORE_OUTPUTS}.items()):
        if name == "demo":
            continue
        for i, option in enumerate(base[:-1]):
            if option not in OUTPUT_OPTIONS:
                continue
            replaceable = (name, option) not in NEVER_REPLACED
            if replaceable and not any("--overwrite" in p.opts for p in commands[name.split(" --")[0]].params):
                failures.append(f"{name}: writes {option} but has no --overwrite")
            for shape in ("file", "folder"):
                tmp = tmp_path / f"{name.replace(' ', '-')}{option}-{shape}"
                tmp.mkdir()
                target = Path(world.fill(base[i + 1], tmp / "out"))
                if shape == "file":
                    target.write_text("keep\n", encoding="utf-8")
                else:
                    target.mkdir()
                    (target / "keep.txt").write_text("keep\n", encoding="utf-8")
                args = _hub_copy(world, [*name.split(" --")[0].split(), *(world.fill(a, tmp / "out") for a in base)],
                                 tmp)
                spent = _spent(tmp / "hub.duckdb") if name.startswith("release") else None
                result = _invoke(world, args, tmp, monkeypatch)
                checked += 1
                said = "".join(result.output.split())
                kept = (target.read_text(encoding="utf-8") if shape == "file" else
                        sorted(p.name for p in target.iterdir()) == ["keep.txt"]
                        and (target / "keep.txt").read_text(encoding="utf-8")) == "keep\n"
                case = f"{name} {option} (an existing {shape})"
                if result.exit_code != 2 or not kept:
                    failures.append(f"{case}: exit {result.exit_code}, left as it was: {kept}")
                elif result.exception is not None and not isinstance(result.exception, SystemExit):
                    failures.append(f"{case}: {type(result.exception).__name__}")
                elif replaceable and not (str(target).replace(" ", "") in said and "--overwrite" in said):
                    failures.append(f"{case}: does not name the output and --overwrite: {result.output[-300:]}")
                elif spent is not None and _spent(tmp / "hub.duckdb") != spent:
                    failures.append(f"{case}: budget spent before the refusal")
    assert checked >= 40
    assert not failures, "\n".join(failures)



# Outputs that are folders: there '' (typer reads it as '.') and '.' name the working folder, which
# refuse_existing already refuses unless it is empty or --overwrite is given. Every other output
# option of a writer is a file.
FOLDER_OUTPUTS = {("simulate", "--out"), ("tables export", "--out"), ("stats", "--out"),
                  ("release tables", "--out"), ("release synthetic", "--out"), ("release microdata", "--out"),
                  ("download", "--out"), ("demo", "--out")}
# Outputs that are a new folder: named, as a file is (`ingest --out ''` was a ValueError, exit 70).
NEW_FOLDER_OUTPUTS = {("ingest", "--out")}
# File outputs no base invocation above names; the name is checked before the other inputs are read.
NAMED_FILE_OUTPUTS: dict[str, list[str]] = {
    "link --persons-out": ["--unit-file", "{enc}", "--persons-out", "{out}"],
    "ingest --linkage-unit-out": ["{export}", "--mapping", "{mapping}", "--partner", "p", "--out", "{out2}",
                                  "--key-file", "{key}", "--linkage-secret", "{secret}",
                                  "--linkage-unit-out", "{out}"],
}


def test_every_file_output_needs_a_file_name(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`synthesize --out ''` (or '.') failed inside pathlib (exit 70 for a user); only synthesize
    was then guarded. Every output that is a file now refuses '' and '.' with exit 2 naming the
    option, with --overwrite too (which would otherwise send it to the working folder). An output
    not listed in FOLDER_OUTPUTS is taken as a file: a new writer without the guard fails here."""
    commands = dict(leaf_commands())
    failures: list[str] = []
    checked = 0
    for name, base in sorted({**BASE, **MORE_OUTPUTS, **NAMED_FILE_OUTPUTS}.items()):
        command = name.split(" --")[0]
        overwrite = ["--overwrite"] if any("--overwrite" in p.opts for p in commands[command].params) else []
        for i, option in enumerate(base[:-1]):
            written = option in OUTPUT_OPTIONS or (command, option) == ("keys init", "--key-file")
            if not written or (command, option) in FOLDER_OUTPUTS:
                continue
            for value in ("", "."):
                tmp = tmp_path / f"{name.replace(' ', '-')}{option}-{len(value)}"
                tmp.mkdir()
                hostile_files(tmp)  # the working folder holds files, as a real one does
                args = [*base[:i + 1], value, *base[i + 2:], *overwrite]
                args = _hub_copy(world, [*command.split(), *(world.fill(a, tmp / "out") for a in args)], tmp)
                result = _invoke(world, args, tmp, monkeypatch)
                checked += 1
                said = " ".join(result.output.split())
                what = "folder" if (command, option) in NEW_FOLDER_OUTPUTS else "file"
                if result.exit_code != 2 or f"{option} needs a {what} name" not in said:
                    failures.append(f"{name} {option} {value!r}: exit {result.exit_code}: {said[-200:]}")
    assert checked >= 40
    assert not failures, "\n".join(failures)


def test_overwrite_replaces_only_what_the_command_writes(world: World, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """With --overwrite a file is replaced, and a folder's other files are left (nothing removed
    that the command did not write)."""
    out = tmp_path / "sim"
    out.mkdir()
    (out / "mine.txt").write_text("keep\n", encoding="utf-8")
    args = ["simulate", "--people", "60", "--partners", "2", "--out", str(out), "--format-a", "csv"]
    assert _invoke(world, args, tmp_path, monkeypatch).exit_code == 2
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    result = _invoke(world, [*args, "--overwrite"], tmp_path, monkeypatch)
    assert result.exit_code == 0, result.output
    assert (out / "mine.txt").read_text(encoding="utf-8") == "keep\n" and len(list(out.iterdir())) > 1
    report = tmp_path / "r.html"
    report.write_text("old\n", encoding="utf-8")
    args = _hub_copy(world, ["report", "--out", str(report), "--hub", str(world.root / "demo/hub/accord-hub.duckdb"),
                             "--overwrite"], tmp_path)
    result = _invoke(world, args, tmp_path, monkeypatch)
    assert result.exit_code == 0, result.output
    assert report.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
