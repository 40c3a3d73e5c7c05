"""A large Active Directory estate on a Samba DC, and the baselines bitkey-dir is measured against.

    sudo .venv/bin/python benchmarks/estate.py --computers 10000 [--runs 3]
    sudo .venv/bin/python benchmarks/estate.py --computers 2000 10000   # how the baselines scale

Builds (once, then cached) a domain with N computers spread over five OUs and about 1.4
BitLocker recovery objects per computer: 8 % of the computers have none (the missing escrow an
audit must flag), 52 % one, 32 % two and 8 % three; 5 % have only keys older than 180 days.
The estate is deterministic for a given N, ``--seed`` and month (the key dates are relative to
the first day of the current month, so that "older than 180 days" holds all month).

Seeding does not go through LDAP: the provisioned domain (examples/lab/samba_dc.py's template)
is copied and filled offline, while no samba runs on it, by Samba's own Python bindings
(``SamDB``, the full DSDB module stack, as ``samba-tool ... -H sam.ldb`` does) in one
transaction in ``batch_mode`` (what ``samba-tool domain join`` uses for whole replicas). It runs
under the Debian interpreter (/usr/bin/python3, package python3-samba): the project's venv has
no Samba bindings. The seeded domain is kept under /tmp/bitkey-dir-estate/, keyed by N, seed,
month and recipe version, with ``truth.json``: every computer's DN, OU, operating system,
keys (Key ID, creation date, password) and audit status, and the totals. Later runs copy it and
start Samba in about a second.

Then it measures, as the domain Administrator (``--account helpdesk``: a user delegated to
read recovery passwords below OU=Corp, as samba_dc.py's ``grant_recovery_password_read``
does), the median of ``--runs`` runs of:

* ``ldapsearch`` dumping every recovery object with its password (the floor of an export),
  paged as AD requires, and once more unpaged (Samba allows it: the floor of the floor);
* ldeep's ``bitlockerkeys`` (installed into its own venv, /opt/ldeep-venv, on first use);
* the audit-shaped pair of ``ldapsearch`` runs: every computer (cn, distinguishedName,
  operatingSystem), and every recovery object by DN only, without the password.

For each: wall time, client CPU (user + system of the child, from ``os.wait4``), the DC's CPU
(its processes' utime + stime from /proc), the client's own peak RSS (GNU time's ``%M``: the
child's ru_maxrss would include this Python's size), and what came back, checked against
truth.json: every key exactly once, every computer, exactly the computers without keys.

A later benchmark imports ``start_estate``, ``stop_estate``, ``measure`` and ``load_truth``.
Needs root and what examples/lab/README.md lists (Samba, ldap3 and cryptography in the venv),
plus the Debian packages ``ldap-utils`` (ldapsearch) and ``time`` (GNU time). The DC listens
on one of 127.0.0.200-220 only, and is stopped at the end.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # a script: the repository's own modules are beside it

from examples.lab.samba_dc import (  # noqa: E402 - after the path set-up; stdlib-only at import time
    DEFAULT_ADMIN_PASSWORD,
    RecoveryKey,
    SambaDC,
    SambaDCError,
    ensure_template,
    escape_rdn,
    free_loopback_host,
    realm_to_base_dn,
)

# Bump when the estate's shape or the seeding changes: cached estates are then rebuilt.
RECIPE: Final = "1"
REALM: Final = "CORP.EXAMPLE.COM"
DOMAIN: Final = "CORP"
HOSTNAME: Final = "dc1"
BASE_DN: Final = realm_to_base_dn(REALM)
DEFAULT_CACHE: Final = Path(tempfile.gettempdir()) / "bitkey-dir-estate"
HOSTS: Final = tuple(f"127.0.0.{n}" for n in range(200, 221))
SAMBA_PYTHON: Final = "/usr/bin/python3"  # Debian's, with python3-samba
GNU_TIME: Final = "/usr/bin/time"  # Debian package time: a child's own peak RSS
LDEEP_VERSION: Final = "2.0.3"
DEFAULT_LDEEP_VENV: Final = Path("/opt/ldeep-venv")
STALE_AFTER_DAYS: Final = 180

ROOT_OU: Final = "OU=Corp"  # every estate computer is below it
DC_OU: Final = "OU=Domain Controllers"
# (OU relative to the base DN, computer name prefix, share of the computers, operating system)
OU_LAYOUT: Final = (
    ("OU=Workstations,OU=Corp", "WS", 0.40, "Windows 11 Enterprise"),
    ("OU=Laptops,OU=Workstations,OU=Corp", "LT", 0.35, "Windows 11 Enterprise"),
    ("OU=Servers,OU=Corp", "SRV", 0.12, "Windows Server 2022 Datacenter"),
    ("OU=Kiosks,OU=Corp", "KIOSK", 0.08, "Windows 10 IoT Enterprise LTSC"),
    ("OU=Lab,OU=Corp", "LAB", 0.05, "Windows 10 Enterprise"),
)
# Share of the computers with 0, 1, 2 and 3 keys: 0.52 + 2 * 0.32 + 3 * 0.08 = 1.40 on average.
KEY_COUNT_SHARES: Final = (0.08, 0.52, 0.32, 0.08)
ONLY_STALE_SHARE: Final = 0.05  # of all computers; taken from those with keys
# Newest keys are at most RECENT_DAYS old on the first of the month (171 days on its last day);
# stale ones at least OLD_DAYS: on either side of the 180-day cut-off all month long.
RECENT_DAYS: Final = 140
OLD_DAYS: Final = 240
HISTORY_DAYS: Final = 4 * 365
UTC_OFFSETS_MINUTES: Final = (0, 60, 120, -300, -480, 330)
HELPDESK_NAME: Final = "helpdesk"
HELPDESK_PASSWORD: Final = "Helpd3sk!Estate"  # a throw-away test domain
# The in-memory index cache of the seeding transaction (hash buckets): Samba's provision picks
# 202481 for a 100,000-user database; with the far smaller default, adds slow down as it grows.
INDEX_CACHE_SIZE: Final = 202481


# --------------------------------------------------------------------------------------------
# What the estate holds
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlannedComputer:
    name: str
    ou: str  # relative to the base DN
    operating_system: str
    keys: tuple[RecoveryKey, ...]

    @property
    def dn(self) -> str:
        return f"CN={escape_rdn(self.name)},{self.ou},{BASE_DN}"


def _quotas(total: int, shares: Sequence[float]) -> list[int]:
    """``total`` split by ``shares``, the rounding left-over going to the largest share."""
    counts = [round(total * share) for share in shares]
    counts[counts.index(max(counts))] += total - sum(counts)
    return counts


def _shuffled(rng: random.Random, counts: Sequence[int]) -> list[int]:
    """One index per item: index i appears counts[i] times, in random order."""
    items = [index for index, count in enumerate(counts) for _ in range(count)]
    rng.shuffle(items)
    return items


def month_start(today: dt.date | None = None) -> dt.date:
    return (today or dt.datetime.now(dt.UTC).date()).replace(day=1)


def plan_estate(n_computers: int, seed: int, as_of: dt.date) -> list[PlannedComputer]:
    """The computers and keys of the estate: the same for the same arguments."""
    rng = random.Random(f"bitkey-dir estate {RECIPE} {seed} {n_computers}")
    ou_of = _shuffled(rng, _quotas(n_computers, [share for _, _, share, _ in OU_LAYOUT]))
    key_counts = _shuffled(rng, _quotas(n_computers, KEY_COUNT_SHARES))
    with_keys = [i for i, count in enumerate(key_counts) if count]
    only_stale = set(rng.sample(with_keys, round(n_computers * ONLY_STALE_SHARE)))
    reference = dt.datetime.combine(as_of, dt.time(), dt.UTC)
    width = max(5, len(str(n_computers)))

    def moment(days_ago_min: int, days_ago_max: int, offset: dt.timezone) -> dt.datetime:
        seconds = rng.randrange(days_ago_min * 86400, days_ago_max * 86400)
        return (reference - dt.timedelta(seconds=seconds)).astimezone(offset)

    computers = []
    for i in range(n_computers):
        ou, prefix, _, operating_system = OU_LAYOUT[ou_of[i]]
        name = f"{prefix}-{i:0{width}d}"
        offset = dt.timezone(dt.timedelta(minutes=rng.choice(UTC_OFFSETS_MINUTES)))
        if i in only_stale:
            dates = [moment(OLD_DAYS, HISTORY_DAYS, offset) for _ in range(key_counts[i])]
        elif key_counts[i]:
            newest = moment(1, RECENT_DAYS, offset)
            older = [moment(2, HISTORY_DAYS, offset) for _ in range(key_counts[i] - 1)]
            dates = [newest, *(min(d, newest - dt.timedelta(days=1)) for d in older)]
        else:
            dates = []
        keys = tuple(
            RecoveryKey.derive(f"estate/{seed}/{name}/{j}", created)
            for j, created in enumerate(sorted(dates))
        )
        computers.append(PlannedComputer(name, ou, operating_system, keys))
    key_ids = [key.key_id for computer in computers for key in computer.keys]
    if len(set(key_ids)) != len(key_ids):
        raise SambaDCError("two planned keys share a Key ID")
    return computers


def _status(keys: Sequence[RecoveryKey], as_of: dt.date) -> str:
    if not keys:
        return "missing"
    cut_off = dt.datetime.combine(as_of, dt.time(), dt.UTC) - dt.timedelta(days=STALE_AFTER_DAYS)
    return "stale" if max(key.created for key in keys) < cut_off else "ok"


def truth_of(computers: Sequence[PlannedComputer], seed: int, as_of: dt.date) -> dict[str, Any]:
    """What the directory holds, for checking exports and audits against it."""
    per_ou: dict[str, Counter[str]] = {}
    by_name: dict[str, Any] = {}
    for computer in computers:
        status = _status(computer.keys, as_of)
        ou_dn = f"{computer.ou},{BASE_DN}"
        per_ou.setdefault(ou_dn, Counter())[status] += 1
        per_ou[ou_dn]["keys"] += len(computer.keys)
        by_name[computer.name] = {
            "dn": computer.dn,
            "ou": ou_dn,
            "operating_system": computer.operating_system,
            "status": status,
            "keys": [
                {"key_id": k.key_id, "created": k.created_text, "password": k.password}
                for k in computer.keys
            ],
        }
    statuses = Counter(entry["status"] for entry in by_name.values())
    return {
        "recipe": RECIPE,
        "seed": seed,
        "realm": REALM,
        "base_dn": BASE_DN,
        # Statuses hold for any "now" in the month of as_of, with a 180-day cut-off.
        "as_of": as_of.isoformat(),
        "stale_after_days": STALE_AFTER_DAYS,
        "counts": {
            "computers": len(computers),
            "keys": sum(len(c.keys) for c in computers),
            "missing": statuses["missing"],
            "stale": statuses["stale"],
            "ok": statuses["ok"],
            "per_ou": {ou: dict(sorted(c.items())) for ou, c in sorted(per_ou.items())},
            "other_computers": 1,  # the DC's own account: no keys, outside OU=Corp
        },
        "computers": by_name,
        # In the directory but not in the estate: found by searches from the domain's root.
        "other_computers": {
            HOSTNAME.upper(): {
                "dn": f"CN={HOSTNAME.upper()},{DC_OU},{BASE_DN}",
                "ou": f"{DC_OU},{BASE_DN}",
                "status": "missing",
                "keys": [],
            }
        },
    }


def load_truth(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


# --------------------------------------------------------------------------------------------
# Building the estate: offline, into a copy of the provisioned template
# --------------------------------------------------------------------------------------------
def _plan_for_seeding(computers: Sequence[PlannedComputer]) -> dict[str, Any]:
    ous = [ROOT_OU, *(ou for ou, _, _, _ in OU_LAYOUT)]
    return {
        "base_dn": BASE_DN,
        "realm": REALM,
        "ous": sorted(ous, key=lambda relative: relative.count(",")),
        "helpdesk": {"name": HELPDESK_NAME, "password": HELPDESK_PASSWORD, "ou": ROOT_OU},
        "computers": [
            {
                "dn": c.dn,
                "name": c.name,
                "os": c.operating_system,
                "keys": [
                    {
                        "dn": f"CN={escape_rdn(k.cn)},{c.dn}",
                        "recovery_guid": str(k.recovery_guid),
                        "volume_guid": str(k.volume_guid),
                        "password": k.password,
                        "created": k.created.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S.0Z"),
                    }
                    for k in c.keys
                ],
            }
            for c in computers
        ],
    }


def _seed_offline(db: Path, plan_path: Path) -> None:
    """Add the plan's objects to the sam.ldb under ``db``; samba must not be running on it.

    Runs under the Debian interpreter (see SAMBA_PYTHON). Prints its phase timings as JSON.
    """
    import ldb  # type: ignore[import-not-found]
    from samba.auth import system_session  # type: ignore[import-not-found]
    from samba.dcerpc import misc, security  # type: ignore[import-not-found]
    from samba.ndr import ndr_unpack  # type: ignore[import-not-found]
    from samba.param import LoadParm  # type: ignore[import-not-found]
    from samba.samdb import SamDB  # type: ignore[import-not-found]
    from samba.sd_utils import SDUtils  # type: ignore[import-not-found]

    plan = json.loads(plan_path.read_text())
    realm: str = plan["realm"]
    conf = plan_path.with_name("offline-smb.conf")
    conf.write_text(
        "[global]\n"
        f"netbios name = {HOSTNAME.upper()}\nworkgroup = {DOMAIN}\nrealm = {realm}\n"
        "server role = active directory domain controller\n"
        f"private dir = {db}/private\nstate directory = {db}/state\nlock directory = {db}\n"
        f"cache directory = {db}/cache\nbinddns dir = {db}/bind-dns\n"
    )
    lp = LoadParm()
    lp.load(str(conf))
    phases: dict[str, float] = {}
    t0 = time.monotonic()
    samdb = SamDB(
        url=str(db / "private" / "sam.ldb"),
        session_info=system_session(),
        lp=lp,
        # No sub-transaction per operation (on any failure the whole transaction is lost, and
        # the build starts over), and an index cache sized for the estate.
        options=["batch_mode:1", f"transaction_index_cache_size:{INDEX_CACHE_SIZE}"],
    )
    base_dn: str = plan["base_dn"]
    samdb.transaction_start()
    try:
        for ou in plan["ous"]:
            name = ou.split(",", 1)[0].split("=", 1)[1]
            samdb.add({"dn": f"{ou},{base_dn}", "objectClass": "organizationalUnit", "ou": name})
        # The helpdesk and its delegation come before the computers, so that their recovery
        # objects inherit the ACEs when created (no propagation over the whole tree later).
        helpdesk = plan["helpdesk"]
        samdb.newuser(helpdesk["name"], helpdesk["password"])
        found = samdb.search(
            base_dn,
            expression=f"(sAMAccountName={helpdesk['name']})",
            attrs=["objectSid"],
        )
        sid = str(ndr_unpack(security.dom_sid, found[0]["objectSid"][0]))

        def schema_guid(display_name: str) -> str:
            schema = samdb.search(
                str(samdb.get_schema_basedn()),
                expression=f"(lDAPDisplayName={display_name})",
                attrs=["schemaIDGUID"],
            )
            return str(ndr_unpack(misc.GUID, schema[0]["schemaIDGUID"][0]))

        attr = schema_guid("msFVE-RecoveryPassword")
        cls = schema_guid("msFVE-RecoveryInformation")
        SDUtils(samdb).dacl_add_ace(
            f"{helpdesk['ou']},{base_dn}",
            f"(OA;CIIO;CRRP;{attr};{cls};{sid})(OA;CIIO;RP;;{cls};{sid})",
        )
        phases["open, OUs, helpdesk"] = time.monotonic() - t0
        t1 = time.monotonic()
        for computer in plan["computers"]:
            samdb.add(
                {
                    "dn": computer["dn"],
                    "objectClass": "computer",
                    "sAMAccountName": f"{computer['name']}$",
                    "dNSHostName": f"{computer['name'].lower()}.{realm.lower()}",
                    "userAccountControl": "4096",  # WORKSTATION_TRUST_ACCOUNT
                    "operatingSystem": computer["os"],
                }
            )
            for key in computer["keys"]:
                samdb.add(
                    {
                        "dn": key["dn"],
                        "objectClass": "msFVE-RecoveryInformation",
                        "msFVE-RecoveryPassword": key["password"],
                        "msFVE-RecoveryGuid": uuid.UUID(key["recovery_guid"]).bytes_le,
                        "msFVE-VolumeGuid": uuid.UUID(key["volume_guid"]).bytes_le,
                    }
                )
                # whenCreated is the time of the add whatever the add says; a modify with the
                # relax control dates the object as its name does, as on a real estate.
                when = ldb.Message(ldb.Dn(samdb, key["dn"]))
                when["whenCreated"] = ldb.MessageElement(
                    key["created"], ldb.FLAG_MOD_REPLACE, "whenCreated"
                )
                samdb.modify(when, controls=["relax:0"])
        phases["computers and keys"] = time.monotonic() - t1
        t2 = time.monotonic()
        samdb.transaction_commit()
        phases["commit"] = time.monotonic() - t2
    except BaseException:
        samdb.transaction_cancel()
        raise
    print(json.dumps(phases))


@dataclass(frozen=True)
class Estate:
    """A seeded domain in the cache, ready for SambaDC.start(template_cache=...)."""

    template_cache: Path  # holds the seeded copy under the template's own name
    truth_path: Path
    seeding_seconds: float  # when it was built
    seeding_phases: dict[str, float]
    built_now: bool


def _samba_python_check() -> None:
    probe = subprocess.run(
        [SAMBA_PYTHON, "-c", "import samba.samdb"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        raise SambaDCError(
            f"{SAMBA_PYTHON} cannot import samba (Debian package python3-samba): "
            f"{probe.stderr.strip()[-300:]}"
        )


def ensure_estate(
    n_computers: int,
    *,
    seed: int = 1,
    as_of: dt.date | None = None,
    cache_dir: Path = DEFAULT_CACHE,
) -> Estate:
    """Build the estate into ``cache_dir`` unless it is there already; safe for concurrent use."""
    as_of = as_of or month_start()
    cache_dir = cache_dir.resolve()
    cache_dir.mkdir(parents=True, exist_ok=True)
    base = ensure_template(
        cache_dir / "base",
        realm=REALM,
        domain=DOMAIN,
        hostname=HOSTNAME,
        admin_password=DEFAULT_ADMIN_PASSWORD,
    )
    key = "|".join([RECIPE, str(n_computers), str(seed), as_of.isoformat(), base.name])
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    estate_dir = cache_dir / f"estate-n{n_computers}-seed{seed}-{as_of:%Y%m}-{digest}"
    marker = estate_dir / "build.json"

    def cached(built_now: bool) -> Estate:
        build = json.loads(marker.read_text())
        # SambaDC.start(template_cache=estate_dir) must find this copy, never provision anew.
        if not (estate_dir / base.name / ".complete").exists():
            raise SambaDCError(f"{estate_dir} lacks {base.name}: remove it and run again")
        return Estate(
            estate_dir,
            estate_dir / "truth.json",
            build["seeding_seconds"],
            build["phases"],
            built_now,
        )

    if marker.exists():
        return cached(built_now=False)
    with open(cache_dir / f".{estate_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return cached(built_now=False)
        _samba_python_check()
        tmp = cache_dir / f".{estate_dir.name}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            computers = plan_estate(n_computers, seed, as_of)
            plan_path = tmp / "plan.json"
            plan_path.write_text(json.dumps(_plan_for_seeding(computers)))
            shutil.copytree(base, tmp / base.name, symlinks=True)
            t0 = time.monotonic()
            proc = subprocess.run(
                [
                    SAMBA_PYTHON,
                    str(Path(__file__).resolve()),
                    "--offline-seed",
                    str(tmp / base.name),
                    str(plan_path),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            seconds = time.monotonic() - t0
            if proc.returncode != 0:
                raise SambaDCError(f"offline seeding failed:\n{proc.stderr[-3000:]}")
            phases = json.loads(proc.stdout.strip().splitlines()[-1])
            plan_path.unlink()
            (tmp / "offline-smb.conf").unlink()
            truth = truth_of(computers, seed, as_of)
            (tmp / "truth.json").write_text(json.dumps(truth, indent=1))
            build = {"seeding_seconds": seconds, "phases": phases, "counts": truth["counts"]}
            (tmp / "build.json").write_text(json.dumps(build, indent=1))
            shutil.rmtree(estate_dir, ignore_errors=True)
            tmp.rename(estate_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return cached(built_now=True)


# --------------------------------------------------------------------------------------------
# Starting it
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Account:
    name: str  # sAMAccountName
    password: str
    upn: str  # what simple binds (ldapsearch -D, bitkey-dir's user) use


@dataclass(frozen=True)
class Credentials:
    admin: Account
    helpdesk: Account  # may read every recovery password below OU=Corp, nothing more
    domain: str  # NetBIOS name
    realm: str
    base_dn: str

    def account(self, which: str) -> Account:
        return self.helpdesk if which == "helpdesk" else self.admin


CREDENTIALS: Final = Credentials(
    admin=Account("Administrator", DEFAULT_ADMIN_PASSWORD, f"Administrator@{REALM.lower()}"),
    helpdesk=Account(HELPDESK_NAME, HELPDESK_PASSWORD, f"{HELPDESK_NAME}@{REALM.lower()}"),
    domain=DOMAIN,
    realm=REALM,
    base_dn=BASE_DN,
)


def start_estate(
    n_computers: int = 10_000,
    *,
    seed: int = 1,
    host: str | None = None,
    cache_dir: Path = DEFAULT_CACHE,
    workdir: Path | None = None,
    as_of: dt.date | None = None,
) -> tuple[SambaDC, Path, Credentials]:
    """Start a DC holding the estate (built first if not cached); stop it with stop_estate.

    ``workdir`` (missing or empty; default: a new temporary folder) gets the DC's copy of the
    domain, its CA (``dc.ca_file``) and logs; stop_estate removes it. ``dc.timings`` has
    ``template`` (copying the seeded domain) and ``start`` (Samba up to LDAPS and Kerberos
    answering); ``ensure_estate`` (cached by then) has the seeding figures.
    """
    estate = ensure_estate(n_computers, seed=seed, as_of=as_of, cache_dir=cache_dir)
    host = host or free_loopback_host(HOSTS)
    ours = workdir is None
    workdir = workdir or Path(tempfile.mkdtemp(prefix="bitkey-estate-"))
    try:
        dc = SambaDC.start(
            workdir,
            host=host,
            realm=REALM,
            domain=DOMAIN,
            hostname=HOSTNAME,
            template_cache=estate.template_cache,
        )
    except BaseException:
        if ours:
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    return dc, estate.truth_path, CREDENTIALS


def stop_estate(dc: SambaDC) -> None:
    """Stop the DC and remove its working copy (the cached estate stays)."""
    try:
        dc.stop()
    finally:
        shutil.rmtree(dc.workdir, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Measuring a client
# --------------------------------------------------------------------------------------------
def measure(argv: Sequence[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    """Run ``argv`` once: (wall s, CPU s = user + system, peak RSS MB, stdout).

    A child's ru_maxrss counts the memory of the process it was forked from (exec records the
    old address space's high-water mark), so a child of this Python would show this Python's
    size. GNU time forks the command from its own ~1 MB and reports the command's peak (%M);
    the CPU is GNU time's ``os.wait4`` rusage, which holds the command's (GNU time's own is
    nil). Output goes to files, so that no pipe reading here slows the command down.
    """
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r") as peak,
    ):
        start = time.perf_counter()
        proc = subprocess.Popen(
            [GNU_TIME, "-q", "-f", "%M", "-o", peak.name, *argv],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        peak_kb = peak.read().strip().splitlines()
    if proc.returncode != 0:
        raise SambaDCError(f"{argv[0]} exited {proc.returncode}: {stderr[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, int(peak_kb[-1]) / 1024, stdout


def process_group_cpu(pgid: int) -> float:
    """User + system CPU seconds of a process group's live processes and their reaped children."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path("/proc", entry, "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == pgid:
                total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return total / ticks


