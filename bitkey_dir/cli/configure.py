"""`bitkey-dir config path` and `bitkey-dir sources`: where the config is and what it defines."""

from __future__ import annotations

import typer

from bitkey_dir.cli.common import (
    JsonFlag,
    Listing,
    ListingFormat,
    echo_parts,
    run_for,
    state,
    wants_json,
)

config_app = typer.Typer(help="Configuration file commands.", no_args_is_help=True)


@config_app.command("path")
def path(ctx: typer.Context) -> None:
    """Print the config file in use (from --config, BITKEY_DIR_CONFIG, or the platform default)."""
    from bitkey_dir.core.display import safe
    from bitkey_dir.runtime.config import config_path

    where, _ = config_path(state(ctx).config_path)
    typer.echo(safe(where))
    if not where.exists():
        typer.echo("(the file does not exist yet; see examples/config.toml)", err=True)


def sources(
    ctx: typer.Context,
    output_format: ListingFormat = Listing.table,
    as_json: JsonFlag = False,
) -> None:
    """List the configured sources, checking each one's settings."""
    from bitkey_dir.ops.inventory import configured_sources
    from bitkey_dir.render import inventory

    run = run_for(ctx)
    rows = configured_sources(run)
    if wants_json(output_format, as_json):
        typer.echo(inventory.render_json(run.config.path, rows), nl=False)
    else:
        echo_parts(inventory.render_table(run.config.path, rows))
