"""Hidden prompts on a real terminal: `find` and `login` run in a pseudo-terminal (pexpect).

The CLI runs as a child process (``python -m bitkey_dir``) whose stdin, stdout and stderr are
a pty, against the session's Samba DC, with the file-backed test keyring selected through
keyring's own configuration. Every transcript (everything the child wrote to the terminal,
including any echo of what was typed) is checked for what must never show: a typed or stored
bind password, and any recovery password except those a successful `find` reveals.

Failed binds are counted by the DC itself, in the helpdesk user's ``badPwdCount``. Samba counts
only while the domain has a lockout threshold, so the ``bad_passwords`` fixture sets one far
above anything these tests reach and restores the domain's own setting afterwards. A
successful bind resets the count to 0, so "no failed bind" is checked on ``badPasswordTime``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pexpect
import pytest

from bitkey_dir.runtime.keystore import password_entry
from tests.conftest import ROOT, KeyringFile
from tests.integration.fixtures import SECRETS, WRONG_PASSWORD, Directory, Lab
from tests.integration.seed import HELPDESK

pytestmark = pytest.mark.integration

COMPUTER = "WS001"  # in OU=Workstations, where the helpdesk may read recovery passwords
OTHER_WRONG_PASSWORD = "Als0Wr0ng!Typed-7"  # must never be echoed either
BIND_PASSWORDS = (HELPDESK.password, WRONG_PASSWORD, OTHER_WRONG_PASSWORD)
LOCKOUT_THRESHOLD = 50  # far above the failures of a whole test run: nothing gets locked
ACCOUNT = "helpdesk1@bitkey.test"
ENTRY = password_entry("lab", ACCOUNT)
PROMPT = re.compile(r"The password of helpdesk1@bitkey\.test \(lab\): ")
REFUSED = (
    r"notice: the directory refused the password of helpdesk1@bitkey\.test stored in the "
    r"keyring for lab; it has been removed from the keyring\. Type the current one \(asked once\)"
)


# ---------------------------------------------------------------------------------- the DC
class BadPasswords:
    """The DC's record of the helpdesk user's failed binds, read as Administrator."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self.dn = directory.seeded.users[HELPDESK.name].dn

    def _read(self) -> dict[str, object]:
        import ldap3

        connection = self.directory.dc.connect()
        try:
            connection.search(
                self.dn,
                "(objectClass=*)",
                ldap3.BASE,
                attributes=["badPwdCount", "badPasswordTime"],
            )
            return dict(connection.response[0]["attributes"])
        finally:
            connection.unbind()

    def count(self) -> int:
        """Failed binds since the last successful one."""
        return int(str(self._read().get("badPwdCount") or 0))

    def last(self) -> object:
        """When the last failed bind happened."""
        value = self._read().get("badPasswordTime")
        assert isinstance(value, dt.datetime), value
        return value


@pytest.fixture
def bad_passwords(samba_dc: Directory) -> Iterator[BadPasswords]:
    """Let the DC count failed binds for the duration of a test (see the module docstring)."""
    import ldap3

    def threshold(value: str | None = None) -> str:
        connection = samba_dc.dc.connect()
        try:
            if value is not None:
                connection.modify(
                    samba_dc.base_dn, {"lockoutThreshold": [(ldap3.MODIFY_REPLACE, [value])]}
                )
            connection.search(
                samba_dc.base_dn, "(objectClass=*)", ldap3.BASE, attributes=["lockoutThreshold"]
            )
            return str(connection.response[0]["attributes"]["lockoutThreshold"])
        finally:
            connection.unbind()

    before = threshold()
    assert threshold(str(LOCKOUT_THRESHOLD)) == str(LOCKOUT_THRESHOLD)
    try:
        yield BadPasswords(samba_dc)
    finally:
        threshold(before)


