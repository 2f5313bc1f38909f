"""Encodings loaded for matching: per field a uint64 bit matrix, its popcounts and presence."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from accord.protect.encoding.bloom import (
    QUALITY_SUFFIX,
    UNORDERED_BITS,
    UNORDERED_SUFFIX,
    YEAR_BITS,
    YEAR_SUFFIX,
)
from accord.protect.encoding.files import EncodingFileError, EncodingInfo
from accord.protect.encoding.schema import FieldKind


@dataclass(frozen=True)
class BitField:
    words: np.ndarray  # (n, bits/64) uint64
    ones: np.ndarray  # (n,) popcount
    present: np.ndarray  # (n,) bool

    @classmethod
    def from_arrow(cls, col: pa.ChunkedArray | pa.Array, name: str,
                   width: int | None = None) -> BitField:
        arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        if width and (pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type)):
            # Stores such as DuckDB keep fixed-size binary as variable-size BLOB.
            lengths = pc.binary_length(arr)
            if pc.any(pc.not_equal(lengths, width)).as_py():
                raise EncodingFileError(f"column {name} holds filters of the wrong size",
                                        hint="re-encode with the collaborative's schema")
            arr = pc.cast(arr, pa.binary(width))
        if not pa.types.is_fixed_size_binary(arr.type) or arr.type.byte_width % 8:
            raise EncodingFileError(f"column {name} is not a Bloom-filter column",
                                    hint="make the file with `accord encode`")
        width = arr.type.byte_width
        present = pc.is_valid(arr).to_numpy(zero_copy_only=False)
        buf = arr.buffers()[1]
        raw = np.frombuffer(buf, dtype=np.uint8, count=(arr.offset + len(arr)) * width)
        raw = raw[arr.offset * width :].reshape(len(arr), width)
        words = np.ascontiguousarray(raw).view(np.uint64).copy()
        words[~present] = 0  # null slots may hold anything
        ones = np.bitwise_count(words).sum(axis=1, dtype=np.int32)
        return cls(words, ones, present)

    def __len__(self) -> int:
        return int(self.words.shape[0])


@dataclass(frozen=True)
class EncodedSet:
    """One side of a linkage: record ids, filters per encoded column, date qualities."""

    ids: np.ndarray  # object array of str
    fields: dict[str, BitField]
    quality: dict[str, np.ndarray]  # date field -> object array of dob_quality codes
    info: EncodingInfo
    # Approximate birth year per record from outside the encodings (the hub: registration date
    # minus reported age), NaN where unknown; compared only where the birth date says nothing.
    birth_years: np.ndarray | None = None
    # The share of set bits of each column over both sides of the whole linkage, when this set
    # is a part of one side (an engine's partition, accord.link.spark_score): comparison levels
    # then use the whole linkage's Dice thresholds (`comparisons.field_levels`), not the part's.
    linkage_fill: dict[str, float] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_table(cls, table: pa.Table, info: EncodingInfo, id_column: str = "id") -> EncodedSet:
        if id_column not in table.column_names:
            raise EncodingFileError(f"encodings have no {id_column!r} column",
                                    hint="make the file with `accord encode`")
        ids = np.array(pc.cast(table[id_column], pa.string()).to_pylist(), dtype=object)
        fields: dict[str, BitField] = {}
        quality: dict[str, np.ndarray] = {}
        for spec in info.schema.fields:
            names = [(spec.name, spec.n_bits // 8)]
            if spec.kind is FieldKind.DATE:
                names.append((spec.name + YEAR_SUFFIX, YEAR_BITS // 8))
                names.append((spec.name + UNORDERED_SUFFIX, UNORDERED_BITS // 8))
                qcol = spec.name + QUALITY_SUFFIX
                if qcol not in table.column_names:
                    raise EncodingFileError(f"encodings lack column {qcol}",
                                            hint="re-encode with `accord encode`")
                quality[spec.name] = _shared_strings(pc.fill_null(table[qcol], "unknown"))
            for name, width in names:
                if name not in table.column_names:
                    raise EncodingFileError(f"encodings lack column {name}",
                                            hint="re-encode with `accord encode`")
                fields[name] = BitField.from_arrow(table[name], name, width)
        return cls(ids, fields, quality, info)


def _shared_strings(col: pa.ChunkedArray) -> np.ndarray:
    """An object array of a column's strings, one Python str per distinct value: a quality code
    repeats (a handful of values), and one str object a record was ~54 bytes a record more
    (1 GB at 10M records a side on both sides)."""
    codes = pc.dictionary_encode(pc.cast(col, pa.string())).combine_chunks()
    values = np.array(codes.dictionary.to_pylist(), dtype=object)
    return values[codes.indices.to_numpy(zero_copy_only=False)]


def dice(a: BitField, b: BitField, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """Dice coefficient of filter pairs (a[ia[k]], b[ib[k]]); 0 where either filter is empty."""
    from accord.link import kernels  # numba: loaded when first needed

    return kernels.pair_dice(a.words, a.ones, b.words, b.ones,
                             np.ascontiguousarray(ia, dtype=np.int64),
                             np.ascontiguousarray(ib, dtype=np.int64))
