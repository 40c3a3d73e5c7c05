"""The AD lab: a Samba AD DC with sample computers, BitLocker keys and a delegated helpdesk user
(samba_dc.py provisions, starts and seeds it; start.py runs it).

Keys are derived from labels, so the lab is the same on every start. Its passwords are
public: the lab is for trying bitkey-dir, not for real keys.
"""

from __future__ import annotations

import datetime as dt
import shlex
import tempfile
from pathlib import Path
from typing import Final

from examples.lab.samba_dc import ComputerSpec, RecoveryKey, SambaDC, SeedSpec, UserSpec

REALM: Final = "CORP.EXAMPLE.COM"
DOMAIN: Final = "CORP"
SOURCE: Final = "lab"  # the helpdesk, by password
HELPDESK: Final = UserSpec(
    "helpdesk", "Helpd3sk!Lab", recovery_read_ous=("OU=Workstations,OU=Corp",)
)
KERBEROS_CACHE: Final = "bitkey-lab-helpdesk.ccache"


def _key(label: str, created: str, key_id: str | None = None) -> RecoveryKey:
    # Passwords are derived at run time: a file here that held them would itself look like a
    # key file to bitkey-dir's file source (which tests point at examples/).
    return RecoveryKey.derive(label, dt.datetime.fromisoformat(created), key_id=key_id)


PC_0042_NEW: Final = _key("PC-0042/2025", "2025-10-02T09:14:00+02:00")
COLLIDING_PREFIX: Final = "B17C0DE5"  # shared by a laptop's key and a server's key

SAMPLE: Final = SeedSpec(
    ous=(
        "OU=Corp",
        "OU=Workstations,OU=Corp",
        "OU=Laptops,OU=Workstations,OU=Corp",
        "OU=Servers,OU=Corp",
        "OU=Lab,OU=Corp",
        "OU=Kiosks,OU=Corp",
    ),
    computers=(
        ComputerSpec(
            "PC-0042",
            "OU=Workstations,OU=Corp",
            (PC_0042_NEW, _key("PC-0042/2023", "2023-04-11T15:02:00+02:00")),
        ),
        ComputerSpec(
            "PC-0107",
            "OU=Laptops,OU=Workstations,OU=Corp",
            (
                _key(
                    "PC-0107",
                    "2025-03-14T09:30:00-08:00",
                    f"{COLLIDING_PREFIX}-1A2B-4C3D-8E4F-5A6B7C8D9E0F",
                ),
            ),
        ),
        ComputerSpec(
            "SRV-DB02",
            "OU=Servers,OU=Corp",
            (
                _key(
                    "SRV-DB02",
                    "2024-11-30T23:59:00+05:30",
                    f"{COLLIDING_PREFIX}-9F8E-4D7C-8B6A-594837261504",
                ),
            ),
        ),
        ComputerSpec(
            "PC(LAB)-2", "OU=Lab,OU=Corp", (_key("PC(LAB)-2", "2023-06-01T08:00:00+02:00"),)
        ),
        ComputerSpec("PC-0017", "OU=Workstations,OU=Corp"),  # never escrowed a key
        ComputerSpec(
            "KIOSK-3",
            "OU=Kiosks,OU=Corp",
            (_key("KIOSK-3", "2022-08-08T08:08:00+00:00"),),
            delete=True,
        ),
    ),
    users=(HELPDESK,),
    # Everyone signed in may see that recovery objects exist; passwords stay confidential.
    authenticated_read_ous=("OU=Corp",),
)


def config(dc: SambaDC) -> str:
    """The lab's AD sources, for the config file start.py writes."""

    def source(name: str, comment: str, **extra: str) -> str:
        lines = [
            f"# {comment}",
            f"[sources.{name}]",
            'type = "ad"',
            f'servers = ["{dc.ldaps_url}", "{dc.ldap_url}"]  # LDAPS, then StartTLS',
            f'ca_file = "{dc.ca_file}"',
            f'base_dn = "{dc.base_dn}"',
            f'kerberos_host = "{dc.fqdn}"  # the DC\'s name in its Kerberos principal',
            "timeout = 5",
        ]
        lines += [f'{key} = "{value}"' for key, value in extra.items()]
        return "\n".join(lines) + "\n"

    return "\n".join(
        [
            source(
                SOURCE,
                "The helpdesk: may read recovery passwords in OU=Workstations only.",
                user=f"{HELPDESK.name}@{dc.realm.lower()}",
            ),
            source(
                "lab-admin",
                "Domain admin: reads everything, deleted computers too.",
                user=dc.admin_principal,
            ),
            source(
                "lab-kerberos",
                "The helpdesk with a Kerberos ticket (kinit) instead of a password.",
                auth="kerberos",
            ),
            "\n".join(
                [
                    "# The helpdesk again, with no servers: the DC and the Global Catalog are",
                    "# found through the SRV records of the DC's own DNS server.",
                    "[sources.lab-forest]",
                    'type = "ad"',
                    f'domain = "{dc.realm.lower()}"',
                    f'dns_servers = ["{dc.dns_server}"]',
                    "global_catalog = true",
                    f'ca_file = "{dc.ca_file}"',
                    f'user = "{HELPDESK.name}@{dc.realm.lower()}"',
                    "timeout = 5",
                ]
            )
            + "\n",
        ]
    )


def instructions(dc: SambaDC, config_file: str, bitkey: str) -> str:
    """What to try, with ``bitkey`` the command line to run (config included)."""
    helpdesk = f"BITKEY_DIR_PASSWORD={shlex.quote(HELPDESK.password)}"
    ccache = Path(tempfile.gettempdir()) / KERBEROS_CACHE
    pc42 = PC_0042_NEW.key_id[:8]
    return f"""
The lab DC is running on {dc.ldaps_url} (LDAPS) and {dc.ldap_url} (StartTLS):
domain {dc.realm}, base DN {dc.base_dn}, DC host name {dc.fqdn}; its Global Catalog
answers on {dc.gc_url}, its DNS server on {dc.dns_server}.
Its sources are in {config_file}. Try it as the helpdesk user:

  {helpdesk} {bitkey} find --key-id {pc42}

More, after `export {helpdesk}` (the helpdesk may read keys in OU=Workstations only):

  {bitkey} find --computer 'pc-0*' --format table
  # two keys share these 8 digits; one of them is outside the helpdesk's OU:
  {bitkey} find --key-id {COLLIDING_PREFIX} --format table
  # objects visible but passwords not readable (exit 3), and no key escrowed (exit 1):
  {bitkey} find --computer 'PC(LAB)-2'
  {bitkey} find --computer PC-0017
  # a deleted computer, as the domain admin (password {dc.admin_password}):
  BITKEY_DIR_PASSWORD={shlex.quote(dc.admin_password)} \\
    {bitkey} find --source lab-admin --computer KIOSK-3 --include-deleted
  # Kerberos instead of a password:
  export KRB5_CONFIG={shlex.quote(str(dc.krb5_conf))} KRB5CCNAME=FILE:{ccache}
  echo {shlex.quote(HELPDESK.password)} | kinit {HELPDESK.name}@{dc.realm}
  {bitkey} find --source lab-kerberos --key-id {pc42}
  # no servers: the DC and the Global Catalog found through DNS SRV records:
  {bitkey} -v find --source lab-forest --key-id {pc42}
"""
