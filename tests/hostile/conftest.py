"""Two small simulated partners and a key, made once per session: the raw material of every case."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from openpyxl import load_workbook

from accord.ingest.xlsx_reader import _cell_text
from tests.hostile.harness import Sensitive, identifier_columns, run_accord


@dataclass(frozen=True)
class Partners:
    root: Path
    key: Path
    a_xlsx: Path
    a_mapping: Path
    b_csv: Path
    b_mapping: Path
    a_header: list[str]
    a_rows: list[list[str]]  # partner A's rows as text, as Accord reads them
    b_header: list[str]
    b_rows: list[list[str]]

    def secrets(self) -> Sensitive:
        s = Sensitive()
        for header, rows, mapping in ((self.a_header, self.a_rows, self.a_mapping),
                                      (self.b_header, self.b_rows, self.b_mapping)):
            for column in identifier_columns(mapping):
                j = header.index(column)
                s.add(*(r[j] for r in rows if j < len(r)))
        return s

    def mapping(self, which: str, edit: dict[str, object] | None = None, source: dict[str, object] | None = None,
                rename: dict[str, str] | None = None, path: Path | None = None) -> Path:
        """A copy of a partner's mapping with its source options replaced and columns renamed."""
        doc = yaml.safe_load((self.a_mapping if which == "a" else self.b_mapping).read_text(encoding="utf-8"))
        if source is not None:
            doc["source"] = source
        for fm in doc["fields"].values():
            if rename and fm.get("column") in rename:
                fm["column"] = rename[fm["column"]]
        doc.update(edit or {})
        out = path or self.root / f"mapping-{which}-{abs(hash(yaml.safe_dump(doc))) % 10**8}.yaml"
        out.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
        return out


@pytest.fixture(scope="session")
def partners(tmp_path_factory: pytest.TempPathFactory) -> Partners:
    root = tmp_path_factory.mktemp("hostile")
    code, _, err, _, _ = run_accord(["simulate", "--people", "240", "--partners", "2", "--overlap", "0.2",
                                     "--seed", "13", "--out", "sim"], cwd=root)
    assert code == 0, err
    code, _, err, _, _ = run_accord(["keys", "init", "--key-file", "partner.key"], cwd=root)
    assert code == 0, err
    sim = root / "sim"
    wb = load_workbook(sim / "partner_a.xlsx", read_only=True, data_only=True)
    rows = [[_cell_text(v) for v in row] for row in wb.worksheets[0].iter_rows(values_only=True)]
    wb.close()
    rows = [r for r in rows if any(v.strip() for v in r)]
    with (sim / "partner_b.csv").open(encoding="cp1252", newline="") as fh:
        b = list(csv.reader(fh, delimiter=";"))
    return Partners(root, root / "partner.key", sim / "partner_a.xlsx", sim / "partner_a.mapping.yaml",
                    sim / "partner_b.csv", sim / "partner_b.mapping.yaml", rows[0], rows[1:], b[0],
                    [r for r in b[1:] if r])
