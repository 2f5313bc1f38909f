"""Pull submissions from KoboToolbox (API v2) or ODK Central (OData) into an export Accord ingests.

Both APIs page: Kobo's `/api/v2/assets/{uid}/data/` answers `{"count", "next", "results"}` and
is followed by its `next` links; ODK Central's OData `Submissions` answers `{"value",
"@odata.nextLink"}` with nested groups as objects and each repeat group as its own table
(`Submissions.<repeat>`, rows linked by `__Submissions-id`). The result is one flat submission per
row (`group/question` keys), written as `{"results": [...]}`, the JSON shape `accord ingest`
reads. A repeat group becomes `<repeat>/<question>` holding the distinct answers of all its
entries, space-separated (as a select_multiple), plus `<repeat>/_count`. Attachments (photos,
scans of documents) are never downloaded: only their number is kept, `_attachments_count`.

urllib from the standard library does the HTTP: a few GETs with a token header need nothing more.
Tested against a local server serving the documented shapes; no real server is reachable here.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from accord.errors import InputFileError

TIMEOUT_S = 60
MAX_PAGES = 100_000


def read_token(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InputFileError(f"cannot read the token file {path}: {exc.strerror}") from None
    if not token or any(c.isspace() for c in token):
        raise InputFileError(f"{path} does not hold one API token",
                             hint="put the token alone in the file, readable by you only")
    return token


def _get(url: str, auth: str) -> dict[str, Any]:
    req = urllib.request.Request(url, headers={"Authorization": auth, "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            doc = json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        hint = ("check the token and that it may read this form" if exc.code in (401, 403)
                else "check the server address and the form id")
        raise InputFileError(f"the server answered {exc.code} for {urllib.parse.urlsplit(url).path}",
                             hint=hint) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise InputFileError(f"cannot reach {urllib.parse.urlsplit(url).netloc}: {exc}",
                             hint="check the server address and the network") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputFileError(f"the server's answer for {urllib.parse.urlsplit(url).path} is not JSON",
                             hint="check the server address (the API, not the web page)") from None
    if not isinstance(doc, dict):
        raise InputFileError("the server's answer is not a JSON object", hint="check the server address")
    return doc


def _check_server(server: str) -> str:
    parts = urllib.parse.urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputFileError(f"'{server}' is not an http(s) server address",
                             hint="e.g. https://kf.kobotoolbox.org or https://central.example.org")
    return server.rstrip("/")


def _pages(first: str, auth: str, items: str, next_key: str) -> Iterator[list[dict[str, Any]]]:
    url: str | None = first
    for _ in range(MAX_PAGES):
        if url is None:
            return
        doc = _get(url, auth)
        page = doc.get(items)
        if not isinstance(page, list):
            raise InputFileError(f"the server's answer has no '{items}' list",
                                 hint="is this the right API (Kobo v2 / ODK Central OData)?")
        yield page
        nxt = doc.get(next_key)
        url = nxt if isinstance(nxt, str) and nxt else None
    raise InputFileError("the server kept sending pages", hint="report this; paging did not end")


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "/"))
        else:
            out[key] = v
    return out


def _merge_repeat(row: dict[str, Any], name: str, entries: list[dict[str, Any]]) -> None:
    """A repeat group's entries as distinct answers per question, space-separated, plus a count."""
    answers: dict[str, list[str]] = {}
    for entry in entries:
        for k, v in _flatten(entry).items():
            if k.startswith("__") or v in (None, ""):
                continue
            leaf = k.rsplit("/", 1)[-1]
            for part in str(v).split():
                values = answers.setdefault(f"{name}/{leaf}", [])
                if part not in values:
                    values.append(part)
    row[f"{name}/_count"] = len(entries)
    for k, values in answers.items():
        row[k] = " ".join(values)


def _kobo_row(sub: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for k, v in sub.items():
        if k == "_attachments":
            row["_attachments_count"] = len(v) if isinstance(v, list) else 0
        elif isinstance(v, list) and all(isinstance(e, dict) for e in v):
            _merge_repeat(row, k, v)
        elif k.startswith("_") and isinstance(v, list | dict):
            continue  # Kobo's own bookkeeping (_tags, _notes, _geolocation, _validation_status)
        else:
            row[k] = v
    return row


def kobo_pull(server: str, token: str, form: str, page_size: int = 1000) -> list[dict[str, Any]]:
    base = _check_server(server)
    first = (f"{base}/api/v2/assets/{urllib.parse.quote(form)}/data/?format=json&limit={page_size}&start=0")
    rows: list[dict[str, Any]] = []
    for page in _pages(first, f"Token {token}", "results", "next"):
        rows += [_kobo_row(s) for s in page if isinstance(s, dict)]
    return rows


def odk_pull(server: str, token: str, project: int, form: str, page_size: int = 1000) -> list[dict[str, Any]]:
    base = _check_server(server)
    svc = f"{base}/v1/projects/{project}/forms/{urllib.parse.quote(form)}.svc"
    auth = f"Bearer {token}"
    subs: list[dict[str, Any]] = []
    for page in _pages(f"{svc}/Submissions?$top={page_size}&$skip=0&$count=true", auth, "value", "@odata.nextLink"):
        subs += [s for s in page if isinstance(s, dict)]
    repeats: set[str] = set()
    rows: list[dict[str, Any]] = []
    for s in subs:
        row: dict[str, Any] = {}
        for k, v in _flatten({k: v for k, v in s.items() if k != "__system"}).items():
            if k.endswith("@odata.navigationLink"):
                repeats.add(k.split("@", 1)[0])  # "group/repeat": the table Submissions.group.repeat
            elif k.endswith("@odata.count"):
                continue
            else:
                row[k] = v
        raw_system = s.get("__system")
        system: dict[str, Any] = raw_system if isinstance(raw_system, dict) else {}
        row["_submission_time"] = system.get("submissionDate")
        row["_attachments_count"] = system.get("attachmentsPresent", 0)
        rows.append(row)
    by_id = {r.get("__id"): r for r in rows}
    for name in sorted(repeats):
        entries: dict[Any, list[dict[str, Any]]] = {}
        url = f"{svc}/Submissions.{urllib.parse.quote(name.replace('/', '.'))}?$top={page_size}&$skip=0"
        for page in _pages(url, auth, "value", "@odata.nextLink"):
            for e in page:
                if isinstance(e, dict):
                    entries.setdefault(e.get("__Submissions-id"), []).append(e)
        for sid, row in by_id.items():
            _merge_repeat(row, name, entries.get(sid, []))
    return rows


def write_export(rows: list[dict[str, Any]], out: Path) -> None:
    if not rows:
        raise InputFileError("the form has no submissions", hint="pull again when data exist")
    out.write_text(json.dumps({"results": rows}, ensure_ascii=False, indent=1), encoding="utf-8")
