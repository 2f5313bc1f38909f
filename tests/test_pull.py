"""`accord kobo pull` / `accord odk pull` against a local server serving the APIs' documented shapes.

No Kobo or ODK server can be reached from here: the server below answers as their API docs say
(Kobo v2 `/api/v2/assets/{uid}/data/` with `count/next/results`; ODK Central OData
`Submissions` with `value/@odata.nextLink`, repeat tables `Submissions.<repeat>`)."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from accord.protect.job import build_contribution
from accord.protect.keys import PartnerKey

TOKEN = "s3cr3t-token-abc"
KOBO = [
    {"_id": 1, "_uuid": "u1", "grp/sex": "female", "grp/nat": "VN", "grp/exp": "forced_labour sexual_exploitation",
     "today": "2024-03-01", "grp/type": "trafficking_victim",
     "_attachments": [{"download_url": "https://kobo.example/media/passport-u1.jpg", "filename": "passport.jpg"}],
     "services": [{"services/received": "shelter"}, {"services/received": "legal shelter"}], "_tags": []},
    {"_id": 2, "_uuid": "u2", "grp/sex": "male", "grp/nat": "KH", "grp/exp": "forced_labour", "today": "2024-03-02",
     "grp/type": "trafficking_victim", "_attachments": [], "services": []},
    {"_id": 3, "_uuid": "u3", "grp/sex": "female", "grp/nat": "MM", "today": "2024-03-03",
     "grp/type": "gbv_survivor", "_attachments": []},
]
ODK = [
    {"__id": "uuid:a", "__system": {"submissionDate": "2024-03-01T10:00:00Z", "attachmentsPresent": 1},
     "intake": {"sex": "female", "nat": "VN", "type": "trafficking_victim", "reg": "2024-03-01"},
     "services@odata.navigationLink": "Submissions('uuid:a')/services"},
    {"__id": "uuid:b", "__system": {"submissionDate": "2024-03-02T10:00:00Z", "attachmentsPresent": 0},
     "intake": {"sex": "male", "nat": "KH", "type": "vulnerable_migrant", "reg": "2024-03-02"},
     "services@odata.navigationLink": "Submissions('uuid:b')/services"},
    {"__id": "uuid:c", "__system": {"submissionDate": "2024-03-03T10:00:00Z", "attachmentsPresent": 0},
     "intake": {"sex": "female", "nat": "TH", "type": "gbv_survivor", "reg": "2024-03-03"},
     "services@odata.navigationLink": "Submissions('uuid:c')/services"},
]
ODK_SERVICES = [{"__id": "r1", "__Submissions-id": "uuid:a", "received": "shelter"},
                {"__id": "r2", "__Submissions-id": "uuid:a", "received": "health"},
                {"__id": "r3", "__Submissions-id": "uuid:c", "received": "legal"}]


class _Handler(BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, code: int, doc: Any) -> None:
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        self.seen.append(self.path)
        base = f"http://{self.headers['Host']}"
        if url.path == "/api/v2/assets/aFORM/data/":
            if self.headers.get("Authorization") != f"Token {TOKEN}":
                return self._send(401, {"detail": "Invalid token."})
            start, limit = int(q.get("start", 0)), int(q.get("limit", 100))
            nxt = (f"{base}{url.path}?format=json&limit={limit}&start={start + limit}"
                   if start + limit < len(KOBO) else None)
            return self._send(200, {"count": len(KOBO), "next": nxt, "previous": None,
                                    "results": KOBO[start:start + limit]})
        svc = "/v1/projects/7/forms/intake.svc/"
        if url.path.startswith(svc):
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._send(401, {"message": "Could not authenticate with the provided credentials."})
            table = url.path[len(svc):]
            rows = {"Submissions": ODK, "Submissions.services": ODK_SERVICES}.get(table)
            if rows is None:
                return self._send(404, {"message": "Not found"})
            skip, top = int(q.get("$skip", 0)), int(q.get("$top", 100))
            doc: dict[str, Any] = {"@odata.context": f"{base}{svc}$metadata#{table}", "value": rows[skip:skip + top]}
            if skip + top < len(rows):
                doc["@odata.nextLink"] = f"{base}{url.path}?$top={top}&$skip={skip + top}"
            return self._send(200, doc)
        return self._send(404, {"detail": "Not found."})


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Handler.seen = []
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _token(tmp_path: Path, token: str = TOKEN) -> Path:
    p = tmp_path / "token"
    p.write_text(token + "\n", encoding="utf-8")
    p.chmod(0o600)
    return p


def test_kobo_pull_pages_flattens_and_ingests(tmp_path: Path, runner: CliRunner, server: str,
                                             partner_key: PartnerKey) -> None:
    out = tmp_path / "kobo.json"
    result = runner.invoke(app, ["kobo", "pull", "--server", server, "--token-file", str(_token(tmp_path)),
                                 "--form", "aFORM", "--out", str(out), "--page-size", "2"])
    assert result.exit_code == 0, result.output
    assert TOKEN not in result.output
    assert sum("/api/v2/assets/aFORM/data/" in p for p in _Handler.seen) == 2  # two pages of two
    text = out.read_text(encoding="utf-8")
    assert "passport" not in text and "download_url" not in text  # attachments never fetched or listed
    rows = json.loads(text)["results"]
    assert [r["_uuid"] for r in rows] == ["u1", "u2", "u3"]
    assert rows[0]["_attachments_count"] == 1
    assert rows[0]["services/received"] == "shelter legal" and rows[0]["services/_count"] == 2
    assert rows[0]["grp/exp"] == "forced_labour sexual_exploitation"  # select_multiple kept as Kobo writes it
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "source: {format: kobo_json}\nfields:\n  case_id: {column: _uuid}\n  sex: {column: grp/sex}\n"
        "  citizenship: {column: grp/nat}\n  registration_date: {column: today}\n  case_type: {column: grp/type}\n"
        "  type_of_exploitation: {column: grp/exp, split: ' '}\n  services_received: {column: services/received, "
        "split: ' '}\n  country_of_registration: {value: TH}\n  consent_statistics: {value: 'yes'}\n"
        "  consent_linkage: {value: 'yes'}\n  consent_research: {value: 'yes'}\n", encoding="utf-8")
    got = build_contribution(out, mapping, "p", tmp_path / "c", partner_key)
    assert got.manifest.accepted == 3, got.findings


def test_odk_pull_pages_groups_and_repeat_tables(tmp_path: Path, runner: CliRunner, server: str) -> None:
    out = tmp_path / "odk.json"
    result = runner.invoke(app, ["odk", "pull", "--server", server, "--token-file", str(_token(tmp_path)),
                                 "--project", "7", "--form", "intake", "--out", str(out), "--page-size", "2"])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text(encoding="utf-8"))["results"]
    assert [r["__id"] for r in rows] == ["uuid:a", "uuid:b", "uuid:c"]
    assert rows[0]["intake/sex"] == "female" and rows[0]["_submission_time"] == "2024-03-01T10:00:00Z"
    assert rows[0]["services/received"] == "shelter health" and rows[1]["services/_count"] == 0
    assert rows[2]["services/received"] == "legal"
    assert any("Submissions.services" in p for p in _Handler.seen)
    assert sum("Submissions?" in p or "Submissions%3F" in p for p in _Handler.seen) >= 2  # paged


def test_pull_errors_are_clear_and_never_show_the_token(tmp_path: Path, runner: CliRunner, server: str) -> None:
    bad = _token(tmp_path, "wrong-token")
    result = runner.invoke(app, ["kobo", "pull", "--server", server, "--token-file", str(bad), "--form", "aFORM",
                                 "--out", str(tmp_path / "x.json")])
    assert result.exit_code == 2 and "401" in result.output and "wrong-token" not in result.output
    result = runner.invoke(app, ["odk", "pull", "--server", server, "--token-file", str(_token(tmp_path)),
                                 "--project", "7", "--form", "nope", "--out", str(tmp_path / "y.json")])
    assert result.exit_code == 2 and "404" in result.output
    result = runner.invoke(app, ["kobo", "pull", "--server", "ftp://x", "--token-file", str(_token(tmp_path)),
                                 "--form", "aFORM"])
    assert result.exit_code == 2 and "http(s)" in result.output
    assert not (tmp_path / "x.json").exists()
