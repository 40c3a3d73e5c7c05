"""``[serve]``: what the portal is built with, read from the same config file as the sources.

``sign_in``            source names whose directory signs agents in (AD: a form checked by
                       an LDAP bind as the agent; Entra: the browser goes to the identity
                       platform, authorization code flow with PKCE, portal/entra.py)
``public_url``         the portal's address as browsers reach it, ``https://host[:port]``
                       (``http://`` on loopback only); Entra redirects agents back to
                       ``{public_url}/auth/callback``, which the app registration must list
``sources``            other sources searched for every agent (key files, exports), default none
``listen``             ``HOST:PORT`` (default ``127.0.0.1:8443``); ``--listen`` overrides it
``tls_cert``/``tls_key`` the server's certificate and key (PEM); ``--tls-cert``/``--tls-key``
``behind_proxy``       true when a TLS-terminating reverse proxy is in front: plain HTTP is then
                       allowed on a non-loopback address, and X-Forwarded-For is trusted from
                       ``trusted_proxies`` (default ``["127.0.0.1"]``)
``require_reason``     a reason for every reveal (default true)
``reason_choices``     reasons offered in a list (MBAM-style); "Other" lets the agent type one
``idle_timeout``       a session ends after this long unused (default ``"15m"``)
``session_lifetime``   and this long after sign-in whatever happens (default ``"8h"``)
``sessions``           the SQLite file of sessions (default: the state folder)
``advanced``/``auditors`` directory groups of those roles (see portal/roles.py)
``sign_in_attempts``   failed sign-ins allowed per account per 15 minutes (default 5); a client
                       address gets four times as many
``reveals_per_hour``   reveals allowed per agent per hour (default 60)
``entra_rotation``     true: Entra agents sign in asking for Intune's
                       DeviceManagementManagedDevices.ReadWrite.All too, and rotate keys as
                       themselves (default false: a tenant that never consented to it would
                       refuse every sign-in)
``syslog``             ``udp://HOST:PORT``, ``tcp://HOST:PORT`` or ``unix:///dev/log``: each
                       trail line is also sent there as an RFC 5424 message (syslog5424.py)
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from bitkey_dir.core.errors import ConfigError
from bitkey_dir.portal.syslog5424 import Target
from bitkey_dir.runtime.config import Config, Settings, state_dir

DEFAULT_LISTEN: Final = "127.0.0.1:8443"
MINUTE: Final = 60.0
KNOWN_TYPES: Final = ("ad", "entra")  # directories whose accounts sign agents in
CALLBACK: Final = "/auth/callback"  # where Entra sends the browser back


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str, where: str) -> Listen:
        host, sep, port = text.strip().rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{where}: expected HOST:PORT such as 127.0.0.1:8443, got {text!r}")
        return cls(host, int(port))

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True)
class ServeSettings:
    sign_in: tuple[str, ...]
    sources: tuple[str, ...] = ()
    listen: Listen = field(default_factory=lambda: Listen.parse(DEFAULT_LISTEN, "listen"))
    tls_cert: Path | None = None
    tls_key: Path | None = None
    behind_proxy: bool = False
    trusted_proxies: tuple[str, ...] = ("127.0.0.1",)
    require_reason: bool = True
    reason_choices: tuple[str, ...] = ()
    idle_timeout: float = 15 * MINUTE
    session_lifetime: float = 8 * 60 * MINUTE
    sessions: Path | None = None
    advanced: tuple[str, ...] = ()
    auditors: tuple[str, ...] = ()
    sign_in_attempts: int = 5
    reveals_per_hour: int = 60
    syslog: Target | None = None
    entra: tuple[str, ...] = ()  # of sign_in: those signing agents in through Entra ID
    public_url: str | None = None
    entra_rotation: bool = False

    @property
    def ad(self) -> tuple[str, ...]:
        """Of ``sign_in``: those whose agents type their password into the portal."""
        return tuple(name for name in self.sign_in if name not in self.entra)

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_url}{CALLBACK}"

    @property
    def session_file(self) -> Path:
        return self.sessions or state_dir() / "portal-sessions.sqlite"


def _duration(settings: Settings, key: str, default: float) -> float:
    from bitkey_dir.runtime.config import _duration as parse

    seconds = parse(settings.value(key), f"serve.{key}")
    return default if seconds is None else seconds


def read_settings(config: Config) -> ServeSettings:
    """``[serve]`` of ``config``, checked against its sources; ConfigError names the key."""
    settings = Settings(config.serve, f"{config.path}: serve", config.path.parent)
    sign_in = tuple(settings.string_list("sign_in"))
    if not sign_in:
        raise settings.error("sign_in", 'the sources agents sign in with, e.g. ["corp"]')
    for name in sign_in:
        source = config.sources.get(name)
        if source is None or source.type not in KNOWN_TYPES:
            raise settings.item_error("sign_in", name, "a configured source of type ad or entra")
    entra = tuple(name for name in sign_in if config.sources[name].type == "entra")
    for name in entra:
        check_entra(config, name, settings)
    public_url = public_address(settings) if entra or "public_url" in settings else None
    extra = tuple(settings.string_list("sources"))
    for name in extra:
        if name not in config.sources:
            raise settings.item_error("sources", name, "a configured source")
    listen = Listen.parse(settings.string("listen") or DEFAULT_LISTEN, f"{config.path}: serve")
    sessions = settings.string("sessions")
    syslog = settings.string("syslog")
    result = ServeSettings(
        sign_in=sign_in,
        sources=extra,
        listen=listen,
        tls_cert=settings.existing_file("tls_cert", "the TLS certificate"),
        tls_key=settings.existing_file("tls_key", "the TLS key"),
        behind_proxy=settings.boolean("behind_proxy", False),
        trusted_proxies=tuple(settings.string_list("trusted_proxies") or ["127.0.0.1"]),
        require_reason=settings.boolean("require_reason", True),
        reason_choices=tuple(settings.string_list("reason_choices")),
        idle_timeout=_duration(settings, "idle_timeout", 15 * MINUTE),
        session_lifetime=_duration(settings, "session_lifetime", 8 * 60 * MINUTE),
        sessions=config.path.parent / Path(sessions).expanduser() if sessions else None,
        advanced=tuple(settings.string_list("advanced")),
        auditors=tuple(settings.string_list("auditors")),
        sign_in_attempts=settings.integer("sign_in_attempts", 5, minimum=1, maximum=1000),
        reveals_per_hour=settings.integer("reveals_per_hour", 60, minimum=1, maximum=100_000),
        syslog=Target.parse(syslog, f"{config.path}: serve.syslog") if syslog else None,
        entra=entra,
        public_url=public_url,
        entra_rotation=entra_rotation(settings, entra),
    )
    settings.reject_unknown()
    return result


def entra_rotation(settings: Settings, entra: tuple[str, ...]) -> bool:
    """``entra_rotation``, which only an Entra source in ``sign_in`` can use."""
    wanted = settings.boolean("entra_rotation", False)
    if wanted and not entra:
        raise settings.error("entra_rotation", "true only with an Entra source in sign_in")
    return wanted


def check_entra(config: Config, name: str, serve: Settings) -> None:
    """An Entra source agents sign in with: one tenant, and an app that can prove itself."""
    table = config.sources[name].settings
    if "tenant_ids" in table:
        raise serve.item_error("sign_in", name, "an Entra source with one tenant_id")
    if table.value("auth") not in ("client-secret", "client-certificate"):
        raise serve.item_error(
            "sign_in",
            name,
            'an Entra source with auth = "client-secret" or "client-certificate" (a web app '
            "signs agents in with its own secret or certificate)",
        )


def public_address(settings: Settings) -> str:
    """``public_url``: where browsers reach the portal, scheme, host and port only."""
    from urllib.parse import urlsplit

    expected = "https://HOST[:PORT] (http:// on a loopback host only), with no path"
    text = settings.string("public_url")
    if not text:
        raise settings.error("public_url", f"{expected}: Entra sends agents back there")
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        raise settings.error("public_url", expected) from None
    host = parts.hostname or ""
    clean = (
        parts.scheme in ("https", "http")
        and re.fullmatch(r"[A-Za-z0-9.:-]{1,253}", host)
        and parts.path in ("", "/")
        and not (parts.query or parts.fragment or parts.username or parts.password)
        and text.strip().isprintable()
    )
    if not clean or (parts.scheme == "http" and not Listen(host, port or 80).loopback):
        raise settings.error("public_url", expected)
    return text.strip().rstrip("/")
