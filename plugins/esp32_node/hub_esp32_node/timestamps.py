"""The node's own timestamp: accepted when it is unambiguous and plausible, otherwise the receive time wins.

ESP32 firmware sends time in every shape: ``time(nullptr)`` (epoch seconds),
``millis()``-style epoch milliseconds from an NTP library, ISO 8601 strings
from a formatter, and sometimes local wall-clock strings like ``"14:30:25"``
that carry no date and no zone.  Only the first three can be placed on the
time line; for everything else, and for values no real measurement can have
(before 2015, or more than a day ahead of the hub's clock — a node that has not
synced NTP yet reports 1970), the hub uses the time it received the message.
A fallback is counted by the caller, never a reason to drop the readings.
"""

from __future__ import annotations

from datetime import UTC, datetime

EARLIEST = 1_420_070_400.0
"""2015-01-01T00:00:00Z: nothing in a fleet of ESP32s was measured before that."""
MAX_AHEAD = 86_400.0
"""A node's clock may run ahead of the hub's by up to a day (time zones misapplied) before it is distrusted."""
MILLIS_THRESHOLD = 100_000_000_000
"""Numbers at least this large are epoch milliseconds (as seconds they would be the year 5138)."""

UNPARSABLE = "unparsable"
OUT_OF_RANGE = "out_of_range"


class InvalidTimestamp(ValueError):
    """The value cannot be used as the measurement time; ``reason`` is ``unparsable`` or ``out_of_range``."""

    def __init__(self, reason: str, value: object) -> None:
        super().__init__(f"{reason}: {value!r}")
        self.reason = reason


def parse_timestamp(value: object, received: float) -> float:
    """Epoch seconds of a node-supplied ``timestamp`` or raise :class:`InvalidTimestamp`.

    Accepted: epoch seconds or milliseconds (int or float, not bool) and ISO 8601
    date-times with or without a zone (naive means UTC, which is what an ESP32
    formatting ``gmtime()`` produces).  ``received`` bounds how far ahead it may be.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000.0 if value >= MILLIS_THRESHOLD else float(value)
    elif isinstance(value, str):
        seconds = _parse_iso(value)
    else:
        raise InvalidTimestamp(UNPARSABLE, value)
    if not EARLIEST <= seconds <= received + MAX_AHEAD:
        raise InvalidTimestamp(OUT_OF_RANGE, value)
    return seconds


def _parse_iso(text: str) -> float:
    # A date alone ("2023-02-28") is valid ISO 8601 but says nothing about when in the day a
    # reading was taken; a time alone ("14:30:25") has no date.  Both fall back.
    if len(text) <= 10 or len(text) > 40:
        raise InvalidTimestamp(UNPARSABLE, text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidTimestamp(UNPARSABLE, text) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
