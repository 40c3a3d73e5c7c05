"""The Entra lab: the Graph emulator on loopback, with a sample tenant to try bitkey-dir's Entra ID
source on: devices and their BitLocker keys, an app registration, an Intune managed device
and a few entries in the directory audit log.

Every ID, key and password is fixed or derived from a label (as the AD lab derives its keys),
so the lab is the same on every start and the documentation can show its values. They are
public: the lab is for trying bitkey-dir, not for real keys.
"""

from __future__ import annotations

import datetime as dt
import shlex
import threading
import time
from dataclasses import dataclass
from typing import Final

from examples.lab.graph_emulator import GraphEmulator, User
from examples.lab.samba_dc import derived_guid, derived_recovery_password

TENANT_ID: Final = "8f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
TENANT_DOMAIN: Final = "corpexample.onmicrosoft.com"
CLIENT_ID: Final = "2d5e8f1a-3b6c-4d9e-8f2a-5b8c1d4e7f3a"
CLIENT_SECRET: Final = "Lab~Entra.Secret-2025"  # noqa: S105 - public, printed by start
DEFAULT_PORT: Final = 8443
SOURCE: Final = "cloud"  # the app itself, with its client secret
AGENT_SOURCE: Final = "cloud-agent"  # a person, signing in with a device code
COLLIDING_PREFIX: Final = "C0FFEE42"  # shared by a laptop's key and a server's key
# Application permissions for find, export, audit, index (the first two), rotate, reads and
# doctor (whether device owners may read their keys: the tenant's authorization policy).
APP_ROLES: Final = (
    "BitlockerKey.Read.All",
    "Device.Read.All",
    "DeviceManagementManagedDevices.ReadWrite.All",
    "AuditLog.Read.All",
    "Policy.Read.All",
)
AGENT_SCOPES: Final = ("BitlockerKey.Read.All", "Device.Read.All")
AGENT: Final = f"helpdesk@{TENANT_DOMAIN}"
APPROVAL_DELAY: Final = 3.0  # seconds a person would take to type the code


@dataclass(frozen=True)
class SampleKey:
    device: str  # the label of its device in DEVICES
    label: str  # its password (and, unless key_id is given, its ID) derive from it
    created: str
    volume_type: str = "operatingSystemVolume"
    key_id: str | None = None

    @property
    def id(self) -> str:
        """The key's ID as Graph returns it: lower case."""
        return (self.key_id or str(derived_guid(f"entra/{self.label}"))).lower()

    @property
    def password(self) -> str:
        return derived_recovery_password(f"entra/{self.label}")


# (label, display name): two devices share the name KIOSK-LOBBY, as Entra allows.
DEVICES: Final = (
    ("PC-0042", "PC-0042"),
    ("LT-0107", "LT-0107"),
    ("SRV-0009", "SRV-0009"),
    ("KIOSK-LOBBY/1", "KIOSK-LOBBY"),
    ("KIOSK-LOBBY/2", "KIOSK-LOBBY"),
    ("PC-0017", "PC-0017"),  # never escrowed a key
)
PC_0042_NEW: Final = SampleKey("PC-0042", "PC-0042/2025", "2025-10-02T07:14:00+00:00")
KEYS: Final = (
    PC_0042_NEW,
    SampleKey("PC-0042", "PC-0042/2023", "2023-04-11T13:02:00+00:00"),
    # Several keys on one device: its OS volume's (and an older one), a data volume's.
    SampleKey(
        "LT-0107",
        "LT-0107/os",
        "2025-03-14T17:30:00+00:00",
        key_id=f"{COLLIDING_PREFIX}-1A2B-4C3D-8E4F-5A6B7C8D9E0F",
    ),
    SampleKey("LT-0107", "LT-0107/os-2024", "2024-03-14T17:30:00+00:00"),
    SampleKey("LT-0107", "LT-0107/data", "2025-03-14T17:31:00+00:00", "fixedDataVolume"),
    SampleKey(
        "SRV-0009",
        "SRV-0009",
        "2024-11-30T18:29:00+00:00",
        key_id=f"{COLLIDING_PREFIX}-9F8E-4D7C-8B6A-594837261504",
    ),
    SampleKey("KIOSK-LOBBY/1", "KIOSK-LOBBY/1", "2024-06-01T08:00:00+00:00"),
    SampleKey("KIOSK-LOBBY/2", "KIOSK-LOBBY/2", "2025-01-20T08:00:00+00:00"),
)
MANAGED_DEVICE_ID: Final = str(derived_guid("entra/PC-0042", "managed device"))


def device_id(label: str) -> str:
    return str(derived_guid(f"entra/{label}", "device"))


