"""Shared fixtures: a partner key, a small messy export and its mapping, a CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

# Rich wraps at the terminal width; tests read whole sentences.
os.environ["COLUMNS"] = "200"

import pytest
from typer.testing import CliRunner

from accord.protect.keys import PartnerKey, create_partner_key
from tests.data_paths import SHARED_DATA

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