# ---------------------------------------------------------------------------- the terminal
@pytest.fixture
def config(samba_dc: Directory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The lab config with the test keyring allowed, and no password in the environment."""
    path = Lab(samba_dc, tmp_path, monkeypatch).config(set_password=False)
    text = path.read_text(encoding="utf-8")
    path.write_text("[keyring]\nallow_plaintext = true\n\n" + text, encoding="utf-8")
    return path


def child_env() -> dict[str, str]:
    """This test's isolated environment (HOME, XDG dirs, trail, keyring), for a child."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    assert "BITKEY_DIR_PASSWORD" not in env
    return env


class Terminal:
    """`bitkey-dir ARGS` in a pseudo-terminal; everything it writes is kept in ``transcript``."""

    def __init__(self, *args: str) -> None:
        self._log = io.StringIO()
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "bitkey_dir", *args],
            env=child_env(),
            cwd=str(ROOT),
            encoding="utf-8",
            timeout=60,
            dimensions=(50, 400),  # long lines stay whole
        )
        self.child.logfile_read = self._log  # what the child wrote, echo included

    @property
    def transcript(self) -> str:
        return self._log.getvalue()

    def expect(self, pattern: str | re.Pattern[str]) -> None:
        self.child.expect(pattern)

    def answer_prompt(self, password: str) -> None:
        """Wait for the prompt, check that the terminal no longer echoes, type ``password``."""
        self.child.expect(PROMPT)
        assert self.child.waitnoecho(timeout=10), f"echo still on:\n{self.transcript}"
        self.child.sendline(password)

    def finish(self) -> int:
        """The exit status; fails if the child asks for a password again instead of ending."""
        index = self.child.expect([pexpect.EOF, PROMPT])
        assert index == 0, f"asked again:\n{self.transcript}"
        self.child.close()
        assert self.child.exitstatus is not None, self.transcript
        return int(self.child.exitstatus)

    def close(self) -> None:
        if self.child.isalive():
            self.child.close(force=True)


@pytest.fixture
def terminal() -> Iterator[Callable[..., Terminal]]:
    """Start `bitkey-dir ARGS` on a pty; a child left running by a failed test is killed."""
    started: list[Terminal] = []

    def start(*args: str) -> Terminal:
        started.append(Terminal(*args))
        return started[-1]

    yield start
    for child in started:
        child.close()


def assert_clean(text: str, *, revealed: Sequence[str] = ()) -> None:
    """No bind password, no recovery password but ``revealed``, no traceback in ``text``, and
    no bind password in the access trail."""
    assert "Traceback" not in text, text
    assert "internal error" not in text, text
    for password in BIND_PASSWORDS:
        assert password not in text, f"{password!r} shown:\n{text}"
    allowed = {*revealed, *(key.replace("-", "") for key in revealed)}
    for secret in SECRETS:
        if secret not in allowed:
            assert secret not in text, f"a recovery password not asked for:\n{text}"
    trail = Path(os.environ["BITKEY_DIR_TRAIL"])
    if trail.exists():
        logged = trail.read_text(encoding="utf-8")
        assert not [p for p in (*BIND_PASSWORDS, *SECRETS) if p in logged], logged


def ws001_passwords(samba_dc: Directory) -> list[str]:
    return [key.password for key in samba_dc.keys(COMPUTER)]


def find_args(config: Path) -> list[str]:
    return ["--config", str(config), "find", "--computer", COMPUTER, "--source", "lab"]


# ------------------------------------------------------------------------------------- find
def test_find_asks_on_a_terminal_and_stores_nothing(
    config: Path,
    file_keyring: KeyringFile,
    samba_dc: Directory,
    bad_passwords: BadPasswords,
    terminal: Callable[..., Terminal],
) -> None:
    last_failure = bad_passwords.last()
    run = terminal(*find_args(config))
    run.answer_prompt(HELPDESK.password)
    assert run.finish() == 0, run.transcript
    keys = ws001_passwords(samba_dc)
    assert all(key in run.transcript for key in keys), run.transcript
    assert_clean(run.transcript, revealed=keys)
    assert len(PROMPT.findall(run.transcript)) == 1
    assert "notice" not in run.transcript  # the keyring was usable and nothing was refused
    assert file_keyring.entries() == {}  # a plain prompt stores nothing
    assert bad_passwords.last() == last_failure  # not one failed bind


@pytest.mark.parametrize("answer", ["enter", "ctrl-d"])
def test_an_empty_answer_at_the_prompt_is_exit_3_without_a_bind(
    config: Path,
    file_keyring: KeyringFile,
    bad_passwords: BadPasswords,
    terminal: Callable[..., Terminal],
    answer: str,
) -> None:
    last_failure = bad_passwords.last()
    run = terminal(*find_args(config))
    run.expect(PROMPT)
    if answer == "enter":
        run.child.sendline("")
    else:
        run.child.sendeof()
    assert run.finish() == 3, run.transcript
    # The error starts on a line of its own and does not tell a terminal user to use one.
    assert "\nbitkey-dir: error: lab: no password typed: nothing to sign in" in run.transcript
    assert "run on a terminal" not in run.transcript
    assert bad_passwords.last() == last_failure


