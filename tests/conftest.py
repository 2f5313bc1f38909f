"""Shared fixtures: a partner key, a small messy export and its mapping, a CLI runner."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# Rich wraps at the terminal width; tests read whole sentences.
os.environ["COLUMNS"] = "200"

import pytest
from typer.testing import CliRunner

from accord.protect.keys import PartnerKey, create_partner_key
from tests.data_paths import SHARED_DATA, fail_missing_shared_data
from tests.postgres_server import REQUIRE_ENV, PostgresServer, missing_reason

CASE_CSV_HEADER = "CaseNo;First;Last;DOB;Sex;Nat;Reg;Type;Exp;Ctrl_Debt;Ctrl_Threat;Phone\n"
CASE_CSV_ROWS = [
    "A1;Maria;Lopez;03/04/1990;F;MX;01/02/2022;TV;FL;1;0;+5215551234",
    "A2;José;Pérez;-99;M;GT;05/02/2022;TV;SE FL;0;0;=cmd|' /C calc'!A0",
    "A3;Xóchitl;Yáñez;31/02/1990;F;XX;05/02/2022;TV;FL;1;1;",
    "A4;Ana;Ruiz;1985;Q;MX;06/02/2022;GBV;;;;",
    "A1;Dup;Dup;01/01/1980;F;MX;07/02/2022;TV;FL;0;0;",
    "A5;Lucía;Gómez;01/01/2001;F;MEX;08/02/2022;GBV;;;;@SUM(1)",
]
CASE_MAPPING = """\
description: test partner, case-management CSV
source: {delimiter: ";"}
missing_values: ["", "-99"]
fields:
  case_id: {column: CaseNo}
  given_name: {column: First}
  family_name: {column: Last}
  date_of_birth: {column: DOB, date_format: "%d/%m/%Y"}
  sex: {column: Sex, codes: {F: female, M: male}}
  citizenship: {column: Nat}
  registration_date: {column: Reg, date_format: "%d/%m/%Y"}
  case_type: {column: Type, codes: {TV: trafficking_victim, GBV: gbv_survivor}}
  type_of_exploitation: {column: Exp, split: " ", codes: {FL: forced_labour, SE: sexual_exploitation}}
  means_of_control: {flags: {Ctrl_Debt: debt_bondage, Ctrl_Threat: physical_threats}}
  phone: {column: Phone}
  country_of_registration: {value: MX}
  consent_statistics: {value: "yes"}
  consent_linkage: {value: "yes"}
  consent_research: {value: "yes"}
"""
# Row A1 (line 2) accepted; A2 accepted (DOB missing); A3 bad date + bad country; A4 bad sex code
# (1985 alone is a year-only DOB); second A1 duplicate; A5 accepted.
EXPECTED_ACCEPTED = 3
EXPECTED_QUARANTINED = 3


def write_case_export(path: Path, rows: list[str] | None = None, encoding: str = "cp1252",
                      trailer: str = ";;;;;;;;;;;\n") -> Path:
    text = CASE_CSV_HEADER + "\n".join(CASE_CSV_ROWS if rows is None else rows) + "\n" + trailer
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "partner.key"
    create_partner_key(path)
    return path


@pytest.fixture
def partner_key(key_file: Path) -> PartnerKey:
    from accord.protect.keys import load_partner_key

    return load_partner_key(key_file)


@pytest.fixture
def case_export(tmp_path: Path) -> tuple[Path, Path]:
    export = write_case_export(tmp_path / "cases.csv")
    mapping = tmp_path / "cases.mapping.yaml"
    mapping.write_text(CASE_MAPPING, encoding="utf-8")
    return export, mapping


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip("../shared/data is absent (public benchmark data); these tests need it")
    return SHARED_DATA


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """With ACCORD_REQUIRE_SHARED_DATA=1 (set by .ci/run) a shared-data skip is a failure."""
    outcome = yield
    fail_missing_shared_data(outcome.get_result())


# Identifiers planted in the test exports above (names, dates of birth, phones). No failing CLI
# command anywhere in the suite may print one: "messages never name record values" (issue 17).
PLANTED_IDENTIFIERS = ("Maria", "Lopez", "José", "Pérez", "Xóchitl", "Yáñez", "Lucía", "Gómez",
                       "03/04/1990", "31/02/1990", "01/01/2001", "01/01/1980", "+5215551234",
                       "5215551234")


def planted_in(text: str, planted: tuple[str, ...] = PLANTED_IDENTIFIERS) -> list[str]:
    """The planted identifiers found in ``text``, also lower- or upper-cased."""
    return [v for v in planted if v in text or v.lower() in text or v.upper() in text]


@pytest.fixture(autouse=True)
def _failing_cli_messages_name_no_record_value(  # type: ignore[no-untyped-def]
        monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    """Collects the output of every failing in-process CLI call of a test and checks it."""
    failures: list[tuple[list[str], str]] = []
    real = CliRunner.invoke

    def invoke(self: CliRunner, cli: object, args: object = None, *a: object, **k: object) -> object:
        result = real(self, cli, args, *a, **k)  # type: ignore[arg-type]
        if result.exit_code != 0:
            failures.append(([str(x) for x in args] if isinstance(args, list) else [str(args)],
                             result.output))
        return result

    monkeypatch.setattr(CliRunner, "invoke", invoke)
    yield failures
    if request.node.get_closest_marker("prints_planted"):
        return
    for args, output in failures:
        leaked = planted_in(output)
        assert not leaked, f"a failing `accord {' '.join(args[:1])}` printed record values: {leaked}"


# ---- hub backends, the Splink way: one set of tests, the engine swapped underneath -------------
@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL for this test session (one per xdist worker), stopped at the end."""
    reason = missing_reason()
    if reason is not None:
        if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
            pytest.fail(f"{REQUIRE_ENV} is set but {reason}")
        pytest.skip(reason)
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty database on the test server, with its own chain key file (a server hub has no
    file beside which to keep it: $ACCORD_HUB_KEY names it, see accord.store.chain)."""
    monkeypatch.setenv("ACCORD_HUB_KEY", str(tmp_path / "pg-hub.key"))
    return postgres_server.create_database()


@pytest.fixture(params=["duckdb", "postgres"])
def hub(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's hub lives: a DuckDB file, or a new PostgreSQL database (as a URL)."""
    if request.param == "duckdb":
        return str(tmp_path / "hub.duckdb")
    return str(request.getfixturevalue("postgres_url"))
