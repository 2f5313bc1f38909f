"""``accord encode``: privacy-preserving linkage encodings of a plain identifiers file."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from accord.cli.common import (
    JsonOption,
    OverwriteOption,
    check_separator,
    console,
    make_progress,
    print_json,
    refuse_existing,
    user_errors,
)
from accord.errors import InputFileError
from accord.input_files import refuse_special_file

if TYPE_CHECKING:
    import pyarrow as pa


def _header_cells(path: Path, sep: str) -> list[str]:
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        return next(csv.reader(fh, delimiter=sep), [])


def read_identifiers(path: Path, sep: str) -> pa.Table:
    """Every column as text: postcodes, ids and dates must keep their exact spelling.

    A repeated header is refused by ingest's own check, before DuckDB reads the file: DuckDB
    renames the second 'name' (ignoring case) to 'name_1' without a word, and --fields name would
    then encode whichever column kept the name."""
    check_separator(sep)
    if not path.exists():
        raise InputFileError(f"no file at {path}", hint="check the path")
    refuse_special_file(path, "identifiers file")
    from accord.ingest.raw import check_header

    header = check_header(_header_cells(path, sep), path.name, fold_case=True)
    import duckdb  # here, not at the top: `accord encode --help` starts without it

    con = duckdb.connect()
    try:
        table = con.read_csv(str(path), sep=sep, header=True, all_varchar=True).to_arrow_table()
    except duckdb.Error:
        raise InputFileError(f"{path} cannot be read as a CSV file with separator {sep!r}",
                             hint="check --sep and the file's encoding (UTF-8)") from None
    finally:
        con.close()
    renamed = [i for i, (ours, theirs) in enumerate(zip(header, table.column_names, strict=False), start=1)
               if not ours.startswith("_unnamed_") and ours != theirs]
    if renamed or len(header) != table.num_columns:  # any other renaming: refused, not guessed at
        raise InputFileError(f"{path} reads with other column names than its header (column(s) "
                             f"{', '.join(map(str, renamed[:10])) or 'count'} differ)",
                             hint="give each column a plain, distinct name in the first row (and check --sep)")
    return table


def encode(
    identifiers: Annotated[Path, typer.Argument(help="CSV file with one row per record.")],
    id_column: Annotated[str, typer.Option("--id", help="Column with the record id (kept).")],
    secret_file: Annotated[Path, typer.Option("--secret-file",
                                              help="The collaborative's linkage secret.")],
    out: Annotated[Path, typer.Option("--out", help="Encodings file to write (Parquet).")],
    fields: Annotated[str | None, typer.Option(
        "--fields", help="COL:KIND,... with KIND one of name, date, year, text, code.")] = None,
    schema_file: Annotated[Path | None, typer.Option(
        "--schema", help="An encoding schema file instead of --fields.")] = None,
    sep: Annotated[str, typer.Option("--sep", help="Column separator of the CSV.")] = ",",
    unsafe_encoding: Annotated[bool, typer.Option(
        "--unsafe-encoding", help="Accept an encoding schema the attack harness shows to be unsafe "
        "(e.g. name parts encoded on their own, no diffusion); the output records it.")] = False,
    as_json: JsonOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Encode identifiers into keyed, hardened Bloom filters (nothing else leaves the file)."""
    # The encoder (pyarrow, numpy, pydantic, yaml) loads here, not at the top: `accord encode
    # --help` starts without it (issue 11, tests/test_startup.py).
    from accord.protect.encoding import (
        Encoder,
        EncodingInfo,
        EncodingSchemaError,
        check_safe,
        input_gaps,
        load_linkage_secret,
        load_schema,
        repeated_ids,
        schema_from_fields,
        write_encodings,
    )

    with user_errors():
        refuse_existing(out, overwrite=overwrite)
        if (fields is None) == (schema_file is None):
            raise EncodingSchemaError("give exactly one of --fields and --schema",
                                      hint="e.g. --fields given:name,surname:name,dob:date")
        schema = load_schema(schema_file) if schema_file else schema_from_fields(fields or "")
        unsafe = check_safe(schema, unsafe_encoding)
        secret = load_linkage_secret(secret_file)
        table = read_identifiers(identifiers, sep)
        encoder = Encoder(schema, secret)
        missing = [c for c in [id_column, *encoder.required_columns()]
                   if c not in table.column_names]
        if missing:
            raise InputFileError(f"{identifiers} lacks column(s) {', '.join(missing)}",
                                 hint=f"columns present: {', '.join(table.column_names)}")
        repeated, no_id = repeated_ids(table[id_column])
        if repeated or no_id:  # the pairs `accord match` writes could not say which record linked
            raise InputFileError(f"{repeated:,} record(s) of {identifiers} share their id (--id {id_column}) with "
                                 f"another record, {no_id:,} have none",
                                 hint="give each record its own id: `accord match` names the records it links by it")
        gaps = input_gaps(schema, table)
        start = time.perf_counter()
        with make_progress(transient=True) as bar:
            bar.add_task("encoding", total=None)
            enc = encoder.encode(table)
        seconds = time.perf_counter() - start
        enc = enc.add_column(0, "id", table[id_column])
        info = EncodingInfo(schema, encoder.fingerprint, encoder.check_value)
        write_encodings(out, enc, info)
    summary = {
        "records": table.num_rows, "fields": [f.name for f in schema.fields],
        "schema_fingerprint": info.fingerprint, "check_value": info.check_value,
        "flip_probability": schema.hardening.flip_probability,
        "diffusion": schema.hardening.diffusion,
        "unsafe_encoding": unsafe,
        "seconds": round(seconds, 3), "out": str(out),
        "gaps": gaps,
    }
    if as_json:
        print_json(summary)
        return
    t = Table(title=f"encoded {identifiers.name}", show_header=False)
    for k, v in summary.items():
        if k != "gaps":
            t.add_row(k, "; ".join(v) if isinstance(v, list) else str(v))
    console.print(t)
    for name, counts in gaps.items():  # said, not silent: these records link on their other fields
        console.print(f"note: {name}: " + ", ".join(f"{n:,} {what}" for what, n in counts.items())
                      + " (encoded as unknown" + (", or as the year alone" if "year only" in counts else "")
                      + ": those records link on their other fields)", highlight=False)
