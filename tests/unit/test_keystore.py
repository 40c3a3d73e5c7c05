"""The keystore against real keyring backends, each selected the way a user selects one:
``PYTHON_KEYRING_BACKEND`` or ``keyringrc.cfg``.

Backends: keyring's fail and null backends, a name that does not load, the file-backed test
keyring (plain text: used only with allow_plaintext), a locked keyring, and two backends
written here that do not keep what they are given.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import keyring.core
import pytest
from keyring.backend import KeyringBackend
from keyring.testing.backend import BackendBasicTests

from bitkey_dir.cli.terminal import Terminal
from bitkey_dir.core.errors import AuthError, ExitCode
from bitkey_dir.runtime import interaction, keystore
from bitkey_dir.runtime.keystore import (
    SERVICE,
    BackendInfo,
    Keystore,
    client_secret_entry,
    password_entry,
    token_key_entry,
)
from tests.conftest import KEYRING_BACKENDS, KeyringFile, reload_keyring, select_keyring

ENTRY = "corp/password/helpdesk@corp.example"
SECRET = "S3cret!-do-not-print"
FILE_BACKEND = "bitkey_test_keyrings.PlaintextFileKeyring"
LOCKED_BACKEND = "bitkey_test_keyrings.LockedKeyring"
FAIL_PROBLEM = "no keyring backend is available on this system"
NULL_PROBLEM = "the keyring is disabled (keyring.backends.null)"


class Notices(list[str]):
    """A notice callable that remembers what it was told."""

    def __call__(self, message: str) -> None:
        self.append(message)


def store(*, allow_plaintext: bool = False) -> tuple[Keystore, Notices]:
    notices = Notices()
    return Keystore(allow_plaintext=allow_plaintext, notice=notices), notices


def use_env_backend(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", name)
    reload_keyring()


# -- entry names ------------------------------------------------------------------------------


def test_entry_names() -> None:
    assert SERVICE == "bitkey-dir"
    assert password_entry("corp", "helpdesk@corp.example") == ENTRY
    assert password_entry("corp", "CORP\\helpdesk") == "corp/password/CORP\\helpdesk"
    assert (
        client_secret_entry("cloud", "66666666-7777-8888-9999-000000000000")
        == "cloud/client-secret/66666666-7777-8888-9999-000000000000"
    )
    assert token_key_entry("cloud") == "cloud/token-cache-key"
    # Different sources never share an entry.
    assert password_entry("a", "u") != password_entry("b", "u")
    assert token_key_entry("a") != token_key_entry("a/b")


# -- backends that are not used ---------------------------------------------------------------


def test_fail_backend_is_not_usable() -> None:
    keys, notices = store()
    assert keys.info() == BackendInfo("keyring.backends.fail.Keyring", False, False, FAIL_PROBLEM)
    assert keys.usable is False
    assert keys.get(ENTRY) is None
    assert keys.has(ENTRY) is None
    assert keys.delete(ENTRY) is False
    with pytest.raises(AuthError) as caught:
        keys.set(ENTRY, SECRET)
    assert caught.value.exit_code == ExitCode.AUTH
    assert caught.value.message == (
        "nothing stored: keyring not usable "
        f"(keyring.backends.fail.Keyring: not used ({FAIL_PROBLEM}))"
    )
    assert notices == [
        f"keyring not used: {FAIL_PROBLEM}; credentials are neither cached nor read from it, "
        "so you will be asked for them"
    ]


def test_null_backend_is_not_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    use_env_backend(monkeypatch, "keyring.backends.null.Keyring")
    keys, notices = store(allow_plaintext=True)
    assert keys.info() == BackendInfo("keyring.backends.null.Keyring", False, False, NULL_PROBLEM)
    assert keys.get(ENTRY) is None
    with pytest.raises(AuthError, match="nothing stored: keyring not usable"):
        keys.set(ENTRY, SECRET)
    assert len(notices) == 1
    assert NULL_PROBLEM in notices[0]


def test_a_backend_that_does_not_load_is_not_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    # As in a new process whose PYTHON_KEYRING_BACKEND names nothing importable.
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "no.such.Backend")
    with pytest.raises(ModuleNotFoundError):
        reload_keyring()
    monkeypatch.setattr(keyring.core, "_keyring_backend", None)
    keys, notices = store()
    info = keys.info()
    assert (info.name, info.usable, info.plaintext) == ("keyring", False, False)
    assert info.problem is not None
    assert info.problem.startswith("cannot load it (ModuleNotFoundError: ")
    assert "no" in info.problem
    assert keys.get(ENTRY) is None
    assert keys.has(ENTRY) is None
    with pytest.raises(AuthError, match="nothing stored"):
        keys.set(ENTRY, SECRET)
    assert len(notices) == 1
    assert notices[0].startswith("keyring not used: cannot load it (ModuleNotFoundError")


def test_a_keyringrc_naming_a_missing_class_is_not_usable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(AttributeError):
        select_keyring(monkeypatch, "NoSuchKeyring")
    monkeypatch.setattr(keyring.core, "_keyring_backend", None)
    keys, notices = store(allow_plaintext=True)
    assert keys.usable is False
    problem = keys.info().problem
    assert problem is not None
    # The error is shown quoted and cut short, like any other text from outside.
    assert problem.startswith("cannot load it (AttributeError: \"module 'bitkey_test_keyrings'")
    assert keys.get(ENTRY) is None
    assert len(notices) == 1


# -- the plain-text file keyring ----------------------------------------------------------------


def test_plaintext_keyring_is_refused_without_allow_plaintext(file_keyring: KeyringFile) -> None:
    file_keyring.store(ENTRY, SECRET)
    keys, notices = store()
    info = keys.info()
    assert (info.name, info.usable, info.plaintext) == (FILE_BACKEND, False, True)
    assert info.problem == (
        "it stores secrets in plain text; set allow_plaintext = true under [keyring] in the "
        "config to use it anyway"
    )
    # The stored secret is there, but it is neither read nor changed.
    assert keys.get(ENTRY) is None
    assert keys.has(ENTRY) is None
    assert keys.delete(ENTRY) is False
    with pytest.raises(AuthError, match="allow_plaintext = true"):
        keys.set(ENTRY, "another")
    assert file_keyring.entries() == {ENTRY: SECRET}
    assert len(notices) == 1
    assert "allow_plaintext = true under [keyring]" in notices[0]


def test_plaintext_keyring_is_used_with_allow_plaintext(file_keyring: KeyringFile) -> None:
    keys, notices = store(allow_plaintext=True)
    assert keys.info() == BackendInfo(FILE_BACKEND, True, True, None)
    assert keys.info().describe() == f"{FILE_BACKEND} (plain text, allowed by the config)"
    assert keys.get(ENTRY) is None
    assert keys.has(ENTRY) is False
    keys.set(ENTRY, SECRET)
    assert file_keyring.entries() == {ENTRY: SECRET}
    assert keys.get(ENTRY) == SECRET
    assert keys.has(ENTRY) is True
    keys.set(ENTRY, "changed")
    assert keys.get(ENTRY) == "changed"
    assert keys.delete(ENTRY) is True
    assert keys.delete(ENTRY) is False
    assert keys.get(ENTRY) is None
    assert keys.has(ENTRY) is False
    assert file_keyring.entries() == {}
    assert notices == []  # a usable keyring says nothing


def test_entries_are_kept_apart(file_keyring: KeyringFile) -> None:
    keys, _ = store(allow_plaintext=True)
    names = [
        password_entry("corp", "helpdesk@corp.example"),
        password_entry("corp2", "helpdesk@corp.example"),
        client_secret_entry("corp", "helpdesk@corp.example"),
        token_key_entry("corp"),
    ]
    for number, name in enumerate(names):
        keys.set(name, f"secret-{number}")
    assert [keys.get(name) for name in names] == [f"secret-{n}" for n in range(len(names))]
    assert keys.delete(names[0]) is True
    assert file_keyring.entries() == {name: f"secret-{n}" for n, name in enumerate(names) if n}


def test_unicode_secret_round_trip(file_keyring: KeyringFile) -> None:
    keys, _ = store(allow_plaintext=True)
    value = "päss wörd \u20ac \U0001f511 \"'\\"
    keys.set(ENTRY, value)
    assert keys.get(ENTRY) == value
    assert file_keyring.entries()[ENTRY] == value


def test_entries_written_by_another_process_are_read(file_keyring: KeyringFile) -> None:
    keys, _ = store(allow_plaintext=True)
    assert keys.get(ENTRY) is None
    file_keyring.store(ENTRY, SECRET)  # e.g. `bitkey-dir login` in another terminal
    assert keys.get(ENTRY) == SECRET


# -- one notice ---------------------------------------------------------------------------------


@pytest.fixture(params=["fail", "null", "plaintext-refused", "locked"])
def unusable(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    kind: str = request.param
    if kind == "null":
        use_env_backend(monkeypatch, "keyring.backends.null.Keyring")
    elif kind == "plaintext-refused":
        request.getfixturevalue("file_keyring").store(ENTRY, SECRET)
    elif kind == "locked":
        request.getfixturevalue("locked_keyring")
    return kind


def test_exactly_one_notice_per_keystore(unusable: str) -> None:
    keys, notices = store()
    for _ in range(5):
        assert keys.get(ENTRY) is None
        assert keys.get(token_key_entry("other")) is None
    assert keys.has(ENTRY) is None
    keys.announce()
    assert len(notices) == 1, notices
    assert notices[0].startswith("keyring not used: ")
    assert "\n" not in notices[0]
    # A new keystore (a new run) says it again, once.
    again, more = store()
    again.get(ENTRY)
    again.get(ENTRY)
    assert len(more) == 1
    assert len(notices) == 1


def test_notices_and_errors_never_contain_a_secret(unusable: str) -> None:
    keys, notices = store()
    assert keys.get(ENTRY) is None
    with pytest.raises(AuthError) as caught:
        keys.set(ENTRY, "typed-Secret-42")
    assert notices
    for text in [*notices, caught.value.message, str(caught.value)]:
        assert SECRET not in text
        assert "typed-Secret-42" not in text


def test_default_notice_goes_to_the_terminal_under_the_cli(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with interaction.using(Terminal()):
        keys = Keystore()
        keys.get(ENTRY)
        keys.get(ENTRY)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"notice: keyring not used: {FAIL_PROBLEM}; credentials are neither cached nor read "
        "from it, so you will be asked for them\n"
    )


def test_default_notice_is_logged_not_printed_by_the_library(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    keys = Keystore()
    keys.get(ENTRY)
    keys.get(ENTRY)
    assert capsys.readouterr() == ("", "")
    assert [record.getMessage() for record in caplog.records if record.name == "bitkey_dir"] == [
        f"keyring not used: {FAIL_PROBLEM}; credentials are neither cached nor read "
        "from it, so you will be asked for them"
    ]


# -- a locked keyring -------------------------------------------------------------------------


def test_locked_keyring_get_degrades(locked_keyring: None) -> None:
    keys, notices = store()
    assert keys.usable is True  # it loads; only using it fails
    assert keys.get(ENTRY) is None
    assert keys.usable is False
    info = keys.info()
    assert (info.name, info.usable, info.plaintext) == (LOCKED_BACKEND, False, False)
    assert info.problem == "reading it failed (KeyringLocked: 'Failed to unlock the collection!')"
    assert notices == [
        "keyring not used: reading it failed (KeyringLocked: 'Failed to unlock the collection!'); "
        "credentials are neither cached nor read from it, so you will be asked for them"
    ]
    # Once found locked, the keyring is not asked again in this run.
    with pytest.raises(AuthError, match="nothing stored: keyring not usable"):
        keys.set(ENTRY, SECRET)
    assert keys.has(ENTRY) is None
    assert keys.delete(ENTRY) is False
    assert len(notices) == 1


def test_locked_keyring_has_degrades(locked_keyring: None) -> None:
    keys, notices = store()
    assert keys.has(ENTRY) is None
    assert keys.usable is False
    assert len(notices) == 1


def test_locked_keyring_set_raises_auth_error(locked_keyring: None) -> None:
    keys, _ = store()
    with pytest.raises(AuthError) as caught:
        keys.set(ENTRY, SECRET)
    assert caught.value.message == (
        f"nothing stored: the keyring {LOCKED_BACKEND} refused "
        "(KeyringLocked: 'Failed to unlock the collection!')"
    )
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ is True


def test_locked_keyring_delete_raises_auth_error(locked_keyring: None) -> None:
    keys, _ = store()
    with pytest.raises(AuthError) as caught:
        keys.delete(ENTRY)
    assert caught.value.message == (
        f"cannot remove {ENTRY} from the keyring {LOCKED_BACKEND} "
        "(KeyringLocked: 'Failed to unlock the collection!')"
    )


# -- backends that do not keep what they are given ----------------------------------------------

FORGETFUL_MODULE = "bitkey_unkept_keyrings"
FORGETFUL_SOURCE = '''
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class ForgetfulKeyring(KeyringBackend):
    """Accepts every secret and keeps none."""

    priority = 0.1

    def get_password(self, service, username):
        return None

    def set_password(self, service, username, password):
        pass

    def delete_password(self, service, username):
        raise PasswordDeleteError("no such password")


class ShortKeyring(KeyringBackend):
    """Keeps only the first 4 characters, as a store with a size limit might."""

    priority = 0.1

    def __init__(self):
        super().__init__()
        self.data = {}

    def get_password(self, service, username):
        return self.data.get((service, username))

    def set_password(self, service, username, password):
        self.data[(service, username)] = password[:4]

    def delete_password(self, service, username):
        if self.data.pop((service, username), None) is None:
            raise PasswordDeleteError("no such password")
'''


@pytest.fixture
def unkept_keyring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, pytest.MonkeyPatch]]:
    """Write the module above and let keyringrc.cfg select one of its backends."""
    folder = tmp_path / "backends"
    folder.mkdir()
    (folder / f"{FORGETFUL_MODULE}.py").write_text(FORGETFUL_SOURCE, encoding="utf-8")
    monkeypatch.setattr(sys, "path", [*sys.path])  # keyring adds keyring-path to it
    yield folder, monkeypatch
    sys.modules.pop(FORGETFUL_MODULE, None)


def select_unkept(folder: Path, monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    rc = Path(os.environ["XDG_CONFIG_HOME"]) / "python_keyring" / "keyringrc.cfg"
    rc.parent.mkdir(parents=True, exist_ok=True)
    rc.write_text(
        f"[backend]\ndefault-keyring = {FORGETFUL_MODULE}.{backend}\nkeyring-path = {folder}\n",
        encoding="utf-8",
    )
    reload_keyring()


@pytest.mark.parametrize("backend", ["ForgetfulKeyring", "ShortKeyring"])
def test_set_verifies_the_secret_reads_back(
    unkept_keyring: tuple[Path, pytest.MonkeyPatch], backend: str
) -> None:
    select_unkept(*unkept_keyring, backend)
    keys, notices = store()
    assert keys.info() == BackendInfo(f"{FORGETFUL_MODULE}.{backend}", True, False, None)
    with pytest.raises(AuthError) as caught:
        keys.set(ENTRY, SECRET)
    assert caught.value.message == (
        f"nothing stored: the keyring {FORGETFUL_MODULE}.{backend} did not keep it"
    )
    assert SECRET not in caught.value.message
    assert SECRET[:4] not in caught.value.message
    assert notices == []


# -- the run's keystore -------------------------------------------------------------------------


def test_begin_run_replaces_the_current_keystore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keystore, "_RUN", {})
    first = keystore.current()
    assert keystore.current() is first
    assert first.allow_plaintext is False
    second = keystore.begin_run(allow_plaintext=True)
    assert second is not first
    assert second.allow_plaintext is True
    assert keystore.current() is second
    third = keystore.begin_run()
    assert third.allow_plaintext is False
    assert keystore.current() is third


def test_each_run_detects_the_backend_afresh(
    file_keyring: KeyringFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keystore, "_RUN", {})
    refused = keystore.begin_run()
    assert refused.usable is False
    allowed = keystore.begin_run(allow_plaintext=True)
    assert allowed.usable is True
    allowed.set(ENTRY, SECRET)
    assert keystore.current().get(ENTRY) == SECRET


# -- the test backend behaves like a keyring backend ------------------------------------------


class TestPlaintextFileKeyringContract(BackendBasicTests):
    """keyring's own backend tests, run against tests/keyring_backends' PlaintextFileKeyring.

    The fixture's name sorts before BackendBasicTests' ``_init_properties``, so the file is
    chosen before the keyring is created and is still chosen when its cleanup runs.
    """

    @pytest.fixture(autouse=True)
    def _a_keyring_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("BITKEY_DIR_TEST_KEYRING_FILE", str(tmp_path / "contract.json"))
        monkeypatch.syspath_prepend(str(KEYRING_BACKENDS))

    def init_keyring(self) -> KeyringBackend:
        backend = keyring.core.load_keyring(FILE_BACKEND)
        assert type(backend).__name__ == "PlaintextFileKeyring"
        return backend

    def test_it_writes_the_file_the_fixture_names(self, tmp_path: Path) -> None:
        self.keyring.set_password("service", "user", "password")
        assert (tmp_path / "contract.json").is_file()
        # The layout that tests.conftest.KeyringFile reads: "service\x00user" -> secret.
        assert '"service\\u0000user": "password"' in (tmp_path / "contract.json").read_text()


def test_a_refused_write_never_repeats_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    select_keyring(monkeypatch, "RefusingKeyring")
    store = Keystore(notice=pytest.fail)
    with pytest.raises(AuthError) as refused:
        store.set("corp/password/helpdesk", "S3cret!-Never-Shown")
    assert "S3cret!-Never-Shown" not in str(refused.value)
    assert "PasswordSetError" in str(refused.value)


# -- Windows Credential Manager's limit ---------------------------------------------------------


def test_a_secret_over_the_windows_limit_is_refused_everywhere(file_keyring: KeyringFile) -> None:
    keys, _notices = store(allow_plaintext=True)
    longest = "é" * (keystore.MAX_SECRET_BYTES // 2)  # 2,560 bytes as UTF-16
    keys.set(ENTRY, longest)
    assert keys.get(ENTRY) == longest
    too_long = SECRET * (keystore.MAX_SECRET_BYTES // 2 // len(SECRET) + 1)
    with pytest.raises(AuthError) as caught:
        keys.set(ENTRY, too_long)
    assert "2,560 bytes" in caught.value.message
    assert SECRET not in caught.value.message
    assert keys.get(ENTRY) == longest  # nothing written


def test_the_token_cache_key_fits_the_windows_limit(
    file_keyring: KeyringFile, tmp_path: Path
) -> None:
    """The one secret generated here; passwords and client secrets are typed by people."""
    from bitkey_dir.sources.entra.token_cache import TokenCacheFile

    keys, _notices = store(allow_plaintext=True)
    TokenCacheFile("cloud", keys, tmp_path / "cache.bin").save("{}")
    stored = keys.get(token_key_entry("cloud"))
    assert stored is not None
    assert len(stored.encode("utf-16-le")) <= keystore.MAX_SECRET_BYTES
