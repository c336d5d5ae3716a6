"""Prometheus durations: parse `1h30m` to seconds and print seconds back the way Prometheus does."""

from __future__ import annotations

import functools
import re

_UNITS: tuple[tuple[str, int], ...] = (
    ("y", 365 * 86400),
    ("w", 7 * 86400),
    ("d", 86400),
    ("h", 3600),
    ("m", 60),
    ("s", 1),
)
_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")


@functools.cache  # windows and intervals are parsed again and again while rules are built
def parse_duration_ms(text: str) -> int:
    """Milliseconds in a Prometheus duration such as `250ms`, `5m` or `1h30m`.

    Raises ValueError, worded for an inventory author, when the text is not a positive duration.
    """
    match = _DURATION.match(text) if isinstance(text, str) else None
    if not text or match is None or not any(match.groups()):
        raise ValueError(
            f"'{text}' is not a Prometheus duration: use a number and a unit, e.g. 30s, 5m, 1h, 30d"
        )
    *whole, millis = match.groups()
    seconds = sum(int(value) * factor for value, (_, factor) in zip(whole, _UNITS, strict=True) if value)
    total_ms = seconds * 1000 + int(millis or 0)
    if total_ms <= 0:
        raise ValueError(f"'{text}' is zero: a duration must be positive")
    return total_ms


def parse_duration(text: str) -> int:
    """Seconds in a Prometheus duration that must be a whole number of seconds (windows, intervals)."""
    total_ms = parse_duration_ms(text)
    if total_ms % 1000:
        raise ValueError(f"'{text}' is not a whole number of seconds: round it, e.g. to 1s")
    return total_ms // 1000


@functools.lru_cache(maxsize=4096)  # a few distinct windows and steps, asked for again and again
def format_duration(seconds: int) -> str:
    """The canonical Prometheus spelling of a whole number of seconds (`90` → `1m30s`, `86400` → `1d`)."""
    if seconds <= 0:
        raise ValueError(f"a duration must be positive (got {seconds}s)")
    parts = []
    remainder = seconds
    # Prometheus prints weeks and days, never years, for windows such as 28d.
    for unit, factor in _UNITS[2:]:
        count, remainder = divmod(remainder, factor)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
