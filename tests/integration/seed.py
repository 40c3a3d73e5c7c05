"""The directory the AD integration tests run against: every case issue 3 lists, deterministic.

Key IDs, volume GUIDs and recovery passwords are derived from fixed labels (or spelled out
where a test needs a particular Key ID), so every run seeds exactly the same data.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from examples.lab.samba_dc import (
    ComputerSpec,
    GroupSpec,
    RecoveryKey,
    SeedSpec,
    UserSpec,
    derived_guid,
    derived_recovery_password,
)

REALM: Final = "BITKEY.TEST"
DOMAIN: Final = "BITKEY"
HOSTNAME: Final = "dc1"
DNS_DOMAIN: Final = REALM.lower()

WORKSTATIONS: Final = "OU=Workstations,OU=Corp"
LAPTOPS: Final = "OU=Laptops,OU=Workstations,OU=Corp"
SERVERS: Final = "OU=Servers,OU=Corp"
LAB: Final = "OU=Lab"

# The helpdesk may read recovery passwords below OU=Workstations (OU=Laptops included) only.
HELPDESK: Final = UserSpec("helpdesk1", "Helpd3sk!Pass", recovery_read_ous=(WORKSTATIONS,))
# Any authenticated user sees the recovery objects (generic read on the OUs), not passwords.
PLAIN: Final = UserSpec("plainuser", "Pla1nUser!Pass")
# The portal's roles come from groups: ADVANCED is in "BitLocker Advanced" through a nested
# group (only a transitive read finds it) and may also read key packages; AUDITOR reads none.
ADVANCED: Final = UserSpec(
    "advanced1",
    "Adv4nced!Pass",
    recovery_read_ous=(WORKSTATIONS,),
    key_package_read_ous=(WORKSTATIONS,),
)
AUDITOR: Final = UserSpec("auditor1", "Aud1tor!Pass")
ADVANCED_GROUP: Final = "BitLocker Advanced"
AUDITORS_GROUP: Final = "BitLocker Auditors"
GROUPS: Final = (
    GroupSpec("Helpdesk Tier 2", ("advanced1",)),
    GroupSpec(ADVANCED_GROUP, ("Helpdesk Tier 2",)),
    GroupSpec(AUDITORS_GROUP, ("auditor1",)),
)

# Two keys, on two computers, whose Key IDs share their first 8 digits.
COLLIDING_PREFIX: Final = "A1B2C3D4"
COLLIDING_WS002: Final = "A1B2C3D4-1111-4111-8111-111111111111"
COLLIDING_LT001: Final = "A1B2C3D4-2222-4222-8222-222222222222"
# ODD01's only key carries one GUID in its name and another in msFVE-RecoveryGuid: a prefix
# search by the name's GUID must be confirmed from the attribute, and so find nothing.
ODD_NAME_GUID: Final = derived_guid("ODD01/name")


def _at(text: str) -> dt.datetime:
    """A local time with its UTC offset, as in a recovery object's name."""
    return dt.datetime.fromisoformat(text)


def _key(label: str, created: str, *, key_id: str | None = None) -> RecoveryKey:
    return RecoveryKey.derive(label, _at(created), key_id=key_id)


# WS001's keys are listed oldest first by their local times, but their UTC instants order them
# differently: newest first is 09:00Z (-08:00), 05:00Z (+00:00), 03:30Z (+05:30).
WS001_KEYS: Final = (
    _key("WS001/1", "2024-06-01T09:00:00+05:30"),
    _key("WS001/2", "2024-06-01T01:00:00-08:00"),
    _key("WS001/3", "2024-06-01T05:00:00+00:00"),
)

SPEC: Final = SeedSpec(
    ous=("OU=Corp", WORKSTATIONS, LAPTOPS, SERVERS, LAB),
    computers=(
        ComputerSpec("WS001", WORKSTATIONS, WS001_KEYS),
        ComputerSpec(
            "WS002",
            WORKSTATIONS,
            (_key("WS002/1", "2024-05-01T12:00:00+02:00", key_id=COLLIDING_WS002),),
        ),
        ComputerSpec("PC(01)", WORKSTATIONS, (_key("PC(01)/1", "2024-04-05T12:00:00+05:30"),)),
        ComputerSpec("NOKEY01", WORKSTATIONS),
        ComputerSpec(
            "ODD01",
            WORKSTATIONS,
            (
                RecoveryKey(
                    created=_at("2024-03-03T03:03:00+00:00"),
                    recovery_guid=derived_guid("ODD01/1"),
                    password=derived_recovery_password("ODD01/1"),
                    volume_guid=derived_guid("ODD01/1", "volume"),
                    name_guid=ODD_NAME_GUID,
                ),
            ),
        ),
        ComputerSpec(
            "LT001",
            LAPTOPS,
            (
                _key("LT001/1", "2023-12-31T23:59:00+00:00"),
                _key("LT001/2", "2024-02-10T08:00:00-05:00", key_id=COLLIDING_LT001),
            ),
        ),
        ComputerSpec(
            "LT002",
            LAPTOPS,
            (_key("LT002/1", "2024-01-15T08:30:00+01:00"),),
            rename_to="LT002-NEW",
        ),
        ComputerSpec(
            "LT003", LAPTOPS, (_key("LT003/1", "2024-02-20T16:45:00-05:00"),), delete=True
        ),
        ComputerSpec(
            "SRV001",
            SERVERS,
            (
                _key("SRV001/1", "2023-05-10T07:05:00+02:00"),
                _key("SRV001/2", "2024-05-10T07:05:00+02:00"),
            ),
        ),
        ComputerSpec("LAB001", LAB, (_key("LAB001/1", "2024-07-07T07:07:00+09:00"),)),
    ),
    users=(HELPDESK, PLAIN, ADVANCED, AUDITOR),
    authenticated_read_ous=("OU=Corp", LAB),
    groups=GROUPS,
)


def computer_spec(name: str) -> ComputerSpec:
    """The spec of a computer by its original name."""
    for computer in SPEC.computers:
        if computer.name == name:
            return computer
    raise KeyError(name)


def newest_first(keys: tuple[RecoveryKey, ...] | list[RecoveryKey]) -> list[RecoveryKey]:
    return sorted(keys, key=lambda key: key.created, reverse=True)


def every_password() -> list[str]:
    """Every seeded recovery password, deleted computers' included: none may ever leak."""
    return [key.password for computer in SPEC.computers for key in computer.keys]


# The name prefix of computers a test makes for itself and deletes after it: AD keeps them,
# with their keys, in Deleted Objects, where an export of deleted computers' keys later in
# the session meets them too.
TEMPORARY_COMPUTER = "ROT"
