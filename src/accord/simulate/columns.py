"""Record values in the standard's terms, and helpers that turn them into a partner's own codes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from accord.simulate.arrays import IntArray, take_strings
from accord.simulate.population import CASE_TYPES, Population
from accord.simulate.records import Records
from accord.standard import Standard

# Calling codes of the countries where simulated people are registered (phones are plausible
# in shape only; the subscriber digits are random).
CALLING_CODES = {
    "TH": "66", "MY": "60", "KH": "855", "PH": "63", "AE": "971", "ID": "62", "TR": "90",
    "LB": "961", "JO": "962", "DE": "49", "US": "1", "MX": "52", "CO": "57", "ES": "34",
    "LY": "218", "IT": "39", "NE": "227", "PL": "48", "MD": "373", "SD": "249", "IN": "91",
    "SY": "963", "IQ": "964", "AF": "93", "YE": "967", "EG": "20", "VE": "58", "HN": "504",
    "GT": "502", "SV": "503", "NG": "234", "GH": "233", "SL": "232", "GW": "245", "GN": "224",
    "SN": "221", "ML": "223", "CI": "225", "UA": "380", "BY": "375", "RO": "40", "BG": "359",
    "KG": "996", "UZ": "998", "ET": "251", "ER": "291", "SO": "252", "BD": "880", "NP": "977",
    "LK": "94", "VN": "84", "LA": "856", "MM": "95",
}


@dataclass(frozen=True)
class RecordView:
    """Every exported value of every record, as standard codes (indices or masks)."""

    std: Standard
    pop: Population
    recs: Records

    def person(self, values: np.ndarray) -> np.ndarray:
        return values[self.recs.person]

    def codes(self, field: str) -> tuple[str, ...]:
        return self.std.field(field).code_values


def code_column(idx: IntArray, labels: list[str] | tuple[str, ...]) -> pa.Array:
    return take_strings(pa.array(list(labels), type=pa.string()), idx)


def mask_column(mask: IntArray, labels: list[str] | tuple[str, ...], sep: str) -> pa.Array:
    """Multi-select cells: the labels of the bits set in each mask, joined; null when none."""
    uniq, inverse = np.unique(mask, return_inverse=True)
    cells = [sep.join(lab for i, lab in enumerate(labels) if int(u) >> i & 1) or None
             for u in uniq]
    return pa.array(cells, type=pa.string()).take(pa.array(inverse.ravel()))


def relabel(codes: tuple[str, ...], own: Mapping[str, str]) -> list[str]:
    """A partner's label for each standard code (identity unless ``own`` renames it)."""
    return [own.get(c, c) for c in codes]


def reverse(codes: tuple[str, ...], own: Mapping[str, str]) -> dict[str, str]:
    """The mapping file's ``codes:`` block: partner label -> standard code."""
    return {own.get(c, c): c for c in codes}


def date_column(dates: np.ndarray, fmt: str) -> pa.Array:
    return pc.strftime(pa.array(dates.astype("datetime64[D]")), format=fmt)


def int_column(values: IntArray) -> pa.Array:
    """Integers as text, null where negative (not recorded)."""
    return pc.cast(pa.array(values, mask=values < 0), pa.string())


def country_column(idx: IntArray, countries: tuple[str, ...], alpha3: bool) -> pa.Array:
    labels = [_alpha3(c) for c in countries] if alpha3 else list(countries)
    return code_column(idx, labels)


@lru_cache(maxsize=256)
def _alpha3(alpha2: str) -> str:
    import pycountry

    found = pycountry.countries.get(alpha_2=alpha2)
    return found.alpha_3 if found else alpha2


@lru_cache(maxsize=256)
def _areas(alpha2: str) -> tuple[str, ...]:
    import pycountry

    subs = pycountry.subdivisions.get(country_code=alpha2) or []
    codes = sorted(s.code for s in subs if s.parent_code is None)
    return tuple(codes[:6]) or (f"{alpha2}-01",)


def area_column(view: RecordView, rng: np.random.Generator) -> pa.Array:
    countries = view.pop.countries
    table: list[str] = []
    offset = np.zeros(len(countries), dtype=np.int64)
    count = np.zeros(len(countries), dtype=np.int64)
    for i, c in enumerate(countries):
        offset[i], count[i] = len(table), len(_areas(c))
        table.extend(_areas(c))
    country = view.person(view.pop.reg_country)
    # A person stays in the same area across partners most of the time: derive it from the id.
    pick = (view.recs.person * 7919 + rng.integers(0, 2, view.recs.size) * 3) % count[country]
    return code_column(offset[country] + pick, table)


def citizenship_column(view: RecordView, sep: str, alpha3: bool = False) -> pa.Array:
    first = country_column(view.person(view.pop.citizenship), view.pop.countries, alpha3)
    second = country_column(view.person(view.pop.citizenship2), view.pop.countries, alpha3)
    from accord.simulate.names import join_words

    joined = join_words(first, second)
    return pc.replace_substring(joined, " ", sep) if sep != " " else joined


def phone_column(view: RecordView, international: np.ndarray, spaced: bool) -> pa.Array:
    country = view.person(view.pop.reg_country)
    cc = code_column(country, [CALLING_CODES.get(c, "00") for c in view.pop.countries])
    number = view.recs.phone
    digits = int_column(number)
    intl = pc.binary_join_element_wise(pa.scalar("+"), cc, pa.scalar(" " if spaced else ""),
                                       digits, "")
    local = pc.binary_join_element_wise(pa.scalar("0"), digits, "")
    return pc.if_else(pa.array(international), intl, local)


def case_type_labels(own: Mapping[str, str]) -> list[str]:
    return [own.get(c, c) for c in CASE_TYPES]
