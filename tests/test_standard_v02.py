"""Standard 0.2: consent per purpose, partial information, versions and upgrades, identifier guard."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from accord.errors import ContributionError, MappingError
from accord.ingest.mapping import load_mapping
from accord.protect.job import build_contribution
from accord.protect.keys import PartnerKey
from accord.standard import load_standard
from accord.standard.model import load_version
from accord.store import add_contribution, open_store

HEADER = "id,first,sex,reg,ctype,nat,share,link,research,band,seeing,walking\n"
BASE_MAPPING = """\
fields:
  case_id: {column: id}
  given_name: {column: first}
  sex: {column: sex}
  registration_date: {column: reg}
  case_type: {column: ctype}
  citizenship: {column: nat}
  country_of_registration: {value: TH}
  consent_statistics: {column: share}
  consent_linkage: {column: link}
  consent_research: {column: research}
  age_band_reported: {column: band}
  wg_seeing: {column: seeing}
  wg_walking: {column: walking}
"""


def _write(tmp_path: Path, rows: list[str], mapping: str = BASE_MAPPING) -> tuple[Path, Path]:
    export = tmp_path / "export.csv"
    export.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    m = tmp_path / "mapping.yaml"
    m.write_text(mapping, encoding="utf-8")
    return export, m


def _encoder(ids: pa.Table) -> pa.Table:
    # A stand-in linkage encoder: what matters here is which rows it is called with.
    return pa.table({"bits": pa.array(["enc"] * ids.num_rows, pa.string())})


def test_consent_gates_each_purpose_and_the_manifest_accounts(tmp_path: Path, partner_key: PartnerKey) -> None:
    rows = [
        "c1,Ana,female,2024-01-05,trafficking_victim,VN,yes,yes,yes,,,",
        "c2,Bo,male,2024-01-06,trafficking_victim,VN,yes,no,yes,,,",
        "c3,Cy,female,2024-01-07,trafficking_victim,VN,no,yes,yes,,,",
        "c4,Di,female,2024-01-08,trafficking_victim,VN,withdrawn,yes,yes,,,",
        "c5,Ed,male,2024-01-09,trafficking_victim,VN,yes,yes,no,,,",
        "c6,Fa,female,2024-01-10,trafficking_victim,VN,maybe,yes,yes,,,",  # not a consent code
        "c7,Gu,female,2024-01-11,trafficking_victim,VN,,yes,yes,,,",  # consent left blank
    ]
    export, mapping = _write(tmp_path, rows)
    out = tmp_path / "contrib"
    result = build_contribution(export, mapping, "p1", out, partner_key, linkage_encoder=_encoder)
    m = result.manifest
    assert (m.rows_in, m.accepted, m.quarantined, m.withheld) == (7, 3, 2, 2)
    assert m.consent == {"no_statistics_consent": 2, "no_linkage_consent": 1, "no_research_consent": 1}
    reasons = {(f.field, str(f.kind)) for f in result.findings}
    assert ("consent_statistics", "unknown_code") in reasons  # never defaulted to yes
    assert ("consent_statistics", "missing_required") in reasons
    records = pq.read_table(out / "records.parquet").to_pylist()
    assert sorted(r["consent_linkage"] for r in records) == ["no", "yes", "yes"]
    for r in records:  # no person pseudonym without linkage consent
        assert (r["person_pseudonym"] is None) == (r["consent_linkage"] == "no")
    linkage = pq.read_table(out / "linkage.parquet")
    assert linkage.num_rows == 2
    linked_keys = set(linkage["record_key"].to_pylist())
    assert linked_keys == {r["record_key"] for r in records if r["consent_linkage"] == "yes"}
    # The hub accepts the contribution: its counts add up with the withheld rows.
    with open_store(tmp_path / "hub.duckdb") as store:
        assert add_contribution(store, out).added == 3


def test_a_mapping_without_consent_is_refused(tmp_path: Path) -> None:
    text = "\n".join(line for line in BASE_MAPPING.splitlines() if "consent" not in line) + "\n"
    _export, mapping = _write(tmp_path, [], text)
    with pytest.raises(MappingError, match="required fields not mapped: consent_statistics"):
        load_mapping(mapping, load_standard())


def test_partial_dates_bands_unknown_country_and_washington_group(tmp_path: Path,
                                                                 partner_key: PartnerKey) -> None:
    rows = [
        "d1,Ana,female,2019,trafficking_victim,VN,yes,yes,yes,9-17,no_difficulty,cannot_do",
        "d2,Bo,male,2019.0,trafficking_victim,ZZ,yes,yes,yes,18-20,no_difficulty,some_difficulty",
        "d3,Cy,female,2019-03,trafficking_victim,unknown,yes,yes,yes,minor,,",
        "d4,Di,female,03/2019,trafficking_victim,KH,yes,yes,yes,,refused,no_difficulty",
        "d5,Ed,male,2019-03-04,trafficking_victim,KH,yes,yes,yes,48+,no_difficulty,no_difficulty",
    ]
    export, mapping = _write(tmp_path, rows)
    out = tmp_path / "contrib"
    result = build_contribution(export, mapping, "p1", out, partner_key)
    assert result.manifest.accepted == 5, result.findings
    got = sorted((r["registration_date"].isoformat(), r["registration_date_quality"])
                 for r in pq.read_table(out / "records.parquet").to_pylist())
    assert got == [("2019-01-01", "year_only"), ("2019-01-01", "year_only"), ("2019-03-01", "month_only"),
                   ("2019-03-01", "month_only"), ("2019-03-04", "exact")]
    by_band = {r["age_band_reported"]: r for r in pq.read_table(out / "records.parquet").to_pylist()}
    assert by_band["9-17"]["majority_status"] == "minor"
    assert by_band["9-17"]["age_group"] is None  # 9-17 straddles 5-11 and 12-17
    assert by_band["9-17"]["age_band_ctdc"] == "9--17"
    assert by_band["18-20"]["age_group"] == "18-59" and by_band["18-20"]["majority_status"] == "adult"
    assert by_band["minor"]["age_quality"] == "band_only"
    assert by_band[None]["age_quality"] == "unknown"
    assert by_band["48+"]["age_group"] is None and by_band["48+"]["age_band_ctdc"] == "48+"
    assert by_band["18-20"]["citizenship"] == ["ZZ"] and by_band["minor"]["citizenship"] == ["ZZ"]
    assert by_band["9-17"]["disability_wg"] == "yes"
    # "no" needs all six domains answered below the cut-off; four were not asked here.
    assert by_band["18-20"]["disability_wg"] is None and by_band["48+"]["disability_wg"] is None
    assert by_band["minor"]["disability_wg"] is None  # not asked
    assert by_band[None]["disability_wg"] is None  # refused one domain: unknown, not "no"


def test_a_day_is_never_invented_for_dates_without_a_quality_flag(tmp_path: Path, partner_key: PartnerKey) -> None:
    mapping = BASE_MAPPING + "  outgoing_referral_date: {column: walking}\n"
    mapping = mapping.replace("  wg_walking: {column: walking}\n", "")
    export, m = _write(tmp_path, ["e1,Ana,female,2024-01-05,trafficking_victim,VN,yes,yes,yes,,,2024-03"], mapping)
    result = build_contribution(export, m, "p1", tmp_path / "c", partner_key)
    assert result.manifest.quarantined == 1
    assert [str(f.kind) for f in result.findings] == ["bad_date"]


@pytest.mark.parametrize("extra, message", [
    ("  area_of_registration: {column: first}\n", "also mapped to an identifier"),
    ("  area_of_registration: {column: PhoneNumber}\n", "holds a phone"),
    ("  area_of_registration: {column: FamilyName}\n", "holds a name"),
    ("  perpetrator_count: {column: passport_no}\n", "holds a document number"),
])
def test_a_direct_identifier_never_feeds_a_shared_field(tmp_path: Path, extra: str, message: str) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text(BASE_MAPPING + extra, encoding="utf-8")
    with pytest.raises(MappingError, match=message):
        load_mapping(mapping, load_standard())


def _v01_contribution(tmp_path: Path, key: PartnerKey) -> Path:
    export = tmp_path / "old.csv"
    export.write_text("id,first,sex,reg,ctype\nz1,Ana,female,2023-02-01,trafficking_victim\n", encoding="utf-8")
    mapping = tmp_path / "old.yaml"
    mapping.write_text("fields:\n  case_id: {column: id}\n  given_name: {column: first}\n  sex: {column: sex}\n"
                       "  registration_date: {column: reg}\n  case_type: {column: ctype}\n"
                       "  country_of_registration: {value: TH}\n", encoding="utf-8")
    out = tmp_path / "old-contrib"
    build_contribution(export, mapping, "old", out, key, standard=load_version("0.1"))
    return out


def test_a_v01_contribution_is_upgraded_on_the_way_in(tmp_path: Path, partner_key: PartnerKey) -> None:
    old = _v01_contribution(tmp_path, partner_key)
    rows = ["c1,Ana,female,2024-01-05,trafficking_victim,VN,yes,yes,yes,,,"]
    export, mapping = _write(tmp_path, rows)
    new = tmp_path / "new-contrib"
    build_contribution(export, mapping, "p1", new, partner_key)
    with open_store(tmp_path / "hub.duckdb") as store:
        assert add_contribution(store, old).added == 1
        assert add_contribution(store, new).added == 1
        got = store.query("SELECT partner, consent_research, registration_date_quality, trafficking_status "
                          "FROM records ORDER BY partner").to_pylist()
    assert got == [
        {"partner": "old", "consent_research": "not_recorded", "registration_date_quality": "exact",
         "trafficking_status": None},
        {"partner": "p1", "consent_research": "yes", "registration_date_quality": "exact",
         "trafficking_status": None},
    ]


def test_the_hub_refuses_mixing_incompatible_versions(tmp_path: Path, partner_key: PartnerKey) -> None:
    old = _v01_contribution(tmp_path, partner_key)
    rows = ["c1,Ana,female,2024-01-05,trafficking_victim,VN,yes,yes,yes,,,"]
    export, mapping = _write(tmp_path, rows)
    new = tmp_path / "new-contrib"
    build_contribution(export, mapping, "p1", new, partner_key)
    # A hub running 0.1 holds 0.1 records; a 0.2 contribution is refused, clearly.
    with open_store(tmp_path / "old-hub.duckdb") as store:
        add_contribution(store, old, standard=load_version("0.1"))
        with pytest.raises(ContributionError, match=r"can take contributions of 0\.1\.0 only"):
            add_contribution(store, new, standard=load_version("0.1"))
    # A 0.2 hub given a 0.2 contribution but holding 0.1-layout records refuses to mix them.
    with open_store(tmp_path / "old-hub.duckdb") as store, \
            pytest.raises(ContributionError, match="refusing to mix versions"):
        add_contribution(store, new)


def test_standard_diff_cli(runner: CliRunner) -> None:
    result = runner.invoke(app, ["standard", "diff", "0.1", "0.2"])
    assert result.exit_code == 0, result.output
    assert "`consent_linkage`" in result.output and "`trafficking_status`" in result.output
    assert "restricts_movement" in result.output  # its HTCDS crosswalk was corrected
    assert "load into a 0.2.0 hub" in result.output
    bad = runner.invoke(app, ["standard", "diff", "0.1", "9.9"])
    assert bad.exit_code == 2 and "packaged versions" in bad.output


def test_washington_group_cut_off_needs_every_domain() -> None:
    from accord.ingest.transform import _wg_ss

    domains = ("a", "b", "c", "d", "e", "f")
    cols = {d: pa.array(["no_difficulty", "some_difficulty", "no_difficulty", None], pa.string()) for d in domains}
    cols["c"] = pa.array(["no_difficulty", "a_lot_of_difficulty", "no_difficulty", "cannot_do"], pa.string())
    cols["f"] = pa.array(["some_difficulty", "no_difficulty", "unknown", None], pa.string())
    assert _wg_ss(cols, domains, 4).to_pylist() == ["no", "yes", None, "yes"]


def _htcds_core_fields(ods: Path) -> set[str]:
    """Field names marked Core in the HTCDS 2.0 spreadsheet (ODS read with the standard library)."""
    import xml.etree.ElementTree as ET
    import zipfile

    ns = {"t": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
          "x": "urn:oasis:names:tc:opendocument:xmlns:text:1.0"}
    root = ET.fromstring(zipfile.ZipFile(ods).read("content.xml"))
    core: set[str] = set()
    for row in root.iter(f"{{{ns['t']}}}table-row"):
        cells: list[str] = []
        for c in row.findall("t:table-cell", ns):
            text = " ".join("".join(p.itertext()) for p in c.findall("x:p", ns))
            repeat = int(c.get(f"{{{ns['t']}}}number-columns-repeated", "1"))
            cells += [text] * min(repeat, 20)
        if len(cells) > 6 and cells[2] == "Core" and "_" in cells[6]:
            core.add(cells[6])
    return core


def test_docs_coverage_table_is_current_and_complete() -> None:
    from accord.standard.coverage import coverage_entries, coverage_markdown
    from tests.data_paths import SHARED_DATA

    doc = (Path(__file__).resolve().parents[1] / "docs" / "standard.md").read_text(encoding="utf-8")
    assert coverage_markdown(load_standard()) in doc, "regenerate the coverage table in docs/standard.md"
    listed = {e["htcds"] for e in coverage_entries()}
    for e in coverage_entries():
        assert bool(e.get("accord")) != bool(e.get("reason")), e  # a field, or a reason: never neither
    ods = SHARED_DATA / "htcds" / "HTCDS_Field_Standards_2.0.ods"
    if not ods.exists():
        pytest.skip(f"{ods} absent: the table is checked against the standard only")
    assert _htcds_core_fields(ods) == listed


def test_microdata_release_takes_only_research_consented_records(tmp_path: Path, partner_key: PartnerKey) -> None:
    from accord.release.anonymise.microdata import MicrodataSettings, release_microdata

    rows = [f"r{i},N{i},{'female' if i % 2 else 'male'},2024-01-{1 + i % 28:02d},trafficking_victim,VN,yes,yes,"
            f"{'no' if i < 7 else 'yes'},,," for i in range(40)]
    export, mapping = _write(tmp_path, rows)
    build_contribution(export, mapping, "p1", tmp_path / "c", partner_key)
    with open_store(tmp_path / "hub.duckdb") as store:
        add_contribution(store, tmp_path / "c")
        release = release_microdata(store, tmp_path / "rel", load_standard(),
                                    MicrodataSettings(k=2, l=1, qi=("sex",), sensitive=()), actor="test")
    released = pq.read_table(tmp_path / "rel" / "microdata.parquet")
    assert released.num_rows == 33, release
