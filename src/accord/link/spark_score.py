"""Scoring on the Spark engine: comparison levels, EM's pairs and scores in Spark partitions.

The stage logic is `accord.link.match`'s and `accord.link.fellegi_sunter`'s, run where the
pairs are, with the same functions:

1. **Levels.** The candidate codes become a DataFrame; each pair is joined with its two
   records' filters and `comparisons.comparison_levels` runs per partition on the partition's
   records (``mapInArrow``). The Dice thresholds that depend on the whole linkage (the share of
   set bits of each column, `comparisons.linkage_fill`) are computed once on the driver and
   given to every partition, so a pair's levels are the embedded engine's.
2. **EM on the driver, pairs where they are.** `fellegi_sunter.fit_on` reads the candidates
   through `SparkCandidates`: the count of each level pattern (a ``groupBy``) and, for the
   patterns whose pairs EM weighs one by one against their competing candidates (those with
   odds above ``negligible`` in some iteration), those pairs only, fetched once per pattern
   in slices and kept as one int64 a pair (code and pattern number, `_FetchedPairs`): not few
   (about half the candidates at 20k), but 8 bytes a pair; each EM iteration streams over
   them in chunks with per-record state (`fellegi_sunter.pattern_posteriors`, as the embedded
   engine does over its arrays). The sample of A records of EM's first step is
   drawn on the driver by the same function and seed.
3. **Scores.** The model goes to the partitions; each pair's Bayes factor and odds are computed
   there (`FSModel.log_bayes_factor`, `fellegi_sunter.pair_odds`). The competing candidates'
   sums of `fellegi_sunter.pair_log_odds` need every pair of a record: each sum is a pass that
   repartitions the pairs by record (A or B), sorts a partition's pairs in candidate order and
   runs `fellegi_sunter._others` (the same compiled kernel) per partition, so every sum is
   added up in the same order as on one machine and the scores are equal to the last bit.
   Both chains of the belief-propagation rounds advance in each pass (see `competition_plan`):
   12 passes for the default 10 rounds, not 21.
4. Only the pairs whose probability reaches the threshold come back to the driver, where the
   one-to-one assignment runs (`match_sets`): greedy by score is sequential, each decision
   depending on every better pair, and its input is about one pair a record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from accord.errors import AccordError
from accord.link.comparisons import comparison_levels, comparisons, linkage_fill
from accord.link.encodings import BitField, EncodedSet
from accord.link.fellegi_sunter import (
    Chunk,
    FSModel,
    PairChunks,
    _codes,
    _others,
    alone_log_odds,
    pair_odds,
)
from accord.protect.encoding.bloom import QUALITY_SUFFIX
from accord.store.spark_ship import Shipment, drop_checkpoint, release_finished, shipment

if TYPE_CHECKING:  # pragma: no cover
    from accord.link.match import MatchConfig

_BASE = ["code", "ia", "ib"]
Plan = list[tuple[str, list[tuple[str, str | None]]]]


def _binary(matrix: np.ndarray) -> pa.Array:
    """Rows of a 2-D array as equal-length binary values."""
    m = np.ascontiguousarray(matrix)
    n = len(m)
    width = m.dtype.itemsize * (m.shape[1] if m.ndim > 1 else 1)
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), n,
                                                 [None, pa.py_buffer(m.tobytes())])
    return fixed.cast(pa.binary())


def _matrix(col: pa.Array | pa.ChunkedArray, dtype: type, width: int) -> np.ndarray:
    """(n, width) array of ``dtype`` back from a binary column of equal-length values."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    n = len(arr)
    if n == 0:
        return np.zeros((0, width), dtype=dtype)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset:arr.offset + n + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    return data.view(dtype).reshape(n, width).copy()


