"""What the integration tests' fixtures return, and what test modules share about them.

The fixtures themselves are in conftest.py; the AD data they seed is in seed.py. A test
module imports from here, never from another test module.

- the Samba DC (fixture ``samba_dc``): :class:`Directory`; :class:`Lab` (fixture ``lab``)
  writes `[sources.lab]` configs for it and runs `find` with them; :func:`ad_checks` is what
  no run against it may show.
- the Graph emulator (fixture ``graph``): :class:`Entra` (fixture ``entra``) registers apps,
  writes `[sources.cloud]` configs and runs `find` with them; ``entra.checks`` is what no run
  against it may show; the request patterns and helpers read what the emulator recorded.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from examples.lab.graph_emulator import App, GraphEmulator, RequestRecord, User
from examples.lab.graph_emulator import RecoveryKey as EntraKey
from examples.lab.samba_dc import RecoveryKey, SambaDC, SambaDCError, SeedResult, tool
from tests.command_line import Checks, Outcome, invoke_with, toml_value
from tests.conftest import ROOT
from tests.integration.seed import HELPDESK, PLAIN, computer_spec, every_password, newest_first

DEBIAN_PACKAGES = (
    "samba samba-ad-provision samba-dsdb-modules samba-vfs-modules krb5-user libkrb5-dev"
)
PIP_PACKAGES = "ldap3 cryptography gssapi"


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail under CI=true, where these tests must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the integration tests must run)", pytrace=False)
    pytest.skip(reason)


def found_tool(command: str) -> bool:
    try:
        tool(command)  # PATH, then /usr/sbin and /usr/bin (samba is in /usr/sbin)
    except SambaDCError:
        return False
    return True


def require_samba() -> None:
    missing = [cmd for cmd in ("samba", "samba-tool", "samba_spnupdate") if not found_tool(cmd)]
    if missing:
        unavailable(
            f"{', '.join(missing)} not found: install the Debian packages {DEBIAN_PACKAGES} "
            "(apt-get install --no-install-recommends)"
        )
    modules = [m for m in ("ldap3", "cryptography") if importlib.util.find_spec(m) is None]
    if modules:
        unavailable(f"Python packages missing: .venv/bin/pip install {PIP_PACKAGES}")
    if os.geteuid() != 0:
        unavailable("a Samba AD DC needs root (it binds ports 88, 389 and 636)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# -- Active Directory: the Samba DC -------------------------------------------------------------

PASSWORDS = every_password()
SECRETS = [*PASSWORDS, *(p.replace("-", "") for p in PASSWORDS)]
ADMIN = "admin"
WRONG_PASSWORD = "Wr0ng!Secret-4242"  # must never be echoed


def ad_checks() -> Checks:
    """What no run against the DC may show: a seeded password but on a success's stdout, the
    bind password it was given ever."""
    bind_password = os.environ.get("BITKEY_DIR_PASSWORD")
    return Checks(secrets=SECRETS, never_shown=[bind_password] if bind_password else [])


@dataclass(frozen=True)
class Directory:
    """The running DC and what was seeded into it."""

    dc: SambaDC
    seeded: SeedResult

    @property
    def url(self) -> str:
        return self.dc.ldaps_url

    @property
    def ldap_url(self) -> str:
        return self.dc.ldap_url

    @property
    def ca_file(self) -> Path:
        return self.dc.ca_file

    @property
    def base_dn(self) -> str:
        return self.dc.base_dn

    @property
    def kerberos_host(self) -> str:
        return self.dc.fqdn

    def upn(self, user: str) -> str:
        return f"{user}@{self.dc.realm.lower()}"

    def location(self, computer: str) -> str:
        return self.seeded.computers[computer].ou_dn

    def keys(self, computer: str) -> list[RecoveryKey]:
        """A computer's keys (by its original name), newest first."""
        return newest_first(computer_spec(computer).keys)

    def record(self, computer: str, key: RecoveryKey, *, source: str = "lab") -> dict[str, Any]:
        """The JSON record `find` must print for ``key`` of ``computer`` (original name)."""
        seeded = self.seeded.computers[computer]
        return {
            "source": source,
            "computer": seeded.name,
            "key_id": key.key_id,
            "recovery_password": key.password,
            "created": key.created_text,
            "volume_type": None,
            "volume_id": str(key.volume_guid).upper(),
            "device_id": None,
            "location": seeded.ou_dn,
            "deleted": seeded.deleted,
        }