def test_a_refused_stored_password_is_removed_then_asked_once_and_stored_again(
    config: Path,
    file_keyring: KeyringFile,
    samba_dc: Directory,
    bad_passwords: BadPasswords,
    terminal: Callable[..., Terminal],
) -> None:
    file_keyring.store(ENTRY, WRONG_PASSWORD)
    before = bad_passwords.count()
    run = terminal(*find_args(config))
    run.expect(REFUSED)
    run.expect(PROMPT)
    # While the prompt waits: the stored password was tried once and is gone already.
    assert bad_passwords.count() == before + 1
    failed_at = bad_passwords.last()
    assert file_keyring.entries() == {}
    assert run.child.waitnoecho(timeout=10)
    run.child.sendline(HELPDESK.password)
    assert run.finish() == 0, run.transcript
    keys = ws001_passwords(samba_dc)
    assert all(key in run.transcript for key in keys), run.transcript
    assert_clean(run.transcript, revealed=keys)
    assert len(re.findall(REFUSED, run.transcript)) == 1
    assert len(PROMPT.findall(run.transcript)) == 1
    # The typed password worked, so it takes the refused one's place in the keyring.
    assert file_keyring.entries() == {ENTRY: HELPDESK.password}
    # The successful bind reset the count, and no failed bind came after the first.
    assert bad_passwords.count() == 0
    assert bad_passwords.last() == failed_at


def test_a_refused_stored_password_and_a_wrong_typed_one_end_the_run(
    config: Path,
    file_keyring: KeyringFile,
    bad_passwords: BadPasswords,
    terminal: Callable[..., Terminal],
) -> None:
    file_keyring.store(ENTRY, WRONG_PASSWORD)
    before = bad_passwords.count()
    run = terminal(*find_args(config))
    run.expect(REFUSED)
    run.answer_prompt(OTHER_WRONG_PASSWORD)
    assert run.finish() == 3, run.transcript  # finish() fails if asked once more
    assert_clean(run.transcript)
    assert len(PROMPT.findall(run.transcript)) == 1
    assert f"rejected the user name or password for {ACCOUNT}" in run.transcript
    assert file_keyring.entries() == {}
    assert bad_passwords.count() == before + 2  # the stored one, the typed one: no third


# ------------------------------------------------------------------------------------ login
def test_login_on_a_terminal_then_find_without_one(
    config: Path,
    file_keyring: KeyringFile,
    samba_dc: Directory,
    bad_passwords: BadPasswords,
    terminal: Callable[..., Terminal],
) -> None:
    last_failure = bad_passwords.last()
    run = terminal("--config", str(config), "login", "lab")
    run.answer_prompt(HELPDESK.password)
    assert run.finish() == 0, run.transcript
    assert f"lab: bound to {samba_dc.url} as {ACCOUNT}; the password is stored" in run.transcript
    assert_clean(run.transcript)
    assert len(PROMPT.findall(run.transcript)) == 1
    assert file_keyring.entries() == {ENTRY: HELPDESK.password}

    # No terminal now: the password comes from the keyring, and nobody is asked.
    found = subprocess.run(
        [sys.executable, "-m", "bitkey_dir", *find_args(config), "--format", "json"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert found.returncode == 0, found.stderr
    shown = [key["recovery_password"] for key in json.loads(found.stdout)["keys"]]
    assert sorted(shown) == sorted(ws001_passwords(samba_dc))
    assert "password of" not in found.stderr
    assert "notice" not in found.stderr
    assert_clean(found.stderr)
    assert_clean(found.stdout, revealed=shown)
    assert file_keyring.entries() == {ENTRY: HELPDESK.password}
    assert bad_passwords.last() == last_failure  # not one failed bind in either run


def test_login_on_a_terminal_with_a_wrong_password_stores_nothing(
    config: Path,
    file_keyring: KeyringFile,
    bad_passwords: BadPasswords,
    terminal: Callable[..., Terminal],
) -> None:
    before = bad_passwords.count()
    run = terminal("--config", str(config), "login", "lab")
    run.answer_prompt(WRONG_PASSWORD)
    assert run.finish() == 3, run.transcript
    assert_clean(run.transcript)
    assert len(PROMPT.findall(run.transcript)) == 1
    assert f"rejected the user name or password for {ACCOUNT}" in run.transcript
    assert "the password is stored" not in run.transcript
    assert file_keyring.entries() == {}
    assert bad_passwords.count() == before + 1
