"""A partner's pseudonym key and the linkage secret share one file format (accord.protect.secret_file):
both are written owner-only and read back, and both refuse a missing, foreign, malformed or short
file with their own words, never showing the secret."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from accord.errors import KeyMissingError
from accord.protect.encoding.secrets import load_linkage_secret, new_linkage_secret
from accord.protect.keys import create_partner_key, load_partner_key

KINDS: list[tuple[Callable[..., Any], Callable[[Path], Any], str, str, str]] = [
    (create_partner_key, load_partner_key, "pseudonym key", "the key in", "accord keys init"),
    (new_linkage_secret, load_linkage_secret, "linkage secret", "the linkage secret in", "--linkage"),
]


@pytest.mark.parametrize(("make", "load", "what", "short", "hint"), KINDS)
def test_written_owner_only_read_back_and_refused_in_its_own_words(
        tmp_path: Path, make: Callable[..., Any], load: Callable[[Path], Any], what: str, short: str,
        hint: str) -> None:
    path = tmp_path / "k" / "secret.key"
    made = make(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load(path) == made
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Accord ") and base64.b64encode(made.secret).decode() in text

    def refused(p: Path) -> KeyMissingError:
        with pytest.raises(KeyMissingError) as caught:
            load(p)
        assert hint in (caught.value.hint or "")
        assert base64.b64encode(made.secret).decode() not in caught.value.message
        return caught.value

    assert str(tmp_path / "none") in refused(tmp_path / "none").message
    other = tmp_path / "other.key"
    other.write_text(text.replace("kind: accord-", "kind: not-accord-"), encoding="utf-8")
    assert f"is not an Accord {what} file" in refused(other).message
    other.write_text("secret: [unclosed", encoding="utf-8")
    assert f"is not an Accord {what} file" in refused(other).message
    other.write_bytes(b"\xff\xfe binary")
    assert f"is not an Accord {what} file" in refused(other).message
    other.write_text(text.replace(base64.b64encode(made.secret).decode(),
                                  base64.b64encode(b"short").decode()), encoding="utf-8")
    message = refused(other).message
    assert message.startswith(short) and message.endswith("is too short")


@pytest.mark.parametrize("linkage", [False, True])
def test_keys_init_on_a_directory_says_it_is_one(tmp_path: Path, linkage: bool) -> None:
    """Through the CLI, with and without --force: said as a directory (it was 'a key already
    exists at DIR', and with --force 'cannot use DIR'); the directory is left as it was."""
    from typer.testing import CliRunner

    from accord.cli.main import app

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep").write_text("x")
    for force in ([], ["--force"]):
        args = ["keys", "init", *(["--linkage"] if linkage else []), "--key-file",
                str(tmp_path / "d"), *force]
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 2, res.output
        said = " ".join(res.output.split())
        assert "d is a directory, not a secret file" in said, said
        assert "--key-file the file to create, e.g." in said
        assert ("linkage.secret" if linkage else "partner.key") in said
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["keep"]


@pytest.mark.parametrize("make", [create_partner_key, new_linkage_secret])
def test_a_library_caller_is_told_of_its_arguments_not_of_cli_options(
        tmp_path: Path, make: Callable[..., Any]) -> None:
    """The hints named --key-file and --force whoever called: a program calling the library has
    neither; it is told of its path and of force=True. The CLI's own words are checked above."""
    with pytest.raises(KeyMissingError) as caught:
        make(tmp_path)
    hint = caught.value.hint or ""
    assert hint.startswith("pass the path of the file to create, e.g. ") and "--" not in hint
    made = tmp_path / "secret.key"
    make(made)
    with pytest.raises(KeyMissingError) as caught:
        make(made)
    hint = caught.value.hint or ""
    assert "force=True" in hint and "--" not in hint


def test_keys_init_names_the_variable_its_default_came_from(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from accord.cli.main import app

    monkeypatch.setenv("ACCORD_KEY_FILE", str(tmp_path))
    res = CliRunner().invoke(app, ["keys", "init"])
    assert res.exit_code == 2, res.output
    said = " ".join(res.output.split())
    assert "give --key-file (or $ACCORD_KEY_FILE) the file to create" in said, said