# --------------------------------------------------------------------------------------------
# Reading what the baselines return
# --------------------------------------------------------------------------------------------
def parse_ldif(text: str) -> Iterator[dict[str, list[str | bytes]]]:
    """Entries of ``ldapsearch -LLL`` output: folded lines joined, ``::`` values decoded."""
    entry: dict[str, list[str | bytes]] = {}
    lines: list[str] = []
    for raw in [*text.splitlines(), ""]:
        if raw.startswith(" ") and lines:
            lines[-1] += raw[1:]
            continue
        if raw.startswith("#"):
            continue
        if raw == "":
            for line in lines:
                name, _, value = line.partition(":")
                decoded: str | bytes
                if value.startswith(":"):
                    decoded = base64.b64decode(value[1:].strip())
                    if name.lower() == "dn":
                        decoded = decoded.decode()
                else:
                    decoded = value.strip()
                entry.setdefault(name.lower(), []).append(decoded)
            if entry:
                yield entry
            entry, lines = {}, []
            continue
        lines.append(raw)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _parent(dn: str) -> str:
    return dn.split(",", 1)[1]  # the RDNs here hold no escaped comma


def _compare(expected: Counter[Any], got: Counter[Any]) -> str:
    lost = sum((expected - got).values())
    extra = sum((got - expected).values())
    return "exact" if not lost and not extra else f"{lost} lost, {extra} extra/doubled"


