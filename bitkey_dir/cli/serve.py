"""`bitkey-dir serve`: the helpdesk portal, for agents with a browser."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bitkey_dir.cli.common import state
from bitkey_dir.core.errors import InputError

PORTAL_PACKAGES = ("starlette", "uvicorn", "jinja2", "multipart")
INSTALL = "pip install 'bitkey-dir[portal]' (in a checkout: pip install '.[portal]')"


def serve(
    ctx: typer.Context,
    listen: Annotated[
        str | None,
        typer.Option("--listen", help="HOST:PORT to listen on (default: [serve] listen)."),
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="The server's TLS certificate (PEM).")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="The certificate's private key (PEM).")
    ] = None,
    behind_proxy: Annotated[
        bool,
        typer.Option(
            "--behind-proxy",
            help="A TLS-terminating reverse proxy is in front: allow plain HTTP on it.",
        ),
    ] = False,
) -> None:
    """Serve the helpdesk portal: agents sign in with their own directory account, type the
    Key ID and a reason, and read the key aloud; every reveal is in the trail.

    Settings are in [serve] of the config (docs/portal.md). Needs the portal extra.
    """
    import importlib.util

    missing = [name for name in PORTAL_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise InputError(f"the portal needs {', '.join(missing)}: {INSTALL}")
    from bitkey_dir.portal.server import serve as run

    run(state(ctx).config_path, listen, tls_cert, tls_key, behind_proxy)
