"""`bitkey-dir login`, `logout` and `auth status` without any directory server.

The keyring is keyring's fail backend (the conftest default), the file-backed test keyring
(selected through keyringrc.cfg, plain text, so the config must allow it), or a locked one.
The AD source points at a port where nothing listens; the Entra source is never contacted.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bitkey_dir.runtime.keystore import Keystore, client_secret_entry, token_key_entry
from bitkey_dir.sources.entra.token_cache import TokenCacheFile, cache_path
from tests.command_line import invoke, invoke_with
from tests.conftest import EXAMPLES, KeyringFile

USER = "helpdesk@corp.example"
TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "66666666-7777-8888-9999-000000000000"
PASSWORD_ENTRY = f"corp/password/{USER}"
SECRET_ENTRY = client_secret_entry("cloud", CLIENT)
PASSWORD = "S3cret!"
CLIENT_SECRET = "Client~Secret.9"
FILE_BACKEND = "bitkey_test_keyrings.PlaintextFileKeyring"
FAIL_PROBLEM = "no keyring backend is available on this system"
NOTICE = (
    "notice: keyring not used: {}; credentials are neither cached nor read from it, "
    "so you will be asked for them\n"
)
PLAINTEXT_PROBLEM = (
    "it stores secrets in plain text; set allow_plaintext = true under [keyring] in the "
    "config to use it anyway"
)
SECRETS = (PASSWORD, CLIENT_SECRET, "AT-SECRET-123", "RT-SECRET-456")

SOURCES = f"""
[sources.keys]
type = "file"
path = "{EXAMPLES / "keys"}"

[sources.corp]
type = "ad"
servers = ["ldaps://127.0.0.1:1"]
user = "{USER}"
timeout = 5

