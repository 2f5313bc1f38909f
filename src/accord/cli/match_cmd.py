"""``accord match``: link two encoding files one-to-one, without seeing any identifier."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pyarrow.csv as pacsv
import typer
from rich.table import Table

from accord.cli.common import JsonOption, console, make_progress, print_json, user_errors
from accord.link.encodings import EncodedSet
from accord.link.match import MatchConfig, match_sets
from accord.protect.encoding import check_compatible, read_encodings


def match(
    enc_a: Annotated[Path, typer.Argument(help="Encodings of the first source.")],
    enc_b: Annotated[Path, typer.Argument(help="Encodings of the second source.")],
    out: Annotated[Path, typer.Option("--out", help="CSV of linked pairs: id_a,id_b,score.")],
    threshold: Annotated[float | None, typer.Option(
        "--threshold", min=0.0, max=1.0,
        help="Minimum match probability; chosen from the data when not given.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Link two encoding files: Fellegi-Sunter scores with EM weights, one-to-one."""
    with user_errors():
        ta, ia = read_encodings(enc_a)
        tb, ib = read_encodings(enc_b)
        check_compatible(ia, ib)
        a, b = EncodedSet.from_table(ta, ia), EncodedSet.from_table(tb, ib)
        with make_progress(transient=True) as bar:
            task = bar.add_task("linking", total=None)
            result = match_sets(a, b, MatchConfig(threshold=threshold),
                                progress=lambda msg: bar.update(task, description=msg))
        out.parent.mkdir(parents=True, exist_ok=True)
        pacsv.write_csv(result.pairs_table(a, b), out)
    summary = {
        "records_a": len(a), "records_b": len(b), "candidate_pairs": result.candidates,
        "linked_pairs": len(result.ia), "threshold": result.threshold,
        "threshold_chosen": "automatic" if result.automatic else "given",
        "estimated_match_share": round(result.model.prior, 6),
        "em_iterations": result.model.iterations, "out": str(out),
    }
    if as_json:
        print_json({**summary, "model": result.model.summary()})
        return
    t = Table(title="linkage", show_header=False)
    for k, v in summary.items():
        t.add_row(k, str(v))
    console.print(t)
