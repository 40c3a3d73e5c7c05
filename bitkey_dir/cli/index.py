"""`bitkey-dir index refresh|status|clear`: the Key ID index that makes 8 digits fast."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from bitkey_dir.cli.common import (
    JsonFlag,
    Listing,
    ListingFormat,
    report,
    run_for,
    wants_json,
)

if TYPE_CHECKING:
    from bitkey_dir.ops.index import IndexReport, RefreshResult

index_app = typer.Typer(
    help="The Key ID index: where each key is (never a password), for fast lookups.",
    no_args_is_help=True,
)

Sources = Annotated[
    list[str] | None,
    typer.Option(
        "--source", "-s", help="A configured source name. Repeatable. Default: every source."
    ),
]


@index_app.command("refresh")
def refresh(
    ctx: typer.Context,
    source: Sources = None,
    due: Annotated[
        bool,
        typer.Option("--due", help="Only sources whose index is older than index_max_age."),
    ] = False,
    output_format: ListingFormat = Listing.table,
    as_json: JsonFlag = False,
) -> None:
    """List every key of the sources (Key IDs, computers, dates; never a password) into the
    index. A source that fails keeps its previous index.

    Exit codes: 0 done, 2 bad input, 3 sign-in or rights, 4 a source failed.
    """
    from bitkey_dir.ops import index

    result = index.refresh(run_for(ctx), source or [], due_only=due)
    if wants_json(output_format, as_json):
        typer.echo(_refresh_json(result))
    else:
        _refresh_table(result)
    report(result.warnings, result.sources)
    raise typer.Exit(result.exit_code)


def _refresh_table(result: RefreshResult) -> None:
    from bitkey_dir.core.display import safe

    if not result.sources:
        typer.echo("No source is due for a refresh.", err=True)
    for done in result.refreshed:
        deleted = f" ({done.deleted:,} of deleted computers)" if done.deleted else ""
        keys = "key" if done.keys == 1 else "keys"
        typer.echo(safe(f"{done.source}: {done.keys:,} {keys}{deleted} in {done.seconds:.1f} s"))
    if result.refreshed:
        typer.echo(safe(f"Index: {result.path}"), err=True)


def _refresh_json(result: RefreshResult) -> str:
    import json

    from bitkey_dir.core.display import safe_json

    document = {
        "index": str(result.path),
        "refreshed": [
            {
                "source": done.source,
                "keys": done.keys,
                "deleted": done.deleted,
                "seconds": round(done.seconds, 3),
            }
            for done in result.refreshed
        ],
        "warnings": result.warnings,
        "sources": [
            {"name": status.name, "status": status.status, "error": status.error}
            for status in result.sources
        ],
    }
    return safe_json(json.dumps(document, indent=2, ensure_ascii=False))


@index_app.command("status")
def status(
    ctx: typer.Context,
    output_format: ListingFormat = Listing.table,
    as_json: JsonFlag = False,
) -> None:
    """Show each source's part of the index: when it was refreshed, how many keys, whether a
    refresh is due."""
    from bitkey_dir.ops import index

    result = index.status(run_for(ctx))
    if wants_json(output_format, as_json):
        typer.echo(_status_json(result))
    else:
        _status_table(result)


def _status_table(result: IndexReport) -> None:
    from bitkey_dir.core.display import safe
    from bitkey_dir.ops.indexed import describe_age

    where = safe(result.path) if result.exists else f"{safe(result.path)} (not built yet)"
    typer.echo(f"Index: {where}", err=True)
    if not result.rows:
        typer.echo("No sources configured.", err=True)
    width = max((len(row.source) for row in result.rows), default=0)
    for row in result.rows:
        if row.state is None:
            what = (
                "indexed as another directory: refresh it" if row.other_directory else "not indexed"
            )
        else:
            state = row.state
            deleted = f", {state.deleted:,} of deleted computers" if state.deleted else ""
            keys = "key" if state.keys == 1 else "keys"
            what = (
                f"{state.keys:,} {keys}{deleted}, refreshed {describe_age(state.age())} ago "
                f"({state.refreshed:%Y-%m-%d %H:%M} UTC, took {state.took:.1f} s)"
            )
        if not row.configured:
            what += "; no longer configured (bitkey-dir index clear -s NAME)"
        if row.max_age is not None:
            what += f"; index_max_age {describe_age(row.max_age)}"
            what += ", refresh due" if row.due else ""
        typer.echo(safe(f"{row.source:<{width}}  {what}"))


def _status_json(result: IndexReport) -> str:
    import json

    from bitkey_dir.core.display import safe_json

    rows = []
    for row in result.rows:
        state = row.state
        rows.append(
            {
                "source": row.source,
                "configured": row.configured,
                "indexed": state is not None,
                "other_directory": row.other_directory,
                "refreshed": state.refreshed.isoformat(timespec="seconds") if state else None,
                "age_seconds": round(state.age()) if state else None,
                "keys": state.keys if state else None,
                "deleted": state.deleted if state else None,
                "index_max_age_seconds": row.max_age,
                "due": row.due,
            }
        )
    document = {"index": str(result.path), "exists": result.exists, "sources": rows}
    return safe_json(json.dumps(document, indent=2, ensure_ascii=False))


@index_app.command("clear")
def clear(ctx: typer.Context, source: Sources = None) -> None:
    """Drop sources from the index (all of it when none is named). Lookups still work: they
    search the directories until the next refresh."""
    from bitkey_dir.core.display import safe
    from bitkey_dir.ops import index

    dropped = index.clear(run_for(ctx), source or [])
    if not dropped:
        typer.echo("The index held nothing to clear.", err=True)
    for name in dropped:
        typer.echo(safe(f"{name}: cleared"))
