"""One list of the standard's tables, shared by suppression (research) and DP (release)."""

from __future__ import annotations

import pytest

from accord.errors import StandardError
from accord.release.dp.standard_tables import select_tables
from accord.release.dp.standard_tables import standard_tables as dp_tables
from accord.research.specs import default_specs
from accord.standard import load_standard
from accord.standard.tables import DimKind, parse_tables, standard_tables

STANDARD = load_standard()


def test_both_methods_publish_the_shared_tables() -> None:
    shared = {t.id: t for t in standard_tables(STANDARD)}
    dp = {t.spec.name: t for t in dp_tables()}
    suppressed = {t.id: t for t in default_specs(STANDARD)}
    assert list(dp) == [t.id for t in standard_tables(STANDARD, "dp")]
    assert list(suppressed) == [t.id for t in standard_tables(STANDARD, "suppressed")]
    for table_id, table in dp.items():
        assert table.title == shared[table_id].title
        assert table.spec.dims == shared[table_id].columns
    for table_id, spec in suppressed.items():
        assert spec.title == shared[table_id].title
        assert spec.dims == shared[table_id].dims
    # a table both methods publish reads the same in both
    both = set(dp) & set(suppressed)
    assert {"citizenship_by_sex", "sex_by_age_band", "registrations_by_year"} <= both
    for table_id in both:
        assert dp[table_id].title == suppressed[table_id].title
        assert dp[table_id].spec.dims == tuple(d.column for d in suppressed[table_id].dims)


def test_kinds_come_from_the_standard() -> None:
    tables = {t.id: t for t in standard_tables(STANDARD)}
    kinds = {d.column: d.kind for t in tables.values() for d in t.dims}
    assert kinds["sex"] == DimKind.CODE
    assert kinds["type_of_exploitation"] == DimKind.MULTI
    assert kinds["citizenship"] == DimKind.PRIMARY_COUNTRY
    assert kinds["age_band_ctdc"] == DimKind.BAND
    assert kinds["registration_year"] == DimKind.YEAR
    # the note each method adds says how that method bounds a list
    expl = "exploitation_by_sex_by_majority"
    assert "once under each type" in {t.id: t for t in default_specs(STANDARD)}[expl].note
    assert "at most 2" in {t.spec.name: t for t in dp_tables()}[expl].note


@pytest.mark.parametrize(("text", "needle"), [
    ("tables: [{id: a, title: A, dims: [{column: full_name_x}]}]", "not in the standard"),
    ("tables: [{id: a, title: A, dims: [{column: age}]}]", "type integer"),
    ("tables: [{id: a, title: A, dims: [{column: rh_needs}]}]", "give 'item'"),
    ("tables: [{id: a, title: A, dims: [{column: rh_needs, item: n}, "
     "{column: type_of_exploitation, item: t}]}]", "two list columns"),
    ("tables: [{id: a, title: A, dims: [{column: sex}]}, {id: a, title: B, dims: [{column: sex}]}]",
     "twice"),
    ("tables: [{id: a, title: A, dims: [{column: sex}], methods: [magic]}]", "not a valid"),
])
def test_a_bad_table_list_is_refused(text: str, needle: str) -> None:
    with pytest.raises(StandardError) as err:
        parse_tables(text, STANDARD)
    assert needle in err.value.message


def test_unknown_dp_table_is_refused_with_the_choices() -> None:
    from accord.errors import ReleaseRefused

    with pytest.raises(ReleaseRefused) as err:
        select_tables(["no_such_table"])
    assert "citizenship_by_sex" in (err.value.hint or "")
