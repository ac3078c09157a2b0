"""MAC addresses: the one canonical form every node is keyed by.

ESP32 firmware writes its MAC in many spellings (``AA:BB:CC:DD:EE:FF`` from
``WiFi.macAddress()``, ``aabbccddeeff`` in ESPHome topic suffixes, ``AA-BB-…``
from Windows tooling).  The hub keys nodes by exactly one form, the one Home
Assistant's device registry uses: **lower-case hex pairs joined by colons**
(``aa:bb:cc:dd:ee:ff``).  Every entry point normalises with :func:`normalize_mac`
so the same board can never register twice.
"""

from __future__ import annotations

from .errors import InvalidMac

_HEX = frozenset("0123456789abcdef")


def normalize_mac(value: str) -> str:
    """Return ``value`` in canonical form or raise :class:`InvalidMac`.

    Accepted: six hex pairs separated uniformly by ``:``, ``-`` or ``.`` or
    not at all (``AABBCCDDEEFF``), in any case; also Cisco-style dotted
    quads (``aabb.ccdd.eeff``).  Anything else — wrong length, mixed
    separators, non-hex digits — is rejected rather than guessed at.
    """
    if not isinstance(value, str) or not 12 <= len(value) <= 17:
        raise InvalidMac(value)
    lowered = value.lower()
    if len(lowered) == 12:
        digits = lowered
    elif len(lowered) == 17:
        sep = lowered[2]
        if sep not in ":-." or lowered[2::3] != sep * 5:
            raise InvalidMac(value)
        digits = lowered.replace(sep, "")
    elif len(lowered) == 14 and lowered[4] == "." and lowered[9] == ".":
        digits = lowered.replace(".", "")
    else:
        raise InvalidMac(value)
    if len(digits) != 12 or not _HEX.issuperset(digits):
        raise InvalidMac(value)
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def is_mac(value: str) -> bool:
    """True when :func:`normalize_mac` would accept ``value``."""
    try:
        normalize_mac(value)
    except InvalidMac:
        return False
    return True
