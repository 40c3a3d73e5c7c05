"""Signing in once to Entra ID: `login`, the encrypted token cache, `logout` and `auth status`.

Runs against the Graph emulator with the real msal and msgraph-sdk, and a real keyring
backend selected through keyring's own configuration (the file-backed test keyring, or
keyring's `fail` backend). The point of every test is what the second run does *not* do:
ask for a token, ask the user, or leave a secret on disk.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from bitkey_dir.runtime.keystore import client_secret_entry, token_key_entry
from examples.lab.graph_emulator import GraphEmulator, User
from tests.command_line import invoke_with, trail_entries
from tests.conftest import KeyringFile
from tests.integration.fixtures import (
    GRAPH,
    SECRET,
    SECRET_ENV,
    SOURCE,
    TOKEN,
    WRONG_SECRET,
    Entra,
    device_code_answered,
    entra_record,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fresh_kiota_registries")]

DISCOVERY = r"/\.well-known/openid-configuration$"
BACKEND = "bitkey_test_keyrings.PlaintextFileKeyring"


def login_with_secret(entra: Entra, monkeypatch: pytest.MonkeyPatch, secret: str = SECRET) -> str:
    """`login` reading the client secret from stdin, as a provisioning script would."""
    monkeypatch.delenv(SECRET_ENV, raising=False)
    config = entra.config()

    result = invoke_with(config, "login", SOURCE, stdin=secret + "\n")
    assert secret not in result.out + result.err
    assert result.code == 0, result.err
    return result.out


def files_under(root: Path, *, skip: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p != skip]


def token_file() -> Path:
    (found,) = (Path(os.environ["XDG_STATE_HOME"]) / "bitkey-dir" / "tokens").iterdir()
    return found


# -- client secret --------------------------------------------------------------------------------


def test_login_stores_the_secret_and_the_next_run_asks_for_no_token(
    entra: Entra, graph: GraphEmulator, file_keyring: KeyringFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = entra.daemon()
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    said = login_with_secret(entra, monkeypatch)
    assert said == (
        f"{SOURCE}: signed in as app {app.client_id}; the client secret and tokens are stored "
        f"({BACKEND})\n"
    )
    assert graph.count(TOKEN) == 1  # the secret was proved by a real sign-in
    stored = file_keyring.entries()
    assert stored[client_secret_entry(SOURCE, app.client_id)] == SECRET
    assert set(stored) == {
        client_secret_entry(SOURCE, app.client_id),
        token_key_entry(SOURCE),
    }

    graph.clear_requests()
    found = entra.find("--key-id", key.id)  # no BITKEY_DIR_CLIENT_SECRET, no terminal
    assert found.code == 0, found.err
    assert found.keys == [entra_record(key, "PC-0042")]
    assert graph.count(TOKEN) == 0
    assert graph.count(DISCOVERY) == 0  # the discovery answer is cached with the tokens
    assert found.err == ""


def test_the_token_cache_on_disk_is_private_and_holds_no_secret(
    entra: Entra, graph: GraphEmulator, file_keyring: KeyringFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    entra.daemon()
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    login_with_secret(entra, monkeypatch)
    assert entra.find("--key-id", key.id).code == 0
    cache = token_file()
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.parent.stat().st_mode) == 0o700
    # Nothing outside the keyring holds the secret, a token, or a recovery password.
    home = Path(os.environ["HOME"])
    for path in files_under(home, skip=file_keyring.file):
        data = path.read_bytes()
        for needle in [SECRET, *entra.secrets()]:
            assert needle.encode() not in data, path
        assert b"eyJ" not in data, path  # no JWT
        assert b"access_token" not in data, path


def test_a_rotated_secret_is_dropped_from_the_keyring_and_not_retried(
    entra: Entra, graph: GraphEmulator, file_keyring: KeyringFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = entra.daemon()
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    # MSAL renews a token with less than 5 minutes left: the next run needs the secret again.
    graph.access_token_lifetime = 60
    login_with_secret(entra, monkeypatch)
    app.secrets[:] = ["a-new-secret-after-rotation"]
    graph.clear_requests()
    found = entra.find("--key-id", key.id)
    assert found.code == 3, found.err
    assert "refused the client secret of app" in found.err
    assert f"bitkey-dir login {SOURCE}" in found.err
    assert graph.count(TOKEN) == 1  # one refused attempt, never a second
    assert client_secret_entry(SOURCE, app.client_id) not in file_keyring.entries()
    again = entra.find("--key-id", key.id)
    assert again.code == 3
    assert "no client secret for cloud" in again.err
    assert graph.count(TOKEN) == 1  # nothing left to try


def test_login_with_a_wrong_secret_stores_nothing(
    entra: Entra, graph: GraphEmulator, file_keyring: KeyringFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    entra.daemon()
    monkeypatch.delenv(SECRET_ENV)
    config = entra.config()

    result = invoke_with(config, "login", SOURCE, stdin=WRONG_SECRET + "\n")
    assert result.code == 3, result.err
    assert "AADSTS7000215" in result.err
    assert WRONG_SECRET not in result.out + result.err
    assert file_keyring.entries() == {}
    assert not (Path(os.environ["XDG_STATE_HOME"]) / "bitkey-dir" / "tokens").exists()


def test_a_token_graph_refuses_is_dropped_so_the_next_run_gets_a_new_one(
    entra: Entra, graph: GraphEmulator, file_keyring: KeyringFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    entra.daemon()
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    login_with_secret(entra, monkeypatch)
    original_now = graph.now
    graph.now = lambda: original_now() + 7200  # type: ignore[method-assign]
    refused = entra.find("--key-id", key.id)
    assert refused.code == 3
    assert "the saved token was dropped" in refused.err
    graph.now = original_now  # type: ignore[method-assign]
    graph.clear_requests()
    found = entra.find("--key-id", key.id)
    assert found.code == 0, found.err
    assert graph.count(TOKEN) == 1


# -- delegated sign-in ----------------------------------------------------------------------------


@pytest.fixture
def sign_in_agent(
    entra: Entra, graph: GraphEmulator, file_keyring: KeyringFile
) -> Callable[[int], User]:
    """Sign an agent in with `login`, with access tokens of ``lifetime`` seconds.

    MSAL renews tokens with less than 5 minutes left, so a 60 s lifetime makes the next
    run's token expired as far as the client is concerned.
    """

    def sign_in(lifetime: int = 3599) -> User:
        entra.public()
        graph.access_token_lifetime = lifetime
        agent = graph.add_user("agent@contoso.onmicrosoft.com", roles=["Helpdesk Administrator"])
        with device_code_answered(graph, agent):
            signed_in = entra.login(auth="device-code")
        assert signed_in.code == 0, signed_in.err
        return agent

    return sign_in


@pytest.fixture
def agent_signed_in(sign_in_agent: Callable[[int], User]) -> User:
    return sign_in_agent(3599)


def test_after_device_code_login_find_neither_signs_in_nor_prompts(
    entra: Entra, graph: GraphEmulator, agent_signed_in: User, trail_file: Path
) -> None:
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    graph.clear_requests()
    found = entra.find("--key-id", key.id, auth="device-code")
    assert found.code == 0, found.err
    assert found.err == ""  # no device-code instructions, no notice
    assert graph.count(TOKEN) == 0
    assert len(graph.device_codes) == 1  # only login's
    (entry,) = trail_entries()
    assert entry["principal"] == agent_signed_in.user_principal_name


def test_an_expired_access_token_is_refreshed_silently(
    entra: Entra, graph: GraphEmulator, sign_in_agent: Callable[[int], User]
) -> None:
    sign_in_agent(60)
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    graph.access_token_lifetime = 3599
    graph.clear_requests()
    found = entra.find("--key-id", key.id, auth="device-code")
    assert found.code == 0, found.err
    (token,) = [r for r in graph.requests if r.grant_type]
    assert (token.grant_type, token.status) == ("refresh_token", 200)
    assert len(graph.device_codes) == 1
    # The refreshed tokens were saved: the run after that asks for nothing.
    graph.clear_requests()
    assert entra.find("--key-id", key.id, auth="device-code").code == 0
    assert graph.count(TOKEN) == 0


def test_a_revoked_sign_in_without_a_terminal_is_exit_3_naming_login(
    entra: Entra, graph: GraphEmulator, sign_in_agent: Callable[[int], User]
) -> None:
    agent = sign_in_agent(60)
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    graph.revoke_refresh_tokens(agent)
    found = entra.find("--key-id", key.id, auth="device-code")
    assert found.code == 3, found.err
    assert f"run `bitkey-dir login {SOURCE}` on a terminal" in found.err
    assert len(graph.device_codes) == 1  # no device-code flow started for nobody to answer
    assert graph.count(GRAPH) == 0


def test_auth_status_shows_account_and_expiry_and_logout_removes_everything(
    entra: Entra, graph: GraphEmulator, agent_signed_in: User, file_keyring: KeyringFile
) -> None:
    config = entra.config(auth="device-code")
    status = invoke_with(config, "auth", "status", "--json", **entra.checks)
    assert status.code == 0, status.err
    document = status.document
    assert document["keyring"] == {
        "backend": BACKEND,
        "usable": True,
        "plaintext": True,
        "problem": None,
    }
    upn = agent_signed_in.user_principal_name
    (row,) = document["sources"]
    assert row["source"] == SOURCE
    assert row["account"] == upn
    assert row["tokens"]["saved"] is True
    assert row["tokens"]["accounts"] == [upn]
    assert row["tokens"]["refresh_token"] is True
    assert row["tokens"]["access_token_expires"].endswith("+00:00")
    text = invoke_with(config, "auth", "status", **entra.checks)
    assert f"{SOURCE} (entra): {upn}; tokens: account {upn}" in text.out
    assert "access token valid for" in text.out

    cache = token_file()
    gone = invoke_with(config, "logout", SOURCE, **entra.checks)
    assert gone.out == f"{SOURCE}: removed the saved sign-in (token cache)\n"
    assert not cache.exists()
    assert file_keyring.entries() == {}
    again = invoke_with(config, "logout", SOURCE, **entra.checks)
    assert again.out == f"{SOURCE}: nothing was stored\n"
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    after = entra.find("--key-id", key.id, auth="device-code")
    assert after.code == 3
    assert "nobody is signed in" in after.err


def test_a_cache_whose_key_changed_is_ignored_with_a_notice(
    entra: Entra, graph: GraphEmulator, agent_signed_in: User, file_keyring: KeyringFile
) -> None:
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    file_keyring.store(token_key_entry(SOURCE), "A" * 43 + "=")
    found = entra.find("--key-id", key.id, auth="device-code")
    assert found.code == 3
    assert "the saved sign-in of cloud cannot be used" in found.err
    assert "does not match its key in the keyring" in found.err


# -- without a usable keyring ---------------------------------------------------------------------


def test_no_keyring_means_one_notice_and_nothing_on_disk(
    entra: Entra, graph: GraphEmulator
) -> None:
    entra.daemon()  # BITKEY_DIR_CLIENT_SECRET is set; the keyring is keyring's `fail` backend
    key = graph.add_recovery_key(graph.add_device("PC-0042"))
    found = entra.find("--key-id", key.id)
    assert found.code == 0, found.err
    notices = [line for line in found.err.splitlines() if line.startswith("notice:")]
    assert notices == [
        "notice: keyring not used: no keyring backend is available on this system; "
        "credentials are neither cached nor read from it, so you will be asked for them"
    ]
    assert not (Path(os.environ["XDG_STATE_HOME"]) / "bitkey-dir" / "tokens").exists()
    again = entra.find("--key-id", key.id)
    assert again.code == 0
    assert graph.count(TOKEN) == 2  # each run signs in: nothing could be kept


def test_login_refuses_a_plaintext_keyring_unless_the_config_allows_it(
    entra: Entra, graph: GraphEmulator, file_keyring: KeyringFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    entra.daemon()
    monkeypatch.delenv(SECRET_ENV)
    config = entra.config()
    config.write_text(
        config.read_text().replace("allow_plaintext = true", "allow_plaintext = false")
    )

    result = invoke_with(config, "login", SOURCE, stdin=SECRET)
    assert result.code == 3
    assert "plain text" in result.err
    assert "allow_plaintext = true" in result.err
    assert file_keyring.entries() == {}
    assert graph.requests == []
