"""Linkage in the pipeline: simulate -> ingest with encodings -> hub -> link -> persons."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from accord.link.hub import link_hub
from accord.link.hub_evaluate import evaluate_hub
from accord.protect.encoding import (
    EncodingFileError,
    EncodingSchema,
    LinkageSecret,
    default_schema,
    new_linkage_secret,
)
from accord.protect.encoding.pipeline import pipeline_encoder
from accord.protect.encoding.schema import schema_from_dict, write_schema
from accord.protect.job import build_contribution
from accord.protect.keys import create_partner_key
from accord.simulate import SimulationConfig, simulate
from accord.store import open_store
from accord.store.hub import add_contribution

# Builds simulated hubs (simulate, ingest three partners, add, link): about 20 s on 2 cores.
pytestmark = pytest.mark.slow


def _build_hub(tmp: Path, secret: LinkageSecret, people: int = 600,
               other_secret_for: str | None = None,
               schema: EncodingSchema | None = None,
               flips: np.random.Generator | None = None) -> tuple[Path, Path]:
    sim = simulate(SimulationConfig(people=people, partners=3, overlap=0.3, seed=4,
                                    out=tmp / "exports", format_a="csv"))
    hub = tmp / "hub.duckdb"
    with open_store(hub) as store:
        for files in sim.partners:
            home = tmp / "partners" / files.partner
            key = create_partner_key(home / "partner.key", force=True)
            use = LinkageSecret(b"o" * 32) if files.partner == other_secret_for else secret
            enc = pipeline_encoder(use, schema, allow_unsafe=schema is not None, rng=flips)
            build_contribution(files.export, files.mapping, files.partner.replace("_", "-"),
                          home / "contribution", key, linkage_encoder=enc.encode,
                          linkage_meta=enc.manifest)
            add_contribution(store, home / "contribution")
    return hub, sim.truth


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    tmp = tmp_path_factory.mktemp("linkhub")
    # A fixed secret and seeded randomised response: the same encodings at every run. The flips
    # are what moved precision between builds of this hub (record keys and order do not: relinked
    # with permuted keys, the persons were identical). Over ten seeds, the fit before its clean
    # pairs took every level with m/u below 0.5 (fellegi_sunter.CLEAR_RATIO; 0.1 before) gave
    # precision 0.821-0.926, F1 0.857-0.928; after, 0.913-0.953 and 0.915-0.939. Seed 1 was
    # the worst before (0.821 / 0.857), 0.953 / 0.934 after.
    secret = LinkageSecret(hashlib.sha256(b"accord tests/test_link_hub.py").digest())
    h, truth = _build_hub(tmp, secret, flips=np.random.default_rng(1))
    return h, truth, tmp / "partners"


def test_hub_holds_no_identifier_and_links_people(hub: tuple[Path, Path, Path]) -> None:
    path, truth, keys = hub
    with open_store(path) as store:
        cols = store.query("SELECT * FROM linkage_encodings LIMIT 1").column_names
        assert not {"given_name", "family_name", "date_of_birth"} & set(cols)
        summary = link_hub(store)
        assert summary.persons < summary.records
        persons = store.query("SELECT p.person_id, p.partner, r.person_pseudonym FROM persons p "
                              "JOIN records r USING (partner, record_key)").to_pylist()
        scores = evaluate_hub(store, truth, keys)
    # The simulator's re-registrations are hard (transliteration together with a missing birth
    # date, among people of few nationalities). Measured on this hub: precision 0.95, recall 0.93
    # (before the joint u and competing candidates in EM: 0.72 and 0.93).
    # The fixture's build: precision 0.821 before the CLEAR_RATIO fix, 0.953 after.
    assert scores.precision > 0.92 and scores.recall > 0.88, scores.as_dict()
    by_person: dict[int, dict[str, set[str | None]]] = {}
    for row in persons:
        by_person.setdefault(row["person_id"], {}).setdefault(row["partner"], set()).add(
            row["person_pseudonym"])
    for parts in by_person.values():
        for pseud in parts.values():  # several records of one partner: one shared pseudonym
            assert len(pseud) == 1


def test_cli_link_with_evaluation(hub: tuple[Path, Path, Path]) -> None:
    path, truth, keys = hub
    res = CliRunner().invoke(app, ["link", "--hub", str(path), "--evaluate", str(truth),
                                   "--keys", str(keys), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["threshold_chosen"] == "automatic"
    assert out["evaluation"]["f1"] > 0.91  # 0.934 (0.857 before the fix; see the fixture)
    with open_store(path) as store:
        n = store.scalar("SELECT count(*) FROM persons")
        assert n == store.scalar("SELECT count(*) FROM records")
        scores = store.query("SELECT match_score FROM persons WHERE match_score IS NOT NULL")
        s = np.array(scores["match_score"].to_pylist())
        assert len(s) and ((s >= 0.5) & (s <= 1)).all()


def test_hub_refuses_mixed_secrets(tmp_path: Path) -> None:
    secret = new_linkage_secret(tmp_path / "linkage.key")
    path, _ = _build_hub(tmp_path, secret, people=120, other_secret_for="partner_b")
    with open_store(path) as store, pytest.raises(EncodingFileError, match="different"):
        link_hub(store)


def test_hub_refuses_format_3_encodings(tmp_path: Path) -> None:
    """A hub whose encodings predate format 4 (no unordered birth-date filter, another schema
    fingerprint) is refused with a message saying so, not with a missing-column error."""
    secret = new_linkage_secret(tmp_path / "linkage.key")
    path, _ = _build_hub(tmp_path, secret, people=120)
    with open_store(path) as store:
        store.execute("ALTER TABLE linkage_encodings DROP COLUMN bf_date_of_birth__unordered")
        store.execute("UPDATE linkage_encodings SET schema_fingerprint = 'format3'")
    res = CliRunner().invoke(app, ["link", "--hub", str(path)])
    assert res.exit_code == 2
    assert "older encoding format" in res.output and "protect their records again" in res.output


def _link_audits(path: Path) -> list[dict[str, object]]:
    with open_store(path) as store:
        rows = store.query("SELECT detail FROM audit WHERE action = 'link'")["detail"].to_pylist()
    return [json.loads(r) for r in rows]


def test_hub_link_audit_shows_an_accepted_unsafe_encoding(tmp_path: Path) -> None:
    """Issue 11: a schema the attack harness breaks (name parts apart, no diffusion) is refused
    by `accord link` unless --unsafe-encoding, and the hub's audit record of that link says so;
    the default (safe) schema's link record does not (negative control)."""
    doc = default_schema().model_dump(mode="json", exclude_none=True)
    doc["hardening"] = {"flip_probability": 0.02, "diffusion": 0}
    unsafe = schema_from_dict(doc)
    schema_file = tmp_path / "unsafe.yaml"
    write_schema(unsafe, schema_file)
    secret = new_linkage_secret(tmp_path / "linkage.key")
    path, _ = _build_hub(tmp_path, secret, people=120, schema=unsafe)
    runner = CliRunner()
    base = ["link", "--hub", str(path), "--schema", str(schema_file), "--json"]
    refused = runner.invoke(app, base)
    assert refused.exit_code == 2 and "unsafe" in refused.output, refused.output
    assert _link_audits(path) == []  # nothing linked, nothing recorded
    accepted = runner.invoke(app, [*base, "--unsafe-encoding"])
    assert accepted.exit_code == 0, accepted.output
    (record,) = _link_audits(path)
    assert "diffusion" in str(record["unsafe_encoding"])
    assert record["schema_fingerprint"] == unsafe.fingerprint()