class _Layout:
    """How one side's records travel as columns (positional names: field names may hold
    characters Spark column names do not take)."""

    def __init__(self, a: EncodedSet, b: EncodedSet) -> None:
        self.names = list(a.fields)
        self.widths = [a.fields[n].words.shape[1] for n in self.names]
        self.dates = list(a.quality)
        self.ages = a.birth_years is not None and b.birth_years is not None
        self.fill = {n: linkage_fill(a, b, n) for n in self.names}
        self.info = a.info

    def table(self, s: EncodedSet, prefix: str) -> pa.Table:
        cols: dict[str, pa.Array] = {prefix + "idx": pa.array(np.arange(len(s), dtype=np.int64))}
        for k, name in enumerate(self.names):
            f = s.fields[name]
            cols[f"{prefix}w{k}"] = _binary(f.words)
            cols[f"{prefix}p{k}"] = pa.array(f.present)
        for k, d in enumerate(self.dates):
            cols[f"{prefix}q{k}"] = pa.array(s.quality[d].tolist(), pa.string())
        if self.ages:
            assert s.birth_years is not None
            cols[prefix + "by"] = pa.array(np.asarray(s.birth_years, dtype=np.float64))
        return pa.table(cols)

    def read(self, session: Any, path: str, prefix: str, n: int) -> Any:
        """One side's records read by the executors from the partner's Parquet encodings
        (`accord encode`'s file, whose row order is the EncodedSet's), in the layout of
        `table`: nothing of the records passes through the driver."""
        from pyspark.sql import functions as F

        df = session.read.parquet(path)
        cols = [F.col("_metadata.row_index").alias(prefix + "idx")]
        for k, (name, width) in enumerate(zip(self.names, self.widths, strict=True)):
            # A missing filter is all zeros, as EncodedSet.from_table makes it.
            cols += [F.coalesce(F.col(f"`{name}`").cast("binary"),
                                F.lit(bytearray(8 * width))).alias(f"{prefix}w{k}"),
                     F.col(f"`{name}`").isNotNull().alias(f"{prefix}p{k}")]
        for k, d in enumerate(self.dates):
            cols.append(F.coalesce(F.col(f"`{d}{QUALITY_SUFFIX}`"), F.lit("unknown"))
                        .alias(f"{prefix}q{k}"))
        out = df.select(*cols)
        rows = out.count()
        if rows != n:
            raise AccordError(f"the encodings file holds {rows} records, the linkage {n}",
                              hint="give the Spark engine the files the sets were read from")
        return out

    def side(self, t: pa.RecordBatch, prefix: str) -> EncodedSet:
        """The batch's records of one side (one per pair) as an EncodedSet that compares as
        the whole linkage does (its Dice thresholds from the whole linkage's fill)."""
        fields = {}
        for k, name in enumerate(self.names):
            words = _matrix(t.column(f"{prefix}w{k}"), np.uint64, self.widths[k])
            present = t.column(f"{prefix}p{k}").to_numpy(zero_copy_only=False)
            fields[name] = BitField(words, np.bitwise_count(words).sum(axis=1, dtype=np.int32),
                                    present)
        quality = {d: t.column(f"{prefix}q{k}").to_numpy(zero_copy_only=False)
                   for k, d in enumerate(self.dates)}
        years = t.column(prefix + "by").to_numpy() if self.ages else None
        return EncodedSet(np.empty(t.num_rows, dtype=object), fields, quality, self.info,
                          years, linkage_fill=self.fill)


