"""The portal's pure parts: [serve] settings, refusing plain HTTP, sessions, rate limits and
escaping of directory text in the pages. Request-level tests against a real DC are in
tests/integration/test_portal.py."""

from __future__ import annotations

import pickle
import time
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the portal extra is not installed")

from bitkey_dir.core.errors import ConfigError, InputError
from bitkey_dir.core.model import KeyId, RecoveryKey, RecoveryPassword
from bitkey_dir.portal import desks
from bitkey_dir.portal.limits import Window
from bitkey_dir.portal.server import checked
from bitkey_dir.portal.sessions import SQLiteSessions, start
from bitkey_dir.portal.settings import Listen, read_settings
from bitkey_dir.portal.views import key_view
from bitkey_dir.portal.web import page
from bitkey_dir.runtime.config import parse_config

PASSWORD = "531058-303050-716078-383614-460922-106975-083446-139161"
KEY_ID = "063EA4E1-220C-4293-BA01-4754620A96E7"
SOURCES = {"corp": {"type": "ad", "servers": ["ldaps://dc1"]}, "keys": {"type": "file"}}


def settings_of(serve: dict[str, object]):  # type: ignore[no-untyped-def]
    return read_settings(parse_config({"sources": SOURCES, "serve": serve}, Path("c.toml")))


def test_serve_settings_have_safe_defaults() -> None:
    settings = settings_of({"sign_in": ["corp"]})
    assert settings.require_reason
    assert (settings.idle_timeout, settings.session_lifetime) == (15 * 60, 8 * 3600)
    assert settings.listen == Listen("127.0.0.1", 8443)
    assert settings_of({"sign_in": "corp", "idle_timeout": "5m"}).idle_timeout == 300


@pytest.mark.parametrize(
    ("serve", "problem"),
    [
        ({}, "serve.sign_in"),
        ({"sign_in": ["nope"]}, "sign_in"),
        ({"sign_in": ["keys"]}, "a configured source of type ad"),
        ({"sign_in": ["corp"], "sources": ["nope"]}, "serve.sources"),
        ({"sign_in": ["corp"], "listen": "nohost"}, "HOST:PORT"),
        ({"sign_in": ["corp"], "idle_timeout": "forever"}, "idle_timeout"),
        ({"sign_in": ["corp"], "colour": "blue"}, "unknown key 'colour'"),
    ],
)
def test_bad_serve_settings_name_the_key(serve: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        settings_of(serve)


def test_a_serve_table_that_is_not_a_table_is_refused() -> None:
    with pytest.raises(ConfigError, match="serve: expected a table"):
        parse_config({"serve": "yes"}, Path("c.toml"))


def test_plain_http_only_on_loopback_or_behind_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BITKEY_DIR_PASSWORD", raising=False)
    settings = settings_of({"sign_in": ["corp"]})
    assert checked(settings, "[::1]:8443", None, None, False).listen.loopback
    assert checked(settings, "localhost:80", None, None, False).listen.loopback
    with pytest.raises(InputError, match=r"refusing plain HTTP on 0\.0\.0\.0"):
        checked(settings, "0.0.0.0:8443", None, None, False)
    assert checked(settings, "0.0.0.0:8080", None, None, True).behind_proxy
    with pytest.raises(InputError, match="go together"):
        checked(settings, None, Path("cert.pem"), None, False)
    monkeypatch.setenv("BITKEY_DIR_PASSWORD", "x")
    with pytest.raises(InputError, match="BITKEY_DIR_PASSWORD"):
        checked(settings, None, None, None, False)


def test_sessions_keep_no_id_in_clear_and_purge_expired_ones(tmp_path: Path) -> None:
    store = SQLiteSessions(tmp_path / "s" / "sessions.sqlite")
    session = start("192.0.2.1", agent="alice@corp", source="corp", role="helpdesk")
    store.save(session)
    assert store.load(session.id) == session
    assert session.id.encode() not in (tmp_path / "s" / "sessions.sqlite").read_bytes()
    assert (tmp_path / "s" / "sessions.sqlite").stat().st_mode & 0o077 == 0
    old = replace(start("192.0.2.2"), seen=time.time() - 3600)
    store.save(old)
    assert store.purge(time.time() - 900, time.time() - 8 * 3600) == [old.key]
    assert store.load(old.id) is None
    assert session.expired(time.time() + 901, 900, 8 * 3600)
    assert session.expired(session.created + 8 * 3600 + 1, 10**9, 8 * 3600)
    store.delete(session.id)
    assert store.load(session.id) is None


def test_a_window_counts_per_key() -> None:
    window = Window(2, 60)
    window.add("a")
    assert window.blocked_for("a") == 0
    window.add("a")
    assert 0 < window.blocked_for("a") <= 60
    assert window.blocked_for("b") == 0
    window.clear("a")
    assert window.blocked_for("a") == 0


def test_the_agents_password_is_sealed_and_answers_only_their_own_prompt() -> None:
    sealed = desks.Sealed("S3cret!")
    assert "S3cret" not in repr(sealed)
    with pytest.raises(TypeError):
        pickle.dumps(sealed)
    agent = desks.AgentInteraction("corp", "alice@corp", sealed)
    assert agent.secret("The password of alice@corp (corp): ") == "S3cret!"
    assert agent.secret("The password of bob@corp (corp): ") == ""
    assert agent.secret("Passphrase of export.age: ") == ""


def test_directory_text_is_escaped_in_the_page() -> None:
    hostile = "<script>alert(1)</script>\x1b]0;owned\x07\u202e"
    key = RecoveryKey(
        "corp", KeyId.parse(KEY_ID), RecoveryPassword.parse(PASSWORD), computer=hostile
    )
    from bitkey_dir.portal.views import LookupView

    view = LookupView(query="Key ID 063EA4E1", keys=[key_view(key, "063EA4E1")], kind="found")
    html = page("lookup.html", {"agent": "a", "csrf": "t", "view": view}).body.decode()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\x1b]0;owned\\x07\\u202e" in html
    assert '<span class="n">1</span> <span class="g">531058</span>' in html


def test_a_role_comes_from_the_groups_by_either_name_and_auditors_never_read_keys() -> None:
    from bitkey_dir.portal.roles import role_of

    groups = ["CORP\\Domain Users", "CORP\\BitLocker Advanced"]
    assert role_of(groups, ["bitlocker advanced"], []) == "advanced"
    assert role_of(groups, ["CORP\\BitLocker Advanced"], []) == "advanced"
    assert role_of(groups, ["OTHER\\BitLocker Advanced"], []) == "helpdesk"
    assert role_of(groups, [], []) == "helpdesk"
    # In both lists: an auditor (one session never both reads keys and audits the reading).
    assert role_of(groups, ["BitLocker Advanced"], ["Domain Users"]) == "auditor"
