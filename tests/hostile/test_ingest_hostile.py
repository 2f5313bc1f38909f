"""Hostile and messy partner exports, generated per case: every class of the hostile-input trial.

Each test builds its file from the simulated partners, runs the real `accord ingest` and checks the
invariants of `harness.check_run` (exit 0 or 2, every row accounted for, no record value printed
or in a contribution, no live formula, bounded memory), then what is specific to the case.
"""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook

from tests.hostile.conftest import Partners
from tests.hostile.harness import MAX_SECONDS, Run, Sensitive, check_run, ingest

# ----------------------------------------------------------------------------------------- writers


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8",
              delimiter: str = ";", end: str = "\n", suffix: str = "") -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator=end)
    w.writerow(header)
    w.writerows(rows)
    text = buf.getvalue()
    if suffix:  # e.g. a trailing delimiter on every line
        text = end.join(line + suffix for line in text.split(end)[:-1]) + end
    path.write_bytes(text.encode(encoding))
    return path


def write_xlsx(path: Path, header: list[str], rows: list[list[object]], sheets: list[str] | None = None,
               data_sheet: int = 0, number_formats: dict[int, str] | None = None) -> Path:
    wb = Workbook()
    names = sheets or ["Sheet1"]
    wb.active.title = names[0]
    for name in names[1:]:
        wb.create_sheet(name)
    ws = wb.worksheets[data_sheet]
    ws.append(header)
    for r in rows:
        ws.append(r)
    for col, fmt in (number_formats or {}).items():
        for row in ws.iter_rows(min_row=2, min_col=col + 1, max_col=col + 1):
            row[0].number_format = fmt
    wb.save(path)
    return path


def kobo_records(p: Partners) -> list[dict[str, str]]:
    # Kobo leaves unanswered questions out of a submission.
    return [{k: v for k, v in zip(p.a_header, r, strict=False) if v != ""} for r in p.a_rows]


