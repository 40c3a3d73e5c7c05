"""Doctor: what stands between each source and a working lookup, and how to fix it.

Each source that implements ``Diagnoses`` checks itself (servers, certificates, sign-in,
rights, files); any other source is asked one lookup of a Key ID nobody has, which proves
that it answers. Sources are asked concurrently. Reads no recovery password into a result,
so nothing is written to the access trail.

Exit code: 0 healthy (warnings allowed), 3 a right or sign-in is missing, 4 a source or
every server of one is unreachable or failing; 3 wins over 4, as everywhere.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bitkey_dir.core.errors import ExitCode
from bitkey_dir.ops.outcome import SourceStatus
from bitkey_dir.ops.run import Run, ask_all
from bitkey_dir.sources.base import Check, CheckStatus, Diagnoses, Source, Warn


@dataclass(frozen=True)
class Diagnosis:
    """One source's checks, and how asking it went."""

    source: str
    checks: list[Check]
    status: SourceStatus

    def to_record(self) -> dict[str, object]:
        record: dict[str, object] = {
            "source": self.source,
            "status": self.status.status,
            "checks": [check.to_record() for check in self.checks],
        }
        if self.status.error:
            record["error"] = self.status.error
        return record


@dataclass
class DoctorResult:
    diagnoses: list[Diagnosis] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def sources(self) -> list[SourceStatus]:
        return [diagnosis.status for diagnosis in self.diagnoses]

    @property
    def exit_code(self) -> ExitCode:
        checks = [check.status for diagnosis in self.diagnoses for check in diagnosis.checks]
        return doctor_exit_code(checks, self.sources)

    def to_record(self) -> dict[str, object]:
        return {
            "healthy": self.exit_code == ExitCode.FOUND,
            "exit_code": int(self.exit_code),
            "sources": [diagnosis.to_record() for diagnosis in self.diagnoses],
        }


def doctor_exit_code(checks: Iterable[CheckStatus], sources: Iterable[SourceStatus]) -> ExitCode:
    """3 when a right (or sign-in) is missing, else 4 when something is unreachable or a
    source failed, else 0: warnings alone leave the estate healthy.

    >>> doctor_exit_code(["ok", "warn"], [])
    <ExitCode.FOUND: 0>
    >>> doctor_exit_code(["unreachable", "missing-right"], [])
    <ExitCode.AUTH: 3>
    """
    found = set(checks)
    failures = {status.exit_code for status in sources if status.status != "ok"}
    if "missing-right" in found or ExitCode.AUTH in failures:
        return ExitCode.AUTH
    if "unreachable" in found or failures:
        return ExitCode.SOURCE_FAILED
    return ExitCode.FOUND


def _probe(source: Source, warn: Warn) -> list[Check]:
    """A source that cannot diagnose itself: one lookup of an unused Key ID proves it answers."""
    from bitkey_dir.core.model import KeyId, Query

    unused = KeyId.parse(str(uuid.uuid4()))
    # find may be a generator (the contract allows it): only reading it asks the source.
    for _ in source.find(Query(key_id=unused), warn):
        pass
    return [
        Check(
            "lookup",
            source.describe(),
            "ok",
            "answered a lookup; this source type has no diagnosis of its own",
        )
    ]


def diagnose(run: Run, sources: Sequence[str] = ()) -> DoctorResult:
    """Check ``sources`` (names, paths or URLs; default: every configured source, so that
    one not among the defaults is checked too)."""
    with run.active():
        return check_sources(run.open(list(sources) or list(run.config.sources)))


def check_sources(opened: Sequence[Source]) -> DoctorResult:
    """Each source's own diagnosis, or a lookup that proves it answers; asked at once."""

    def check(source: Source, warn: Warn) -> list[Check]:
        if isinstance(source, Diagnoses):
            return source.diagnose(warn)
        return _probe(source, warn)

    answers = ask_all(opened, check)
    result = DoctorResult()
    for source, answer in zip(opened, answers, strict=True):
        result.warnings.extend(answer.warnings)
        result.diagnoses.append(Diagnosis(source.name, answer.value or [], answer.status))
    return result