def seed(graph: GraphEmulator) -> None:
    """Fill the emulator's home tenant (started with TENANT_ID) with the sample."""
    graph.add_app(
        "bitkey-dir lab",
        client_id=CLIENT_ID,
        public_client=True,  # "Allow public client flows": the device code of AGENT_SOURCE
        secret=CLIENT_SECRET,
        app_roles=APP_ROLES,
        delegated_scopes=AGENT_SCOPES,
    )
    agent = graph.add_user(
        AGENT,
        display_name="Helpdesk Agent",
        roles=["Helpdesk Administrator"],
        user_id=str(derived_guid("entra/user/helpdesk")),
    )
    auditor = graph.add_user(
        f"auditor@{TENANT_DOMAIN}",
        display_name="Security Auditor",
        roles=["Security Reader"],
        user_id=str(derived_guid("entra/user/auditor")),
    )
    devices = {
        label: graph.add_device(
            name,
            device_id=device_id(label),
            object_id=str(derived_guid(f"entra/{label}", "object")),
        )
        for label, name in DEVICES
    }
    keys = {
        sample.label: graph.add_recovery_key(
            devices[sample.device],
            key=sample.password,
            key_id=sample.id,
            created=dt.datetime.fromisoformat(sample.created),
            volume_type=sample.volume_type,
        )
        for sample in KEYS
    }
    # Intune manages PC-0042 with a rotation policy: `rotate` has it escrow a new key at once.
    graph.add_managed_device(
        devices["PC-0042"],
        managed_device_id=MANAGED_DEVICE_ID,
        user_principal_name=AGENT,
    )
    # Reads made elsewhere (the portal), for `bitkey-dir reads` to show beside its own.
    now = graph.now_datetime().replace(microsecond=0)
    for hours_ago, user, label in (
        (50, agent, "PC-0042/2023"),
        (26, auditor, "SRV-0009"),
        (3, agent, "KIOSK-LOBBY/2"),
    ):
        graph.add_audit_event(
            "Read BitLocker key",
            user=user,
            key=keys[label],
            time=now - dt.timedelta(hours=hours_ago),
        )


def approve_device_codes(graph: GraphEmulator, stopping: threading.Event) -> threading.Thread:
    """Approve every device code as AGENT a moment after it is asked for, as the person at the
    verification page would: `bitkey-dir login` can then be tried without a browser."""
    agent: User = next(u for u in graph.users.values() if u.user_principal_name == AGENT)

    def approve() -> None:
        while not stopping.is_set():
            try:
                flow = graph.wait_for_device_code(timeout=0.5)
            except TimeoutError:
                continue
            time.sleep(APPROVAL_DELAY)
            try:
                graph.approve_device_code(flow, agent)
            except ValueError:
                continue  # expired, or answered some other way meanwhile
            print(f"The lab approved the device code {flow.user_code} as {AGENT}.", flush=True)

    thread = threading.Thread(target=approve, name="device-code-approver", daemon=True)
    thread.start()
    return thread


def config(graph: GraphEmulator) -> str:
    """The lab's Entra sources, for the config file start.py writes."""

    def source(name: str, comment: str, auth: str) -> str:
        return "\n".join(
            [
                f"# {comment}",
                f"[sources.{name}]",
                'type = "entra"',
                f'tenant_id = "{TENANT_ID}"',
                f'client_id = "{CLIENT_ID}"',
                f'auth = "{auth}"',
                f'authority_host = "{graph.base_url}"  # the emulator is both login and Graph',
                f'graph_url = "{graph.graph_url}"',
                f'ca_file = "{graph.ca_file}"',
                "timeout = 10",
                "",
            ]
        )

    return "\n".join(
        [
            source(
                SOURCE,
                "The lab's app, signing in with its client secret (BITKEY_DIR_CLIENT_SECRET).",
                "client-secret",
            ),
            source(
                AGENT_SOURCE,
                f"A person with a device code; the lab approves it as {AGENT}.",
                "device-code",
            ),
        ]
    )


def instructions(graph: GraphEmulator, config_file: str, bitkey: str) -> str:
    """What to try, with ``bitkey`` the command line to run (config included)."""
    secret = f"BITKEY_DIR_CLIENT_SECRET={shlex.quote(CLIENT_SECRET)}"
    pc42 = PC_0042_NEW.id[:8].upper()
    return f"""
The Entra lab is running on {graph.base_url}: the identity platform and Microsoft
Graph of the tenant {TENANT_DOMAIN}, with a test CA of its own.
  tenant ID      {TENANT_ID}
  client ID      {CLIENT_ID} (the app registration "bitkey-dir lab")
  client secret  {CLIENT_SECRET} (public lab values, like the IDs)
  CA             {graph.ca_file}
Its sources are in {config_file}: {SOURCE} (the app's secret), {AGENT_SOURCE} (a device code).
Try it as the app:

  {secret} {bitkey} find --source {SOURCE} --key-id {pc42}

More, after `export {secret}`:

  {bitkey} find -s {SOURCE} --computer 'PC-*' --format table
  # two keys share these 8 digits:
  {bitkey} find -s {SOURCE} --key-id {COLLIDING_PREFIX} --format table
  # one device, three keys (its OS volume's, an older one, a data volume's):
  {bitkey} find -s {SOURCE} --computer LT-0107 --format table
  # two devices named KIOSK-LOBBY, each shown with its device ID; none for PC-0017 (exit 1):
  {bitkey} find -s {SOURCE} --computer KIOSK-LOBBY --format table
  {bitkey} find -s {SOURCE} --computer PC-0017
  # Intune rotates PC-0042's key (its new key is escrowed at once), then the audits:
  {bitkey} rotate -s {SOURCE} --key-id {pc42} --reason LAB-1
  {bitkey} audit -s {SOURCE} --disclosed
  {bitkey} audit -s {SOURCE}
  {bitkey} index refresh -s {SOURCE}
  # who read keys, by Entra's audit log (three reads were made elsewhere, in the portal):
  {bitkey} reads -s {SOURCE}
  # a person signing in on a terminal with a device code, which the lab approves by itself
  # after {APPROVAL_DELAY:.0f} s as {AGENT} (Helpdesk Administrator); each run asks
  # for a code, unless `login` could keep the tokens in a keyring:
  {bitkey} find -s {AGENT_SOURCE} --key-id {pc42}
  {bitkey} login {AGENT_SOURCE}
"""