def _levels_fn(layout: _Layout, n_levels: list[int]) -> Callable[..., Iterator[pa.RecordBatch]]:
    def levels(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from accord.link.spark import task_threads

        task_threads()
        for batch in batches:
            n = batch.num_rows
            if not n:
                continue
            pos = np.arange(n, dtype=np.int64)
            gamma = comparison_levels(layout.side(batch, "a_"), layout.side(batch, "b_"),
                                      pos, pos)
            # A pair's pattern code is all the later steps read (its levels are the code's
            # digits; its records, the candidate code's quotient and remainder), so the
            # persisted levels are two integers a pair, not five columns and the levels.
            yield pa.RecordBatch.from_arrays(
                [batch.column("code"), pa.array(_codes(gamma, n_levels))],
                names=["code", "pcode"])

    return levels


def pattern_levels(pcode: np.ndarray, n_levels: list[int]) -> np.ndarray:
    """The level patterns (rows of gamma, int8) whose `_codes` are ``pcode`` (integer codes)."""
    out = np.empty((len(pcode), len(n_levels)), dtype=np.int8)
    rest = np.asarray(pcode, dtype=np.int64).copy()
    for j in range(len(n_levels) - 1, -1, -1):
        out[:, j] = rest % n_levels[j]
        rest //= n_levels[j]
    return out


class _FetchedPairs:
    """EM's one-by-one pairs on the driver, in code (candidate) order, read in chunks.

    With the sizes of both sides and room in 63 bits, a pair is one int64, its code shifted
    left by the bits of a pattern number, or'ed with its pattern number: 8 bytes a pair, grown
    in place (``resize``: realloc, which moves a large block's pages, not its bytes) and sorted
    in place, so a fetch holds the pairs once plus a slice. Otherwise (a sample, whose A
    records are renumbered; or too many patterns for the bits) code, pattern number and (a
    sample) records as arrays, merged by a sort as before."""

    def __init__(self, n_patterns: int, nb: int | None, na: int | None) -> None:
        self.nb = nb
        self.bits = max(1, (n_patterns - 1).bit_length())
        self.packed = (nb is not None and na is not None
                       and (max(na * nb - 1, 0).bit_length() + self.bits) <= 63)
        self.n = 0
        self.pairs = np.empty(0, dtype=np.int64)  # packed
        self.cols: dict[str, np.ndarray] = {}  # not packed

    def add(self, slices: Iterator[dict[str, np.ndarray]], count: int) -> None:
        """The pairs of newly wanted patterns (``count`` of them, in slices, in no order)."""
        if not self.packed:
            got = list(slices)
            if self.cols:
                got.insert(0, self.cols)
            self.cols = {}
            merged = {c: np.concatenate([g[c] for g in got]) for c in got[0]}
            del got
            order = np.argsort(merged["code"], kind="stable")
            self.cols = {c: v[order] for c, v in merged.items()}
            self.n = len(self.cols["code"])
            return
        end = self.n + count
        self.pairs.resize(end, refcheck=True)  # no view of it is kept between calls
        pos = self.n
        for part in slices:
            m = len(part["code"])
            if pos + m > end:
                raise AccordError("the candidates changed while EM read them",
                                  hint="run the linkage again")
            out = self.pairs[pos:pos + m]
            np.left_shift(part["code"], self.bits, out=out)
            out |= part["pid"]
            pos += m
        if pos != end:
            raise AccordError("the candidates changed while EM read them",
                              hint="run the linkage again")
        self.pairs.sort()  # in place: codes are distinct, so this is code order
        self.n = end

    def read(self, start: int, stop: int) -> Chunk:
        if self.packed:
            v = self.pairs[start:stop]
            assert self.nb is not None
            ia, ib = np.divmod(v >> self.bits, self.nb)
            return v & ((1 << self.bits) - 1), ia, ib
        pid = self.cols["pid"][start:stop]
        if self.nb is None:
            return pid, self.cols["ia"][start:stop], self.cols["ib"][start:stop]
        ia, ib = np.divmod(self.cols["code"][start:stop], self.nb)
        return pid, ia, ib


class SparkCandidates:
    """Candidates in a Spark DataFrame (code, ia, ib, pcode) for `fit_on`; a pattern's levels
    are decoded from its code (`pattern_levels`). With ``nb`` (B's size), a pair's records are
    its code's quotient and remainder, so EM's one-by-one pairs are kept on the driver as code
    and pattern number, with ``na`` too in one int64 (`_FetchedPairs`: 8 bytes a pair, not 32:
    ~3 GB less at 10M a side); without it (a sample, whose A records are renumbered) as code,
    records and pattern number. They are fetched in slices of at most ``fetch_rows`` pairs."""

    def __init__(self, df: Any, n_levels: list[int], nb: int | None = None,
                 na: int | None = None, fetch_rows: int = 1 << 24) -> None:
        self.df, self.n_levels, self.nb, self.na = df, list(n_levels), nb, na
        self.fetch_rows = fetch_rows
        self._table = np.empty(0, dtype=np.int64)  # pattern codes, ascending
        self._have = np.zeros(0, dtype=bool)  # patterns whose pairs were fetched
        self._pairs: _FetchedPairs | None = None
        self._counted: tuple[np.ndarray, np.ndarray] | None = None  # patterns' result

    def __len__(self) -> int:
        # The sum of the pattern counts: one scan of the pairs gives both, where a count()
        # first was a scan of its own (two more at 100k: the levels, EM's sample).
        return int(self._count()[1].sum())

    def patterns(self, n_levels: list[int]) -> tuple[np.ndarray, np.ndarray]:
        patterns, counts = self._count()
        return patterns.copy(), counts.copy()

    def _count(self) -> tuple[np.ndarray, np.ndarray]:
        from pyspark.sql import functions as F

        # Counted once: `fit_on` runs EM on the same candidates twice (its first step's sample
        # is all of them below `sample_records` A records), and each count scans every pair.
        if self._counted is None:
            t = self.df.groupBy("pcode").agg(F.count("*").alias("n")).toArrow()
            order = np.argsort(t.column("pcode").to_numpy())
            self._table = t.column("pcode").to_numpy()[order]
            patterns = pattern_levels(self._table, self.n_levels)
            self._counted = (patterns, t.column("n").to_numpy()[order].astype(np.float64))
        return self._counted

    def pattern_codes(self) -> np.ndarray:
        """The codes of the candidates' level patterns, ascending (counted on every pair)."""
        self._count()
        return self._table.copy()

    def _slices(self, new: np.ndarray, count: int) -> Iterator[dict[str, np.ndarray]]:
        """The pairs of patterns ``new`` (``count`` of them) as arrays, a slice of at most
        `fetch_rows` at a time (by code modulo the slice count, from a copy on the executors'
        disks when there are several), so that neither the driver's JVM nor Python holds
        them all as Arrow."""
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        cols = ["code", "pcode"] if self.nb is not None else ["code", "ia", "ib", "pcode"]
        chosen = (self.df.filter(F.col("pcode").isin([int(c) for c in self._table[new]]))
                  .select(*cols))
        slices = max(1, -(-count // max(1, self.fetch_rows)))
        held = chosen if slices == 1 else chosen.persist(StorageLevel.DISK_ONLY)
        try:
            for k in range(slices):
                part = held if slices == 1 else held.filter(f"code % {slices} = {k}")
                t = part.toArrow()
                got = {c: t.column(c).to_numpy() for c in cols if c != "pcode"}
                # The pattern's number (int32: at most a few thousand patterns), not its code.
                got["pid"] = np.searchsorted(self._table, t.column("pcode").to_numpy()).astype(
                    np.int32)
                del t
                yield got
        finally:
            if slices > 1:
                held.unpersist()

    def pairs_of(self, wanted: np.ndarray) -> PairChunks:
        counts = self._count()[1]
        if len(self._have) != len(self._table):
            self._have = np.zeros(len(self._table), dtype=bool)
        if self._pairs is None:
            self._pairs = _FetchedPairs(len(self._table), self.nb, self.na)
        new = np.flatnonzero(wanted & ~self._have)
        if len(new):
            count = int(counts[new].sum())
            self._pairs.add(self._slices(new, count), count)
            self._have[new] = True
        return PairChunks(self._pairs.n, self._pairs.read)

    def sample(self, number: np.ndarray) -> SparkCandidates:
        from pyspark.sql import functions as F

        keep = np.flatnonzero(number >= 0)
        # Shipped as a file, not createDataFrame: a local table travels inside every task of
        # the jobs that read it (EM's sample of 50,000 records made tasks of ~1 MB, over
        # Spark's advice, whatever N).
        numbers = Shipment(self.df.sparkSession).table(
            pa.table({"ia": pa.array(keep.astype(np.int64)),
                      "new": pa.array(number[keep].astype(np.int64))}))
        df = (self.df.join(F.broadcast(numbers), "ia")
              .select("code", F.col("new").alias("ia"), "ib", "pcode"))
        return SparkCandidates(df, self.n_levels, fetch_rows=self.fetch_rows)


def competition_plan(rounds: int) -> Plan:
    """The passes over the pairs that give `fellegi_sunter.pair_log_odds`'s sums.

    A pass groups the pairs by their A (``"a"``) or B (``"b"``) record and computes, for each
    (out, src), out = the sum over the record's other pairs of x / (1 + src) (x itself when src
    is None). ``pair_log_odds`` computes row_1 = O_a(x / (1 + O_b(x))), col_1 = O_b(x / (1 +
    O_a(x))), then row_k = O_a(x / (1 + col_{k-1})), col_k = O_b(x / (1 + row_{k-1})): two
    chains that alternate sides, so each pass advances both. The result is r{rounds} and
    c{rounds}.
    """
    plan: Plan = [("b", [("t1", None)]), ("a", [("r1", "t1"), ("t2", None)])]
    third: list[tuple[str, str | None]] = [("c1", "t2")]
    if rounds >= 2:
        third.append(("c2", "r1"))
    plan.append(("b", third))
    top = {"r": 1, "c": min(rounds, 2)}
    side = "a"
    while top["r"] < rounds or top["c"] < rounds:
        mine, other = ("r", "c") if side == "a" else ("c", "r")
        outs: list[tuple[str, str | None]] = [
            (f"{mine}{j}", f"{other}{j - 1}")
            for j in range(top[mine] + 1, min(top[mine] + 2, rounds) + 1) if j - 1 <= top[other]]
        plan.append((side, outs))
        top[mine] = max(top[mine], *(int(o[1:]) for o, _ in outs))
        side = "b" if side == "a" else "a"
    return plan


def _kept_after(plan: Plan, rounds: int) -> list[list[str]]:
    """The sums still needed after each pass (by a later pass, or at the end)."""
    out = []
    for p in range(len(plan)):
        made = [o for q in range(p + 1) for o, _ in plan[q][1]]
        later = {s for q in range(p + 1, len(plan)) for _, s in plan[q][1] if s}
        out.append([c for c in made if c in later or c in (f"r{rounds}", f"c{rounds}")])
    return out


def _ddl(cols: list[str]) -> str:
    return ", ".join(f"{c} {'bigint' if c in ('code', 'pcode') else 'double'}" for c in cols)


def _lookup(table: Any, pcode: np.ndarray, column: int) -> np.ndarray:
    """Per pair, a per-pattern value of the broadcast table (pattern codes ascending, then the
    values): every pair's pattern is in it (the patterns were counted on every pair)."""
    pcodes = table.value[0]
    return table.value[column][np.searchsorted(pcodes, pcode)]


def _alone_fn(table: Any, prior_model: FSModel, threshold: float,
              finish: Callable[[np.ndarray, FSModel], tuple[np.ndarray, np.ndarray]],
              ) -> Callable[..., Iterator[pa.RecordBatch]]:
    def alone(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if not batch.num_rows:
                continue
            weight, prob = finish(_lookup(table, batch.column("pcode").to_numpy(), 1),
                                  prior_model)
            keep = np.flatnonzero(prob >= threshold)
            yield pa.RecordBatch.from_arrays(
                [batch.column("code").take(pa.array(keep)), pa.array(weight[keep]),
                 pa.array(prob[keep])], names=["code", "weight", "prob"])

    return alone


def _pass_fn(side: str, outs: list[tuple[str, str | None]], cols: list[str],
             sizes: tuple[int, int], table: Any) -> Callable[..., Iterator[pa.RecordBatch]]:
    n_a, n_b = sizes

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        parts = [b for b in batches if b.num_rows]
        if not parts:
            return
        t = pa.Table.from_batches(parts)
        code = t.column("code").to_numpy()
        ia, ib = np.divmod(code, n_b)
        # A record's pairs in candidate order, as `pair_log_odds` adds them: one sort by
        # (record, other record), so that the records come in runs (numbered here, instead of
        # a second sort by np.unique) and each run is in code order.
        rec = ia if side == "a" else ib
        order = np.argsort(code if side == "a" else ib * n_a + ia)
        rec = rec[order]
        local = np.zeros(len(rec), dtype=np.int64)
        np.cumsum(rec[1:] != rec[:-1], out=local[1:])
        pcode = t.column("pcode").to_numpy()[order]
        # x of each pair from its pattern (`pair_odds` is elementwise, so the table's value
        # is the pair's own to the bit), rather than a column carried through every pass.
        x = _lookup(table, pcode, 2)
        made = {}
        for out, src in outs:
            v = x if src is None else x / (1.0 + t.column(src).to_numpy()[order])
            made[out] = _others(v, local, int(local[-1]) + 1)
        arrays = [code[order], pcode, *(made[c] if c in made else t.column(c).to_numpy()[order]
                                        for c in cols[2:])]
        yield from pa.Table.from_arrays([pa.array(x) for x in arrays],
                                        names=cols).to_batches()

    return run


def _final_fn(rounds: int, table: Any, prior_model: FSModel, threshold: float,
              finish: Callable[[np.ndarray, FSModel], tuple[np.ndarray, np.ndarray]],
              ) -> Callable[..., Iterator[pa.RecordBatch]]:
    def final(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if not batch.num_rows:
                continue
            log_odds = (_lookup(table, batch.column("pcode").to_numpy(), 1)
                        - np.log1p(batch.column(f"r{rounds}").to_numpy())
                        - np.log1p(batch.column(f"c{rounds}").to_numpy()))
            weight, prob = finish(log_odds, prior_model)
            keep = np.flatnonzero(prob >= threshold)
            yield pa.RecordBatch.from_arrays(
                [batch.column("code").take(pa.array(keep)), pa.array(weight[keep]),
                 pa.array(prob[keep])], names=["code", "weight", "prob"])

    return final


def pattern_odds(pcodes: np.ndarray, n_levels: list[int], model: FSModel,
                 sizes: tuple[int, int], compete: bool,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per level pattern (``pcodes``, ascending `_codes`): the natural log odds the scores
    start from (`pair_odds`'s log x with competing candidates, else `alone_log_odds`) and x.
    A pair's Bayes factor and odds depend on its pattern alone, and every step is elementwise,
    so a pair's values are its pattern's, bit for bit; the passes look them up instead of
    carrying two columns (and the model) through every shuffle."""
    log_bf = model.log_bayes_factor(pattern_levels(pcodes, n_levels))
    if compete:
        log_x, x = pair_odds(log_bf, *sizes, model.matches)
        return pcodes, log_x, x
    lo = alone_log_odds(log_bf, *sizes, model.matches)
    return pcodes, lo, np.exp(np.clip(lo, -700.0, 650.0))


def _levels_of(session: Any, ship: Shipment, layout: _Layout, a: EncodedSet, b: EncodedSet,
               codes: np.ndarray, sources: tuple[str, str] | None, n_levels: list[int]) -> Any:
    """The candidates' comparison levels, a DataFrame (code, ia, ib, pcode, gamma): each pair
    joined with its two records' filters, the levels computed per partition."""
    nb = len(b)
    if sources is not None and not layout.ages:  # the executors read the partners' files
        rec_a = layout.read(session, sources[0], "a_", len(a))
        rec_b = layout.read(session, sources[1], "b_", nb)
    else:  # the driver's sets (e.g. the hub's, with birth years from ages) are shipped
        rec_a = ship.table(layout.table(a, "a_"))
        rec_b = ship.table(layout.table(b, "b_"))
    pairs = (ship.table(pa.table({"code": pa.array(codes, pa.int64())}))
             .selectExpr("code", f"code div {nb} AS ia", f"code % {nb} AS ib"))
    # Shuffle joins, by hint: a shipped table's size estimate is its file list's, and a
    # broadcast of the pairs would gather them all in the driver's heap. The levels run in the
    # second join's partitions (by B record): a pair's levels are its own, and a repartition
    # there shuffled every pair with both records' filters once more (0.97 GB at 100k).
    joined = (pairs.hint("merge").join(rec_a, pairs.ia == rec_a.a_idx)
              .hint("merge").join(rec_b, pairs.ib == rec_b.b_idx))
    return joined.mapInArrow(_levels_fn(layout, n_levels), "code bigint, pcode bigint")


# Competing-candidate passes between checkpoints: each checkpoint writes the pairs once more
# (compressed) and lets the shuffles before it go. Every pass, because the local disk is what
# bounds a large run on few machines (at 10M a side on this project's 2-core test machine),
# while CPU grows with executors: at 100k a side, with each checkpoint dropped once the next
# is written, every pass peaked at 0.39 GB of local dir for 78 CPU s of scoring, every third
# pass at 0.69 GB for 61 s (the whole run +12 % CPU). At 1M before the drops: 4.90 against
# 7.04 GB.
CHECKPOINT_PASSES = 1


def score_on_spark(session: Any, a: EncodedSet, b: EncodedSet, codes: np.ndarray,
                   fit: Callable[[SparkCandidates], FSModel], config: MatchConfig,
                   threshold: float, partitions: int | None,
                   sources: tuple[str, str] | None = None,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, FSModel]:
    """Codes, weights and probabilities of the candidates reaching ``threshold`` (code order),
    and the model: `match.CandidateScorer` on Spark (see the module doc)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from accord.link.match import weights_of

    n_levels = [len(c.labels) for c in comparisons(a.info.schema)]
    if float(np.prod(np.asarray(n_levels, dtype=np.float64))) >= 2.0**62:
        raise AccordError("the Spark engine cannot score a schema with this many comparison "
                          "levels", hint="link with the embedded engine (no --engine spark)")
    nb = len(b)
    sc = session.sparkContext
    n_parts = max(partitions or 4 * sc.defaultParallelism, -(-len(codes) // 2_000_000))
    layout = _Layout(a, b)
    with shipment(session) as ship:
        # The joins' partitions are the engine's, not spark.sql.shuffle.partitions (200 by
        # default, and not coalesced by adaptive execution in a persisted plan): with 200,
        # every scan of the persisted levels (pattern counts, each of EM's fetches, the odds)
        # ran 200 tasks. Set while the levels are planned and first computed, then restored.
        given = session.conf.get("spark.sql.shuffle.partitions")
        session.conf.set("spark.sql.shuffle.partitions", str(n_parts))
        levels: Any = None
        odds: Any = None
        table = None
        checkpoints: list[Any] = []  # written and still read by what is planned after them
        try:
            # Checkpointed (on the executors' disks), not persisted: a persisted plan keeps
            # the two joins' shuffles (~16 GB at 10M a side) referenced to the end of the run.
            levels = _levels_of(session, ship, layout, a, b, codes, sources,
                                n_levels).localCheckpoint(True, StorageLevel.DISK_ONLY)
            checkpoints.append(levels)
            release_finished(sc)
            cands = SparkCandidates(
                levels.selectExpr("code", f"code div {nb} AS ia", f"code % {nb} AS ib", "pcode"),
                n_levels, nb, len(a))
            model = fit(cands)
            sizes = (len(a), nb)
            compete = config.competing_candidates
            # The per-pattern odds go to the executors once, as a broadcast, not inside every
            # task's closure (the model with its joint patterns made each pass's tasks ~1 MB);
            # weights_of reads only the model's prior.
            table = sc.broadcast(pattern_odds(cands.pattern_codes(), n_levels, model, sizes,
                                              compete))
            del cands  # EM's one-by-one pairs (8 bytes a pair on the driver) go before the passes
            prior_model = replace(model, m=[], u=[], joint_patterns=None, joint_log_u=None,
                                  frequency=None, labels=[])
            if not compete:
                odds = levels.mapInArrow(_alone_fn(table, prior_model, threshold, weights_of),
                                         "code bigint, weight double, prob double")
            else:
                rounds = config.competition_rounds
                plan = competition_plan(rounds)
                # Each pass shuffles a pair as its code (both records) and pattern code (its
                # odds) and the two sums the next passes need: 4 columns, not 7.
                odds = levels
                for p, ((side, outs), kept) in enumerate(zip(plan, _kept_after(plan, rounds),
                                                             strict=True)):
                    key = F.expr(f"code div {nb}") if side == "a" else F.expr(f"code % {nb}")
                    cols = ["code", "pcode", *kept]
                    odds = (odds.repartition(n_parts, key)
                            .mapInArrow(_pass_fn(side, outs, cols, sizes, table), _ddl(cols)))
                    if (p + 1) % CHECKPOINT_PASSES == 0 and p + 1 < len(plan):
                        # The passes so far written to the executors' disks, so that their
                        # shuffles are no longer referenced and Spark removes them: one plan
                        # of 12 passes kept every pass's shuffle (~6.7 GB each at 10M a side)
                        # on disk until the end, more than this machine's 64 GB.
                        odds = odds.localCheckpoint(True, StorageLevel.DISK_ONLY)
                        # The earlier checkpoints (the levels' too) are no longer read:
                        # this one is written and its plan starts from its own blocks.
                        for done in checkpoints:
                            drop_checkpoint(done)
                        checkpoints[:] = [odds]
                        release_finished(sc)
                odds = odds.mapInArrow(_final_fn(rounds, table, prior_model, threshold,
                                                 weights_of),
                                       "code bigint, weight double, prob double")
            # Few pairs reach the threshold (about one a record): sorted into candidate order
            # on the driver (a Spark orderBy would run the last pass twice, to sample ranges).
            got = odds.toArrow()
        finally:
            if table is not None:
                table.destroy()
            for done in checkpoints:
                drop_checkpoint(done)
            levels = odds = None
            checkpoints.clear()
            release_finished(sc)  # the last passes' shuffles
            session.conf.set("spark.sql.shuffle.partitions", given)
    order = np.argsort(got.column("code").to_numpy(), kind="stable")
    return (got.column("code").to_numpy()[order], got.column("weight").to_numpy()[order],
            got.column("prob").to_numpy()[order], model)
