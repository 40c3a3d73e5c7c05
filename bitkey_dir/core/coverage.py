"""Escrow coverage: which computers have a recovery key in the directory, and how recent.

Sources report one :class:`~bitkey_dir.core.reports.Escrow` per computer (without reading any
password); this module gives each a status and sums them up per OU or operating system.
Pure code: the audit operation feeds it, the renderers read it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, TypedDict

from bitkey_dir.core.reports import Escrow

STATUSES: Final = ("missing", "stale", "ok")  # worst first: the order of the report


def status_of(escrow: Escrow, stale_before: datetime | None) -> str:
    """``missing`` without keys; ``stale`` when every key is older than the cut-off.

    >>> old = Escrow("ad", "PC", None, 1, datetime(2020, 1, 1, tzinfo=UTC), "OU=X")
    >>> status_of(old, None), status_of(old, datetime(2021, 1, 1, tzinfo=UTC))
    ('ok', 'stale')
    """
    if escrow.keys == 0:
        return "missing"
    if stale_before is not None and escrow.newest is not None and escrow.newest < stale_before:
        return "stale"
    return "ok"


def coverage(escrowed: int, computers: int) -> float | None:
    """Percent with one decimal; never 100.0 while a computer is missing, nor 0.0 with one
    escrowed; None (unknown) without computers: the coverage of nothing is not 100 %.

    >>> coverage(2, 3), coverage(9999, 10000), coverage(99999, 100000), coverage(0, 0)
    (66.7, 99.9, 99.9, None)
    """
    if not computers:
        return None
    percent = round(100.0 * escrowed / computers, 1)
    if escrowed < computers:
        percent = min(percent, 99.9)
    if escrowed:
        percent = max(percent, 0.1)
    return percent


class GroupSummary(TypedDict):
    source: str
    group: str
    computers: int
    missing: int
    stale: int
    ok: int
    coverage: float | None


class Summary(TypedDict):
    """The totals of an audit, in the order the JSON report shows them."""

    computers: int
    missing: int
    stale: int
    ok: int
    coverage: float | None
    stale_days: int | None
    groups: list[GroupSummary]


@dataclass
class Group:
    source: str
    group: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))

    @property
    def computers(self) -> int:
        return sum(self.counts.values())

    @property
    def coverage(self) -> float | None:
        """Share of computers with at least one key, in percent."""
        return coverage(self.computers - self.counts["missing"], self.computers)


@dataclass
class Coverage:
    """Computers with their status, and totals per group; fed one computer at a time."""

    stale_days: int | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    rows: list[tuple[Escrow, str]] = field(default_factory=list)
    groups: dict[tuple[str, str], Group] = field(default_factory=dict)

    @property
    def stale_before(self) -> datetime | None:
        if self.stale_days is None:
            return None
        try:
            return self.now - timedelta(days=self.stale_days)
        except OverflowError:  # before year 1: nothing can be that old
            return datetime.min.replace(tzinfo=UTC)

    def add(self, escrows: Iterable[Escrow]) -> None:
        """Add one source's computers: all of them, or, if reading fails, none."""
        cut_off = self.stale_before
        mark = len(self.rows)
        try:
            for escrow in escrows:
                status = status_of(escrow, cut_off)
                self.rows.append((escrow, status))
                self._count(escrow, status, 1)
        except BaseException:
            # A source that failed half-way would skew every figure of the summary.
            for escrow, status in self.rows[mark:]:
                self._count(escrow, status, -1)
            del self.rows[mark:]
            raise

    def _count(self, escrow: Escrow, status: str, step: int) -> None:
        key = (escrow.source, escrow.group)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = Group(escrow.source, escrow.group)
        group.counts[status] += step
        if not group.computers:
            del self.groups[key]

    @property
    def missing(self) -> int:
        return sum(1 for _, status in self.rows if status == "missing")

    def ordered(self) -> list[tuple[Escrow, str]]:
        rank = {status: n for n, status in enumerate(STATUSES)}
        return sorted(
            self.rows,
            key=lambda row: (rank[row[1]], row[0].source, row[0].computer.casefold()),
        )

    def summary(self) -> Summary:
        totals = dict.fromkeys(STATUSES, 0)
        for _, status in self.rows:
            totals[status] += 1
        computers = len(self.rows)
        return {
            "computers": computers,
            "missing": totals["missing"],
            "stale": totals["stale"],
            "ok": totals["ok"],
            "coverage": coverage(computers - totals["missing"], computers),
            "stale_days": self.stale_days,
            "groups": [
                {
                    "source": group.source,
                    "group": group.group,
                    "computers": group.computers,
                    "missing": group.counts["missing"],
                    "stale": group.counts["stale"],
                    "ok": group.counts["ok"],
                    "coverage": group.coverage,
                }
                for group in sorted(
                    self.groups.values(),
                    key=lambda g: (g.counts["missing"] / g.computers * -1, g.source, g.group),
                )
            ],
        }
