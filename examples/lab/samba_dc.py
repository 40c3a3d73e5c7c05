"""A throw-away Samba Active Directory domain controller on a loopback address.

Shared by the lab (``examples/lab/start``) and the integration tests
(``tests/integration``): it provisions a domain (once, into a template cache), starts
``samba`` bound to one 127.0.0.x address with its own test CA, and seeds OUs, computers,
BitLocker recovery objects (``msFVE-RecoveryInformation``, with a stand-in key package in
``msFVE-KeyPackage`` unless a key has none) and delegated users. Seeding happens after
the template is copied, so it does not change TEMPLATE_RECIPE.

Needs root (Samba binds ports 88, 389, 464, 636, 3268 and 3269, and DNS on 53 when it is
free there, else on another port: :attr:`SambaDC.dns_server` says where), the Debian packages
``samba samba-ad-provision samba-dsdb-modules samba-vfs-modules`` (``krb5-user`` for
:meth:`SambaDC.kinit`) and the Python packages ``ldap3`` and ``cryptography``. Importing
this module needs only the standard library; ldap3 and cryptography are imported when used.

Typical use::

    dc = SambaDC.start(work / "dc", host="127.0.0.40", template_cache=work / "templates")
    try:
        seeded = dc.seed(spec)
        ...
    finally:
        dc.stop()

Samba's internal DNS server holds the domain's zones, with the SRV records AD publishes
(``_ldap._tcp.dc._msdcs.<realm>``, ``_gc._tcp.<realm>``), and the DC's host name resolves to
the loopback address it listens on. Its Global Catalog answers on 3268 and 3269.

The DC runs ``samba -i -M single`` in its own session with its stdin connected to a pipe
that this process holds: if this process dies, Samba reads EOF and exits by itself.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ldap3 import Connection, Server, Tls

DEBIAN_PACKAGES: Final = "samba samba-ad-provision samba-dsdb-modules samba-vfs-modules krb5-user"
OID_TREE_DELETE: Final = "1.2.840.113556.1.4.805"
OID_SHOW_DELETED: Final = "1.2.840.113556.1.4.417"

# Access mask bits (MS-ADTS 5.1.3.2) and ACE constants (MS-DTYP 2.4.4).
ADS_RIGHT_DS_READ_PROP: Final = 0x00000010  # RP
ADS_RIGHT_DS_CONTROL_ACCESS: Final = 0x00000100  # CR
ADS_RIGHT_ACTRL_DS_LIST: Final = 0x00000004  # LC
ADS_RIGHT_DS_LIST_OBJECT: Final = 0x00000080  # LO
READ_CONTROL: Final = 0x00020000  # RC
ACCESS_ALLOWED_ACE_TYPE: Final = 0x00
ACCESS_ALLOWED_OBJECT_ACE_TYPE: Final = 0x05
CONTAINER_INHERIT_ACE: Final = 0x02
INHERIT_ONLY_ACE: Final = 0x08
INHERITED_ACE: Final = 0x10
ACE_OBJECT_TYPE_PRESENT: Final = 0x1
ACE_INHERITED_OBJECT_TYPE_PRESENT: Final = 0x2
SE_DACL_PRESENT: Final = 0x0004
SE_DACL_AUTO_INHERITED: Final = 0x0400
SE_DACL_PROTECTED: Final = 0x1000
SE_SELF_RELATIVE: Final = 0x8000
ACL_REVISION_DS: Final = 4
SID_AUTHENTICATED_USERS: Final = "S-1-5-11"

SAMBA_PORTS: Final = (88, 389, 464, 636, 3268, 3269)  # what "server services = ldap, kdc" binds
DNS_PORT: Final = 53  # and "dns", on this port when it is free (UDP and TCP), else another
TEMPLATE_RECIPE: Final = "3"  # change when provision() changes, to invalidate cached templates
# The address provision() writes into the DNS zones; start() puts the DC's own in its place.
TEMPLATE_ADDRESS: Final = "127.0.0.1"
DNS_TYPE_A: Final = 1
DNS_TYPE_AAAA: Final = 28
DEFAULT_ADMIN_PASSWORD: Final = "Adm1n!Passw0rd"  # noqa: S105 - a throw-away test domain


class SambaDCError(RuntimeError):
    """Provisioning, starting or seeding the DC failed."""


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------
def tool(name: str) -> str:
    """The absolute path of a Samba/Kerberos command, or a SambaDCError naming the packages."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        raise SambaDCError(
            f"{name} not found: install the Debian packages {DEBIAN_PACKAGES} "
            "(apt-get install --no-install-recommends ...)"
        )
    return path


