"""Time as the factory writes it: UTC, fixed-width timestamps that also sort as strings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from factoryctl.core.errors import UsageError

SINCE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_ts(moment: datetime) -> str:
    """Fixed-width UTC timestamps, so they also sort as strings."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def age_s(stamp: object, now: datetime) -> float | None:
    """Seconds from a recorded timestamp to `now`; None when there is none or it does not parse."""
    try:
        return (now - parse_ts(str(stamp))).total_seconds() if stamp else None
    except ValueError:
        return None


def day_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def parse_since(text: str, now: datetime, *, bound: timedelta | None, name: str = "since") -> datetime:
    """'24h', '30m', '7d' before `now`, or an ISO time (UTC when it names no zone); in the past and at
    most `bound` back (None: any time since the year 1). `name` is the option a person typed."""
    text = text.strip()
    if text[:-1].isdigit() and text[-1:] in SINCE_UNITS:
        try:
            moment = now - timedelta(seconds=int(text[:-1]) * SINCE_UNITS[text[-1]])
        except (OverflowError, ValueError):
            raise UsageError(f"{name} {text!r} reaches back before the year 1") from None
    else:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"{name} {text!r}: use 30m, 24h, 7d or an ISO time like 2026-11-24T08:00") from None
        moment = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        if bound is not None and moment > now:
            raise UsageError(f"{name} {text!r}: must be in the past, at most {bound.days}d back")
    if bound is not None and now - moment > bound:
        raise UsageError(f"{name} {text!r}: at most {bound.days}d back")
    return moment


def day_of(moment: datetime) -> str:
    """The UTC day of `moment`, as the holds and the budget name it: 2026-11-24."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d")
