"""Time as the factory writes it: UTC, fixed-width timestamps that also sort as strings."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_ts(moment: datetime) -> str:
    """Fixed-width UTC timestamps, so they also sort as strings."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def day_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def day_of(moment: datetime) -> str:
    """The UTC day of `moment`, as the gates and the budget name it: 2026-11-24."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d")
