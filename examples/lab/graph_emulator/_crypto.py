"""Test PKI and JSON Web Tokens for the Graph emulator, built on `cryptography` only.

The CA, the server certificate and the token signing key are generated once per process
(they take ~50 ms) and shared by every emulator instance; each instance writes them to its
own folder. JWTs are signed RS256 like Entra's, and client assertions are verified with RS256
(the `x5t` SHA-1 path) or PS256 (the `x5t#S256` path MSAL >= 1.31 takes when it knows the
certificate), the two algorithms MSAL for Python uses.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def thumbprints(cert: x509.Certificate) -> tuple[str, str]:
    """(x5t, x5t#S256): base64url SHA-1 and SHA-256 of the DER certificate, as JOSE headers use."""
    return (
        b64url_encode(cert.fingerprint(hashes.SHA1())),  # noqa: S303 - x5t is SHA-1 by definition
        b64url_encode(cert.fingerprint(hashes.SHA256())),
    )


class JwtError(ValueError):
    """A token that is malformed, badly signed or signed by an unknown key."""


def sign_jwt(
    claims: dict[str, Any], key: rsa.RSAPrivateKey, headers: dict[str, Any] | None = None
) -> str:
    header = {"typ": "JWT", "alg": "RS256", **(headers or {})}
    signing_input = (
        b64url_encode(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url_encode(json.dumps(claims, separators=(",", ":")).encode())
    )
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + b64url_encode(signature)


def unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """(header, claims, signing input, signature) without checking anything."""
    parts = token.split(".")
    if len(parts) != 3:
        raise JwtError("JWT is not well formed: it needs three dot-separated parts")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except ValueError as exc:
        raise JwtError("JWT is not well formed: a part is not base64url JSON") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JwtError("JWT is not well formed: header and payload must be JSON objects")
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


def verify_signature(alg: str, public_key: Any, signing_input: bytes, signature: bytes) -> None:
    """Check an RS256 or PS256 signature; raise JwtError on anything else."""
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise JwtError("only RSA keys are supported")
    if alg == "RS256":
        pad: padding.AsymmetricPadding = padding.PKCS1v15()
    elif alg == "PS256":
        # RFC 7518 section 3.5: MGF1 with SHA-256 and a salt as long as the hash.
        pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    else:
        raise JwtError(f"unsupported JWT algorithm {alg!r}")
    try:
        public_key.verify(signature, signing_input, pad, hashes.SHA256())
    except InvalidSignature as exc:
        raise JwtError("JWT signature does not verify") from exc


@dataclass(frozen=True)
class Pki:
    """The emulator's CA, its TLS server certificate and the token signing key."""

    ca_cert_pem: bytes
    server_cert_pem: bytes
    server_key_pem: bytes
    signing_key: rsa.RSAPrivateKey
    signing_cert: x509.Certificate

    @property
    def signing_kid(self) -> str:
        return thumbprints(self.signing_cert)[0]


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bitkey-dir test"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _validity() -> tuple[dt.datetime, dt.datetime]:
    now = dt.datetime.now(dt.UTC)
    return now - dt.timedelta(hours=1), now + dt.timedelta(days=7)


@functools.cache
def shared_pki() -> Pki:
    """Generate the PKI once per process: EC P-256 for TLS (fast), RSA 2048 for tokens."""
    not_before, not_after = _validity()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Graph emulator test CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signing_cert = self_signed_certificate(signing_key, "Graph emulator token signing")
    return Pki(
        ca_cert_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        server_cert_pem=server_cert.public_bytes(serialization.Encoding.PEM),
        server_key_pem=server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        signing_key=signing_key,
        signing_cert=signing_cert,
    )


def self_signed_certificate(key: rsa.RSAPrivateKey, common_name: str) -> x509.Certificate:
    not_before, not_after = _validity()
    name = _name(common_name)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )


@dataclass(frozen=True)
class ClientCertificate:
    """An app credential as the Entra portal takes it: a self-signed RSA certificate."""

    certificate: x509.Certificate
    private_key_pem: str
    certificate_pem: str

    @property
    def sha1_thumbprint_hex(self) -> str:
        """What the portal shows and what MSAL's legacy `thumbprint` setting expects."""
        return self.certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303


def make_client_certificate(common_name: str = "bitkey-dir test app") -> ClientCertificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = self_signed_certificate(key, common_name)
    return ClientCertificate(
        certificate=cert,
        private_key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii"),
        certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
    )


def jwk_for(cert: x509.Certificate, kid: str) -> dict[str, Any]:
    """The JWKS entry Entra publishes for a signing certificate."""
    public = cert.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise TypeError("signing certificates are RSA")
    numbers = public.public_numbers()
    x5t, _ = thumbprints(cert)
    return {
        "kty": "RSA",
        "use": "sig",
        "kid": kid,
        "x5t": x5t,
        "n": b64url_encode(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
        "e": b64url_encode(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
        "x5c": [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")],
    }