def test_hub_link_audit_of_the_default_schema_has_no_unsafe_mark(
        hub: tuple[Path, Path, Path]) -> None:
    path, _, _ = hub
    res = CliRunner().invoke(app, ["link", "--hub", str(path), "--json"])
    assert res.exit_code == 0, res.output
    records = _link_audits(path)
    assert records and all("unsafe_encoding" not in r for r in records)
    assert "privacy_note" not in records[-1]  # a small hub is within the measured size


def test_hub_link_above_the_measured_size_says_so(hub: tuple[Path, Path, Path],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Above the records up to which the attack harness measured the hub layout safe (250k,
    lowered here so this hub exceeds it), `accord link` refuses to link encodings the hub holds
    next to clear citizenship (exit 2, pointing to the linkage unit); with --unsafe-encoding it
    links, and the output and its audit record say so."""
    import accord.protect.encoding.schema as schema_mod

    path, _, _ = hub
    monkeypatch.setattr(schema_mod, "MEASURED_RECORDS", 10)
    before = len(_link_audits(path))
    res = CliRunner().invoke(app, ["link", "--hub", str(path), "--json"])
    assert res.exit_code == 2, res.output
    assert "linkage unit" in res.output
    assert len(_link_audits(path)) == before  # refused before anything is written
    res = CliRunner().invoke(app, ["link", "--hub", str(path), "--json", "--unsafe-encoding"])
    assert res.exit_code == 0, res.output
    assert "privacy_note" in json.loads(res.output)
    assert "privacy_note" in _link_audits(path)[-1]
