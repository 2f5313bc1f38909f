"""``accord match``: link two encoding files one-to-one, without seeing any identifier."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from accord.cli.common import (
    JsonOption,
    OverwriteOption,
    console,
    make_progress,
    print_json,
    refuse_existing,
    user_errors,
)
from accord.errors import AccordError

# Every pair is held in memory (about 60 bytes each while scoring): 100 million is ~6 GB.
ALL_PAIRS_LIMIT = 100_000_000


def match(
    enc_a: Annotated[Path, typer.Argument(help="Encodings of the first source.")],
    enc_b: Annotated[Path, typer.Argument(help="Encodings of the second source.")],
    out: Annotated[Path, typer.Option("--out", help="CSV of linked pairs: id_a,id_b,score.")],
    threshold: Annotated[float | None, typer.Option(
        "--threshold", min=0.0, max=1.0,
        help="Minimum match probability; chosen from the data when not given.")] = None,
    all_pairs: Annotated[bool, typer.Option(
        "--all-pairs", help="Compare every pair instead of blocking (slower: for files of a few thousand "
        "records, where the last hard pairs matter; blocking already compares every pair below 2 million).")] = False,
    unsafe_encoding: Annotated[bool, typer.Option(
        "--unsafe-encoding", help="Accept an encoding schema the attack harness shows to be unsafe "
        "(e.g. name parts encoded on their own, no diffusion); the summary records it.")] = False,
    as_json: JsonOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Link two encoding files: Fellegi-Sunter scores with EM weights, one-to-one."""
    # The linker and the encodings' reader (numpy, pyarrow, pydantic) load here, not at the top:
    # `accord match --help` starts without them (issue 11, tests/test_startup.py).
    from accord.link.encodings import EncodedSet
    from accord.link.match import MatchConfig, match_sets
    from accord.protect.encoding import check_compatible, check_safe, read_encodings, scale_note
    from accord.safe_csv import write_arrow_csv

    with user_errors():
        refuse_existing(out, overwrite=overwrite)
        ta, ia = read_encodings(enc_a)
        tb, ib = read_encodings(enc_b)
        check_compatible(ia, ib)
        unsafe = check_safe(ia.schema, unsafe_encoding)
        a, b = EncodedSet.from_table(ta, ia), EncodedSet.from_table(tb, ib)
        if all_pairs and len(a) * len(b) > ALL_PAIRS_LIMIT:
            raise AccordError(f"--all-pairs would compare {len(a) * len(b):,} pairs (limit {ALL_PAIRS_LIMIT:,})",
                              hint="drop --all-pairs: blocking finds the candidates at any size")
        config = MatchConfig(threshold=threshold, exhaustive_below=ALL_PAIRS_LIMIT if all_pairs
                             else MatchConfig.exhaustive_below)
        with make_progress(transient=True) as bar:
            task = bar.add_task("linking", total=None)
            result = match_sets(a, b, config,
                                progress=lambda msg: bar.update(task, description=msg))
        out.parent.mkdir(parents=True, exist_ok=True)
        write_arrow_csv(out, result.pairs_table(a, b))
    summary = {
        "records_a": len(a), "records_b": len(b), "candidate_pairs": result.candidates,
        "linked_pairs": len(result.ia), "threshold": result.threshold,
        "threshold_chosen": "automatic" if result.automatic else "given",
        "estimated_match_share": round(result.model.prior, 6),
        "em_iterations": result.model.iterations, "out": str(out),
        **({"unsafe_encoding": unsafe} if unsafe else {}),
    }
    note = scale_note(len(a) + len(b))
    if note:
        summary["privacy_note"] = note
    if as_json:
        print_json({**summary, "model": result.model.summary()})
        return
    t = Table(title="linkage", show_header=False)
    for k, v in summary.items():
        t.add_row(k, str(v))
    console.print(t)
