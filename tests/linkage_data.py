"""A small generator of migrant-like identifier files with known true pairs (tests, benchmark).

Kept here until the project simulator (`accord.simulate`) can produce the same kinds of error.
Each duplicate in B carries one kind of error, so accuracy can be reported by kind.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from accord.link.encodings import EncodedSet
from accord.protect.encoding import Encoder, EncodingInfo, LinkageSecret, schema_from_fields

# Transliteration variants: any spelling of a group may be used by any organisation.
GIVEN = [
    ["Mohammed", "Muhammad", "Mohamed", "Mohamad", "Mohammad"], ["Ahmed", "Ahmad", "Ahmet"],
    ["Hussein", "Husain", "Hussain"], ["Fatima", "Fatma", "Fatimah"], ["Aisha", "Aicha", "Ayesha"],
    ["Yusuf", "Youssef", "Yousef"], ["Omar", "Umar"], ["Abdullahi", "Abdullah", "Abdallah"],
    ["Mariam", "Maryam", "Miriam"], ["Khadija", "Khadidja", "Khadeeja"], ["Ibrahim", "Ebrahim"],
    ["Amina", "Aminah"], ["Hassan", "Hasan"], ["Zainab", "Zeinab", "Zaynab"], ["Ali"],
    ["Lan"], ["Mai"], ["Thu"], ["Hoa"], ["Minh"], ["Tuan"], ["Blessing"], ["Joy"], ["Precious"],
    ["Esther"], ["Grace"], ["Chinedu"], ["Tesfaye"], ["Meron"], ["Selam"], ["Dawit"], ["Saba"],
    ["Olena", "Elena", "Alena"], ["Oksana"], ["Natalia", "Natalya", "Nataliya"], ["Svetlana"],
    ["Andrii", "Andriy", "Andrei"], ["Sergii", "Sergiy", "Sergei"], ["Rohingya"], ["Nur", "Noor"],
]
FAMILY = [
    ["Al Hassan", "Alhassan", "El Hassan"], ["Abdi", "Abdy"], ["Nguyen", "Nguyen Thi", "Ngyuen"],
    ["Tran", "Tran Thi"], ["Le", "Le Thi"], ["Pham"], ["Okafor"], ["Okonkwo"], ["Eze"],
    ["Haile", "Hayle"], ["Tesfamariam"], ["Gebremedhin", "Gebre Medhin"], ["Yilmaz"],
    ["Kovalenko"], ["Shevchenko", "Shevchenco"], ["Bondarenko"], ["Khan"], ["Rahman", "Rehman"],
    ["Hossain", "Hussain", "Hosain"], ["Begum"], ["Mohamud", "Mohamoud"], ["Farah"], ["Osman"],
    ["Diallo"], ["Traore", "Traoré"], ["Camara", "Kamara"], ["Bah"], ["Sow"], ["Balde", "Baldé"],
    ["Haddad"], ["Mansour", "Mansur"], ["Saleh", "Salih"], ["Idris", "Idriss"], ["Yousif"],
]
SEXES = ["female", "male"]
COUNTRIES = ["SY", "AF", "ER", "NG", "VN", "UA", "SO", "BD", "GN", "ET", "SD", "IQ"]
ERROR_KINDS = ["exact", "transliteration", "swap", "compound", "typo", "default_date",
               "year_only", "unknown_date", "day_month_swap"]


@dataclass(frozen=True)
class Person:
    given: int
    family: int
    year: int
    month: int
    day: int
    sex: str
    country: str


def _typo(s: str, rng: random.Random) -> str:
    i = rng.randrange(len(s))
    op = rng.choice("sdi")
    c = rng.choice("aeiounrst")
    if op == "s":
        return s[:i] + c + s[i + 1 :]
    if op == "d" and len(s) > 3:
        return s[:i] + s[i + 1 :]
    return s[:i] + c + s[i:]


def _row(pid: str, given: str, family: str, dob: str, p: Person) -> dict[str, str]:
    return {"id": pid, "given": given, "family": family, "dob": dob, "sex": p.sex,
            "citizenship": p.country}


def generate(n: int, overlap: float = 0.5, seed: int = 1) -> tuple[
        list[dict[str, str]], list[dict[str, str]], list[tuple[str, str, str]]]:
    """Rows of A, rows of B, and true pairs (id_a, id_b, error kind)."""
    rng = random.Random(seed)
    people = [Person(rng.randrange(len(GIVEN)), rng.randrange(len(FAMILY)),
                     rng.randint(1965, 2010), rng.randint(1, 12), rng.randint(1, 28),
                     rng.choice(SEXES), rng.choice(COUNTRIES)) for _ in range(n)]
    a_rows, b_rows, truth = [], [], []
    for i, p in enumerate(people):
        g, f = GIVEN[p.given][0], FAMILY[p.family][0]
        dob = f"{p.year:04d}-{p.month:02d}-{p.day:02d}"
        a_rows.append(_row(f"a{i}", g, f, dob, p))
        if rng.random() >= overlap:
            continue
        kind = ERROR_KINDS[i % len(ERROR_KINDS)]
        bg, bf, bdob = g, f, dob
        if kind == "transliteration":
            bg = rng.choice(GIVEN[p.given][1:] or GIVEN[p.given])
            bf = rng.choice(FAMILY[p.family][1:] or FAMILY[p.family])
        elif kind == "swap":
            bg, bf = f, g
        elif kind == "compound":
            bg, bf = f"{g} {f.split()[0]}", " ".join(f.split()[1:]) or f
        elif kind == "typo":
            bg, bf = (_typo(g, rng), f) if rng.random() < 0.5 else (g, _typo(f, rng))
        elif kind == "default_date":
            bdob = f"{p.year:04d}-01-01"
        elif kind == "year_only":
            bdob = f"{p.year:04d}"
        elif kind == "unknown_date":
            bdob = ""
        elif kind == "day_month_swap" and p.day <= 12:
            bdob = f"{p.year:04d}-{p.day:02d}-{p.month:02d}"
        b_rows.append(_row(f"b{i}", bg, bf, bdob, p))
        truth.append((f"a{i}", f"b{i}", kind))
    # Records only in B: other people, drawn the same way.
    for j in range(len(b_rows) // 2):
        p = Person(rng.randrange(len(GIVEN)), rng.randrange(len(FAMILY)),
                   rng.randint(1965, 2010), rng.randint(1, 12), rng.randint(1, 28),
                   rng.choice(SEXES), rng.choice(COUNTRIES))
        b_rows.append(_row(f"x{j}", GIVEN[p.given][0], FAMILY[p.family][0],
                           f"{p.year:04d}-{p.month:02d}-{p.day:02d}", p))
    rng.shuffle(b_rows)
    return a_rows, b_rows, truth


FIELDS = "given+family:name,dob:date,sex:code,citizenship:code"


def encode_rows(rows: list[dict[str, str]], secret: LinkageSecret, seed: int = 0,
                flip: float | None = None) -> EncodedSet:
    """Encode generated rows (their `id` kept) as a linkage side, as a partner would."""
    schema = schema_from_fields(FIELDS, flip)
    enc = Encoder(schema, secret, np.random.default_rng(seed))
    t = pa.Table.from_pylist(rows)
    out = enc.encode(t).append_column("id", t["id"])
    return EncodedSet.from_table(out, EncodingInfo(schema, enc.fingerprint, enc.check_value))


def look_alikes(a_rows: list[dict[str, str]], truth: list[tuple[str, str, str]],
                citizenship: bool = True) -> dict[str, int]:
    """For each true pair (by its B id), how many A records a linker cannot tell its B record
    from with the generated fields: the true match and every other A record of the same name
    and sex (and citizenship, when the linker compares it) that is not the true match of a B
    record with a full birth date and that the B record's date does not rule out (unknown: any
    birth date; year only or 1 January: the same birth year). 1 = unambiguous. Names carry no
    error in these kinds, so nothing else tells the candidates apart."""
    def key(r: dict[str, str]) -> tuple[str, ...]:
        return (r["given"], r["family"], r["sex"]) + ((r["citizenship"],) if citizenship else ())

    rough = ("unknown_date", "year_only", "default_date")
    dated = {x for x, _, k in truth if k not in rough}
    groups: dict[tuple[str, ...], list[dict[str, str]]] = {}
    for r in a_rows:
        groups.setdefault(key(r), []).append(r)
    a_of = {r["id"]: r for r in a_rows}
    out = {}
    for x, y, k in truth:
        r = a_of[x]
        same = [o for o in groups[key(r)] if o["id"] == x or o["id"] not in dated]
        if k != "unknown_date":
            same = [o for o in same if o["dob"][:4] == r["dob"][:4]]
        out[y] = len(same) if k in rough else 1
    return out


def f1_ceiling(counts: dict[str, int]) -> float:
    """Expected F1 of the best linker given `look_alikes`: it links every unambiguous pair and,
    for a pair with k look-alikes, one of them at random (right with chance 1/k) when that
    raises F1 (a link right with chance q raises F1 exactly when q > F1 / 2)."""
    pairs = len(counts)
    tp = float(sum(v == 1 for v in counts.values()))
    fp = 0.0
    for v in sorted(x for x in counts.values() if x > 1):
        if 2 / v > 2 * tp / (tp + fp + pairs):
            tp, fp = tp + 1 / v, fp + 1 - 1 / v
    return 2 * tp / (tp + fp + pairs) if pairs else 1.0


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    """Rows as a CSV export (header from the first row), as a partner hands it to `accord encode`."""
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def stamp_format_version(path: Path, version: int) -> None:
    """Rewrite an encoding file's recorded schema format, as a file of an older format carries it."""
    import json

    import pyarrow.parquet as pq

    from accord.protect.encoding.files import META_KEY

    t = pq.read_table(path)
    meta = json.loads(t.schema.metadata[META_KEY])
    meta["schema"]["format_version"] = version
    pq.write_table(t.replace_schema_metadata({META_KEY: json.dumps(meta).encode()}), path)