def _run(
    cmd: Sequence[str],
    *,
    input_text: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(cmd),
        input=input_text,
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise SambaDCError(
            f"{' '.join(cmd)} failed with {proc.returncode}:\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def realm_to_base_dn(realm: str) -> str:
    return ",".join(f"DC={part}" for part in realm.lower().split("."))


def sid_to_str(sid: bytes) -> str:
    revision, count = sid[0], sid[1]
    authority = int.from_bytes(sid[2:8], "big")
    subs = struct.unpack_from(f"<{count}I", sid, 8)
    return "S-" + "-".join(str(x) for x in (revision, authority, *subs))


def sid_from_str(sid: str) -> bytes:
    parts = sid.split("-")
    if parts[0].upper() != "S":
        raise ValueError(sid)
    revision, authority, subs = int(parts[1]), int(parts[2]), [int(x) for x in parts[3:]]
    head = bytes([revision, len(subs)]) + authority.to_bytes(6, "big")
    return head + struct.pack(f"<{len(subs)}I", *subs)


def escape_filter_bytes(value: bytes) -> str:
    """``b'\\xe1\\xa4'`` -> ``'\\e1\\a4'`` for an LDAP filter on a binary attribute."""
    return "".join(f"\\{b:02x}" for b in value)


def escape_rdn(value: str) -> str:
    """Escape an RDN value (RFC 4514); parentheses need no escaping in DNs."""
    out = []
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;=' or (ch == "#" and i == 0) or (ch == " " and i in (0, len(value) - 1)):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _udp_port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def dns_port_for(host: str) -> int:
    """53 when it is free on ``host`` (UDP and TCP), else a port the kernel says is free."""
    if _udp_port_free(host, DNS_PORT) and _port_free(host, DNS_PORT):
        return DNS_PORT
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((host, 0))
            port: int = s.getsockname()[1]
        if _port_free(host, port):
            return port
    raise SambaDCError(f"no free port for DNS on {host}")


def a_record(address: str, *, ttl: int = 900, serial: int = 1) -> bytes:
    """A dnsRecord value (MS-DNSP 2.3.2.2) holding an A record: the TTL is big-endian."""
    data = ipaddress.IPv4Address(address).packed
    head = struct.pack("<HHBBHI", len(data), DNS_TYPE_A, 5, 0xF0, 0, serial)
    return head + struct.pack(">I", ttl) + struct.pack("<II", 0, 0) + data


def ports_free(host: str) -> bool:
    """Whether every port the DC binds is free on ``host``."""
    return all(_port_free(host, port) for port in SAMBA_PORTS)


def free_loopback_host(candidates: Iterable[str]) -> str:
    """The first 127.0.0.x address in ``candidates`` on which every DC port is free."""
    tried = []
    for host in candidates:
        if ports_free(host):
            return host
        tried.append(host)
    raise SambaDCError(f"ports {SAMBA_PORTS} are in use on every address tried: {tried}")


def _process_group_members(pgid: int) -> list[int]:
    members: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[0] is the state, fields[2] the process group; zombies are already dead.
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


# --------------------------------------------------------------------------------------------
# TLS: a test CA and a server certificate
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path


def make_test_pki(
    directory: Path,
    *,
    ip: str,
    dns_names: Sequence[str],
    ca_name: str = "Samba DC test CA",
    days: int = 365,  # under 30 days, `bitkey-dir doctor` warns of the coming expiry
) -> TlsFiles:
    """Create a throw-away CA and a server certificate for ``ip`` and ``dns_names``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def key_usage(*, cert_sign: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=not cert_sign,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=cert_sign,
            crl_sign=cert_sign,
            encipher_only=False,
            decipher_only=False,
        )

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    not_before, not_after = now - dt.timedelta(hours=1), now + dt.timedelta(days=days)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_subject)
        .issuer_name(ca_subject)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(cert_sign=True), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    san: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    san.append(x509.IPAddress(ipaddress.ip_address(ip)))
    common_name = dns_names[0] if dns_names else ip
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    # Samba refuses a private key that is not mode 0600 (its CVE-2013-4476 check).
    fd = os.open(files.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
    os.chmod(files.key_file, 0o600)
    return files


# --------------------------------------------------------------------------------------------
# Provisioning, through a cached template directory
# --------------------------------------------------------------------------------------------
def samba_version() -> str:
    return _run([tool("samba"), "--version"]).stdout.strip()


def provision(target: Path, *, realm: str, domain: str, hostname: str, admin_password: str) -> None:
    """``samba-tool domain provision`` into ``target`` (which must not exist yet).

    ``--configfile=/dev/null`` keeps the host's /etc/samba/smb.conf (Debian's file-server
    defaults) out of the generated config.
    """
    if target.exists():
        raise SambaDCError(f"{target} already exists")
    _run(
        [
            tool("samba-tool"),
            "domain",
            "provision",
            "--configfile=/dev/null",
            f"--targetdir={target}",
            f"--realm={realm}",
            f"--domain={domain}",
            f"--adminpass={admin_password}",
            "--server-role=dc",
            # Zones in the directory, served by Samba's internal DNS server, with the SRV
            # records of the DC, its Global Catalog and its KDC.
            "--dns-backend=SAMBA_INTERNAL",
            f"--host-ip={TEMPLATE_ADDRESS}",
            f"--host-name={hostname}",
            "--function-level=2008_R2",
        ]
    )
    # The DC's ldap/<fqdn> SPNs are normally added at run time by samba_spnupdate from the
    # 'dnsupdate' service, which we do not start; without them GSSAPI binds fail with
    # "Server not found in database: ldap/dc1...". It works offline.
    smb_conf = str(target / "etc" / "smb.conf")
    _run([tool("samba_spnupdate"), "-s", smb_conf])
    # Passwords never expire: a cached template outlives the default 42 days, after which
    # every bind (and kinit) would fail with "password expired".
    sam_ldb = str(target / "private" / "sam.ldb")
    passwords = ["domain", "passwordsettings", "set", f"--configfile={smb_conf}", "-H", sam_ldb]
    _run([tool("samba-tool"), *passwords, "--max-pwd-age=0", "--min-pwd-age=0"])


def ensure_template(
    cache_dir: Path, *, realm: str, domain: str, hostname: str, admin_password: str
) -> Path:
    """Provision once per parameter set into ``cache_dir``; return the template directory.

    Safe for concurrent callers (pytest-xdist workers): an flock serialises provisioning and
    the template appears by rename only when complete.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = "|".join([TEMPLATE_RECIPE, samba_version(), realm, domain, hostname, admin_password])
    template = cache_dir / f"samba-ad-template-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    marker = template / ".complete"
    if marker.exists():
        return template
    with open(cache_dir / f".{template.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return template
        if template.exists():
            shutil.rmtree(template)
        tmp = cache_dir / f".{template.name}.tmp{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        provision(tmp, realm=realm, domain=domain, hostname=hostname, admin_password=admin_password)
        tmp.rename(template)
        marker.write_text(f"realm={realm}\ndomain={domain}\nhostname={hostname}\n")
    return template


# --------------------------------------------------------------------------------------------
# What to seed
# --------------------------------------------------------------------------------------------
def _digest(label: str, purpose: str) -> bytes:
    return hashlib.sha256(f"{purpose}:{label}".encode()).digest()


def derived_guid(label: str, purpose: str = "guid") -> uuid.UUID:
    """A version-4 GUID derived from ``label``: the same every run."""
    return uuid.UUID(bytes=_digest(label, purpose)[:16], version=4)


KEY_PACKAGE_SIZE: Final = 576


def derived_key_package(label: str) -> bytes:
    """Bytes standing in for a key package (msFVE-KeyPackage): deterministic pseudo-random
    data of a plausible size. bitkey-dir never parses a key package, it only hands the
    directory's bytes to repair-bde, so their structure does not matter here."""
    blocks = (_digest(label, f"key package {n}") for n in range(KEY_PACKAGE_SIZE // 32 + 1))
    return b"".join(blocks)[:KEY_PACKAGE_SIZE]


def derived_recovery_password(label: str) -> str:
    """48 digits in 8 groups, each 11 * n with n < 65536 like a real recovery password."""
    raw = _digest(label, "password")
    groups = (int.from_bytes(raw[i : i + 2], "big") * 11 for i in range(0, 16, 2))
    return "-".join(f"{g:06d}" for g in groups)


@dataclass(frozen=True)
class RecoveryKey:
    """One msFVE-RecoveryInformation object to create."""

    created: dt.datetime  # timezone-aware; its UTC offset ends up in the object's name
    recovery_guid: uuid.UUID  # the Key ID
    password: str
    volume_guid: uuid.UUID
    # The GUID written into the name, if it should (oddly) differ from recovery_guid.
    name_guid: uuid.UUID | None = None
    # msFVE-KeyPackage; None: the object has none (Group Policy backed up passwords only).
    key_package: bytes | None = None

    @classmethod
    def derive(cls, label: str, created: dt.datetime, *, key_id: str | None = None) -> RecoveryKey:
        """A key whose GUIDs and password are derived from ``label`` (or ``key_id`` given)."""
        if created.tzinfo is None:
            raise ValueError("created must be timezone-aware")
        return cls(
            created=created,
            recovery_guid=uuid.UUID(key_id) if key_id else derived_guid(label),
            password=derived_recovery_password(label),
            volume_guid=derived_guid(label, "volume"),
            key_package=derived_key_package(label),
        )

    @property
    def key_id(self) -> str:
        """The Key ID as Windows shows it: upper case, no braces."""
        return str(self.recovery_guid).upper()

    @property
    def created_text(self) -> str:
        """``2024-03-01T10:15:00-08:00``: the date part of the name."""
        return self.created.isoformat(timespec="seconds")

    @property
    def cn(self) -> str:
        """The name Windows gives the object: ``2024-03-01T10:15:00-08:00{063EA4E1-...}``."""
        return f"{self.created_text}{{{str(self.name_guid or self.recovery_guid).upper()}}}"


@dataclass(frozen=True)
class ComputerSpec:
    name: str  # cn, and sAMAccountName without the trailing $
    ou: str  # relative to the base DN, e.g. "OU=Laptops,OU=Workstations,OU=Corp"
    keys: tuple[RecoveryKey, ...] = ()
    rename_to: str | None = None  # renamed (modify DN) after its keys were added
    delete: bool = False  # tree-deleted after its keys were added


@dataclass(frozen=True)
class UserSpec:
    name: str
    password: str
    recovery_read_ous: tuple[str, ...] = ()  # OUs (relative DNs) delegated password read
    key_package_read_ous: tuple[str, ...] = ()  # and delegated msFVE-KeyPackage read


@dataclass(frozen=True)
class GroupSpec:
    """A global security group in CN=Users; ``members`` name users or groups listed before."""

    name: str
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class SeedSpec:
    ous: tuple[str, ...]
    computers: tuple[ComputerSpec, ...]
    users: tuple[UserSpec, ...] = ()
    # Authenticated Users get inherited generic read (RP/LC/LO/RC) here, so that any user
    # *sees* the recovery objects below; the confidential password stays hidden.
    authenticated_read_ous: tuple[str, ...] = ()
    groups: tuple[GroupSpec, ...] = ()


@dataclass
class SeededComputer:
    spec: ComputerSpec
    dn: str  # after a rename; the original DN if deleted
    ou_dn: str

    @property
    def name(self) -> str:
        return self.spec.rename_to or self.spec.name

    @property
    def deleted(self) -> bool:
        return self.spec.delete

    @property
    def keys(self) -> tuple[RecoveryKey, ...]:
        return self.spec.keys


@dataclass(frozen=True)
class SeededUser:
    spec: UserSpec
    dn: str
    sid: str
    principal: str  # name@REALM


@dataclass(frozen=True)
class SeedResult:
    base_dn: str
    computers: dict[str, SeededComputer]  # by original name
    users: dict[str, SeededUser]
    seconds: float

    def all_keys(self, *, include_deleted: bool = False) -> list[RecoveryKey]:
        return [
            key
            for computer in self.computers.values()
            if include_deleted or not computer.deleted
            for key in computer.keys
        ]


# --------------------------------------------------------------------------------------------
# Security descriptors: just enough to add an ACE to a DACL
# --------------------------------------------------------------------------------------------
def build_object_ace(
    *,
    sid: bytes,
    mask: int,
    flags: int,
    object_type: uuid.UUID | None,
    inherited_object_type: uuid.UUID | None,
) -> bytes:
    obj_flags = 0
    body = b""
    if object_type is not None:
        obj_flags |= ACE_OBJECT_TYPE_PRESENT
        body += object_type.bytes_le
    if inherited_object_type is not None:
        obj_flags |= ACE_INHERITED_OBJECT_TYPE_PRESENT
        body += inherited_object_type.bytes_le
    payload = struct.pack("<II", mask, obj_flags) + body + sid
    return struct.pack("<BBH", ACCESS_ALLOWED_OBJECT_ACE_TYPE, flags, 4 + len(payload)) + payload


def build_ace(*, sid: bytes, mask: int, flags: int) -> bytes:
    payload = struct.pack("<I", mask) + sid
    return struct.pack("<BBH", ACCESS_ALLOWED_ACE_TYPE, flags, 4 + len(payload)) + payload


def _split_aces(acl: bytes) -> list[bytes]:
    count = struct.unpack_from("<BBHHH", acl, 0)[3]
    aces, pos = [], 8
    for _ in range(count):
        size = struct.unpack_from("<H", acl, pos + 2)[0]
        aces.append(acl[pos : pos + size])
        pos += size
    return aces


def sd_with_added_ace(sd: bytes, ace: bytes) -> bytes:
    """A self-relative SD holding only a DACL: the old one with ``ace`` after its explicit ACEs.

    Write it back with the SD-flags control set to DACL_SECURITY_INFORMATION (4).
    """
    control = struct.unpack_from("<BBHIIII", sd, 0)[2]
    dacl_offset = struct.unpack_from("<BBHIIII", sd, 0)[6]
    aces = _split_aces(sd[dacl_offset:]) if (control & SE_DACL_PRESENT and dacl_offset) else []
    explicit = [a for a in aces if not a[1] & INHERITED_ACE]
    inherited = [a for a in aces if a[1] & INHERITED_ACE]
    new_aces = [*explicit, ace, *inherited]
    body = b"".join(new_aces)
    acl = struct.pack("<BBHHH", ACL_REVISION_DS, 0, 8 + len(body), len(new_aces), 0) + body
    new_control = SE_SELF_RELATIVE | SE_DACL_PRESENT
    new_control |= control & (SE_DACL_AUTO_INHERITED | SE_DACL_PROTECTED)
    return struct.pack("<BBHIIII", 1, 0, new_control, 0, 0, 0, 20) + acl


# --------------------------------------------------------------------------------------------
# The DC
# --------------------------------------------------------------------------------------------
@dataclass
class SambaDC:
    workdir: Path
    host: str
    realm: str
    domain: str
    hostname: str
    admin_password: str
    tls: TlsFiles
    krb5_conf: Path
    smb_conf: Path
    log_file: Path
    timings: dict[str, float]
    dns_port: int = DNS_PORT
    exit_code: int | None = None
    _proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None
    _schema_guids: dict[str, uuid.UUID] = field(default_factory=dict)

    # ---------------------------------------------------------------------- properties
    @property
    def base_dn(self) -> str:
        return realm_to_base_dn(self.realm)

    @property
    def fqdn(self) -> str:
        """The DC's DNS name: the host of its ldap/ service principal."""
        return f"{self.hostname.lower()}.{self.realm.lower()}"

    @property
    def ldap_url(self) -> str:
        return f"ldap://{self.host}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{self.host}"

    @property
    def ca_file(self) -> Path:
        return self.tls.ca_file

    @property
    def dns_server(self) -> str:
        """Where its DNS server answers, as ``dns_servers`` takes it: ``host:port``."""
        return f"{self.host}:{self.dns_port}"

    @property
    def gc_url(self) -> str:
        """Its Global Catalog over TLS."""
        return f"ldaps://{self.host}:3269"

    @property
    def admin_principal(self) -> str:
        return f"Administrator@{self.realm}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def principal(self, user: str) -> str:
        return f"{user}@{self.realm}"

    def dn(self, relative: str) -> str:
        return f"{relative},{self.base_dn}" if relative else self.base_dn

    # ---------------------------------------------------------------------- lifecycle
    @classmethod
    def start(
        cls,
        workdir: Path,
        host: str = "127.0.0.40",
        realm: str = "BITKEY.TEST",
        domain: str = "BITKEY",
        admin_password: str = DEFAULT_ADMIN_PASSWORD,
        *,
        hostname: str = "dc1",
        template_cache: Path | None = None,
        startup_timeout: float = 60.0,
        log_level: int = 1,
        extra_options: Mapping[str, str] | None = None,
    ) -> SambaDC:
        """Provision (or copy a cached template) into ``workdir``; start Samba on ``host`` only.

        ``workdir`` must be missing or empty. With ``template_cache`` the domain is provisioned
        once (about 5 s) and copied afterwards (a few hundredths of a second).
        """
        timings: dict[str, float] = {}
        realm, domain = realm.upper(), domain.upper()
        workdir = workdir.resolve()
        if not ipaddress.IPv4Address(host).is_loopback:
            raise SambaDCError(f"{host} is not a loopback address")
        if workdir.exists() and any(workdir.iterdir()):
            raise SambaDCError(f"{workdir} is not empty")
        busy = [p for p in SAMBA_PORTS if not _port_free(host, p)]
        if busy:
            raise SambaDCError(f"ports {busy} already in use on {host}")
        dns_port = dns_port_for(host)
        workdir.mkdir(parents=True, exist_ok=True)
        db = workdir / "db"
        t0 = time.monotonic()
        if template_cache is not None:
            template = ensure_template(
                template_cache.resolve(),
                realm=realm,
                domain=domain,
                hostname=hostname,
                admin_password=admin_password,
            )
            shutil.copytree(template, db, symlinks=True)
            timings["template"] = time.monotonic() - t0
        else:
            provision(
                db, realm=realm, domain=domain, hostname=hostname, admin_password=admin_password
            )
            timings["provision"] = time.monotonic() - t0
        fqdn = f"{hostname.lower()}.{realm.lower()}"
        tls = make_test_pki(workdir / "tls", ip=host, dns_names=[fqdn, hostname.lower()])
        for sub in ("run", "log", "cache"):
            (workdir / sub).mkdir(exist_ok=True)
        smb_conf = workdir / "smb.conf"
        smb_conf.write_text(
            _render_smb_conf(
                workdir=workdir,
                db=db,
                host=host,
                realm=realm,
                domain=domain,
                hostname=hostname,
                tls=tls,
                log_level=log_level,
                dns_port=dns_port,
                extra=extra_options or {},
            )
        )
        krb5_conf = workdir / "krb5.conf"
        krb5_conf.write_text(_render_krb5_conf(realm=realm, host=host))
        dc = cls(
            workdir=workdir,
            host=host,
            realm=realm,
            domain=domain,
            hostname=hostname,
            admin_password=admin_password,
            tls=tls,
            krb5_conf=krb5_conf,
            smb_conf=smb_conf,
            log_file=workdir / "log" / "samba.out",
            timings=timings,
            dns_port=dns_port,
        )
        try:
            t1 = time.monotonic()
            dc._spawn()
            dc._wait_ready(startup_timeout)
            dc._publish_address()
            dc._wait_for_dns(startup_timeout)
            timings["start"] = time.monotonic() - t1
        except BaseException:
            dc.stop()
            raise
        timings["total"] = time.monotonic() - t0
        return dc

    def _spawn(self) -> None:
        self._log = open(self.log_file, "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            [tool("samba"), "-i", "-M", "single", "-s", str(self.smb_conf)],
            stdin=subprocess.PIPE,  # the watchdog: samba -i exits on EOF when we are gone
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            # Keep Samba's own Kerberos code away from the host's /etc/krb5.conf.
            env={**os.environ, "KRB5_CONFIG": str(self.krb5_conf)},
        )

    def _wait_ready(self, timeout: float) -> None:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        deadline = time.monotonic() + timeout
        pending = {"ldaps": True, "kdc": True}
        while pending["ldaps"] or pending["kdc"]:
            if self._proc is None or self._proc.poll() is not None:
                code = self._proc.returncode if self._proc else None
                raise SambaDCError(f"samba exited ({code}) during start-up:\n{self.log_tail()}")
            if "no network interfaces found" in self.log_tail():
                # e.g. "interfaces = 127.0.0.x" without /8: Samba keeps running, listening nowhere
                raise SambaDCError(f"samba found no usable interface for {self.host}")
            if time.monotonic() > deadline:
                raise SambaDCError(f"samba not ready after {timeout} s:\n{self.log_tail()}")
            try:
                if pending["ldaps"]:
                    with (
                        socket.create_connection((self.host, 636), timeout=1) as raw,
                        ctx.wrap_socket(raw, server_hostname=self.host),
                    ):
                        pending["ldaps"] = False
                if pending["kdc"]:
                    with socket.create_connection((self.host, 88), timeout=1):
                        pending["kdc"] = False
            except (OSError, ssl.SSLError):
                time.sleep(0.05)

    def _publish_address(self) -> None:
        """Point the DC's names in DNS (its host name, gc._msdcs, the domain) at ``host``:
        every A and AAAA record the template holds becomes one A record for this address."""
        from ldap3 import MODIFY_REPLACE, SUBTREE

        conn = self.connect()
        try:
            for partition in ("DomainDnsZones", "ForestDnsZones"):
                conn.search(
                    f"DC={partition},{self.base_dn}",
                    "(objectClass=dnsNode)",
                    SUBTREE,
                    attributes=["dnsRecord"],
                )
                for node in list(conn.response):
                    records = (node.get("raw_attributes") or {}).get("dnsRecord") or []
                    kept = [
                        r for r in records if _record_type(r) not in (DNS_TYPE_A, DNS_TYPE_AAAA)
                    ]
                    if len(kept) == len(records):
                        continue
                    new = [*kept, a_record(self.host)]
                    conn.modify(node["dn"], {"dnsRecord": [(MODIFY_REPLACE, new)]})
        finally:
            conn.unbind()

    def _wait_for_dns(self, timeout: float) -> None:
        """Until its DNS server says the DC's host name is ``host``."""
        import dns.exception
        import dns.nameserver
        import dns.resolver

        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(self.host, self.dns_port)]
        resolver.lifetime = 2.0
        deadline = time.monotonic() + timeout
        while True:
            try:
                answer = resolver.resolve(self.fqdn, "A", search=False)
                if [str(r.address) for r in answer] == [self.host]:
                    return
            except dns.exception.DNSException:
                pass
            if time.monotonic() > deadline:
                raise SambaDCError(
                    f"samba's DNS server on {self.dns_server} does not resolve {self.fqdn}:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.1)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Samba and everything it forked; idempotent.

        Closing Samba's stdin makes ``samba -i`` shut down cleanly (exit 0); SIGTERM and then
        SIGKILL to its process group are the fallbacks.
        """
        proc, self._proc = self._proc, None
        if proc is not None:
            pgid = proc.pid  # start_new_session=True: samba leads its own process group
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            for sig in (None, signal.SIGTERM, signal.SIGKILL):
                if sig is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pgid, sig)
                try:
                    proc.wait(timeout / 3)
                    break
                except subprocess.TimeoutExpired:
                    continue
            deadline = time.monotonic() + timeout
            while (left := _process_group_members(pgid)) and time.monotonic() < deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                time.sleep(0.05)
            if left := _process_group_members(pgid):
                raise SambaDCError(f"samba processes left behind: {left}")
            self.exit_code = proc.returncode
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> SambaDC:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------------- clients
    def tls_config(self, ca_file: Path | None = None) -> Tls:
        from ldap3 import Tls

        return Tls(
            validate=ssl.CERT_REQUIRED,
            ca_certs_file=str(ca_file or self.ca_file),
            version=ssl.PROTOCOL_TLS_CLIENT,
        )

    def server(self, *, ldaps: bool = True, ca_file: Path | None = None) -> Server:
        from ldap3 import Server

        return Server(
            self.host,
            port=636 if ldaps else 389,
            use_ssl=ldaps,
            tls=self.tls_config(ca_file),
            connect_timeout=5,
        )

    def connect(self, user: str | None = None, password: str | None = None) -> Connection:
        """A simple bind over LDAPS, as Administrator unless ``user`` is given."""
        from ldap3 import SIMPLE, Connection

        if user is None:
            user, password = self.admin_principal, self.admin_password
        conn = Connection(
            self.server(),
            user=user,
            password=password,
            authentication=SIMPLE,
            receive_timeout=30,
            raise_exceptions=True,
        )
        conn.open()
        conn.bind()
        return conn

    def kinit(self, user: str, password: str, ccache: Path) -> None:
        """MIT ``kinit`` (the password on stdin) into the file ccache ``ccache``."""
        env = {
            **os.environ,
            "KRB5_CONFIG": str(self.krb5_conf),
            "KRB5CCNAME": f"FILE:{ccache}",
        }
        principal = user if "@" in user else self.principal(user)
        _run([tool("kinit"), principal], input_text=password + "\n", env=env, timeout=30)

    # ---------------------------------------------------------------------- seeding primitives
    def schema_guid(self, conn: Connection, ldap_display_name: str) -> uuid.UUID:
        from ldap3 import SUBTREE
        from ldap3.utils.conv import escape_filter_chars

        if ldap_display_name not in self._schema_guids:
            conn.search(
                f"CN=Schema,CN=Configuration,{self.base_dn}",
                f"(lDAPDisplayName={escape_filter_chars(ldap_display_name)})",
                SUBTREE,
                attributes=["schemaIDGUID"],
            )
            if not conn.entries:
                raise SambaDCError(f"{ldap_display_name} is not in the schema")
            raw = conn.response[0]["raw_attributes"]["schemaIDGUID"][0]
            self._schema_guids[ldap_display_name] = uuid.UUID(bytes_le=raw)
        return self._schema_guids[ldap_display_name]

    def _host_name(self, name: str) -> str:
        label = "".join(ch for ch in name.lower() if ch.isalnum() or ch == "-")
        return f"{label}.{self.realm.lower()}"

    def add_ou(self, conn: Connection, relative_dn: str) -> str:
        dn = self.dn(relative_dn)
        name = relative_dn.split(",", maxsplit=1)[0].split("=", 1)[1]
        conn.add(dn, ["organizationalUnit"], {"ou": name})
        return dn

    def add_computer(self, conn: Connection, name: str, ou: str) -> str:
        dn = f"CN={escape_rdn(name)},{self.dn(ou)}"
        attributes = {
            "sAMAccountName": f"{name}$",
            "dNSHostName": self._host_name(name),
            "userAccountControl": "4096",  # WORKSTATION_TRUST_ACCOUNT
        }
        conn.add(dn, ["computer"], attributes)
        return dn

    def add_recovery_key(self, conn: Connection, computer_dn: str, key: RecoveryKey) -> str:
        dn = f"CN={escape_rdn(key.cn)},{computer_dn}"
        attributes = {
            "msFVE-RecoveryPassword": key.password,
            "msFVE-RecoveryGuid": key.recovery_guid.bytes_le,
            "msFVE-VolumeGuid": key.volume_guid.bytes_le,
        }
        if key.key_package is not None:
            attributes["msFVE-KeyPackage"] = key.key_package
        conn.add(dn, ["msFVE-RecoveryInformation"], attributes)
        return dn

    def add_user(
        self, conn: Connection, name: str, password: str, container: str = "CN=Users"
    ) -> tuple[str, str]:
        """Create an enabled user with a UPN ``name@realm``; return (dn, sid)."""
        from ldap3 import BASE

        dn = f"CN={escape_rdn(name)},{self.dn(container)}"
        attributes = {
            "sAMAccountName": name,
            "userPrincipalName": f"{name}@{self.realm.lower()}",
            "unicodePwd": f'"{password}"'.encode("utf-16-le"),
            "userAccountControl": "512",  # NORMAL_ACCOUNT, enabled
        }
        conn.add(dn, ["user"], attributes)
        conn.search(dn, "(objectClass=*)", BASE, attributes=["objectSid"])
        return dn, sid_to_str(conn.response[0]["raw_attributes"]["objectSid"][0])

    def add_group(
        self, conn: Connection, name: str, members: list[str], container: str = "CN=Users"
    ) -> str:
        """Create a global security group holding ``members`` (DNs); return its DN."""
        dn = f"CN={escape_rdn(name)},{self.dn(container)}"
        attributes: dict[str, object] = {"sAMAccountName": name, "groupType": "-2147483646"}
        if members:
            attributes["member"] = members
        conn.add(dn, ["group"], attributes)
        return dn

    def add_ace(self, conn: Connection, dn: str, ace: bytes) -> None:
        from ldap3 import BASE, MODIFY_REPLACE
        from ldap3.protocol.microsoft import security_descriptor_control

        dacl_only = security_descriptor_control(sdflags=0x04)
        conn.search(
            dn, "(objectClass=*)", BASE, attributes=["nTSecurityDescriptor"], controls=dacl_only
        )
        sd = conn.response[0]["raw_attributes"]["nTSecurityDescriptor"][0]
        changes = {"nTSecurityDescriptor": [(MODIFY_REPLACE, [sd_with_added_ace(sd, ace)])]}
        conn.modify(dn, changes, controls=dacl_only)

    def grant_key_package_read(self, conn: Connection, ou_dn: str, sid: str) -> None:
        """Read Property + Control Access on msFVE-KeyPackage below ``ou_dn``, inherited."""
        ace = build_object_ace(
            sid=sid_from_str(sid),
            mask=ADS_RIGHT_DS_READ_PROP | ADS_RIGHT_DS_CONTROL_ACCESS,
            flags=CONTAINER_INHERIT_ACE | INHERIT_ONLY_ACE,
            object_type=self.schema_guid(conn, "msFVE-KeyPackage"),
            inherited_object_type=self.schema_guid(conn, "msFVE-RecoveryInformation"),
        )
        self.add_ace(conn, ou_dn, ace)

    def grant_recovery_password_read(self, conn: Connection, ou_dn: str, sid: str) -> None:
        """Delegate reading the recovery passwords below ``ou_dn`` to ``sid``, as AD admins do.

        Two inherited ACEs: Read Property + Control Access on msFVE-RecoveryPassword
        (``(OA;CIIO;CRRP;<password attr>;<recovery class>;SID)``), and Read Property on the
        recovery objects (``(OA;CIIO;RP;;<recovery class>;SID)``). Without the second,
        the password is readable but objectClass and msFVE-RecoveryGuid are not, so
        ``(objectClass=msFVE-RecoveryInformation)`` and GUID filters match nothing.
        """
        attr = self.schema_guid(conn, "msFVE-RecoveryPassword")
        cls = self.schema_guid(conn, "msFVE-RecoveryInformation")
        sid_bin = sid_from_str(sid)
        inherit = CONTAINER_INHERIT_ACE | INHERIT_ONLY_ACE
        for mask, object_type in (
            (ADS_RIGHT_DS_READ_PROP | ADS_RIGHT_DS_CONTROL_ACCESS, attr),
            (ADS_RIGHT_DS_READ_PROP, None),
        ):
            ace = build_object_ace(
                sid=sid_bin,
                mask=mask,
                flags=inherit,
                object_type=object_type,
                inherited_object_type=cls,
            )
            self.add_ace(conn, ou_dn, ace)

    def grant_generic_read(
        self, conn: Connection, ou_dn: str, sid: str = SID_AUTHENTICATED_USERS
    ) -> None:
        """``(A;CI;RPLCLORC;;;SID)`` on ``ou_dn``: see objects, not confidential attributes."""
        mask = ADS_RIGHT_DS_READ_PROP | ADS_RIGHT_ACTRL_DS_LIST | ADS_RIGHT_DS_LIST_OBJECT
        mask |= READ_CONTROL
        ace = build_ace(sid=sid_from_str(sid), mask=mask, flags=CONTAINER_INHERIT_ACE)
        self.add_ace(conn, ou_dn, ace)

    def rename_computer(self, conn: Connection, dn: str, new_name: str) -> str:
        """Rename (modify DN; the recovery objects move with it), update its account names."""
        from ldap3 import MODIFY_REPLACE

        conn.modify_dn(dn, f"CN={escape_rdn(new_name)}")
        new_dn = f"CN={escape_rdn(new_name)},{dn.split(',', 1)[1]}"
        conn.modify(
            new_dn,
            {
                "sAMAccountName": [(MODIFY_REPLACE, [f"{new_name}$"])],
                "dNSHostName": [(MODIFY_REPLACE, [self._host_name(new_name)])],
            },
        )
        return new_dn

    def tree_delete(self, conn: Connection, dn: str) -> None:
        """Delete an object with its children (a computer with recovery objects)."""
        conn.delete(dn, controls=[(OID_TREE_DELETE, True, None)])

    def seed(self, spec: SeedSpec) -> SeedResult:
        """Create what ``spec`` describes as Administrator, then apply renames and deletes."""
        t0 = time.monotonic()
        conn = self.connect()
        try:
            for ou in sorted(spec.ous, key=lambda relative: relative.count(",")):
                self.add_ou(conn, ou)
            for ou in spec.authenticated_read_ous:
                self.grant_generic_read(conn, self.dn(ou))
            users: dict[str, SeededUser] = {}
            for user in spec.users:
                dn, sid = self.add_user(conn, user.name, user.password)
                users[user.name] = SeededUser(user, dn, sid, self.principal(user.name))
                for ou in user.recovery_read_ous:
                    self.grant_recovery_password_read(conn, self.dn(ou), sid)
                for ou in user.key_package_read_ous:
                    self.grant_key_package_read(conn, self.dn(ou), sid)
            groups: dict[str, str] = {}
            for group in spec.groups:
                members = [groups.get(name) or users[name].dn for name in group.members]
                groups[group.name] = self.add_group(conn, group.name, members)
            computers: dict[str, SeededComputer] = {}
            for computer in spec.computers:
                dn = self.add_computer(conn, computer.name, computer.ou)
                for key in computer.keys:
                    self.add_recovery_key(conn, dn, key)
                computers[computer.name] = SeededComputer(computer, dn, self.dn(computer.ou))
            for seeded in computers.values():
                if seeded.spec.rename_to:
                    seeded.dn = self.rename_computer(conn, seeded.dn, seeded.spec.rename_to)
                if seeded.spec.delete:
                    self.tree_delete(conn, seeded.dn)
        finally:
            conn.unbind()
        return SeedResult(self.base_dn, computers, users, time.monotonic() - t0)


def _render_smb_conf(
    *,
    workdir: Path,
    db: Path,
    host: str,
    realm: str,
    domain: str,
    hostname: str,
    tls: TlsFiles,
    log_level: int,
    dns_port: int = DNS_PORT,
    extra: Mapping[str, str],
) -> str:
    options: dict[str, str] = {
        "netbios name": hostname.upper(),
        "workgroup": domain,
        "realm": realm,
        "server role": "active directory domain controller",
        "server services": "ldap, kdc, dns",
        "dns port": str(dns_port),
        # Names outside its zones are not forwarded anywhere: the lab stays off the network.
        "dns forwarder": "",
        # A bare address (or /32) is ignored unless configured on an interface ("no network
        # interfaces found"); with the loopback prefix length Samba binds the address as given.
        "interfaces": f"{host}/8",
        "bind interfaces only": "yes",
        "private dir": str(db / "private"),
        "state directory": str(db / "state"),
        "lock directory": str(db),
        "binddns dir": str(db / "bind-dns"),
        "cache directory": str(workdir / "cache"),
        "pid directory": str(workdir / "run"),
        "ncalrpc dir": str(workdir / "run" / "ncalrpc"),
        "winbindd socket directory": str(workdir / "run" / "winbindd"),
        "ntp signd socket directory": str(workdir / "run" / "ntp_signd"),
        "log file": str(workdir / "log" / "samba.log"),
        "log level": str(log_level),
        "tls enabled": "yes",
        "tls keyfile": str(tls.key_file),
        "tls certfile": str(tls.cert_file),
        "tls cafile": str(tls.ca_file),
        # The default ("yes") also refuses SASL binds without sign/seal over TLS, and ldap3
        # cannot negotiate a GSSAPI security layer. allow_sasl_over_tls accepts GSSAPI over
        # LDAPS/StartTLS and still refuses simple binds without TLS (strongerAuthRequired).
        "ldap server require strong auth": "allow_sasl_over_tls",
    }
    options.update(extra)
    lines = ["[global]", *(f"\t{k} = {v}" for k, v in options.items())]
    sysvol = db / "state" / "sysvol"
    lines += [
        "",
        "[sysvol]",
        f"\tpath = {sysvol}",
        "\tread only = no",
        "",
        "[netlogon]",
        f"\tpath = {sysvol / realm.lower() / 'scripts'}",
        "\tread only = no",
        "",
    ]
    return "\n".join(lines)


def _record_type(record: bytes) -> int:
    """The type of a dnsRecord value (MS-DNSP 2.3.2.2: after its 2-byte data length)."""
    return int(struct.unpack_from("<H", record, 2)[0]) if len(record) >= 4 else 0


def _render_krb5_conf(*, realm: str, host: str) -> str:
    dns_domain = realm.lower()
    return (
        "[libdefaults]\n"
        f"\tdefault_realm = {realm}\n"
        "\tdns_lookup_realm = false\n"
        "\tdns_lookup_kdc = false\n"
        "\trdns = false\n"
        "\tdns_canonicalize_hostname = false\n"
        "\tudp_preference_limit = 1\n"
        "\tticket_lifetime = 10h\n"
        "\n[realms]\n"
        f"\t{realm} = {{\n\t\tkdc = {host}:88\n\t\tadmin_server = {host}:749\n\t}}\n"
        "\n[domain_realm]\n"
        f"\t.{dns_domain} = {realm}\n\t{dns_domain} = {realm}\n"
    )
