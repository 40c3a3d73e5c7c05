"""`bitkey-dir doctor` against the Samba DC: the seeded accounts' real rights, servers that
cannot be used, certificates from another PKI, expired or about to expire.

The lab's rights (tests/integration/seed.py): helpdesk1 may read the passwords below
OU=Workstations (OU=Laptops included); every authenticated user, plainuser too, sees the
recovery objects in OU=Corp and OU=Lab but none of their passwords; Administrator reads all.
No run may show a seeded password, on stdout or stderr, whatever its exit code.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bitkey_dir.sources.ad.probe import server_checks
from bitkey_dir.sources.ad.servers import ServerUrl
from examples.lab.samba_dc import make_test_pki
from tests.command_line import Outcome, invoke_with
from tests.integration.fixtures import PASSWORDS, Directory, Lab, ad_checks, free_port
from tests.integration.seed import LAB, LAPTOPS, SERVERS, WORKSTATIONS

pytestmark = pytest.mark.integration


def doctor(lab: Lab, *args: str, user: str = "helpdesk", **settings: object) -> Outcome:
    config = lab.config(user=user, **settings)
    outcome = invoke_with(config, "doctor", *args, **ad_checks())
    for password in PASSWORDS:  # never revealed, not even by a healthy run
        assert password not in outcome.out + outcome.err
        assert password.replace("-", "") not in outcome.out + outcome.err
    return outcome


def as_json(lab: Lab, user: str = "helpdesk", **settings: object) -> tuple[int, dict[str, Any]]:
    outcome = doctor(lab, "--format", "json", user=user, **settings)
    import json

    return outcome.code, json.loads(outcome.out)


def checks(document: dict[str, Any], area: str | None = None) -> list[dict[str, Any]]:
    (source,) = document["sources"]
    found: list[dict[str, Any]] = source["checks"]
    return [c for c in found if area is None or c["area"] == area]


def by_ou(document: dict[str, Any], directory: Directory) -> dict[str, dict[str, Any]]:
    suffix = "," + directory.base_dn
    return {c["subject"].removesuffix(suffix): c for c in checks(document, "recovery objects")}


# -- rights ----------------------------------------------------------------------------------


def test_the_helpdesk_reads_workstations_and_is_told_what_it_lacks_elsewhere(
    lab: Lab, samba_dc: Directory
) -> None:
    code, document = as_json(lab, "helpdesk")
    assert code == 3
    ous = by_ou(document, samba_dc)
    assert ous[WORKSTATIONS]["status"] == "ok"
    assert ous[WORKSTATIONS]["detail"].startswith("recovery objects: 6, visible: 6, readable: 6")
    assert ous[LAPTOPS]["status"] == "ok"
    assert ous[LAPTOPS]["detail"].startswith("recovery objects: 3, visible: 3, readable: 3")
    for ou, visible in ((SERVERS, 2), (LAB, 1)):
        check = ous[ou]
        assert check["status"] == "missing-right"
        assert check["detail"].startswith(
            f"recovery objects: {visible}, visible: {visible}, readable: 0"
        )
        # Which ACE is missing, for the account and the groups its token holds.
        assert check["detail"].endswith(
            "no ACE on the OU gives BITKEY\\helpdesk1 or its groups Read Property and "
            "Control Access on msFVE-RecoveryPassword"
        )
        dn = samba_dc.dc.dn(ou)
        assert check["fix"] == (
            f'bitkey-dir rights grant -s "lab" --ou "{dn}" --principal "helpdesk1@bitkey.test" '
            f'(or on Windows: dsacls "{dn}" /I:S /G "helpdesk1@bitkey.test:RPCA;'
            f'msFVE-RecoveryPassword;msFVE-RecoveryInformation" && dsacls "{dn}" /I:S /G '
            '"helpdesk1@bitkey.test:RP;;msFVE-RecoveryInformation")'
        )
    # The domain controllers hold no recovery object (not even a name is listed below them):
    # nothing escrowed, nothing to grant.
    assert ous["OU=Domain Controllers"]["status"] == "warn"
    assert "no key is escrowed below these computers" in ous["OU=Domain Controllers"]["detail"]
    assert ous["OU=Domain Controllers"]["fix"] is None
    (bind,) = checks(document, "bind")
    assert bind["status"] == "ok"
    assert samba_dc.url in bind["detail"]
    (clock,) = checks(document, "clock")
    assert clock["status"] == "ok"


def test_an_account_that_sees_objects_but_no_password_is_told_so_for_every_ou(
    lab: Lab, samba_dc: Directory
) -> None:
    code, document = as_json(lab, "plain")
    assert code == 3
    ous = by_ou(document, samba_dc)
    for ou, visible in ((WORKSTATIONS, 6), (LAPTOPS, 3), (SERVERS, 2), (LAB, 1)):
        assert ous[ou]["status"] == "missing-right", ous[ou]
        assert ous[ou]["detail"].startswith(
            f"recovery objects: {visible}, visible: {visible}, readable: 0"
        )
        assert "plainuser@bitkey.test:RPCA;msFVE-RecoveryPassword" in ous[ou]["fix"]


def test_the_domain_admin_is_healthy(lab: Lab, samba_dc: Directory) -> None:
    code, document = as_json(lab, "admin")
    assert code == 0, document
    assert document["healthy"] is True
    ous = by_ou(document, samba_dc)
    statuses = {ou: c["status"] for ou, c in ous.items() if ou != "OU=Domain Controllers"}
    assert statuses == dict.fromkeys((WORKSTATIONS, LAPTOPS, SERVERS, LAB), "ok")


def test_the_ous_are_reported_in_tree_order(lab: Lab, samba_dc: Directory) -> None:
    # The directory's own order differs between two DCs provisioned alike. (OU=Corp holds
    # no computer of its own, so it has no check.)
    _, document = as_json(lab, "admin")
    subjects = [c["subject"] for c in checks(document, "recovery objects")]
    suffix = "," + samba_dc.base_dn
    assert [s.removesuffix(suffix) for s in subjects if s.startswith("OU=")] == [
        SERVERS,
        WORKSTATIONS,
        LAPTOPS,
        "OU=Domain Controllers",
        LAB,
    ]


def test_the_table_shows_the_fix_for_people(lab: Lab, samba_dc: Directory) -> None:
    code, out, _ = doctor(lab, user="plain")
    assert code == 3
    assert "MISSING RIGHT recovery objects: " + samba_dc.dc.dn(SERVERS) in out
    assert f'fix: bitkey-dir rights grant -s "lab" --ou "{samba_dc.dc.dn(SERVERS)}"' in out
    assert f'dsacls "{samba_dc.dc.dn(SERVERS)}" /I:S /G' in out
    assert out.rstrip().endswith("rights or sign-in missing (exit 3)")


def test_a_wrong_password_is_a_missing_sign_in(lab: Lab) -> None:
    lab.monkeypatch.setenv("BITKEY_DIR_PASSWORD", "Wr0ng!Secret-4242")
    config = lab.config(user="helpdesk", set_password=False)
    outcome = invoke_with(config, "doctor", "-f", "json", **ad_checks())
    assert outcome.code == 3
    (bind,) = [c for c in outcome.document["sources"][0]["checks"] if c["area"] == "bind"]
    assert bind["status"] == "missing-right"


# -- servers -----------------------------------------------------------------------------------


def test_a_closed_port_beside_a_working_server_is_a_warning(lab: Lab, samba_dc: Directory) -> None:
    closed = f"ldaps://127.0.0.1:{free_port()}"
    code, document = as_json(lab, "admin", servers=[closed, samba_dc.url, samba_dc.ldap_url])
    assert code == 0
    servers = {c["subject"]: c for c in checks(document, "server")}
    assert servers[closed]["status"] == "warn"
    assert "connection refused" in servers[closed]["detail"]
    assert servers[samba_dc.url]["detail"].endswith("(LDAPS)")
    assert servers[samba_dc.ldap_url]["detail"].endswith("(StartTLS)")
    chains = {c["subject"]: c["status"] for c in checks(document, "certificate chain")}
    assert chains == {samba_dc.url: "ok", samba_dc.ldap_url: "ok"}


def test_no_server_answering_is_exit_4(lab: Lab) -> None:
    closed = f"ldaps://127.0.0.1:{free_port()}"
    code, document = as_json(lab, "helpdesk", servers=[closed])
    assert code == 4
    statuses = {c["area"]: c["status"] for c in checks(document)}
    assert statuses == {"server": "unreachable", "bind": "unreachable"}


def test_a_ca_file_of_another_pki_is_named_as_the_problem(
    lab: Lab, samba_dc: Directory, tmp_path: Path
) -> None:
    other = make_test_pki(tmp_path / "other", ip="127.0.0.1", dns_names=["x"], ca_name="Other CA")
    code, document = as_json(lab, "helpdesk", ca_file=str(other.ca_file))
    assert code == 4
    (chain,) = checks(document, "certificate chain")
    assert chain["status"] == "unreachable"
    assert "unable to get local issuer certificate" in chain["detail"]
    assert "Samba DC test CA" in chain["detail"]  # who did issue it
    assert chain["fix"].startswith("set ca_file")
    (bind,) = checks(document, "bind")
    assert bind["status"] == "unreachable"


def test_a_url_the_certificate_does_not_name_is_shown_with_the_name_it_has(
    lab: Lab, samba_dc: Directory
) -> None:
    url = f"ldaps://localhost:{ServerUrl.parse(samba_dc.url).port}"
    address = ServerUrl.parse(samba_dc.url).host
    # localhost resolves to 127.0.0.1, where the DC does not listen: connect to its address.
    server = ServerUrl(url, "localhost", ServerUrl.parse(samba_dc.url).port, True, address)
    found = {c.area: c for c in server_checks(server, samba_dc.ca_file, 5)}
    assert found["certificate chain"].status == "ok"
    assert found["host name"].status == "unreachable"
    assert "does not name localhost" in found["host name"].detail
    assert found["host name"].fix == f"use ldaps://{samba_dc.kerberos_host}:636 in servers"


# -- certificates a lab DC does not have: a TLS listener serves them -----------------------------


def certificate(directory: Path, *, not_before: dt.datetime, not_after: dt.datetime) -> Path:
    """A CA (written to directory/ca.pem) and a server certificate for 127.0.0.1 with these
    dates (directory/server.pem, key included)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Doctor test CA")])
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=3650)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=7300))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    server = directory / "server.pem"
    server.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    return server


