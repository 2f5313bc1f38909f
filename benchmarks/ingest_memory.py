"""Peak memory (and time) of `accord ingest` on the same simulated Kobo export as CSV, Kobo JSON and XLSX.

Issue 13: Kobo JSON was read whole (1M submissions used 5.7 GB) and XLSX had no bound; ingest must
stay under 1.5 GB for any size. Each ingest runs in its own child process (peak resident memory of
that child via wait4). The JSON is the CSV export's rows as Kobo submissions (unanswered questions
left out, as Kobo does). There is no peer here: the CSV path is the reference the others are
measured against.

Run: `.venv/bin/python benchmarks/ingest_memory.py [--rows 1000000] [--xlsx-rows 1000000]`
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import Measured, run_measured
from accord.simulate import SimulationConfig, simulate

WORK = Path(__file__).resolve().parent / ".work" / "ingest_memory"


def kobo_json_from_csv(csv_path: Path, out: Path) -> int:
    """Write the CSV's rows as a Kobo JSON submission list, streaming (never the whole file in memory)."""
    names = pacsv.open_csv(csv_path).schema.names
    reader = pacsv.open_csv(csv_path, read_options=pacsv.ReadOptions(block_size=16 << 20),
                            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, "string"),
                                                                 strings_can_be_null=False))
    n = 0
    with out.open("w", encoding="utf-8") as fh:
        fh.write("[")
        for batch in reader:
            cols = [batch.column(i).to_pylist() for i in range(len(names))]
            for values in zip(*cols, strict=True):
                record = {k: v for k, v in zip(names, values, strict=True) if v != ""}
                fh.write(("," if n else "") + json.dumps(record, ensure_ascii=False))
                n += 1
        fh.write("]")
    return n


def xlsx_from_csv(csv_path: Path, mapping: Path, out: Path, rows: int) -> None:
    """The first `rows` rows of the CSV export as a Kobo-style XLSX (dates as date cells), written
    with the simulator's XLSX writer (`accord simulate` itself stops at 100,000 XLSX rows)."""
    import pyarrow as pa

    from accord.simulate.xlsx import write_xlsx

    names = pacsv.open_csv(csv_path).schema.names
    table = pacsv.read_csv(csv_path, convert_options=pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=True)).slice(0, rows)
    text = mapping.read_text(encoding="utf-8")
    dates = tuple(n for n in names if f"column: {n}\n    date_format" in text)
    cols = {n: table[n].combine_chunks() for n in names}
    write_xlsx(cols, out, "data", date_columns=dates, blank_rows=0)


def mapping_for(source: Path, fmt: str, out: Path) -> Path:
    text = source.read_text(encoding="utf-8")
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("source:"))
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith(" "))
    out.write_text("\n".join([*lines[:start], "source:", f"  format: {fmt}", *lines[end:]]) + "\n", encoding="utf-8")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="CSV and JSON submissions")
    parser.add_argument("--xlsx-rows", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="reuse generated exports if present")
    parser.add_argument("--run-dir", type=Path, default=None, help="where contributions go (default: under .work)")
    parser.add_argument("--only", nargs="+", default=["CSV", "Kobo JSON", "XLSX"], help="formats to measure")
    args = parser.parse_args()
    accord = str(Path(sys.executable).parent / "accord")
    WORK.mkdir(parents=True, exist_ok=True)
    csv_dir = WORK / f"csv-{args.rows}"
    if not (args.keep and csv_dir.exists()):
        shutil.rmtree(csv_dir, ignore_errors=True)
        simulate(SimulationConfig(people=args.rows, partners=1, overlap=0.0, seed=11, out=csv_dir, format_a="csv"))
    export_csv = csv_dir / "partner_a.csv"
    export_json = WORK / f"kobo-{args.rows}.json"
    if "Kobo JSON" in args.only and not (args.keep and export_json.exists()):
        submissions = kobo_json_from_csv(export_csv, export_json)
        print(f"wrote {submissions:,} submissions", flush=True)
    export_xlsx = WORK / f"kobo-{args.xlsx_rows}.xlsx"
    xlsx_mapping = mapping_for(csv_dir / "partner_a.mapping.yaml", "xlsx", WORK / "xlsx.yaml")
    if "XLSX" in args.only and not (args.keep and export_xlsx.exists()):
        xlsx_from_csv(export_csv, csv_dir / "partner_a.mapping.yaml", export_xlsx, args.xlsx_rows)
    run_dir = args.run_dir or WORK / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    env = {**os.environ, "ACCORD_KEY_FILE": str(run_dir / "partner.key")}
    run_measured([accord, "keys", "init"], env)
    cases = [
        ("CSV", export_csv, mapping_for(csv_dir / "partner_a.mapping.yaml", "csv", run_dir / "csv.yaml"), args.rows),
        ("Kobo JSON", export_json, mapping_for(csv_dir / "partner_a.mapping.yaml", "kobo_json",
                                               run_dir / "json.yaml"), args.rows),
        ("XLSX", export_xlsx, xlsx_mapping, args.xlsx_rows),
    ]
    cases = [c for c in cases if c[0] in args.only]
    print(f"cores: {os.cpu_count()}")
    print(f"{'format':12}{'rows':>12}{'file MB':>10}{'seconds':>10}{'rows/s':>10}{'peak MB':>10}")
    results: list[tuple[str, int, float, Measured]] = []
    for name, export, mapping, rows in cases:
        m = run_measured([accord, "ingest", str(export), "--mapping", str(mapping), "--partner", "bench",
                          "--out", str(run_dir / f"out-{name.replace(' ', '_')}"), "--json"], env)
        size = export.stat().st_size / 1e6
        results.append((name, rows, size, m))
        print(f"{name:12}{rows:12,}{size:10,.0f}{m.seconds:10.1f}{rows / m.seconds:10,.0f}{m.peak_mb:10,.0f}",
              flush=True)
    ok = all(m.peak_mb < 1536 for *_, m in results)
    print(f"target: peak < 1,536 MB for every format: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