def check_keys_ldif(stdout: str, truth: dict[str, Any]) -> tuple[int, str]:
    expected = Counter(
        (k["key_id"], k["password"]) for c in truth["computers"].values() for k in c["keys"]
    )
    got: Counter[tuple[str, str]] = Counter()
    for entry in parse_ldif(stdout):
        guid = entry["msfve-recoveryguid"][0]
        key_id = str(uuid.UUID(bytes_le=guid if isinstance(guid, bytes) else guid.encode()))
        password = _text(entry.get("msfve-recoverypassword", [""])[0])
        got[(key_id.upper(), password)] += 1
    return sum(got.values()), _compare(expected, got)


def check_keys_ldeep(stdout: str, truth: dict[str, Any]) -> tuple[int, str]:
    expected = Counter(
        (name, k["password"]) for name, c in truth["computers"].items() for k in c["keys"]
    )
    got: Counter[tuple[str, str]] = Counter()
    for line in stdout.splitlines():
        if line.startswith("Machine: ") and " | Key: " in line:
            machine, _, password = line.removeprefix("Machine: ").partition(" | Key: ")
            got[(machine, password.strip())] += 1
    return sum(got.values()), _compare(expected, got)


def _all_computers(truth: dict[str, Any]) -> list[dict[str, Any]]:
    return [*truth["computers"].values(), *truth["other_computers"].values()]


