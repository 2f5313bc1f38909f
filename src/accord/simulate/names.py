"""Names that fit a person's citizenship, with spelling variants, and how re-registration
garbles them.

Names are held as token ids into one vocabulary of spellings (``Vocabulary``); a person has up to
two given-name tokens and two family-name tokens. Keeping tokens (not strings) until the end lets
the simulator apply transliteration, truncation of compound names and initials to millions of
records with numpy, and turn them into strings once, with pyarrow.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from accord.simulate.arrays import IntArray, take_strings

NONE = -1


@dataclass(frozen=True)
class Region:
    name: str
    style: str
    countries: tuple[str, ...]
    country_weights: tuple[float, ...]
    lists: dict[str, np.ndarray]  # list name -> group ids
    weights: dict[str, np.ndarray]  # list name -> relative frequency of each group
    p_second_given: float
    p_second_family: float
    p_family: float


@dataclass(frozen=True)
class Vocabulary:
    spellings: tuple[str, ...]
    group_of: np.ndarray  # spelling id -> group id
    group_start: np.ndarray  # group id -> first spelling id
    group_size: np.ndarray  # group id -> number of spellings
    regions: tuple[Region, ...]

    @property
    def array(self) -> pa.Array:
        return pa.array(self.spellings, type=pa.string())

    @property
    def initials(self) -> pa.Array:
        return pa.array([s[:1] + "." for s in self.spellings], type=pa.string())


def _dedupe(variants: list[str]) -> list[str]:
    seen: list[str] = []
    for v in variants:
        v = v.strip()
        if v and v not in seen:
            seen.append(v)
    return seen


@lru_cache(maxsize=1)
def load_vocabulary() -> Vocabulary:
    raw: dict[str, Any] = yaml.safe_load(
        resources.files("accord.simulate").joinpath("names.yaml").read_text(encoding="utf-8")
    )
    spellings: list[str] = []
    group_of: list[int] = []
    starts: list[int] = []
    sizes: list[int] = []
    regions: list[Region] = []
    for name, spec in raw["regions"].items():
        lists: dict[str, np.ndarray] = {}
        weights: dict[str, np.ndarray] = {}
        for key in ("given_female", "given_male", "family", "middle_female", "middle_male"):
            groups = []
            explicit: list[float | None] = []
            for entry in spec.get(key, []):
                text, _, weight = str(entry).partition("=")
                explicit.append(float(weight) if weight else None)
                variants = _dedupe(text.split("|"))
                starts.append(len(spellings))
                sizes.append(len(variants))
                gid = len(starts) - 1
                for v in variants:
                    spellings.append(v)
                    group_of.append(gid)
                groups.append(gid)
            if groups:
                lists[key] = np.asarray(groups, dtype=np.int64)
                weights[key] = _weights(explicit)
        countries = tuple(spec["countries"])
        regions.append(Region(
            name=name,
            style=spec["style"],
            countries=countries,
            country_weights=tuple(float(spec["countries"][c]) for c in countries),
            lists=lists,
            weights=weights,
            p_second_given=float(spec.get("p_second_given", 0.1)),
            p_second_family=float(spec.get("p_second_family", 0.0)),
            p_family=float(spec.get("p_family", 1.0)),
        ))
    return Vocabulary(
        spellings=tuple(spellings),
        group_of=np.asarray(group_of, dtype=np.int64),
        group_start=np.asarray(starts, dtype=np.int64),
        group_size=np.asarray(sizes, dtype=np.int64),
        regions=tuple(regions),
    )


@dataclass(frozen=True)
class NameTokens:
    """Spelling ids of each person's (or record's) name parts; -1 where the part is absent."""

    g1: IntArray
    g2: IntArray
    f1: IntArray
    f2: IntArray

    def take(self, idx: IntArray) -> NameTokens:
        return NameTokens(self.g1[idx], self.g2[idx], self.f1[idx], self.f2[idx])


def _weights(explicit: list[float | None]) -> np.ndarray:
    if any(w is not None for w in explicit):
        w = np.asarray([1.0 if x is None else x for x in explicit])
    else:
        # Common names first in the YAML; a Zipf-like weight makes them common.
        w = 1.0 / np.arange(1, len(explicit) + 1) ** 0.8
    return w / w.sum()


def _pick_groups(rng: np.random.Generator, reg: Region, key: str, n: int) -> IntArray:
    return reg.lists[key][rng.choice(len(reg.lists[key]), size=n, p=reg.weights[key])]


def _spelling(rng: np.random.Generator, voc: Vocabulary, groups: IntArray) -> IntArray:
    # A person's own spelling: the first variant most often, the others less.
    size = voc.group_size[groups]
    u = rng.random(len(groups))
    other = 1 + (rng.integers(0, 1 << 30, len(groups)) % np.maximum(size - 1, 1))
    offset = np.where((u < 0.6) | (size == 1), 0, other)
    return voc.group_start[groups] + offset


def draw_names(
    rng: np.random.Generator, region: IntArray, female: np.ndarray, voc: Vocabulary
) -> NameTokens:
    n = len(region)
    g1 = np.full(n, NONE, dtype=np.int64)
    g2, f1, f2 = g1.copy(), g1.copy(), g1.copy()
    for r_id, reg in enumerate(voc.regions):
        for is_f in (True, False):
            idx = np.flatnonzero((region == r_id) & (female == is_f))
            if len(idx) == 0:
                continue
            m = len(idx)
            given = "given_female" if is_f else "given_male"

            def pick(key: str, k: int = m, reg: Region = reg) -> IntArray:
                return _spelling(rng, voc, _pick_groups(rng, reg, key, k))

            if reg.style == "vietnamese":
                g1[idx] = pick("middle_female" if is_f else "middle_male")
                g2[idx] = pick(given)
                f1[idx] = pick("family")
                continue
            g1[idx] = pick(given)
            second = rng.random(m) < reg.p_second_given
            g2[idx[second]] = pick(given, int(second.sum()))
            # Patronymic naming: the family name is the father's (and grandfather's) given name.
            family_list = "given_male" if reg.style == "patronymic" else "family"
            has_family = rng.random(m) < reg.p_family
            f1[idx[has_family]] = pick(family_list, int(has_family.sum()))
            second_f = has_family & (rng.random(m) < reg.p_second_family)
            f2[idx[second_f]] = pick(family_list, int(second_f.sum()))
    # A second name equal to the first reads as a data error; drop it.
    g2[(g2 >= 0) & (voc.group_of[np.maximum(g2, 0)] == voc.group_of[np.maximum(g1, 0)])] = NONE
    f2[(f2 >= 0) & (voc.group_of[np.maximum(f2, 0)] == voc.group_of[np.maximum(f1, 0)])] = NONE
    return NameTokens(g1, g2, f1, f2)


def transliterate(
    rng: np.random.Generator, tokens: NameTokens, which: np.ndarray, voc: Vocabulary
) -> tuple[NameTokens, np.ndarray]:
    """Respell name parts that have variants, for the records in ``which`` (bool mask).

    Returns the new tokens and a mask of the records actually changed (a name without any
    variant spelling cannot be transliterated differently).
    """
    parts = [tokens.g1.copy(), tokens.g2.copy(), tokens.f1.copy(), tokens.f2.copy()]
    changed = np.zeros(len(which), dtype=bool)
    for part in parts:
        ok = which & (part >= 0)
        grp = voc.group_of[np.maximum(part, 0)]
        size = voc.group_size[grp]
        hit = ok & (size > 1) & (rng.random(len(part)) < 0.8)
        pos = part - voc.group_start[grp]
        shift = 1 + rng.integers(0, 1 << 30, len(part)) % np.maximum(size - 1, 1)
        new = voc.group_start[grp] + (pos + shift) % np.maximum(size, 1)
        part[hit] = new[hit]
        changed |= hit
    return NameTokens(*parts), changed


def can_transliterate(tokens: NameTokens, voc: Vocabulary) -> np.ndarray:
    out = np.zeros(len(tokens.g1), dtype=bool)
    for part in (tokens.g1, tokens.g2, tokens.f1, tokens.f2):
        out |= (part >= 0) & (voc.group_size[voc.group_of[np.maximum(part, 0)]] > 1)
    return out


def render(
    tokens: NameTokens, initial: np.ndarray, swap: np.ndarray, voc: Vocabulary
) -> tuple[pa.Array, pa.Array]:
    """Given and family name strings; ``initial`` writes the first given part as "X.",
    ``swap`` exchanges given and family names (a common registration error)."""
    words = voc.array
    first = take_strings(words, tokens.g1)
    first = pc.if_else(pa.array(initial), take_strings(voc.initials, tokens.g1), first)
    given = join_words(first, take_strings(words, tokens.g2))
    family = join_words(take_strings(words, tokens.f1), take_strings(words, tokens.f2))
    sw = pa.array(swap)
    return pc.if_else(sw, family, given), pc.if_else(sw, given, family)


def join_words(a: pa.Array, b: pa.Array) -> pa.Array:
    """``a b`` skipping missing parts; null when both are missing.

    (pyarrow's ``binary_join_element_wise(..., null_handling="skip")`` drops rows where every
    input is null in the version we use, so nulls are filled and trimmed instead.)"""
    joined = pc.binary_join_element_wise(pc.fill_null(a, ""), pc.fill_null(b, ""), " ")
    joined = pc.utf8_trim_whitespace(joined)
    return pc.if_else(pc.equal(joined, ""), pa.scalar(None, pa.string()), joined)


_KEYBOARD_NEIGHBOURS = {
    "a": "sq", "b": "vn", "c": "xv", "d": "sf", "e": "wr", "f": "dg", "g": "fh", "h": "gj",
    "i": "uo", "j": "hk", "k": "jl", "l": "k", "m": "n", "n": "bm", "o": "ip", "p": "o",
    "q": "w", "r": "et", "s": "ad", "t": "ry", "u": "yi", "v": "cb", "w": "qe", "x": "zc",
    "y": "tu", "z": "x",
}


def typo(word: str, u: float, v: float) -> str:
    """One keyboard-style edit (substitute, delete, double, transpose), chosen by ``u``, ``v``
    in [0, 1). Written by hand: a four-branch string edit needs no library."""
    if len(word) < 3:
        return word + word[-1:]
    i = 1 + int(v * (len(word) - 2))
    kind = int(u * 4)
    c = word[i]
    if kind == 0:
        near = _KEYBOARD_NEIGHBOURS.get(c.lower(), "e")
        rep = near[int(v * 97) % len(near)]
        return word[:i] + (rep.upper() if c.isupper() else rep) + word[i + 1:]
    if kind == 1:
        return word[:i] + word[i + 1:]
    if kind == 2:
        return word[:i] + c + word[i:]
    return word[:i - 1] + word[i] + word[i - 1] + word[i + 1:]
