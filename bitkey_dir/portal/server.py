"""Serving the portal with uvicorn: TLS, or plain HTTP on loopback or behind a proxy only.

The process never touches the keyring (agents bring their own credentials, and nothing they
type may be stored), and refuses ``BITKEY_DIR_PASSWORD``, which would bind every agent's
lookups with one password.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

from bitkey_dir.core.env import PASSWORD_ENV
from bitkey_dir.core.errors import ConfigError, InputError
from bitkey_dir.portal.settings import Listen, ServeSettings, read_settings
from bitkey_dir.runtime.config import load_config

NULL_KEYRING = "keyring.backends.null.Keyring"


def checked(
    settings: ServeSettings,
    listen: str | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    behind_proxy: bool,
) -> ServeSettings:
    """The settings with the command's options applied, refused when they would serve keys
    in the clear."""
    if listen:
        settings = replace(settings, listen=Listen.parse(listen, "--listen"))
    if tls_cert or tls_key:
        if not (tls_cert and tls_key):
            raise InputError("--tls-cert and --tls-key go together: give both")
        settings = replace(settings, tls_cert=tls_cert, tls_key=tls_key)
    if behind_proxy:
        settings = replace(settings, behind_proxy=True)
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise ConfigError("serve.tls_cert and serve.tls_key go together: give both")
    plain = settings.tls_cert is None
    if plain and not settings.listen.loopback and not settings.behind_proxy:
        raise InputError(
            f"refusing plain HTTP on {settings.listen.host}: give --tls-cert and --tls-key, "
            "listen on a loopback address, or say --behind-proxy when a TLS-terminating "
            "reverse proxy is in front (docs/portal.md)"
        )
    if os.environ.get(PASSWORD_ENV):
        raise InputError(
            f"unset {PASSWORD_ENV}: in the portal every agent binds with their own password"
        )
    if settings.tls_cert and settings.tls_key:
        check_tls_pair(settings.tls_cert, settings.tls_key)
    return settings


def check_tls_pair(cert: Path, key: Path) -> None:
    """Refuse, before listening, a certificate or key that is missing, not a small regular
    file, or not a PEM certificate and its own private key."""
    import ssl

    from bitkey_dir.runtime.small_files import check_regular_file

    check_regular_file(cert, what="the TLS certificate (--tls-cert)")
    check_regular_file(key, what="the TLS key (--tls-key)")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise InputError(
            f"{cert} and {key} are not a PEM certificate and its private key ({reason})"
        ) from None


def without_callback_query(record: logging.LogRecord) -> bool:
    """The access log shows /auth/callback without its query: the authorization code."""
    from bitkey_dir.portal.settings import CALLBACK

    args = record.args
    if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
        path = args[2]
        if path.startswith(CALLBACK + "?"):
            record.args = (*args[:2], f"{CALLBACK}?…", *args[3:])
    return True


def serve(
    config_path: Path | None,
    listen: str | None = None,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    behind_proxy: bool = False,
) -> None:
    """Run the portal until interrupted."""
    import uvicorn

    from bitkey_dir.portal.app import create_app

    config = load_config(config_path)
    settings = checked(read_settings(config), listen, tls_cert, tls_key, behind_proxy)
    os.environ["PYTHON_KEYRING_BACKEND"] = NULL_KEYRING
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("uvicorn.access").addFilter(without_callback_query)
    app = create_app(config.path)
    uvicorn.run(
        app,
        host=settings.listen.host,
        port=settings.listen.port,
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
        proxy_headers=settings.behind_proxy,
        forwarded_allow_ips=list(settings.trusted_proxies) if settings.behind_proxy else None,
        server_header=False,
        log_level="info",
    )
