"""A fast, minimal XLSX writer for simulated Kobo exports.

Why by hand: openpyxl's write-only mode (without lxml, as here) writes about 5,000 cells a
second, so a 100,000-row, 40-column export would take over ten minutes. An XLSX workbook is a zip
of a few XML parts; the sheet's XML is assembled column-wise with pyarrow string kernels, which
writes the same sheet in seconds. Only what the simulator needs is supported: one sheet of text
(shared strings), integer and date cells (dates as Excel serial numbers with a date format, as
Kobo writes them). The result is read back by openpyxl in the tests.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

BATCH = 50_000
EXCEL_EPOCH_OFFSET = 25_569  # days from 1899-12-30 (Excel's day 0) to 1970-01-01

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.styles+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sharedStrings+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/worksheet" Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/styles" Target="styles.xml"/>'
    '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
)
_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="1"><fill><patternFill patternType="none"/></fill></fills>'
    '<borders count="1"><border/></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
    "</cellStyles></styleSheet>"
)


def _workbook(sheet: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        f'<sheets><sheet name="{_escape_text(sheet)}" sheetId="1" r:id="rId1"/></sheets>'
        "</workbook>"
    )


def _escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace(
        '"', "&quot;")


def _escape(col: pa.Array) -> pa.Array:
    for old, new in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        col = pc.replace_substring(col, old, new)
    return col


# Every part carries this timestamp, so the same seed gives a byte-identical workbook (zipfile would
# stamp each part with the current time).
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    # The level attribute was renamed in Python 3.13; level 1 keeps large workbooks fast to write.
    setattr(info, "compress_level" if hasattr(info, "compress_level") else "_compresslevel", 1)
    return info


def column_letter(i: int) -> str:
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = chr(65 + r) + out
    return out


def _cells(col: pa.Array, ref: pa.Array, kind: str, index: pa.Array) -> pa.Array:
    """The XML of one column's cells ('' where the value is missing: the cell is left out).
    Text goes through the shared-strings table (``index`` into it), as Excel and Kobo write it
    (openpyxl reads inline strings about ten times slower)."""
    index = pc.cast(index, pa.string())
    text = pc.binary_join_element_wise(
        pa.scalar('<c r="'), ref, pa.scalar('" t="s"><v>'), index, pa.scalar("</v></c>"), "")
    if kind == "date":
        parsed = pc.cast(pc.strptime(col, format="%Y-%m-%d", unit="s", error_is_null=True),
                         pa.date32())
        # strptime rolls "2019-02-30" over to March: only an exact round trip is a date.
        real = pc.equal(pc.cast(parsed, pa.string()), col)
        parsed = pc.if_else(pc.fill_null(real, False), parsed, pa.scalar(None, pa.date32()))
        days = pc.add(pc.cast(parsed, pa.int32()), EXCEL_EPOCH_OFFSET)
        number = pc.binary_join_element_wise(
            pa.scalar('<c r="'), ref, pa.scalar('" s="1"><v>'), pc.cast(days, pa.string()),
            pa.scalar("</v></c>"), "")
        text = pc.coalesce(number, text)
    elif kind == "int":
        is_int = pc.match_substring_regex(col, r"^-?[0-9]{1,15}$")
        number = pc.binary_join_element_wise(
            pa.scalar('<c r="'), ref, pa.scalar('"><v>'), col, pa.scalar("</v></c>"), "")
        text = pc.if_else(pc.fill_null(is_int, False), number, text)
    return pc.fill_null(text, "")


def write_xlsx(cols: dict[str, pa.Array], path: Path, sheet: str,
               date_columns: tuple[str, ...] = (), int_columns: tuple[str, ...] = (),
               blank_rows: int = 2, tick: Callable[[int], None] | None = None) -> None:
    names = list(cols)
    n = len(cols[names[0]]) if names else 0
    letters = [column_letter(i) for i in range(len(names))]
    header = pa.array(names, pa.string())
    # One dictionary encoding of every cell gives the shared-strings table and each cell's index.
    encoded = pa.concat_arrays([header, *cols.values()]).dictionary_encode()
    strings, indices = encoded.dictionary, encoded.indices
    offsets = [len(names) + i * n for i in range(len(names))]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr(_entry("[Content_Types].xml"), _CONTENT_TYPES)
        zf.writestr(_entry("_rels/.rels"), _ROOT_RELS)
        zf.writestr(_entry("xl/workbook.xml"), _workbook(sheet))
        zf.writestr(_entry("xl/_rels/workbook.xml.rels"), _WORKBOOK_RELS)
        zf.writestr(_entry("xl/styles.xml"), _STYLES)
        with zf.open(_entry("xl/sharedStrings.xml"), "w", force_zip64=True) as sst:
            sst.write(
                b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="http://'
                b'schemas.openxmlformats.org/spreadsheetml/2006/main" '
                + f'count="{len(strings)}" uniqueCount="{len(strings)}">'.encode("ascii"))
            for start in range(0, len(strings), BATCH):
                items = pc.binary_join_element_wise(
                    pa.scalar('<si><t xml:space="preserve">'),
                    _escape(strings.slice(start, BATCH)), pa.scalar("</t></si>"), "")
                sst.write("".join(items.to_pylist()).encode("utf-8"))
            sst.write(b"</sst>")
        with zf.open(_entry("xl/worksheets/sheet1.xml"), "w", force_zip64=True) as out:
            out.write(
                b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                b"<sheetData>")
            head_refs = pa.array([f"{c}1" for c in letters], pa.string())
            out.write(b'<row r="1">' + "".join(
                _cells(header, head_refs, "text", indices.slice(0, len(names))).to_pylist()
            ).encode("utf-8")
                + b"</row>")
            for start in range(0, n, BATCH):
                rows = pc.cast(pa.array(range(start + 2, min(start + BATCH, n) + 2)), pa.string())
                parts: list[pa.Array | pa.Scalar] = [pa.scalar('<row r="'), rows, pa.scalar('">')]
                for name, letter, offset in zip(names, letters, offsets, strict=True):
                    ref = pc.binary_join_element_wise(pa.scalar(letter), rows, "")
                    kind = "date" if name in date_columns else "int" if name in int_columns \
                        else "text"
                    parts.append(_cells(cols[name].slice(start, BATCH), ref, kind,
                                        indices.slice(offset + start, min(BATCH, n - start))))
                parts.append(pa.scalar("</row>"))
                xml = pc.binary_join_element_wise(*parts, "")
                out.write("".join(xml.to_pylist()).encode("utf-8"))
                if tick:
                    tick(len(xml))
            # Rows left behind by deleted data: present in the sheet, without any value.
            for r in range(n + 2, n + 2 + blank_rows):
                out.write(f'<row r="{r}"/>'.encode("ascii"))
            out.write(b"</sheetData></worksheet>")
