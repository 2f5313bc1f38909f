"""Writing exports the way partners' tools write them: CSV in several dialects, Kobo JSON.

CSV goes through pyarrow's writer in batches (fast, bounded memory); encodings other than UTF-8 are
produced by re-encoding each batch. XLSX is in ``xlsx.py``.
"""

from __future__ import annotations

import codecs
import io
import json
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

BATCH = 100_000
Tick = Callable[[int], None]


def _fold(err: UnicodeError) -> tuple[str, int]:
    # Characters Windows-1252 cannot hold (e.g. Vietnamese "ạ") lose their accent, as an old
    # case-management database would store them; nothing becomes "?".
    if not isinstance(err, UnicodeEncodeError):
        raise err
    bad = err.object[err.start:err.end]
    plain = unicodedata.normalize("NFKD", bad).encode("ascii", "ignore").decode("ascii")
    return plain, err.end


codecs.register_error("accord_fold", _fold)


def write_csv(cols: dict[str, pa.Array], path: Path, delimiter: str = ",",
              encoding: str = "utf-8", blank_rows: int = 3, tick: Tick | None = None) -> None:
    table = pa.table(cols)
    utf8 = encoding.lower().replace("_", "-") in ("utf-8", "utf8")
    with path.open("wb") as out:
        if encoding.lower() == "utf-8-sig":
            out.write(codecs.BOM_UTF8)
        for start in range(0, max(table.num_rows, 1), BATCH):
            chunk = table.slice(start, BATCH)
            buf = io.BytesIO()
            pacsv.write_csv(chunk, buf, pacsv.WriteOptions(
                include_header=start == 0, delimiter=delimiter, quoting_style="needed"))
            data = buf.getvalue()
            if not utf8:
                target = "utf-8" if encoding.lower() == "utf-8-sig" else encoding
                data = data.decode("utf-8").encode(target, errors="accord_fold")
            out.write(data)
            if tick:
                tick(chunk.num_rows)
        # Spreadsheet round trips leave rows of empty cells at the end of many real exports.
        out.write((delimiter * (len(cols) - 1) + "\n").encode("ascii") * blank_rows)


def write_kobo_json(cols: dict[str, pa.Array], path: Path,
                    numeric: tuple[str, ...] = ("_id", "_index"),
                    tick: Tick | None = None) -> None:
    """A JSON list of submission objects as Kobo's API gives them: group paths as keys, text
    answers, unanswered questions left out, ``_id`` a number and list-valued metadata.

    The JSON text of each object is assembled column-wise with pyarrow (json.dumps per row runs
    at a tenth of the speed); values are escaped for ``"`` and ``\\``, and the simulator
    produces no control characters. The first column must never be empty."""
    names = list(cols)
    n = len(next(iter(cols.values()))) if cols else 0
    tail = ', "_attachments": [], "_geolocation": [null, null], "_tags": [], "_notes": []}'
    with path.open("w", encoding="utf-8") as out:
        out.write("[")
        for start in range(0, n, BATCH):
            parts: list[pa.Array | pa.Scalar] = [pa.scalar("{")]
            for i, name in enumerate(names):
                col = cols[name].slice(start, BATCH)
                text = pc.replace_substring(pc.replace_substring(col, "\\", "\\\\"),
                                            '"', '\\"')
                quote = "" if name in numeric else '"'
                key = ("" if i == 0 else ", ") + json.dumps(name) + ": " + quote
                parts.append(pc.fill_null(pc.binary_join_element_wise(
                    pa.scalar(key), text, pa.scalar(quote), ""), ""))
            parts.append(pa.scalar(tail))
            objects = pc.binary_join_element_wise(*parts, "").to_pylist()
            out.write(("\n" if start == 0 else ",\n") + ",\n".join(objects))
            if tick:
                tick(len(objects))
        out.write("\n]\n")
