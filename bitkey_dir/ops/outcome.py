"""What each source did in an operation, and the one rule that turns outcomes into an exit code.

Exit codes are a contract with runbooks (README, "Exit codes"): 0 found or done, 1 nothing
found (every source answered), 2 bad input, 3 sign-in or rights, 4 a source failed. "Not
found" must be trustworthy, so it is only ever given when every source answered.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

from bitkey_dir.core.errors import AuthError, BitkeyError, ExitCode
from bitkey_dir.core.wording import for_python, reword

T = TypeVar("T")

Status = Literal["ok", "denied", "failed"]


@dataclass(frozen=True)
class SourceStatus:
    """How one source fared: answered (ok), refused us (denied), or failed."""

    name: str
    status: Status
    error: str | None = None
    hint: str | None = None
    exit_code: ExitCode = ExitCode.FOUND

    @classmethod
    def answered(cls, name: str) -> SourceStatus:
        return cls(name, "ok")

    @classmethod
    def failed(cls, name: str, exc: BitkeyError) -> SourceStatus:
        status: Status = "denied" if isinstance(exc, AuthError) else "failed"
        return cls(name, status, exc.message, exc.hint, exc.exit_code)

    @classmethod
    def crashed(cls, name: str, exc: Exception) -> SourceStatus:
        # The message of an unexpected exception is not vetted for secrets: show only its type.
        error = f"internal error ({type(exc).__name__}); set BITKEY_DIR_DEBUG=1 for details"
        return cls(name, "failed", error, None, ExitCode.SOURCE_FAILED)


def exit_code(
    answer: ExitCode,
    statuses: Iterable[SourceStatus],
    *,
    every_source_needed: bool,
    then: Iterable[SourceStatus] = (),
) -> ExitCode:
    """The exit code of an operation.

    ``answer`` is what the data says: FOUND (a key can be read out, the export or audit is
    done), NOT_FOUND (nothing matched, or the audit's --fail-on-missing tripped), or AUTH
    (keys exist but none is readable). A failed source decides the code when the answer
    needed it: always for ``every_source_needed`` (an audit of part of the estate, an export),
    and otherwise unless something usable was found. Among failures, a sign-in or rights
    problem (3) wins over an unreachable source (4): it is the one the user can fix.

    ``then`` is how the sources fared in what was asked of them after the answer was shown
    (find --rotate: the rotation of the keys revealed). What was shown stays shown, so it
    changes a FOUND code only, and only by a failure: a refusal (3) or a source unreachable
    or failing (4), 3 winning again. Work left to do by hand is not a failure.

    >>> from bitkey_dir.core.errors import SourceError
    >>> down = SourceStatus.failed("b", SourceError("unreachable"))
    >>> exit_code(ExitCode.FOUND, [down], every_source_needed=False)
    <ExitCode.FOUND: 0>
    >>> exit_code(ExitCode.NOT_FOUND, [down], every_source_needed=False)
    <ExitCode.SOURCE_FAILED: 4>
    >>> exit_code(ExitCode.FOUND, [down], every_source_needed=True)
    <ExitCode.SOURCE_FAILED: 4>
    >>> denied = SourceStatus.failed("a", AuthError("no right to rotate"))
    >>> exit_code(ExitCode.FOUND, [], every_source_needed=False, then=[down, denied])
    <ExitCode.AUTH: 3>
    >>> exit_code(ExitCode.FOUND, [], every_source_needed=False, then=[down])
    <ExitCode.SOURCE_FAILED: 4>
    >>> exit_code(ExitCode.FOUND, [], every_source_needed=False, then=[SourceStatus.answered("a")])
    <ExitCode.FOUND: 0>
    >>> exit_code(ExitCode.NOT_FOUND, [], every_source_needed=False, then=[denied])
    <ExitCode.NOT_FOUND: 1>
    """
    if answer == ExitCode.AUTH:
        return ExitCode.AUTH
    failures = [status.exit_code for status in statuses if status.status != "ok"]
    if failures and (every_source_needed or answer != ExitCode.FOUND):
        return ExitCode.AUTH if ExitCode.AUTH in failures else max(failures)
    if answer == ExitCode.FOUND:
        later = {status.exit_code for status in then if status.status != "ok"}
        for failed in (ExitCode.AUTH, ExitCode.SOURCE_FAILED):
            if failed in later:
                return failed
    return answer


def in_python_terms(result: T) -> T:
    """``result`` with its warnings and its sources' errors worded for Python: the
    operations word them for the command line."""
    if not dataclasses.is_dataclass(result) or isinstance(result, type):
        return result
    fields = {field.name for field in dataclasses.fields(result)}
    found = cast("Any", result)
    changes: dict[str, object] = {}
    if "warnings" in fields:
        changes["warnings"] = [for_python(warning) for warning in found.warnings]
    for name in ("trail_problem", "package_problem"):
        if name in fields and getattr(found, name) is not None:
            changes[name] = for_python(getattr(found, name))
    if "sources" in fields:
        changes["sources"] = [
            _status(status) if isinstance(status, SourceStatus) else status
            for status in found.sources
        ]
    if "diagnoses" in fields:
        changes["diagnoses"] = [
            dataclasses.replace(diagnosis, status=_status(diagnosis.status))
            for diagnosis in found.diagnoses
        ]
    if "failure" in fields and found.failure is not None:
        reword(found.failure)
    return cast("T", dataclasses.replace(found, **changes)) if changes else result


def _status(status: SourceStatus) -> SourceStatus:
    return dataclasses.replace(
        status,
        error=for_python(status.error) if status.error else status.error,
        hint=for_python(status.hint) if status.hint else status.hint,
    )
