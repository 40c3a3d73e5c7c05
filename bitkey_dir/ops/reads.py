"""Who read keys, from the directory's side, matched with the access trail.

The directory's audit log sees every read of a key value, from the portal, PowerShell, other
scripts or bitkey-dir; the trail sees only bitkey-dir's, with the OS user and the reason.
A read is bitkey-dir's when the trail has a reveal of the same key from the same source by
the same directory account within a few minutes of it; every other read was made elsewhere.
A trail line explains one read, never more: the same account reading the same key three
times in ten minutes with one trail line is one read by bitkey-dir and two made elsewhere.
Lines and reads are paired nearest in time first (ties: the earlier read, the earlier line),
so the answer does not depend on the order the directory listed them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from bitkey_dir.core.errors import ExitCode, InputError
from bitkey_dir.ops.outcome import SourceStatus, exit_code
from bitkey_dir.ops.pool import release
from bitkey_dir.ops.run import Run, ask_all
from bitkey_dir.sources.base import KeyRead, ReportsReads, Source, Warn
from bitkey_dir.store import trail

MATCH_WITHIN: Final = timedelta(minutes=10)  # clock skew and the time between trail and read
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)  # before BitLocker, and before any audit log


@dataclass(frozen=True)
class Read:
    """One read, and the trail line that says bitkey-dir made it (None: made elsewhere)."""

    read: KeyRead
    trail: trail.Line | None

    @property
    def through_bitkey_dir(self) -> bool:
        return self.trail is not None

    def to_record(self) -> dict[str, object]:
        read = self.read
        return {
            "source": read.source,
            "time": read.time.isoformat(timespec="seconds"),
            "actor": read.actor,
            "actor_kind": read.actor_kind,
            "key_id": str(read.key_id) if read.key_id else None,
            "device": read.device,
            "succeeded": read.succeeded,
            "via": "bitkey-dir" if self.trail is not None else "elsewhere",
            "os_user": self.trail.get("os_user") if self.trail else None,
            "reason": self.trail.get("reason") if self.trail else None,
        }


@dataclass
class ReadsResult:
    since: datetime
    reads: list[Read] = field(default_factory=list)
    sources: list[SourceStatus] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        return exit_code(ExitCode.FOUND, self.sources, every_source_needed=True)


def reads(run: Run, sources: Sequence[str], since: datetime) -> ReadsResult:
    """Key reads recorded by ``sources`` (default: the config's that audit reads) since
    ``since``, newest first, each matched with the trail."""
    result = ReadsResult(since)
    with run.active():
        opened = run.open(sources)
        auditing = [source for source in opened if isinstance(source, ReportsReads)]
        for source in opened:
            if not isinstance(source, ReportsReads):
                release(source)
                if sources:
                    raise InputError(
                        f"{source.name}: this source keeps no audit log of key reads "
                        "(Entra ID does; an AD domain's are in each DC's security log)"
                    )
                result.warnings.append(
                    f"{source.name}: skipped, it keeps no audit log of key reads"
                )
        if not auditing:
            names = ", ".join(source.name for source in opened)
            raise InputError(
                f"nothing to read: none of the sources ({names}) keeps an audit log of key "
                "reads (Entra ID does; an AD domain's are in each DC's security log)"
            )
        broken = [0]
        reveals = _reveals_by_key(trail.read_lines(broken=broken), since - MATCH_WITHIN)
        if broken[0]:
            result.warnings.append(f"{trail.trail_path()}: {broken[0]} unreadable line(s) skipped")
        found: list[KeyRead] = []
        for answer in ask_all(auditing, _lister(since)):
            result.sources.append(answer.status)
            result.warnings += answer.warnings
            found += answer.value or []
    result.reads = matched(found, reveals)
    result.reads.sort(key=lambda item: item.read.time, reverse=True)
    return result


def _lister(since: datetime) -> Callable[[Source, Warn], list[KeyRead]]:
    def list_reads(source: Source, warn: Warn) -> list[KeyRead]:
        assert isinstance(source, ReportsReads)  # noqa: S101 - filtered above
        return list(source.iter_key_reads(since, warn))

    return list_reads


# A reveal the trail holds: its place in the trail (for ties), its time, the line itself.
Reveal = tuple[int, datetime, trail.Line]


def _reveals_by_key(
    lines: Iterable[trail.Line], since: datetime
) -> dict[tuple[str, str], list[Reveal]]:
    """The trail's reveals since ``since`` by (source, Key ID): a long trail is read once,
    streamed, and only the lines that can match a read are kept."""
    reveals: dict[tuple[str, str], list[Reveal]] = {}
    for place, line in enumerate(lines):
        source, key_id, when = line.get("source"), line.get("key_id"), line.get("time")
        if line.get("action") is not None or not isinstance(source, str):
            continue
        if not isinstance(key_id, str) or not isinstance(when, str):
            continue
        try:
            moment = datetime.fromisoformat(when)
            if moment.utcoffset() is None or moment < since:
                continue
        except (ValueError, TypeError):
            continue
        reveals.setdefault((source, key_id.upper()), []).append((place, moment, line))
    return reveals


def matched(reads: Sequence[KeyRead], reveals: dict[tuple[str, str], list[Reveal]]) -> list[Read]:
    """Each read with the trail line that explains it, or None. A line explains at most
    one read: the pairs of a read and a line of the same key, source and account within
    :data:`MATCH_WITHIN` are taken nearest in time first, and a read or line already paired
    is passed over. A read that failed revealed nothing, so no line explains it."""
    order = sorted(
        range(len(reads)),
        key=lambda i: (reads[i].time, reads[i].source, reads[i].event_id or ""),
    )
    pairs: list[tuple[timedelta, int, int, trail.Line]] = []
    for rank, index in enumerate(order):
        read = reads[index]
        if read.key_id is None or not read.succeeded:
            continue
        for place, moment, line in reveals.get((read.source, str(read.key_id)), []):
            gap = abs(moment - read.time)
            if gap <= MATCH_WITHIN and _same_account(line.get("principal"), read):
                pairs.append((gap, rank, place, line))
    pairs.sort(key=lambda pair: pair[:3])
    explained: dict[int, trail.Line] = {}
    used: set[int] = set()
    for _, rank, place, line in pairs:
        if rank not in explained and place not in used:
            explained[rank] = line
            used.add(place)
    return [Read(reads[index], explained.get(rank)) for rank, index in enumerate(order)]


def _same_account(principal: object, read: KeyRead) -> bool:
    if not isinstance(principal, str) or read.actor is None:
        return False
    if read.actor_kind == "app":
        return principal.casefold() == f"app {read.actor}".casefold()
    return principal.casefold() == read.actor.casefold()


def parse_since(text: str, now: datetime) -> datetime:
    """``--since``: a span back from now ("7d", "24h", "90m") or a date or time
    ("2026-12-01", "2026-12-01T08:00:00+01:00"; UTC when no offset is given)."""
    import re

    from bitkey_dir.core.model import shown

    spans = {"m": 60, "h": 3600, "d": 86400}
    match = re.fullmatch(r"\s*([0-9]{1,5})\s*([mhd])\s*", text.lower())
    if match:
        return now - timedelta(seconds=int(match[1]) * spans[match[2]])
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            f"--since {shown(text)}: expected a span such as 7d, 24h or 90m, or a date such "
            "as 2026-12-01"
        ) from None
    if moment.utcoffset() is None:
        moment = moment.replace(tzinfo=now.tzinfo)
    if moment > now:
        raise InputError(f"--since {shown(text)} is in the future")
    if moment < EARLIEST:
        # Also keeps the arithmetic below (minus the matching window) within datetime's range.
        raise InputError(
            f"--since {shown(text)} is before {EARLIEST.date()}: no directory keeps key reads "
            "from before then"
        )
    return moment