@pytest.fixture
def tls_listener() -> Iterator[Any]:
    """Starts a TLS server on 127.0.0.1 with a given certificate; yields a starter."""
    stop = threading.Event()
    sockets: list[socket.socket] = []

    def start(pem: Path) -> int:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pem)
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.2)
        sockets.append(listener)

        def serve() -> None:
            while not stop.is_set():
                try:
                    raw, _ = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                raw.settimeout(2)
                try:
                    with context.wrap_socket(raw, server_side=True):
                        pass
                except (OSError, ssl.SSLError):
                    raw.close()

        threading.Thread(target=serve, daemon=True).start()
        port: int = listener.getsockname()[1]
        return port

    yield start
    stop.set()
    for listener in sockets:
        listener.close()


def test_an_expired_certificate_is_named(tls_listener: Any, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    pem = certificate(
        tmp_path, not_before=now - dt.timedelta(days=400), not_after=now - dt.timedelta(days=35)
    )
    port = tls_listener(pem)
    found = {
        c.area: c
        for c in server_checks(ServerUrl.parse(f"ldaps://127.0.0.1:{port}"), tmp_path / "ca.pem", 5)
    }
    assert found["server"].status == "ok"
    assert found["certificate chain"].status == "unreachable"
    assert "certificate has expired" in found["certificate chain"].detail
    assert found["certificate chain"].fix == "renew the DC's certificate"
    assert found["certificate expiry"].status == "unreachable"
    assert "days ago" in found["certificate expiry"].detail
    assert found["host name"].status == "ok"


def test_a_certificate_about_to_expire_is_a_warning(tls_listener: Any, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    pem = certificate(
        tmp_path,
        not_before=now - dt.timedelta(days=300),
        not_after=now + dt.timedelta(days=12, hours=1),
    )
    port = tls_listener(pem)
    found = {
        c.area: c
        for c in server_checks(ServerUrl.parse(f"ldaps://127.0.0.1:{port}"), tmp_path / "ca.pem", 5)
    }
    assert found["certificate chain"].status == "ok"
    assert found["certificate expiry"].status == "warn"
    assert found["certificate expiry"].detail.endswith("in 12 days")


def test_kerberos_binds_with_the_ticket_and_finds_the_same_rights(
    lab: Lab, samba_dc: Directory, helpdesk_ccache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KRB5_CONFIG", str(samba_dc.dc.krb5_conf))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{helpdesk_ccache}")
    config = lab.config(user=None, auth="kerberos", kerberos_host=samba_dc.kerberos_host)
    outcome = invoke_with(config, "doctor", "-f", "json", **ad_checks())
    assert outcome.code == 3
    document = outcome.document
    (bind,) = checks(document, "bind")
    assert bind["status"] == "ok"
    assert bind["detail"].endswith("with Kerberos")
    (clock,) = checks(document, "clock")
    assert clock["status"] == "ok"
    assert "Kerberos allows 5 minutes" in clock["detail"]
    ous = by_ou(document, samba_dc)
    assert ous[WORKSTATIONS]["status"] == "ok"
    assert ous[SERVERS]["status"] == "missing-right"
