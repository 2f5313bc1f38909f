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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

BATCH = 100_000
JSON_BATCH = 25_000  # objects assembled at once (each ~1 KB of text, in several copies)
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


class CsvSink:
    """A CSV export written in pieces (so the simulator never holds a whole export's columns)."""

    def __init__(self, path: Path, delimiter: str = ",", encoding: str = "utf-8") -> None:
        self.delimiter = delimiter
        self.encoding = encoding.lower().replace("_", "-")
        self.columns = 0
        self.header_written = False
        self.out = path.open("wb")
        if self.encoding == "utf-8-sig":
            self.out.write(codecs.BOM_UTF8)

    def write(self, cols: dict[str, pa.Array], tick: Tick | None = None) -> None:
        table = pa.table(cols)
        self.columns = len(cols)
        for start in range(0, max(table.num_rows, 1), BATCH):
            chunk = table.slice(start, BATCH)
            if chunk.num_rows == 0 and self.header_written:
                break
            buf = io.BytesIO()
            pacsv.write_csv(chunk, buf, pacsv.WriteOptions(
                include_header=not self.header_written, delimiter=self.delimiter,
                quoting_style="needed"))
            self.header_written = True
            data = buf.getvalue()
            if self.encoding not in ("utf-8", "utf8"):
                target = "utf-8" if self.encoding == "utf-8-sig" else self.encoding
                data = data.decode("utf-8").encode(target, errors="accord_fold")
            self.out.write(data)
            if tick:
                tick(chunk.num_rows)

    def close(self, blank_rows: int = 3) -> None:
        # Spreadsheet round trips leave rows of empty cells at the end of many real exports.
        self.out.write((self.delimiter * (self.columns - 1) + "\n").encode("ascii") * blank_rows)
        self.out.close()


class KoboJsonSink:
    """A JSON list of submission objects as Kobo's API gives them: group paths as keys, text
    answers, unanswered questions left out, ``_id`` a number and list-valued metadata.

    The JSON text of each object is assembled column-wise with pyarrow (json.dumps per row runs
    at a tenth of the speed); values are escaped for ``"`` and ``\\``, and the simulator
    produces no control characters. The first column must never be empty."""

    TAIL = ', "_attachments": [], "_geolocation": [null, null], "_tags": [], "_notes": []}'

    def __init__(self, path: Path, numeric: tuple[str, ...] = ("_id", "_index")) -> None:
        self.numeric = numeric
        self.first = True
        self.out = path.open("wb")
        self.out.write(b"[")

    def write(self, cols: dict[str, pa.Array], tick: Tick | None = None) -> None:
        names = list(cols)
        n = len(cols[names[0]]) if names else 0
        for start in range(0, n, JSON_BATCH):
            m = min(JSON_BATCH, n - start)
            # Each object starts with its separator, so the text can be written as one buffer.
            sep = np.full(m, ",\n", dtype=object)
            if self.first:
                sep[0] = "\n"
                self.first = False
            parts: list[pa.Array | pa.Scalar] = [pa.array(sep, pa.string()), pa.scalar("{")]
            for i, name in enumerate(names):
                col = cols[name].slice(start, m)
                text = pc.replace_substring(pc.replace_substring(col, "\\", "\\\\"),
                                            '"', '\\"')
                quote = "" if name in self.numeric else '"'
                key = ("" if i == 0 else ", ") + json.dumps(name) + ": " + quote
                parts.append(pc.fill_null(pc.binary_join_element_wise(
                    pa.scalar(key), text, pa.scalar(quote), ""), ""))
            parts.append(pa.scalar(self.TAIL))
            objects = pc.binary_join_element_wise(*parts, "")
            self.out.write(_string_bytes(objects))
            if tick:
                tick(m)

    def close(self) -> None:
        self.out.write(b"\n]\n")
        self.out.close()


def _string_bytes(arr: pa.Array) -> memoryview:
    """The concatenated UTF-8 text of a string array, straight from its data buffer (no copy)."""
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)
    begin, end = int(offsets[arr.offset]), int(offsets[arr.offset + len(arr)])
    data = arr.buffers()[2]
    return memoryview(b"") if data is None else memoryview(data)[begin:end]