[sources.cloud]
type = "entra"
tenant_id = "{TENANT}"
client_id = "{CLIENT}"
auth = "client-secret"
"""


def write_config(tmp_path: Path, *, allow_plaintext: bool = False) -> Path:
    path = tmp_path / "config.toml"
    keyring = "[keyring]\nallow_plaintext = true\n" if allow_plaintext else ""
    path.write_text(keyring + SOURCES, encoding="utf-8")
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    return write_config(tmp_path, allow_plaintext=True)


def msal_cache(expires_on: int) -> str:
    """An Entra sign-in as MSAL serializes it: one account, an access and a refresh token."""
    home = "o1.t1"
    return json.dumps(
        {
            "Account": {
                f"{home}-login.microsoftonline.com-t1": {
                    "home_account_id": home,
                    "environment": "login.microsoftonline.com",
                    "realm": "t1",
                    "local_account_id": "o1",
                    "username": "alice@corp.example",
                    "authority_type": "MSSTS",
                }
            },
            "AccessToken": {
                f"{home}-login.microsoftonline.com-accesstoken-{CLIENT}-t1-scope": {
                    "credential_type": "AccessToken",
                    "secret": "AT-SECRET-123",
                    "home_account_id": home,
                    "environment": "login.microsoftonline.com",
                    "client_id": CLIENT,
                    "target": "https://graph.microsoft.com/.default",
                    "realm": "t1",
                    "expires_on": str(expires_on),
                }
            },
            "RefreshToken": {
                f"{home}-login.microsoftonline.com-refreshtoken-{CLIENT}--scope": {
                    "credential_type": "RefreshToken",
                    "secret": "RT-SECRET-456",
                    "home_account_id": home,
                    "environment": "login.microsoftonline.com",
                    "client_id": CLIENT,
                }
            },
        }
    )


# -- help ---------------------------------------------------------------------------------------


def test_help_lists_the_auth_commands() -> None:
    result = invoke("--help")
    assert result.code == 0
    listed = result.out.split("Commands:", 1)[1].splitlines()
    commands = [line.split()[0] for line in listed if line.startswith("  ")]
    for name in ("login", "logout", "auth"):
        assert name in commands, result.out
    result = invoke("auth", "--help")
    assert result.code == 0
    assert "status" in result.out
    result = invoke("login", "--help")
    assert result.code == 0
    assert "Sign in to a source once and keep the credential in the keyring." in result.out


# -- auth status --------------------------------------------------------------------------------


def test_status_without_a_keyring(config: Path) -> None:
    code, out, err = invoke_with(config, "auth", "status", never_shown=SECRETS)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"keyring: keyring.backends.fail.Keyring: not used ({FAIL_PROBLEM})",
        "keys (file): nothing to store (keys are read directly)",
        f"corp (ad): {USER}; password unknown (no keyring)",
        f"cloud (entra): app {CLIENT}; client secret unknown (no keyring); no saved sign-in",
    ]


def test_status_json_without_a_keyring(config: Path) -> None:
    code, out, err = invoke_with(config, "auth", "status", "--json", never_shown=SECRETS)
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "keyring": {
            "backend": "keyring.backends.fail.Keyring",
            "usable": False,
            "plaintext": False,
            "problem": FAIL_PROBLEM,
        },
        "sources": [
            {
                "source": "keys",
                "type": "file",
                "account": None,
                "secret": None,
                "stored": None,
                "tokens": None,
            },
            {
                "source": "corp",
                "type": "ad",
                "account": USER,
                "secret": "password",
                "stored": None,
                "environment": False,
                "tokens": None,
            },
            {
                "source": "cloud",
                "type": "entra",
                "account": f"app {CLIENT}",
                "secret": "client secret",
                "stored": None,
                "environment": False,
                "tokens": {"saved": False},
            },
        ],
    }


def test_status_with_the_file_keyring(allowed: Path, file_keyring: KeyringFile) -> None:
    file_keyring.store(PASSWORD_ENTRY, PASSWORD)
    code, out, err = invoke_with(allowed, "auth", "status", never_shown=SECRETS)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"keyring: {FILE_BACKEND} (plain text, allowed by the config)",
        "keys (file): nothing to store (keys are read directly)",
        f"corp (ad): {USER}; password stored",
        f"cloud (entra): app {CLIENT}; client secret not stored; no saved sign-in",
    ]


def test_status_json_with_the_file_keyring(allowed: Path, file_keyring: KeyringFile) -> None:
    file_keyring.store(PASSWORD_ENTRY, PASSWORD)
    file_keyring.store(SECRET_ENTRY, CLIENT_SECRET)
    code, out, err = invoke_with(
        allowed, "auth", "status", "--json", "corp", "cloud", never_shown=SECRETS
    )
    assert (code, err) == (0, "")
    document = json.loads(out)
    assert document["keyring"] == {
        "backend": FILE_BACKEND,
        "usable": True,
        "plaintext": True,
        "problem": None,
    }
    assert [(row["source"], row["stored"]) for row in document["sources"]] == [
        ("corp", True),
        ("cloud", True),
    ]


def test_status_plaintext_keyring_not_allowed(config: Path, file_keyring: KeyringFile) -> None:
    file_keyring.store(PASSWORD_ENTRY, PASSWORD)
    code, out, err = invoke_with(config, "auth", "status", "--json", "corp", never_shown=SECRETS)
    assert (code, err) == (0, "")
    document = json.loads(out)
    assert document["keyring"] == {
        "backend": FILE_BACKEND,
        "usable": False,
        "plaintext": True,
        "problem": PLAINTEXT_PROBLEM,
    }
    assert document["sources"][0]["stored"] is None
    code, out, _ = invoke_with(config, "auth", "status", "corp", never_shown=SECRETS)
    assert out.splitlines()[0] == f"keyring: {FILE_BACKEND}: not used ({PLAINTEXT_PROBLEM})"


def test_status_names_the_environment_variable(
    allowed: Path, file_keyring: KeyringFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    file_keyring.store(PASSWORD_ENTRY, PASSWORD)
    monkeypatch.setenv("BITKEY_DIR_PASSWORD", CLIENT_SECRET)
    code, out, _ = invoke_with(allowed, "auth", "status", "corp", never_shown=SECRETS)
    assert code == 0
    assert out.splitlines()[1] == (
        f"corp (ad): {USER}; password stored; the environment variable is set and takes precedence"
    )
    code, out, _ = invoke_with(allowed, "auth", "status", "corp", "--json", never_shown=SECRETS)
    assert json.loads(out)["sources"][0]["environment"] is True


def test_status_of_one_source_and_of_an_unknown_one(config: Path) -> None:
    code, out, _ = invoke_with(config, "auth", "status", "corp", "corp", never_shown=SECRETS)
    assert code == 0
    assert out.splitlines()[1:] == [f"corp (ad): {USER}; password unknown (no keyring)"]
    code, out, err = invoke_with(config, "auth", "status", "nosuch", never_shown=SECRETS)
    assert (code, out) == (2, "")
    assert err.startswith("bitkey-dir: error: unknown source 'nosuch'")
    assert len(err.splitlines()) == 1


def test_status_shows_saved_tokens(allowed: Path, file_keyring: KeyringFile) -> None:
    expires = int(time.time()) + 3600 + 30
    cache = TokenCacheFile("cloud", Keystore(allow_plaintext=True, notice=pytest.fail))
    assert cache.save(msal_cache(expires)) is True
    code, out, err = invoke_with(allowed, "auth", "status", "cloud", never_shown=SECRETS)
    assert (code, err) == (0, "")
    assert out.splitlines()[1] == (
        "cloud (entra): alice@corp.example; client secret not stored; tokens: account "
        "alice@corp.example, access token valid for 60 min, refresh token"
    )
    code, out, _ = invoke_with(allowed, "auth", "status", "cloud", "--json", never_shown=SECRETS)
    (row,) = json.loads(out)["sources"]
    tokens = row.pop("tokens")
    assert row == {
        "source": "cloud",
        "type": "entra",
        "account": "alice@corp.example",
        "secret": "client secret",
        "stored": False,
        "environment": False,
    }
    assert tokens == {
        "saved": True,
        "accounts": ["alice@corp.example"],
        "access_token_expires": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(expires)),
        "refresh_token": True,
        "summary": "account alice@corp.example, access token valid for 60 min, refresh token",
    }


def test_status_reports_an_unusable_token_cache(allowed: Path, file_keyring: KeyringFile) -> None:
    cache = TokenCacheFile("cloud", Keystore(allow_plaintext=True, notice=pytest.fail))
    cache.save(msal_cache(int(time.time()) + 3600))
    file_keyring.store(token_key_entry("cloud"), "A" * 43 + "=")  # another 32-byte key
    code, out, err = invoke_with(allowed, "auth", "status", "cloud", never_shown=SECRETS)
    assert (code, err) == (0, "")
    assert out.splitlines()[1] == (
        f"cloud (entra): app {CLIENT}; client secret not stored; "
        "tokens unusable: it does not match its key in the keyring"
    )
    code, out, _ = invoke_with(allowed, "auth", "status", "cloud", "--json", never_shown=SECRETS)
    assert json.loads(out)["sources"][0]["tokens"] == {
        "saved": False,
        "problem": "it does not match its key in the keyring",
    }


# -- logout ---------------------------------------------------------------------------------------


def test_logout_removes_the_password(allowed: Path, file_keyring: KeyringFile) -> None:
    file_keyring.store(PASSWORD_ENTRY, PASSWORD)
    file_keyring.store(SECRET_ENTRY, CLIENT_SECRET)
    code, out, err = invoke_with(allowed, "logout", "corp", never_shown=SECRETS)
    assert (code, out, err) == (0, f"corp: removed the password of {USER}\n", "")
    assert file_keyring.entries() == {SECRET_ENTRY: CLIENT_SECRET}
    code, out, err = invoke_with(allowed, "logout", "corp", never_shown=SECRETS)
    assert (code, out, err) == (0, "corp: nothing was stored\n", "")


def test_logout_removes_client_secret_and_tokens(allowed: Path, file_keyring: KeyringFile) -> None:
    file_keyring.store(PASSWORD_ENTRY, PASSWORD)
    file_keyring.store(SECRET_ENTRY, CLIENT_SECRET)
    cache = TokenCacheFile("cloud", Keystore(allow_plaintext=True, notice=pytest.fail))
    cache.save(msal_cache(int(time.time()) + 3600))
    assert cache.path == cache_path("cloud")
    code, out, err = invoke_with(allowed, "logout", "cloud", never_shown=SECRETS)
    assert (code, err) == (0, "")
    assert out == (
        f"cloud: removed the saved sign-in (token cache), the client secret of app {CLIENT}\n"
    )
    assert not cache.path.exists()
    assert file_keyring.entries() == {PASSWORD_ENTRY: PASSWORD}
    code, out, _ = invoke_with(allowed, "logout", "cloud", never_shown=SECRETS)
    assert (code, out) == (0, "cloud: nothing was stored\n")


def test_logout_without_a_keyring_says_why(config: Path) -> None:
    code, out, err = invoke_with(config, "logout", "corp", never_shown=SECRETS)
    assert (code, out) == (0, "corp: nothing removed (the keyring could not be checked)\n")
    assert err == NOTICE.format(FAIL_PROBLEM)


def test_logout_of_a_file_source_is_bad_input(config: Path) -> None:
    code, out, err = invoke_with(config, "logout", "keys", never_shown=SECRETS)
    assert (code, out) == (2, "")
    assert err == (
        "bitkey-dir: error: keys has no credentials to store: its keys are read directly\n"
    )


def test_logout_with_a_locked_keyring_fails(config: Path, locked_keyring: None) -> None:
    code, out, err = invoke_with(config, "logout", "corp", never_shown=SECRETS)
    assert (code, out) == (3, "")
    assert err == (
        f"bitkey-dir: error: cannot remove {PASSWORD_ENTRY} from the keyring "
        "bitkey_test_keyrings.LockedKeyring "
        "(KeyringLocked: 'Failed to unlock the collection!')\n"
    )


# -- login ----------------------------------------------------------------------------------------


def test_login_to_a_file_source_is_bad_input(allowed: Path, file_keyring: KeyringFile) -> None:
    code, out, err = invoke_with(
        allowed, "login", "keys", stdin=PASSWORD + "\n", never_shown=SECRETS
    )
    assert (code, out) == (2, "")
    assert err == (
        "bitkey-dir: error: keys has no credentials to store: its keys are read directly\n"
    )
    assert file_keyring.entries() == {}


def test_login_without_a_usable_keyring_reads_nothing(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[object] = []
    monkeypatch.setattr("bitkey_dir.cli.auth.read_for_login", read.append)
    code, out, err = invoke_with(
        config, "login", "corp", stdin=PASSWORD + "\n", never_shown=SECRETS
    )
    assert (code, out) == (3, "")
    assert read == []
    assert err == (
        "bitkey-dir: error: nothing can be stored: keyring not usable "
        f"(keyring.backends.fail.Keyring: not used ({FAIL_PROBLEM}))\n"
        "hint: use BITKEY_DIR_PASSWORD / BITKEY_DIR_CLIENT_SECRET, or be asked on each run\n"
    )


def test_login_plaintext_keyring_not_allowed(config: Path, file_keyring: KeyringFile) -> None:
    code, out, err = invoke_with(
        config, "login", "corp", stdin=PASSWORD + "\n", never_shown=SECRETS
    )
    assert (code, out) == (3, "")
    assert err.splitlines()[0] == (
        "bitkey-dir: error: nothing can be stored: keyring not usable "
        f"({FILE_BACKEND}: not used ({PLAINTEXT_PROBLEM}))"
    )
    assert "allow_plaintext = true" in err
    assert file_keyring.entries() == {}


def test_login_server_unreachable_stores_nothing(allowed: Path, file_keyring: KeyringFile) -> None:
    pytest.importorskip("ldap3")
    code, out, err = invoke_with(
        allowed, "login", "corp", stdin=PASSWORD + "\n", never_shown=SECRETS
    )
    assert (code, out) == (4, "")
    assert err == (
        "bitkey-dir: error: no directory server could be used "
        "(ldaps://127.0.0.1:1: connection refused)\n"
    )
    assert file_keyring.entries() == {}


@pytest.mark.parametrize("stdin", ["", "\n", "tab\there\n"])
def test_login_with_bad_stdin_is_bad_input(
    allowed: Path, file_keyring: KeyringFile, stdin: str
) -> None:
    code, out, err = invoke_with(allowed, "login", "corp", stdin=stdin, never_shown=SECRETS)
    assert (code, out) == (2, "")
    assert err.startswith(f"bitkey-dir: error: expected the password of {USER} ")
    assert err.endswith(": nothing stored\n")
    assert len(err.splitlines()) == 1
    assert file_keyring.entries() == {}


# -- find without a stored secret ------------------------------------------------------------------


def test_find_without_keyring_or_terminal_names_the_variable_not_login(config: Path) -> None:
    # `login` cannot help without a keyring: the advice is the one thing that works.
    code, out, err = invoke_with(
        config, "find", "--source", "corp", "--key-id", "063EA4E1", never_shown=SECRETS
    )
    assert code == 3
    assert err.count("notice: keyring not used") == 1
    assert NOTICE.format(FAIL_PROBLEM) in err
    message = (
        "no password for corp: set BITKEY_DIR_PASSWORD (no keyring is usable here to keep it "
        "in, and there is no terminal to ask on)"
    )
    assert f"bitkey-dir: error: corp: {message}\n" in err
    assert json.loads(out)["sources"] == [{"name": "corp", "status": "denied", "error": message}]


def test_find_with_a_refused_plaintext_keyring_names_allow_plaintext(
    config: Path, file_keyring: KeyringFile
) -> None:
    file_keyring.store(PASSWORD_ENTRY, PASSWORD)
    code, _, err = invoke_with(
        config, "find", "--source", "corp", "--key-id", "063EA4E1", never_shown=SECRETS
    )
    assert code == 3
    assert err.count("notice: keyring not used") == 1
    assert NOTICE.format(PLAINTEXT_PROBLEM) in err
    assert file_keyring.entries() == {PASSWORD_ENTRY: PASSWORD}


def test_find_unreachable_keeps_the_stored_password(
    allowed: Path, file_keyring: KeyringFile
) -> None:
    pytest.importorskip("ldap3")
    file_keyring.store(PASSWORD_ENTRY, PASSWORD)
    code, _, err = invoke_with(
        allowed, "find", "--source", "corp", "--key-id", "063EA4E1", never_shown=SECRETS
    )
    assert code == 4
    assert "notice:" not in err
    assert "ldaps://127.0.0.1:1: connection refused" in err
    # Only a refused password is forgotten; an unreachable server says nothing about it.
    assert file_keyring.entries() == {PASSWORD_ENTRY: PASSWORD}


def test_login_and_logout_take_the_source_as_the_other_commands_do(config: Path) -> None:
    # The same refusal whichever way the source is named: no keyring to store it in.
    by_argument = invoke_with(config, "login", "corp", never_shown=SECRETS)
    by_option = invoke_with(config, "login", "--source", "corp", never_shown=SECRETS)
    assert by_argument.code == by_option.code == 3
    assert by_argument.err == by_option.err
    assert invoke_with(config, "logout", "-s", "corp", never_shown=SECRETS).code == 0
    assert invoke_with(config, "login", "corp", "--source", "cloud", never_shown=SECRETS).code == 2
    assert invoke_with(config, "login", never_shown=SECRETS).code == 2


def test_listings_take_format_json_as_well_as_json(config: Path) -> None:
    for command in (["auth", "status"], ["sources"], ["trail"]):
        old = invoke_with(config, *command, "--json", never_shown=SECRETS)
        new = invoke_with(config, *command, "--format", "json", never_shown=SECRETS)
        assert (old.code, old.out) == (new.code, new.out)