class Lab:
    """Writes `[sources.lab]` configs for the DC and runs `find` with them."""

    def __init__(self, directory: Directory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
        self.directory = directory
        self.tmp_path = tmp_path
        self.monkeypatch = monkeypatch
        self.accounts = {
            "helpdesk": (directory.upn(HELPDESK.name), HELPDESK.password),
            "plain": (directory.upn(PLAIN.name), PLAIN.password),
            ADMIN: (directory.dc.admin_principal, directory.dc.admin_password),
        }
        for name in ("BITKEY_DIR_PASSWORD", "BITKEY_DIR_USER", "BITKEY_DIR_CA_FILE"):
            monkeypatch.delenv(name, raising=False)

    def config(
        self, *, user: str | None = "helpdesk", set_password: bool = True, **settings: object
    ) -> Path:
        """A config whose only source is `lab`; sets BITKEY_DIR_PASSWORD for ``user``.

        ``user`` is "helpdesk", "plain", "admin", None (no user key) or a literal user name.
        """
        table: dict[str, object] = {
            "type": "ad",
            "servers": [self.directory.url],
            "ca_file": str(self.directory.ca_file),
            "timeout": 5,
        }
        if user is not None:
            upn, password = self.accounts.get(user, (user, None))
            table["user"] = upn
            if password is not None and set_password:
                self.monkeypatch.setenv("BITKEY_DIR_PASSWORD", password)
        table.update(settings)
        lines = ["[defaults]", 'sources = ["lab"]', "", "[sources.lab]"]
        lines += [
            f"{key} = {toml_value(value)}" for key, value in table.items() if value is not None
        ]
        path = self.tmp_path / "config.toml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def find(
        self,
        *args: str,
        user: str | None = "helpdesk",
        set_password: bool = True,
        **settings: object,
    ) -> Outcome:
        config = self.config(user=user, set_password=set_password, **settings)
        return invoke_with(
            config, "find", *args, "--source", "lab", "--format", "json", **ad_checks()
        )


def records(directory: Directory, *computers: str) -> list[dict[str, Any]]:
    """Expected JSON records of these computers' keys, newest first over all of them."""
    pairs = [(c, key) for c in computers for key in computer_spec(c).keys]
    pairs.sort(key=lambda pair: pair[1].created, reverse=True)
    return [directory.record(c, key) for c, key in pairs]


# -- Entra ID: the Graph emulator ----------------------------------------------------------------

SOURCE = "cloud"
SECRET_ENV = "BITKEY_DIR_CLIENT_SECRET"
SECRET = "Zq8~bitkey-dir.test-secret_42"  # never echoed
WRONG_SECRET = "Wr0ng~not-the-secret_99"  # never echoed either
FULL = ("BitlockerKey.Read.All", "Device.Read.All")
GRAPH = r"^/v1\.0/"
KEYS = r"^/v1\.0/informationProtection/bitlocker/recoveryKeys"
KEY_LIST = KEYS + r"$"
KEY_GET = KEYS + r"/[^/]+$"
DEVICES = r"^/v1\.0/devices$"
BATCH = r"^/v1\.0/\$batch$"
TOKEN = r"/oauth2/v2\.0/token$"
ROLE_NAMES = (
    "Cloud Device Administrator",
    "Helpdesk Administrator",
    "Intune Service Administrator",
    "Security Administrator",
    "Security Reader",
    "Global Reader",
)


