"""ISO weeks in UTC: `2026-W47` is Monday 00:00 UTC to the next Monday."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

_WEEK = re.compile(r"^(\d{4})-?W(\d{1,2})$", re.IGNORECASE)


@dataclass(frozen=True, order=True)
class Week:
    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> "Week":
        """`2026-W47` (or `2026W47`); ValueError with a readable message otherwise."""
        m = _WEEK.match(text.strip())
        if not m:
            raise ValueError(f"invalid week {text!r}: expected an ISO week such as 2026-W47")
        year, number = int(m.group(1)), int(m.group(2))
        try:
            date.fromisocalendar(year, number, 1)
        except ValueError:
            raise ValueError(f"invalid week {text!r}: {year} has no ISO week {number}") from None
        return cls(year, number)

    @classmethod
    def of(cls, t: datetime) -> "Week":
        """The week holding `t` (naive means UTC)."""
        iso = _utc(t).isocalendar()
        return cls(iso.year, iso.week)

    @classmethod
    def last_complete(cls, now: datetime) -> "Week":
        """The latest week that ended at or before `now`."""
        return cls.of(now).previous()

    @property
    def start(self) -> datetime:
        d = date.fromisocalendar(self.year, self.number, 1)
        return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=7)

    def previous(self) -> "Week":
        return Week.of(self.start - timedelta(days=1))

    def days(self) -> list[date]:
        return [self.start.date() + timedelta(days=i) for i in range(7)]

    def __str__(self) -> str:
        return f"{self.year}-W{self.number:02d}"


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)
