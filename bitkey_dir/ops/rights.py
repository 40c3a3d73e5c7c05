"""Who may read recovery keys (`rights show`), and delegating it (`rights grant|revoke`).

``show`` asks every source that can say (``ShowsRights``): AD from an OU's DACL, Entra from
its role assignments. ``grant`` and ``revoke`` change one source (``GrantsRights``): exactly
the entries a helpdesk needs, nothing else; with ``what_if`` nothing is changed and the
result says what would be, with the equivalent commands. No key is read. A change that was
made is a line in the access trail (``"action": "grant"`` or ``"revoke"``).

Exit codes: 0 answered or done (a what-if included), 1 nobody holds a right (every source
answering), 2 bad input (a principal in no accepted form, or unknown), 3 a right to read or
change the rights is missing, 4 a source failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from bitkey_dir.core.errors import ExitCode, InputError, SourceError
from bitkey_dir.core.rights import Holder, RightsChange, RightsRequest, principal_form
from bitkey_dir.ops import policy
from bitkey_dir.ops.outcome import SourceStatus, exit_code
from bitkey_dir.ops.run import Run, ask_all
from bitkey_dir.sources.base import GrantsRights, ShowsRights, Source, Warn
from bitkey_dir.store import trail


@dataclass
class RightsResult:
    """Each holder of a right, per source, with each source's status and warnings."""

    scope: str | None
    holders: list[Holder] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sources: list[SourceStatus] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        answer = ExitCode.FOUND if self.holders else ExitCode.NOT_FOUND
        return exit_code(answer, self.sources, every_source_needed=False)


@dataclass
class ChangeResult:
    """What a grant or revoke did or would do (None when the source failed)."""

    request: RightsRequest
    change: RightsChange | None = None
    warnings: list[str] = field(default_factory=list)
    sources: list[SourceStatus] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        answer = ExitCode.FOUND if self.change is not None else ExitCode.NOT_FOUND
        return exit_code(answer, self.sources, every_source_needed=True)


def show(run: Run, sources: Sequence[str] = (), scope: str | None = None) -> RightsResult:
    """Who holds a right on keys in ``sources`` (default: the default sources that can
    say); ``scope`` is the OU for AD sources (default: the domain)."""
    with run.active():
        opened = run.open(list(sources))
        able = [source for source in opened if isinstance(source, ShowsRights)]
        _refuse_the_unable([s for s in opened if s not in able], named=bool(sources))

        def holders(source: Source, warn: Warn) -> list[Holder]:
            return cast("ShowsRights", source).rights_holders(scope, warn)

        result = RightsResult(scope)
        for answer in ask_all(able, holders):
            result.holders += answer.value or []
            result.warnings += answer.warnings
            result.sources.append(answer.status)
    return result


def change(run: Run, request: RightsRequest, source: str | None = None) -> ChangeResult:
    """Grant or revoke ``request`` in ``source`` (default: the one configured source that
    can change rights)."""
    check_principal(request.principal)
    with run.active():
        opened = run.open([source] if source else [])
        able = [item for item in opened if isinstance(item, GrantsRights)]
        _refuse_the_unable(
            [s for s in opened if s not in able],
            named=bool(source),
            doing="change who may read keys",
        )
        if len(able) != 1:
            _refuse_the_unable(able, named=False)
            raise InputError(
                "name the source whose rights to change with --source NAME "
                f"({len(able)} of the default sources can change them)"
            )

        def changing(item: Source, warn: Warn) -> RightsChange:
            return cast("GrantsRights", item).change_rights(request, warn)

        (answer,) = ask_all(able, changing)
        result = ChangeResult(request, answer.value, answer.warnings, [answer.status])
        if answer.value is not None and answer.value.applied and answer.value.changed:
            _record(run, result, answer.value, getattr(able[0], "principal", None))
    return result


def _record(run: Run, result: ChangeResult, done: RightsChange, principal: str | None) -> None:
    """The change is made: a trail that cannot be written is a warning, not a failure that
    would read as "nothing changed"."""
    entry = trail.rights_entry(done, principal, run.command)
    try:
        problem = policy.record(run.config, [entry], refusing="the rights were changed, but")
    except SourceError as exc:
        problem = exc.message
    if problem:
        result.warnings.append(f"the change is not in the access trail: {problem}")


def _refuse_the_unable(
    unable: Sequence[Source], *, named: bool, doing: str = "say who may read keys"
) -> None:
    """Sources that cannot do it: closed, and an error when they were asked for by name."""
    from bitkey_dir.ops.pool import release

    for source in unable:
        release(source, failed=False)
    if named and unable:
        which = ", ".join(source.name for source in unable)
        raise InputError(f"{which}: this type of source cannot {doing}")


def check_principal(text: str) -> None:
    """Refuse, before any source is asked, a principal in none of the accepted forms:
    name@domain, DOMAIN\\name or a SID."""
    principal_form(text)