class Entra:
    """Registers the app, writes `[sources.cloud]` configs and runs `find` with them."""

    def __init__(self, graph: GraphEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
        self.graph = graph
        self.tmp_path = tmp_path
        self.monkeypatch = monkeypatch
        self.client_id = "00000000-0000-0000-0000-000000000000"
        monkeypatch.delenv(SECRET_ENV, raising=False)

    def daemon(self, *roles: str, secret: str = SECRET) -> App:
        """A confidential app with these application permissions (default: FULL)."""
        app = self.graph.add_app(
            "bitkey-dir daemon", public_client=False, secret=secret, app_roles=roles or FULL
        )
        self.client_id = app.client_id
        self.monkeypatch.setenv(SECRET_ENV, secret)
        return app

    def public(self, *scopes: str) -> App:
        """A public client with these consented delegated permissions (default: FULL)."""
        app = self.graph.add_app("bitkey-dir", delegated_scopes=scopes or FULL)
        self.client_id = app.client_id
        return app

    def config(self, **settings: object) -> Path:
        table: dict[str, object] = {
            "type": "entra",
            "tenant_id": self.graph.tenant_id,
            "client_id": self.client_id,
            "auth": "client-secret",
            "authority_host": self.graph.base_url,
            "graph_url": self.graph.graph_url,
            "ca_file": str(self.graph.ca_file),
            "timeout": 5,
            # Most tests count the requests of a live lookup; those of the index (and of its
            # default age, index_max_age=None) say so.
            "index_max_age": "off",
        }
        table.update(settings)
        lines = ["[defaults]", f'sources = ["{SOURCE}"]', "", "[keyring]"]
        # The tests' file keyring is plaintext; without a test selecting it, there is none.
        lines += ["allow_plaintext = true", "", f"[sources.{SOURCE}]"]
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items() if v is not None]
        path = self.tmp_path / "config.toml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def find(self, *args: str, **settings: object) -> Outcome:
        config = self.config(**settings)
        return invoke_with(config, "find", *args, "--source", SOURCE, "-f", "json", **self.checks)

    def login(self, **settings: object) -> Outcome:
        return invoke_with(self.config(**settings), "login", SOURCE, **self.checks)

    def secrets(self) -> list[str]:
        """The client secrets, and the emulator's recovery passwords as typed or not."""
        passwords = [key.key for key in self.graph.recovery_keys.values()]
        return [
            SECRET,
            WRONG_SECRET,
            *passwords,
            *(password.replace("-", "") for password in passwords),
        ]

    @property
    def checks(self) -> Checks:
        """What no run may show: a recovery password but on a success's stdout; a client
        secret or a token (a JWT: its header is base64 JSON, "eyJ...") ever."""
        return Checks(secrets=self.secrets(), never_shown=[SECRET, WRONG_SECRET, "eyJ"])


@contextmanager
def device_code_answered(
    graph: GraphEmulator, user: User | None, *, action: str = "approve"
) -> Iterator[list[str]]:
    """Approve (or decline, or expire) the next device code from a thread, as the user at
    the browser would.

    Yields a list that receives the user code, to check the instructions against.
    """
    codes: list[str] = []
    problems: list[BaseException] = []

    def answer() -> None:
        try:
            flow = graph.wait_for_device_code(timeout=20)
            codes.append(flow.user_code)
            if action == "expire":
                graph.expire_device_code(flow)
            elif action == "decline" or user is None:
                graph.decline_device_code(flow)
            else:
                graph.approve_device_code(flow, user)
        except BaseException as exc:  # reported by the test, not lost in the thread
            problems.append(exc)

    thread = threading.Thread(target=answer, name="device-code-user", daemon=True)
    thread.start()
    try:
        yield codes
    finally:
        thread.join(timeout=25)
    assert not problems, problems


def entra_record(key: EntraKey, computer: str | None) -> dict[str, Any]:
    """The JSON record `find` must print for an Entra key."""
    return {
        "source": SOURCE,
        "computer": computer,
        "key_id": key.id.upper(),
        "recovery_password": key.key,
        "created": key.created.isoformat(),
        "volume_type": key.volume_type,
        "volume_id": None,
        "device_id": key.device_id,
        "location": None,
        "deleted": False,
    }


def day(n: int) -> dt.datetime:
    return dt.datetime(2025, 1, 1, 9, 30, tzinfo=dt.UTC) + dt.timedelta(days=n)


def only(
    graph: GraphEmulator,
    path: str,
    *,
    method: str | None = None,
    via_batch: bool | None = None,
) -> list[RequestRecord]:
    """The recorded requests whose path matches the regex `path`, in order."""
    pattern = re.compile(path)
    return [
        r
        for r in graph.requests
        if pattern.search(r.path)
        and (method is None or r.method == method)
        and (via_batch is None or r.via_batch == via_batch)
    ]


def read_ids(graph: GraphEmulator) -> list[str]:
    """Which keys' values were read (Entra's audit log), in order."""
    return [read.key_id for read in graph.key_reads]


LAB_READY = "Stop the lab"  # the last line examples/lab/start prints before it waits


@contextmanager
def lab_started(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """examples/lab/start ARGS with stdin closed, once it says it is ready; with what it said."""
    lab = subprocess.Popen(
        [str(ROOT / "examples" / "lab" / "start"), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        seen = ""
        deadline = time.monotonic() + 180
        assert lab.stdout is not None
        while LAB_READY not in seen and time.monotonic() < deadline:
            line = lab.stdout.readline()
            assert line, f"the lab ended early:\n{seen}"
            seen += line
        yield lab, seen
    finally:
        if lab.poll() is None:
            os.killpg(lab.pid, signal.SIGKILL)
            lab.wait()