def write_json(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def run_case(p: Partners, tmp_path: Path, export: Path, mapping: Path, secrets: Sensitive | None = None,
             expected_rows: int | None = None, allowed: tuple[int, ...] = (0, 2), timeout: float = MAX_SECONDS) -> Run:
    run = ingest(export, mapping, p.key, tmp_path, timeout=timeout)
    check_run(run, secrets or p.secrets(), expected_rows, allowed)
    return run


def b_utf8(p: Partners, tmp_path: Path, name: str = "b.csv", **kw: object) -> tuple[Path, Path]:
    export = write_csv(tmp_path / name, p.b_header, p.b_rows, **kw)  # type: ignore[arg-type]
    return export, p.mapping("b", source={"format": "csv", "delimiter": ";", "encoding": "auto"})


def pseudonyms(run: Run) -> set[str]:
    table = pq.read_table(run.out / "records.parquet") if (run.out / "records.parquet").exists() else \
        pq.read_table(next(run.out.rglob("records*.parquet")))
    column = next(c for c in table.column_names if "pseudonym" in c)
    return {v for v in table[column].to_pylist() if v}


def reasons(run: Run) -> dict[str, int]:
    return dict(run.summary["reasons"])


# ------------------------------------------------------------------------------ clean baselines


def test_clean_partners_ingest(partners: Partners, tmp_path: Path) -> None:
    run_case(partners, tmp_path, partners.b_csv, partners.b_mapping, allowed=(0,))
    run_case(partners, tmp_path, partners.a_xlsx,
             partners.a_mapping, allowed=(0,))


# ----------------------------------------------------------------------- personal data in messages


def test_phones_formatted_as_dates_are_quarantined_without_values(partners: Partners, tmp_path: Path) -> None:
    p = partners
    j = p.a_header.index("grp_person/phone")
    rows: list[list[object]] = []
    with_phone = 0
    for r in p.a_rows:
        digits = "".join(ch for ch in r[j] if ch.isdigit())
        row: list[object] = list(r)
        row[j] = int(digits) if digits else None
        with_phone += bool(digits)
        rows.append(row)
    export = write_xlsx(tmp_path / "phones.xlsx", p.a_header, rows, number_formats={j: "yyyy-mm-dd"})
    secrets = p.secrets()
    secrets.add(*(str(r[j]) for r in rows if r[j]))
    run = run_case(p, tmp_path, export, p.mapping("a", source={"format": "xlsx"}), secrets,
                   expected_rows=len(rows), allowed=(0,))
    assert "marked as a date" not in run.text and "serial value" not in run.text
    assert reasons(run).get("spreadsheet_error", 0) >= with_phone * 0.9
    notices = " ".join(run.summary["notices"])
    assert "grp_person/phone" in notices and "formatted as dates" in notices


def test_missing_header_row_does_not_print_the_first_record(partners: Partners, tmp_path: Path) -> None:
    p = partners
    export = tmp_path / "noheader.csv"
    write_csv(export, p.b_rows[0], p.b_rows[1:])  # the first record where the header should be
    secrets = p.secrets()
    secrets.add(*p.b_rows[0])
    run = run_case(p, tmp_path, export, b_utf8(p, tmp_path)[1], secrets, allowed=(2,))
    assert "looks like data, not a header" in run.stderr, run.stderr
    assert "column names as the first row" in " ".join(run.stderr.split())


@pytest.mark.parametrize("fmt", ["xlsx", "csv_unique"])
def test_missing_header_row_is_named_plainly_in_every_reader(partners: Partners, tmp_path: Path, fmt: str) -> None:
    """Without duplicate values in the first record (the mapping then finds none of its columns), and
    in a workbook (dates as date cells, numbers as numbers)."""
    p = partners
    secrets = p.secrets()
    if fmt == "xlsx":
        export = write_xlsx(tmp_path / "noheader.xlsx", p.a_rows[0], [list(r) for r in p.a_rows[1:]])
        mapping = p.mapping("a", source={"format": "xlsx"})
        secrets.add(*p.a_rows[0])
    else:
        first = list(dict.fromkeys(p.b_rows[0]))  # no repeated value: the header check passes
        export = write_csv(tmp_path / "noheader.csv", first, [r[:len(first)] for r in p.b_rows[1:]])
        mapping = b_utf8(p, tmp_path)[1]
        secrets.add(*first)
    run = run_case(p, tmp_path, export, mapping, secrets, allowed=(2,))
    assert "looks like data, not a header" in run.stderr, run.stderr


def test_sheet_names_are_never_listed(partners: Partners, tmp_path: Path) -> None:
    p = partners
    clients = ["Zainab Al-Hassan", "Maria Lopez Ruiz", "Eko Prasetyo W"]
    export = write_xlsx(tmp_path / "clients.xlsx", p.a_header, [list(r) for r in p.a_rows], sheets=clients,
                        data_sheet=2)
    secrets = p.secrets()
    secrets.add(*clients)
    run = run_case(p, tmp_path, export, p.mapping("a", source={"format": "xlsx", "sheet": "Intake"}), secrets,
                   allowed=(2,))
    assert "3 sheet(s)" in run.stderr
    # The position works where the name is unknown.
    ok = run_case(p, tmp_path, export,
                  p.mapping("a", source={"format": "xlsx", "sheet": 3}), secrets, expected_rows=len(p.a_rows),
                  allowed=(0,))
    assert ok.summary["accepted"] > 0


def test_invisible_character_in_a_header_is_shown(partners: Partners, tmp_path: Path) -> None:
    p = partners
    header = [h + "\u200b" if h == "Gender" else h for h in p.b_header]
    export = write_csv(tmp_path / "zw.csv", header, p.b_rows)
    run = run_case(p, tmp_path, export, b_utf8(p, tmp_path)[1], allowed=(2,))
    assert "Gender<U+200B>" in run.stderr


# ------------------------------------------------------------------------------- no tracebacks


def test_export_path_is_a_directory(partners: Partners, tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    run = run_case(partners, tmp_path, tmp_path / "exports", partners.b_mapping, allowed=(2,))
    assert "is a directory" in run.stderr


@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_export_path_is_not_a_regular_file(partners: Partners, tmp_path: Path, target: str) -> None:
    link = tmp_path / "export.csv"
    if target == "fifo":
        os.mkfifo(link)
    else:
        link.symlink_to(target)
    run = run_case(partners, tmp_path, link, partners.b_mapping, allowed=(2,))
    assert "not a regular file" in run.stderr


def test_lone_surrogate_in_kobo_json_is_quarantined(partners: Partners, tmp_path: Path) -> None:
    p = partners
    records = kobo_records(p)
    text = json.dumps(records, ensure_ascii=True)
    name = records[0]["grp_person/given_name"]
    # A broken emoji: a high surrogate without its pair, as JSON escapes it.
    text = text.replace(json.dumps(name, ensure_ascii=True), json.dumps(name, ensure_ascii=True)[:-1] + '\\ud83d"', 1)
    export = tmp_path / "surrogate.json"
    export.write_text(text, encoding="utf-8")
    run = run_case(p, tmp_path, export, p.mapping("a", source={"format": "kobo_json"}),
                   expected_rows=len(records), allowed=(0,))
    assert reasons(run).get("undecodable_text") == 1


@pytest.mark.parametrize("shape", ["deep", "big_integer", "truncated", "scalar", "not_objects", "wrapper",
                                   "invalid_utf8", "nan"])
def test_hostile_kobo_json(partners: Partners, tmp_path: Path, shape: str) -> None:
    p = partners
    records = kobo_records(p)
    mapping = p.mapping("a", source={"format": "kobo_json"})
    export = tmp_path / f"{shape}.json"
    expect: tuple[int, ...] = (0, 2)
    if shape == "deep":
        records[3]["extra"] = None
        text = json.dumps(records)
        text = text.replace('"extra": null', '"extra": ' + "[" * 100_000 + "]" * 100_000, 1)
        export.write_text(text, encoding="utf-8")
        expect = (2,)
    elif shape == "big_integer":
        records[5]["grp_person/age"] = "@@BIG@@"
        export.write_text(json.dumps(records).replace('"@@BIG@@"', "9" * 5000), encoding="utf-8")
        expect = (0,)
    elif shape == "truncated":
        export.write_text(json.dumps(records)[:-500], encoding="utf-8")
        expect = (2,)
    elif shape == "scalar":
        export.write_text('"just text"', encoding="utf-8")
        expect = (2,)
    elif shape == "not_objects":
        write_json(export, [*records[:5], 42, "x", *records[5:]])
        expect = (2,)
    elif shape == "wrapper":
        write_json(export, {"count": len(records), "next": None, "previous": None, "results": records})
        expect = (0,)
    elif shape == "invalid_utf8":
        name = records[2]["grp_person/family_name"]
        data = json.dumps(records, ensure_ascii=False).encode("utf-8")
        export.write_bytes(data.replace(name.encode("utf-8"), name.encode("utf-8") + b"\xff", 1))
        expect = (0,)
    elif shape == "nan":
        records[1]["grp_person/age"] = "@@NAN@@"
        export.write_text(json.dumps(records).replace('"@@NAN@@"', "NaN"), encoding="utf-8")
        expect = (0,)
    run = run_case(p, tmp_path, export, mapping, allowed=expect)
    if shape in ("wrapper", "big_integer", "invalid_utf8", "nan"):
        assert run.summary["rows_in"] + run.summary["blank_rows"] == len(records)
    if shape == "invalid_utf8":
        assert reasons(run).get("undecodable_text") == 1


def test_xlsx_with_raw_control_characters_is_refused(partners: Partners, tmp_path: Path) -> None:
    p = partners
    bad = tmp_path / "control.xlsx"
    with zipfile.ZipFile(p.a_xlsx) as src, zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/sharedStrings.xml":
                data = data.replace(b"<t xml:space=\"preserve\">", b"<t xml:space=\"preserve\">\x01\x02", 3)
            dst.writestr(info, data)
    run = run_case(p, tmp_path, bad, p.a_mapping, allowed=(2,))
    assert "not a readable XLSX" in run.stderr


def test_json_integer_of_thousands_of_digits_in_an_identifier(partners: Partners, tmp_path: Path) -> None:
    p = partners
    records = kobo_records(p)
    records[0]["grp_person/phone"] = "@@BIG@@"
    export = tmp_path / "bigphone.json"
    export.write_text(json.dumps(records).replace('"@@BIG@@"', "7" * 6000), encoding="utf-8")
    secrets = p.secrets()
    secrets.add("7" * 6000)
    run_case(p, tmp_path, export, p.mapping("a", source={"format": "kobo_json"}), secrets,
             expected_rows=len(records), allowed=(0,))


# ------------------------------------------------------------------------------ silent damage


@pytest.mark.parametrize("early", ["", "Đorđe"])
def test_one_stray_cp1252_byte_does_not_switch_the_file(partners: Partners, tmp_path: Path, early: str) -> None:
    p = partners
    rows = [list(r) for r in p.b_rows]
    first = p.b_header.index("FirstName")
    if early:
        rows[0][first] = early
    clean, mapping = b_utf8(p, tmp_path, "clean.csv")
    clean.write_bytes(write_csv(tmp_path / "tmp.csv", p.b_header, rows).read_bytes())
    base = run_case(p, tmp_path, clean, mapping, allowed=(0,))
    stray = tmp_path / "stray.csv"
    last = rows[-1][p.b_header.index("Surname")]
    stray.write_bytes(clean.read_bytes().replace(last.encode("utf-8"), last.encode("utf-8") + b"\xe9", 1)
                      if last not in ("", "-99") else clean.read_bytes() + b"")
    run = run_case(p, tmp_path, stray, mapping,
                   expected_rows=len(rows), allowed=(0,))
    # Everyone but the damaged row keeps the pseudonym of the clean file: linkage is intact.
    lost = pseudonyms(base) - pseudonyms(run)
    assert len(lost) <= 1, f"{len(lost)} people changed pseudonyms"
    assert reasons(run).get("undecodable_text", 0) <= 1
    assert any("not valid UTF-8" in n for n in run.summary["notices"]) or last in ("", "-99")


def test_trailing_delimiter_on_every_row_is_a_broken_file(partners: Partners, tmp_path: Path) -> None:
    p = partners
    export, mapping = b_utf8(p, tmp_path, suffix=";")
    header_fixed = tmp_path / "t.csv"
    # The header without its trailing delimiter, every data row with one.
    lines = export.read_text(encoding="utf-8").split("\n")
    header_fixed.write_text("\n".join([lines[0][:-1], *lines[1:]]), encoding="utf-8")
    run = run_case(p, tmp_path, header_fixed, mapping, allowed=(2,))
    assert "broken" in run.stderr and "extra delimiter" in " ".join(run.stderr.split())


def test_spreadsheet_errors_in_a_csv_are_quarantined(partners: Partners, tmp_path: Path) -> None:
    p = partners
    rows = [list(r) for r in p.b_rows]
    phone = p.b_header.index("Phone")
    for r, err in zip(rows[:4], ["#VALUE!", "#REF!", "########", "#N/A"], strict=True):
        r[phone] = err
    export = write_csv(tmp_path / "errors.csv", p.b_header, rows)
    run = run_case(p, tmp_path, export, b_utf8(p, tmp_path)[1], expected_rows=len(rows), allowed=(0,))
    assert reasons(run).get("spreadsheet_error") == 4


# ------------------------------------------------------------------------- found by using commands


def test_another_partners_mapping_names_the_mapping(partners: Partners, tmp_path: Path) -> None:
    run = run_case(partners, tmp_path, partners.b_csv, partners.a_mapping, allowed=(2,))
    assert "mapping" in run.stderr and "XLSX" in run.stderr
    assert "not a readable XLSX workbook" not in run.stderr


def test_csv_named_xlsx_and_legacy_xls(partners: Partners, tmp_path: Path) -> None:
    fake = tmp_path / "export.xlsx"
    fake.write_bytes(partners.b_csv.read_bytes())
    undeclared = partners.mapping("b", source={"delimiter": ";"})
    run = run_case(partners, tmp_path, fake, undeclared, allowed=(2,))
    assert "is named .xlsx but is not an XLSX workbook" in run.stderr
    legacy = tmp_path / "old.xls"
    legacy.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    run_case(partners, tmp_path, legacy,
             partners.b_mapping, allowed=(2,))


# --------------------------------------------------------------------------------- more hostility


@pytest.mark.parametrize("kind", ["formulas", "crlf", "cr_only", "nul_in_body", "huge_cell", "unbalanced_quote",
                                  "bom_and_nbsp_header", "blank_lines", "only_delimiters"])
def test_messy_csv(partners: Partners, tmp_path: Path, kind: str) -> None:
    p = partners
    rows = [list(r) for r in p.b_rows]
    first = p.b_header.index("FirstName")
    export = tmp_path / f"{kind}.csv"
    expected: int | None = len(rows)
    if kind == "formulas":
        for r, f in zip(rows, ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(1)", "\t=1", "=HYPERLINK(\"x\")"],
                        strict=False):
            r[first] = f
        write_csv(export, p.b_header, rows)
    elif kind == "crlf":
        write_csv(export, p.b_header, rows, end="\r\n")
    elif kind == "cr_only":
        write_csv(export, p.b_header, rows, end="\r")
    elif kind == "nul_in_body":
        data = write_csv(export, p.b_header, rows).read_bytes()
        export.write_bytes(data[: len(data) // 2] + b"\x00" + data[len(data) // 2:])
        expected = None
    elif kind == "huge_cell":
        rows[1][p.b_header.index("Comment") if "Comment" in p.b_header else -1] = "x" * 20_000_000
        write_csv(export, p.b_header, rows)
    elif kind == "unbalanced_quote":
        data = write_csv(export, p.b_header, rows).read_text(encoding="utf-8").split("\n")
        data[5] = data[5].replace('"', "", 1) + '"'
        export.write_text("\n".join(data), encoding="utf-8")
        expected = None
    elif kind == "bom_and_nbsp_header":
        header = [h + "\u00a0" if h == "Surname" else h for h in p.b_header]
        export.write_bytes(b"\xef\xbb\xbf" + write_csv(tmp_path / "t.csv", header, rows).read_bytes())
        expected = None
    elif kind == "blank_lines":
        data = write_csv(export, p.b_header, rows).read_text(encoding="utf-8")
        export.write_text(data.replace("\n", "\n\n\n", 20) + ";" * (len(p.b_header) - 1) + "\n" * 1000,
                          encoding="utf-8")
        expected = None
    elif kind == "only_delimiters":
        export.write_text(";".join(p.b_header) + "\n" + (";" * (len(p.b_header) - 1) + "\n") * 50,
                          encoding="utf-8")
        expected = None
    run = run_case(p, tmp_path, export, b_utf8(p, tmp_path)[1], expected_rows=expected)
    if kind in ("formulas", "crlf", "cr_only", "huge_cell"):
        assert run.exit_code == 0, run.text
    if kind == "bom_and_nbsp_header":  # a no-break space around a name is trimmed like a space
        assert run.exit_code == 0, run.text


def _bomb(path: Path, part: str, inflated_mb: int) -> Path:
    """A minimal workbook whose `part` inflates to `inflated_mb` MB of whitespace."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        with zf.open(part, "w", force_zip64=True) as fh:
            fh.write(b'<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                     b"<si><t>")
            block = b" " * (1 << 20)
            for _ in range(inflated_mb):
                fh.write(block)
            fh.write(b"</t></si></sst>")
    return path


@pytest.mark.parametrize(("part", "mb"), [("xl/worksheets/sheet1.xml", 200), ("xl/sharedStrings.xml", 300)])
def test_decompression_bombs_are_refused_before_parsing(partners: Partners, tmp_path: Path, part: str,
                                                        mb: int) -> None:
    bomb = _bomb(tmp_path / "bomb.xlsx", part, mb)
    assert bomb.stat().st_size < mb * (1 << 20) / 100
    # Refused from the zip's directory, before inflating: a generous time limit, not a timing.
    run = run_case(partners, tmp_path, bomb, partners.a_mapping, allowed=(2,), timeout=120)
    assert "decompression bomb" in run.stderr


@pytest.mark.slow
def test_large_kobo_json_is_streamed(partners: Partners, tmp_path: Path) -> None:
    """300,000 submissions (about 1.9 GB when the file was read whole): ingest stays under 1.5 GB."""
    p = partners
    records = kobo_records(p)
    n = 300_000
    export = tmp_path / "large.json"
    with export.open("w", encoding="utf-8") as fh:
        fh.write("[")
        for i in range(n):
            record = dict(records[i % len(records)])
            record["_uuid"] = f"{record.get('_uuid', 'case')}-{i}"
            fh.write(("," if i else "") + json.dumps(record, ensure_ascii=False))
        fh.write("]")
    run = run_case(p, tmp_path, export, p.mapping("a", source={"format": "kobo_json"}), expected_rows=n,
                   allowed=(0,))
    assert run.summary["accepted"] > n * 0.8