def check_computers(stdout: str, truth: dict[str, Any]) -> tuple[int, str]:
    expected = Counter(c["dn"].lower() for c in _all_computers(truth))
    got = Counter(_text(e["dn"][0]).lower() for e in parse_ldif(stdout))
    return sum(got.values()), _compare(expected, got)


def check_escrow(stdout: str, truth: dict[str, Any]) -> tuple[int, str]:
    """Recovery objects by DN only: are they all there, and which computers have none?"""
    computers = _all_computers(truth)
    expected = Counter(c["dn"].lower() for c in computers for _ in c["keys"])
    entries = list(parse_ldif(stdout))
    got = Counter(_parent(_text(e["dn"][0])).lower() for e in entries)
    verdict = _compare(expected, got)
    if any(len(e) > 1 for e in entries):
        verdict += ", attributes returned"
    without = {c["dn"].lower() for c in computers} - set(got)
    missing = {c["dn"].lower() for c in computers if c["status"] == "missing"}
    verdict += "; missing escrow " + ("exact" if without == missing else "WRONG")
    return sum(got.values()), verdict


# --------------------------------------------------------------------------------------------
# The baselines
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Baseline:
    label: str
    argv: list[str]
    check: Callable[[str, dict[str, Any]], tuple[int, str]]  # -> (returned, verdict)


