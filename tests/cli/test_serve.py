"""`bitkey-dir serve`: its help loads no web stack; without the extra it names the install."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.command_line import invoke, invoke_with
from tests.import_probe import imported_by

WEB = ("starlette", "uvicorn", "jinja2", "multipart", "python_multipart")


def test_serve_help_imports_no_web_stack() -> None:
    heavy, mine, stdout = imported_by("serve", "--help")
    assert heavy == []
    assert not [m for m in mine if m.startswith("bitkey_dir.portal")]
    assert b"--tls-cert" in stdout
    _, mine, _ = imported_by("--help")
    assert not [m for m in mine if m.startswith("bitkey_dir.portal")]


def test_serve_without_the_extra_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a)
    )
    code, _, err = invoke("serve")
    assert code == 2
    assert "pip install 'bitkey-dir[portal]'" in err


def test_serve_refuses_plain_http_off_loopback(tmp_path: Path) -> None:
    pytest.importorskip("starlette")
    config = tmp_path / "config.toml"
    config.write_text(
        '[sources.corp]\ntype = "ad"\nservers = ["ldaps://dc1"]\n\n[serve]\nsign_in = ["corp"]\n',
        encoding="utf-8",
    )
    code, _, err = invoke_with(config, "serve", "--listen", "192.0.2.10:8080")
    assert code == 2
    assert "refusing plain HTTP on 192.0.2.10" in err


def test_a_bad_serve_table_is_a_config_error(tmp_path: Path) -> None:
    pytest.importorskip("starlette")
    config = tmp_path / "config.toml"
    config.write_text("[serve]\nsign_in = []\n", encoding="utf-8")
    code, _, err = invoke_with(config, "serve")
    assert code == 2
    assert "serve.sign_in" in err


@pytest.mark.parametrize("broken", ["missing", "not-pem", "device"])
def test_a_tls_certificate_that_cannot_serve_is_refused_before_listening(
    tmp_path: Path, broken: str
) -> None:
    pytest.importorskip("starlette")
    config = tmp_path / "config.toml"
    config.write_text(
        '[sources.corp]\ntype = "ad"\nservers = ["ldaps://dc1"]\n\n[serve]\nsign_in = ["corp"]\n'
        f'sessions = "{tmp_path / "s.sqlite"}"\n',
        encoding="utf-8",
    )
    cert = {"missing": tmp_path / "none.pem", "device": Path("/dev/zero")}.get(broken)
    if cert is None:
        cert = tmp_path / "cert.pem"
        cert.write_text("not a certificate\n", encoding="utf-8")
    code, _, err = invoke_with(
        config, "serve", "--listen", "127.0.0.1:1", "--tls-cert", str(cert), "--tls-key", str(cert)
    )
    assert code == 2
    assert str(cert) in err


def test_a_bad_syslog_address_is_a_config_error(tmp_path: Path) -> None:
    pytest.importorskip("starlette")
    config = tmp_path / "config.toml"
    config.write_text(
        '[sources.corp]\ntype = "ad"\nservers = ["ldaps://dc1"]\n\n[serve]\nsign_in = ["corp"]\n'
        'syslog = "syslog.example.com:514"\n',
        encoding="utf-8",
    )
    code, _, err = invoke_with(config, "serve")
    assert code == 2
    assert "serve.syslog: expected udp://HOST:PORT" in err
