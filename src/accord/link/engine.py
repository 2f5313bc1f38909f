"""The engine seam of linkage: where the band work of blocking runs.

One set of stage logic (passes, plans, band bits, Dice thresholds, scoring, assignment) and a
narrow interface underneath, as Splink does with its database backends: an engine receives the
filters of one blocking pass and the bits of its bands, and returns the record pairs each band
keeps. The embedded engine runs the bands in threads on this machine; the Spark engine
(`accord.link.spark`) runs the same compiled kernels inside Spark partitions. Both draw nothing
random of their own, so the same inputs and seeds give the same candidate pairs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class BandJob:
    """One blocking pass, ready to run: pass filters of both sides (n, words) uint64, the word
    offsets of its field groups, the key length before forest splitting, the sampled bits of
    each band (word, shift) and each band's Dice thresholds per field group."""

    fa: np.ndarray
    fb: np.ndarray
    bounds: np.ndarray
    rows: int
    bits: Sequence[tuple[np.ndarray, np.ndarray]]
    min_dice: Sequence[np.ndarray]
    max_side: int
    max_bucket_pairs: int
    # A bucket where either side holds more records than this is left out (0: no limit). The
    # undated pass uses it: there one side is a few records and the forest never splits, so
    # a common name would pair each of them with every record of that name.
    max_bucket_side: int = 0


class BandEngine(Protocol):
    @property
    def name(self) -> str: ...

    def band_pairs(self, job: BandJob) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Pairs (ia, ib) kept by the bands of the pass (any grouping; duplicates allowed)."""
        ...


def band_buckets(ka: np.ndarray, kb: np.ndarray, job: BandJob,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Buckets of one band's keys and the key orders they index (shared by every engine)."""
    from accord.link import kernels  # numba: loaded when first needed (CLI start-up)

    oa, ob = np.argsort(ka), np.argsort(kb)
    buckets = kernels.shared_buckets(ka[oa], kb[ob], job.rows, 64 if not job.bits else
                                     len(job.bits[0][0]), job.max_side, job.max_bucket_pairs)
    if job.max_bucket_side and len(buckets):
        side = np.maximum(buckets[:, 1] - buckets[:, 0], buckets[:, 3] - buckets[:, 2])
        buckets = buckets[side <= job.max_bucket_side]
    return buckets, oa, ob


def join_band(ka: np.ndarray, kb: np.ndarray, fa: np.ndarray, fb: np.ndarray,
              ones_a: np.ndarray, ones_b: np.ndarray, job: BandJob, band: int,
              ) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of one band among the given records (indices into fa, fb): buckets by key
    prefix, split where common (an LSH forest), kept where every field group is close. A
    subset of records holding whole top-level buckets gives the same pairs as all records."""
    from accord.link import kernels

    buckets, oa, ob = band_buckets(ka, kb, job)
    return kernels.join_buckets(buckets, oa, ob, fa, ones_a, fb, ones_b, job.bounds,
                                job.min_dice[band])


@dataclass(frozen=True)
class EmbeddedEngine:
    """Bands in parallel threads on this machine (the kernels and numpy's sort release the
    GIL); results in band order."""

    threads: int | None = None
    name: str = "embedded"

    def band_pairs(self, job: BandJob) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        from accord.link import kernels

        ones_a = kernels.group_ones(job.fa, job.bounds)
        ones_b = kernels.group_ones(job.fb, job.bounds)

        def run(band: int) -> tuple[np.ndarray, np.ndarray]:
            word, shift = job.bits[band]
            ka = kernels.band_keys(job.fa, word, shift)
            kb = kernels.band_keys(job.fb, word, shift)
            return join_band(ka, kb, job.fa, job.fb, ones_a, ones_b, job, band)

        n = len(job.bits)
        workers = max(1, min(self.threads or os.cpu_count() or 1, n))
        with ThreadPoolExecutor(workers) as pool:
            yield from pool.map(run, range(n))