@dataclass(frozen=True)
class Result:
    label: str
    wall: float
    cpu: float
    dc_cpu: float
    rss_mb: float
    returned: int
    verdict: str
    cpus: list[float] = field(default_factory=list)  # each run's, in the order of the rounds


def ensure_ldeep(venv: Path) -> Path:
    """ldeep in its own virtualenv (its ldap3 fork must not meet the project's ldap3)."""
    ldeep = venv / "bin" / "ldeep"
    if not ldeep.exists():
        print(f"installing ldeep {LDEEP_VERSION} into {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "pip"), "install", "--quiet", f"ldeep=={LDEEP_VERSION}"]
        subprocess.run(pip, check=True)
    return ldeep


def baselines(
    dc: SambaDC, account: Account, domain: str, ldeep: Path | None, base_dn: str
) -> list[Baseline]:
    def ldapsearch(ldap_filter: str, *attributes: str, paged: bool = True) -> list[str]:
        return [
            "ldapsearch", "-LLL", "-x", "-H", dc.ldaps_url, "-D", account.upn,
            "-w", account.password, "-b", base_dn,
            *(["-E", "pr=1000/noprompt"] if paged else []),
            ldap_filter, *attributes,
        ]  # fmt: skip

    recovery = "(objectClass=msFVE-RecoveryInformation)"
    attributes = ("msFVE-RecoveryPassword", "msFVE-RecoveryGuid", "msFVE-VolumeGuid", "whenCreated")
    found = [
        Baseline("ldapsearch: keys", ldapsearch(recovery, *attributes), check_keys_ldif),
        # Samba answers an unpaged search in full (AD stops at MaxPageSize, 1000 entries), and
        # pages cost it about 3 times the CPU: the floor below what any AD client could do.
        Baseline(
            "ldapsearch: keys, unpaged",
            ldapsearch(recovery, *attributes, paged=False),
            check_keys_ldif,
        ),
    ]
    if ldeep is not None:
        # ldeep always connects with ssl.CERT_NONE: it cannot be told to check a CA. Its
        # default NTLM bind (Sicily) is one Samba does not offer; -t simple binds DOMAIN\user.
        argv = [
            str(ldeep), "ldap", "-t", "simple", "-d", domain, "-s", dc.ldaps_url,
            "-u", account.name, "-p", account.password, "bitlockerkeys",
        ]  # fmt: skip
        found.append(Baseline("ldeep bitlockerkeys", argv, check_keys_ldeep))
    computers = ldapsearch(
        "(objectCategory=computer)", "cn", "distinguishedName", "operatingSystem"
    )
    found += [
        Baseline("ldapsearch: audit computers", computers, check_computers),
        Baseline("ldapsearch: audit recovery DNs", ldapsearch(recovery, "1.1"), check_escrow),
    ]
    return found


BITKEY_DIR: Final = Path(sys.executable).with_name("bitkey-dir")


def ours(dc: SambaDC, account: Account, base_dn: str, work: Path) -> list[Baseline]:
    """bitkey-dir's export (JSON, to a file) and audit, as the same account."""
    # Byte-compiled first, as pip installs it (and as ldeep's venv is): with
    # PYTHONDONTWRITEBYTECODE set, an editable checkout would be compiled on every run.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "bitkey_dir")], check=True)
    config = work / "estate.toml"
    config.write_text(
        '[sources.estate]\ntype = "ad"\n'
        f'servers = ["{dc.ldaps_url}"]\nca_file = "{dc.ca_file}"\n'
        f'base_dn = "{base_dn}"\nuser = "{account.upn}"\n',
        encoding="utf-8",
    )
    exported = work / "export.json"
    common = [str(BITKEY_DIR), "--config", str(config)]
    export = [*common, "export", "--source", "estate", "-o", str(exported), "--force"]
    audit = [*common, "audit", "--source", "estate", "--format", "json", "--stale-days", "180"]

    def check_export(stdout: str, truth: dict[str, Any]) -> tuple[int, str]:
        expected = Counter(
            (k["key_id"], k["password"]) for c in truth["computers"].values() for k in c["keys"]
        )
        records = json.loads(exported.read_text(encoding="utf-8"))["keys"]
        got = Counter((r["key_id"], r["recovery_password"]) for r in records)
        return sum(got.values()), _compare(expected, got)

    def check_audit(stdout: str, truth: dict[str, Any]) -> tuple[int, str]:
        rows = json.loads(stdout)["computers"]
        expected = {c["dn"].lower(): c["status"] for c in truth["computers"].values()}
        got = {f"cn={row['computer']},{row['location']}".lower(): row["status"] for row in rows}
        wrong = sum(1 for dn, status in expected.items() if got.get(dn) != status)
        missing = {dn for dn, status in got.items() if status == "missing"}
        flagged = {dn for dn, status in expected.items() if status == "missing"}
        others = {c["dn"].lower() for c in truth["other_computers"].values()}
        verdict = "statuses exact" if not wrong else f"{wrong} statuses wrong"
        exact = missing - others == flagged
        verdict += "; missing escrow " + ("exact" if exact else "WRONG")
        return len(rows), verdict

    return [
        Baseline("bitkey-dir export", export, check_export),
        Baseline("bitkey-dir audit", audit, check_audit),
    ]


def compared(checkout: Path, found: Sequence[Baseline]) -> Baseline:
    """The same export run from another checkout (``--compare-with``, e.g. a worktree of an
    older commit), through this venv with that checkout first on the path."""
    export = next(b for b in found if b.label == "bitkey-dir export")
    return Baseline(f"  export of {checkout.name}", export.argv, export.check)


def run_side_by_side(
    dc: SambaDC,
    runs_of: Sequence[tuple[Baseline, dict[str, str]]],
    truth: dict[str, Any],
    runs: int,
) -> list[Result]:
    """Each baseline ``runs`` times, round by round (one run of each, then the next round).

    A shared machine's speed drifts over minutes (other load, frequency): run in blocks, one
    tool after the other, a drift shows as a difference between tools. Interleaved, every tool
    sees the same moments, and each round gives a pair of runs that can be compared as a ratio.
    """
    samples: list[list[tuple[float, float, float, float]]] = [[] for _ in runs_of]
    checked: list[tuple[int, str]] = [(0, "")] * len(runs_of)
    for _ in range(runs):
        for at, (baseline, env) in enumerate(runs_of):
            dc_before = process_group_cpu(dc.pid or 0)
            wall, cpu, rss, stdout = measure(baseline.argv, env)
            dc_cpu = process_group_cpu(dc.pid or 0) - dc_before
            checked[at] = baseline.check(stdout, truth)
            samples[at].append((wall, cpu, dc_cpu, rss))
    results = []
    for (baseline, _), taken, (returned, verdict) in zip(runs_of, samples, checked, strict=True):
        wall, cpu, dc_cpu, rss = (statistics.median(column) for column in zip(*taken, strict=True))
        results.append(
            Result(
                baseline.label,
                wall,
                cpu,
                dc_cpu,
                rss,
                returned,
                verdict,
                [c for _, c, _, _ in taken],
            )
        )
    return results


def print_table(n_computers: int, results: Sequence[Result], runs: int) -> None:
    print(f"\nN = {n_computers} computers, median of {runs} runs")
    header = f"{'tool':<32}{'wall s':>8}{'CPU s':>8}{'DC CPU s':>10}{'RSS MB':>8}{'returned':>10}"
    print(f"{header}  check")
    for r in results:
        print(
            f"{r.label:<32}{r.wall:>8.2f}{r.cpu:>8.2f}{r.dc_cpu:>10.2f}{r.rss_mb:>8.1f}"
            f"{r.returned:>10}  {r.verdict}"
        )
    ldeep = next((r for r in results if r.label == "ldeep bitlockerkeys"), None)
    for export in (r for r in results if "export" in r.label and ldeep is not None):
        assert ldeep is not None
        paired = statistics.median(o / t for o, t in zip(export.cpus, ldeep.cpus, strict=True))
        print(
            f"{'  CPU / ldeep, ' + export.label.strip():<48} {export.cpu / ldeep.cpu:.2f} of the "
            f"medians; {paired:.2f} the median of the {len(export.cpus)} rounds' ratios"
        )
    audit = [r for r in results if r.label.startswith("ldapsearch: audit")]
    if len(audit) == 2:
        print(
            f"{'  audit pair, summed':<32}{sum(r.wall for r in audit):>8.2f}"
            f"{sum(r.cpu for r in audit):>8.2f}{sum(r.dc_cpu for r in audit):>10.2f}"
            f"{max(r.rss_mb for r in audit):>8.1f}"
        )


def bench(n_computers: int, args: argparse.Namespace, ldeep: Path | None) -> list[Result]:
    t0 = time.monotonic()
    estate = ensure_estate(n_computers, seed=args.seed, cache_dir=args.cache)
    ready = time.monotonic() - t0
    how = "built now" if estate.built_now else "cached; built"
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in estate.seeding_phases.items())
    print(f"\nestate N={n_computers}: {estate.template_cache}")
    print(f"  seeding ({how}): {estate.seeding_seconds:.1f} s ({phases})")
    if estate.built_now:
        print(f"  build total, with planning and copying: {ready:.1f} s")
    t1 = time.monotonic()
    dc, truth_path, credentials = start_estate(
        n_computers, seed=args.seed, host=args.host, cache_dir=args.cache
    )
    try:
        start = dc.timings
        print(
            f"  DC {dc.ldaps_url} up in {time.monotonic() - t1:.2f} s: copying the seeded "
            f"domain {start['template']:.2f} s, samba start to LDAPS and KDC answering "
            f"{start['start']:.2f} s"
        )
        truth = load_truth(truth_path)
        counts = truth["counts"]
        print(
            f"  truth {truth_path}: {counts['computers']} computers, {counts['keys']} keys; "
            f"{counts['missing']} missing, {counts['stale']} stale, {counts['ok']} ok"
        )
        env = {**os.environ, "LDAPTLS_CACERT": str(dc.ca_file), "LDAPTLS_REQCERT": "demand"}
        account = credentials.account(args.account)
        print(f"  as {account.upn}")
        work = Path(tempfile.mkdtemp(prefix="bitkey-estate-run-"))
        ours_env = {
            **env,
            "BITKEY_DIR_PASSWORD": account.password,
            "BITKEY_DIR_TRAIL": str(work / "trail.jsonl"),
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        }
        try:
            runs_of = [
                (baseline, env)
                for baseline in baselines(
                    dc, account, credentials.domain, ldeep, credentials.base_dn
                )
            ]
            mine = ours(dc, account, credentials.base_dn, work)
            if args.compare_with:
                other = args.compare_with.resolve()
                subprocess.run([sys.executable, "-m", "compileall", "-q", str(other)], check=True)
                other_env = {**ours_env, "PYTHONPATH": str(other)}
                runs_of.append((compared(other, mine), other_env))
            runs_of += [(baseline, ours_env) for baseline in mine]
            return run_side_by_side(dc, runs_of, truth, args.runs)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    finally:
        stop_estate(dc)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--computers", type=int, nargs="+", default=[10_000], metavar="N")
    parser.add_argument("--runs", type=int, default=3, help="runs per baseline (the median)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--account", choices=["admin", "helpdesk"], default="admin")
    parser.add_argument("--host", help=f"loopback address (default: free in {HOSTS[0]}+)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--ldeep-venv", type=Path, default=DEFAULT_LDEEP_VENV)
    parser.add_argument("--no-ldeep", action="store_true")
    parser.add_argument(
        "--compare-with",
        type=Path,
        metavar="CHECKOUT",
        help="also measure the export of another checkout of bitkey-dir (its own folder)",
    )
    parser.add_argument("--build-only", action="store_true", help="build the estates, no DC")
    parser.add_argument("--offline-seed", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.offline_seed:
        _seed_offline(*args.offline_seed)
        return
    if os.geteuid() != 0:
        raise SystemExit("the DC needs root (ports 88, 389, 636)")
    if args.build_only:
        for n in args.computers:
            estate = ensure_estate(n, seed=args.seed, cache_dir=args.cache)
            print(f"N={n}: {estate.template_cache}, seeding {estate.seeding_seconds:.1f} s")
        return
    if shutil.which("ldapsearch") is None:
        raise SystemExit("ldapsearch not found: apt-get install ldap-utils")
    if not Path(GNU_TIME).exists():
        raise SystemExit(f"{GNU_TIME} not found: apt-get install time")
    ldeep = None if args.no_ldeep else ensure_ldeep(args.ldeep_venv)
    table: list[tuple[int, list[Result]]] = []
    for n in args.computers:
        results = bench(n, args, ldeep)
        print_table(n, results, args.runs)
        table.append((n, results))
    if len(table) > 1:
        print("\nscaling (wall s / CPU s / RSS MB):")
        for label in [r.label for r in table[0][1]]:
            cells = [
                f"N={n}: {r.wall:.2f} / {r.cpu:.2f} / {r.rss_mb:.0f}"
                for n, results in table
                for r in results
                if r.label == label
            ]
            print(f"  {label:<32}" + "   ".join(cells))


if __name__ == "__main__":
    main()
