"""Start a Samba AD DC with sample BitLocker keys on a loopback address, for trying bitkey-dir.

Run as root (Samba binds ports 88, 389 and 636): ``sudo examples/lab/start``. It writes
``examples/lab/lab.toml`` and keeps the DC running until Ctrl-C, Ctrl-D or SIGTERM.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import os
import shlex
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Final

from examples.lab.samba_dc import (
    ComputerSpec,
    RecoveryKey,
    SambaDC,
    SambaDCError,
    SeedSpec,
    UserSpec,
    free_loopback_host,
)

HERE: Final = Path(__file__).resolve().parent
REPO: Final = HERE.parent.parent
REALM: Final = "CORP.EXAMPLE.COM"
DOMAIN: Final = "CORP"
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


def _config(dc: SambaDC) -> str:
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
            "# Written by examples/lab/start for the lab DC; rewritten on every start.\n",
            '[defaults]\nsources = ["lab"]\n',
            source(
                "lab",
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


def _shown(path: Path) -> str:
    """A path as the user can paste it: relative to the current folder when inside it."""
    try:
        return shlex.quote(str(path.relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(str(path))


def _instructions(dc: SambaDC, config: Path) -> str:
    cli = REPO / ".venv" / "bin" / "bitkey-dir"
    bitkey = f"{_shown(cli) if cli.exists() else 'bitkey-dir'} --config {_shown(config)}"
    helpdesk = f"BITKEY_DIR_PASSWORD={shlex.quote(HELPDESK.password)}"
    ccache = Path(tempfile.gettempdir()) / KERBEROS_CACHE
    pc42 = PC_0042_NEW.key_id[:8]
    return f"""
The lab DC is running on {dc.ldaps_url} (LDAPS) and {dc.ldap_url} (StartTLS):
domain {dc.realm}, base DN {dc.base_dn}, DC host name {dc.fqdn}; its Global Catalog
answers on {dc.gc_url}, its DNS server on {dc.dns_server}.
Its config is in {_shown(config)}. Try it as the helpdesk user:

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
  export KRB5_CONFIG={_shown(dc.krb5_conf)} KRB5CCNAME=FILE:{ccache}
  echo {shlex.quote(HELPDESK.password)} | kinit {HELPDESK.name}@{dc.realm}
  {bitkey} find --source lab-kerberos --key-id {pc42}
  # no servers: the DC and the Global Catalog found through DNS SRV records:
  {bitkey} -v find --source lab-forest --key-id {pc42}

Stop the lab with Ctrl-C (or Ctrl-D on a terminal, or SIGTERM).
"""


def _stop_on_signal(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", help="loopback address (default: 127.0.0.53 or a free one)")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "bitkey-dir-lab",
        help="the DC's files and the provisioned template (default: %(default)s)",
    )
    parser.add_argument("--config", type=Path, default=HERE / "lab.toml", help="config to write")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print(
            "The lab DC needs root (ports 88, 389, 636): sudo examples/lab/start", file=sys.stderr
        )
        return 2
    work: Path = args.workdir.absolute()
    work.mkdir(mode=0o755, exist_ok=True)
    if work.is_symlink() or work.stat().st_uid != os.geteuid():
        print(f"{work} is not a folder of ours; choose another --workdir", file=sys.stderr)
        return 2
    with open(work / "lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"A lab is already running from {work}.", file=sys.stderr)
            return 2
        shutil.rmtree(work / "dc", ignore_errors=True)
        try:
            host = args.host or free_loopback_host([f"127.0.0.{n}" for n in range(53, 64)])
            print(f"Starting the lab DC on {host} (the first start provisions: ~10 s)...")
            dc = SambaDC.start(
                work / "dc",
                host=host,
                realm=REALM,
                domain=DOMAIN,
                template_cache=work / "templates",
            )
        except SambaDCError as exc:
            print(f"Cannot start the lab DC: {exc}", file=sys.stderr)
            return 1
        signal.signal(signal.SIGTERM, _stop_on_signal)
        if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:  # nohup means: keep running
            signal.signal(signal.SIGHUP, _stop_on_signal)
        try:
            dc.seed(SAMPLE)
            config: Path = args.config.resolve()
            config.write_text(_config(dc), encoding="utf-8")
            print(_instructions(dc, config), flush=True)
            if sys.stdin.isatty():
                while sys.stdin.readline():  # until Ctrl-D
                    pass
            else:  # under nohup, a script or a service manager: until a signal
                while True:
                    signal.pause()
        except KeyboardInterrupt:
            pass
        finally:
            print("Stopping the lab DC.", file=sys.stderr)
            dc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
