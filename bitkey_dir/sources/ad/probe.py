"""One server as `doctor` sees it: does it answer, start TLS, and show a certificate that
chains to the configured CA, names the URL's host and has not expired?

The probe is a TLS handshake with the standard library's ssl, made apart from ldap3 so that
each thing that can be wrong is named on its own (an untrusted chain, a wrong host name, an
expired certificate); for ``ldap://`` it asks for StartTLS first, and reads the answer with
wire.py's BER decoding. cryptography reads the certificate.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from bitkey_dir.sources.ad.connection import describe_network_error
from bitkey_dir.sources.ad.servers import ServerUrl
from bitkey_dir.sources.ad.wire import (
    EXTENDED_RESPONSE,
    WireError,
    decode_done,
    decode_message,
    message_end,
)
from bitkey_dir.sources.base import Check

EXPIRY_WARNING_DAYS: Final = 30
# An ExtendedRequest (message 127) for StartTLS, RFC 4511 4.14.1: 1.3.6.1.4.1.1466.20037.
_STARTTLS_REQUEST: Final = bytes.fromhex(
    "301d02017f77188016312e332e362e312e342e312e313436362e3230303337"
)


def host_matches(host: str, dns_names: Iterable[str], addresses: Iterable[str]) -> bool:
    """Whether a certificate with these subjectAltName entries is valid for ``host``
    (RFC 6125: exact names, a wildcard for the whole left-most label, exact IP addresses).

    >>> host_matches("dc1.corp.example", ["*.corp.example"], [])
    True
    >>> host_matches("a.dc1.corp.example", ["*.corp.example"], []), host_matches("10.0.0.1", [], ["10.0.0.1"])
    (False, True)
    """  # noqa: E501
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is not None:
        return any(_same_address(address, text) for text in addresses)
    wanted = host.lower().rstrip(".")
    for written in dns_names:
        name = written.lower().rstrip(".")
        if name == wanted:
            return True
        if name.startswith("*.") and "." in wanted:
            first, rest = wanted.split(".", 1)
            if first and rest == name[2:]:
                return True
    return False


def _same_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address, text: str) -> bool:
    try:
        return ipaddress.ip_address(text) == address
    except ValueError:
        return False


@dataclass(frozen=True)
class Certificate:
    subject: str
    issuer: str
    not_after: datetime
    dns_names: tuple[str, ...]
    addresses: tuple[str, ...]

    @classmethod
    def from_der(cls, der: bytes) -> Certificate:
        from cryptography import x509

        cert = x509.load_der_x509_certificate(der)
        dns: list[str] = []
        addresses: list[str] = []
        with contextlib.suppress(x509.ExtensionNotFound):
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            dns = [str(name) for name in san.get_values_for_type(x509.DNSName)]
            addresses = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
        return cls(
            cert.subject.rfc4514_string(),
            cert.issuer.rfc4514_string(),
            cert.not_valid_after_utc,
            tuple(dns),
            tuple(addresses),
        )


@dataclass(frozen=True)
class TlsProbe:
    """What one TLS handshake with a server showed."""

    reached: bool
    problem: str | None = None  # why it could not be reached (then nothing else is known)
    chain_error: str | None = None  # the verification result against the configured CA
    certificate: Certificate | None = None


def ask_starttls(sock: socket.socket) -> str | None:
    """Ask for StartTLS on a plain LDAP connection; None when granted, else why not."""
    sock.sendall(_STARTTLS_REQUEST)
    reply = b""
    try:
        while (end := message_end(reply, 0)) is None:
            chunk = sock.recv(4096)
            if not chunk:
                return "the server closed the connection when asked for StartTLS"
            reply += chunk
        answer = reply[:end]
        _, tag, start, stop, _ = decode_message(answer)
        if tag != EXTENDED_RESPONSE:
            return "the server did not answer the StartTLS request"
        code, _ = decode_done(answer, start, stop)
    except WireError:
        return "the server did not answer the StartTLS request"
    return None if code == 0 else f"the server refused StartTLS (result {code})"


def probe_tls(server: ServerUrl, ca_file: Path | None, timeout: float) -> TlsProbe:
    """Connect, start TLS (at once for ldaps://, by StartTLS for ldap://) and verify the chain
    against ``ca_file`` (else the system's trust store); when it does not verify, connect
    once more without verifying, only to read the certificate and say what is wrong with it."""
    verifying = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    verifying.check_hostname = False  # the host name is judged apart, to say which failed
    try:
        der = _handshake(server, verifying, timeout)
        chain_error = None
    except ssl.SSLCertVerificationError as exc:
        chain_error = str(exc.verify_message or exc.reason or "not trusted")
        der = None
    except _NoTls as exc:  # the server's own answer, already in words: kept whole
        return TlsProbe(False, str(exc))
    except OSError as exc:
        return TlsProbe(False, describe_network_error(exc, int(timeout)))
    if der is None:
        looking = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        looking.check_hostname = False
        looking.verify_mode = ssl.CERT_NONE
        try:
            der = _handshake(server, looking, timeout)
        except _NoTls as exc:
            return TlsProbe(True, None, chain_error or str(exc))
        except OSError as exc:
            return TlsProbe(True, None, chain_error or describe_network_error(exc, int(timeout)))
    certificate = None
    if der:
        with contextlib.suppress(ValueError):
            certificate = Certificate.from_der(der)
    return TlsProbe(True, None, chain_error, certificate)


class _NoTls(Exception):
    """The server answered but would not start TLS."""


def _handshake(server: ServerUrl, context: ssl.SSLContext, timeout: float) -> bytes | None:
    with socket.create_connection((server.connect_to, server.port), timeout=timeout) as raw:
        raw.settimeout(timeout)
        if not server.ldaps:
            refused = ask_starttls(raw)
            if refused:
                raise _NoTls(refused)
        with context.wrap_socket(raw, server_hostname=server.host) as tls:
            return tls.getpeercert(binary_form=True)


def server_checks(
    server: ServerUrl, ca_file: Path | None, timeout: float, now: datetime | None = None
) -> list[Check]:
    """Reachability, chain, host name and expiry of one server, as checks. A server that
    cannot be used is "unreachable" (the caller softens that when another one answers)."""
    now = now or datetime.now(UTC)
    probe = probe_tls(server, ca_file, timeout)
    url = server.url
    how = "LDAPS" if server.ldaps else "StartTLS"
    if not probe.reached:
        return [Check("server", url, "unreachable", probe.problem or "no answer")]
    checks = [Check("server", url, "ok", f"answers on {server.connect_to}:{server.port} ({how})")]
    cert = probe.certificate
    trusted_by = f"the CA in {ca_file}" if ca_file else "the system's trust store"
    if probe.chain_error:
        issuer = f" (issued by {cert.issuer})" if cert else ""
        checks.append(
            Check(
                "certificate chain",
                url,
                "unreachable",
                f"not trusted by {trusted_by}: {probe.chain_error}{issuer}",
                "set ca_file to the CA certificate that issued the DC's certificate"
                if "expired" not in probe.chain_error
                else "renew the DC's certificate",
            )
        )
    else:
        checks.append(Check("certificate chain", url, "ok", f"trusted by {trusted_by}"))
    if cert is None:
        return checks
    names = [*cert.dns_names, *cert.addresses]
    if host_matches(server.host, cert.dns_names, cert.addresses):
        checks.append(Check("host name", url, "ok", f"the certificate names {server.host}"))
    else:
        other = next((n for n in cert.dns_names if not n.startswith("*")), None)
        scheme = "ldaps" if server.ldaps else "ldap"
        checks.append(
            Check(
                "host name",
                url,
                "unreachable",
                f"the certificate does not name {server.host}; it names "
                + (", ".join(names) or "no host (no subjectAltName)"),
                f"use {scheme}://{other}:{server.port} in servers" if other else None,
            )
        )
    left = cert.not_after - now
    when = cert.not_after.date().isoformat()
    if left <= timedelta(0):
        checks.append(
            Check(
                "certificate expiry",
                url,
                "unreachable",
                f"expired on {when} ({-left.days} days ago)",
                "renew the DC's certificate",
            )
        )
    elif left < timedelta(days=EXPIRY_WARNING_DAYS):
        checks.append(
            Check(
                "certificate expiry",
                url,
                "warn",
                f"expires on {when}, in {left.days} days",
                "renew the DC's certificate",
            )
        )
    else:
        checks.append(
            Check("certificate expiry", url, "ok", f"expires on {when}, in {left.days} days")
        )
    return checks
