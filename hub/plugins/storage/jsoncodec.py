"""JSON for the database: orjson on the fast path, and a cleaning slow path so no value can poison a batch.

A batch that the database refuses is retried until it commits; a single value
it can never accept (a NUL character PostgreSQL rejects in text and JSONB, a
lone surrogate that cannot be encoded as UTF-8, an integer beyond 64 bits)
would therefore block ingest for good.  So every document and text field
written goes through here: the common case costs one ``orjson.dumps``; the
rare bad value is repaired (NUL and bad characters become U+FFFD, huge
integers become floats, odd keys and objects become strings) instead.
"""

from __future__ import annotations

from typing import Any

import orjson

_REPLACEMENT = "\ufffd"
_NUL_ESCAPE = b"\\u0000"


def dumps(value: Any) -> str:
    """``value`` as a JSON text every supported database accepts."""
    return encode(value)[0]


def encode(value: Any) -> tuple[str, bool]:
    """:func:`dumps`, and whether the text reads back as ``value`` itself (no repair, no ``null`` in it).

    orjson writes NaN and the infinities as ``null``; a text without ``null`` had none, so reading it
    back gives ``value``'s own keys and numbers (the storage writer then aggregates the dict it holds
    instead of parsing the text again).
    """
    try:
        data = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return orjson.dumps(_clean(value)).decode(), False
    if _NUL_ESCAPE in data:
        return orjson.dumps(_clean(value)).decode(), False
    return data.decode(), b"null" not in data


def clean_text(value: str | None) -> str | None:
    """A text column value with NUL and unencodable characters replaced (usually returned unchanged)."""
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    if "\x00" in value:
        value = value.replace("\x00", _REPLACEMENT)
    try:
        value.encode()
    except UnicodeEncodeError:
        value = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return value


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else float(value)
    if isinstance(value, dict):
        return {clean_text(key if isinstance(key, str) else str(key)): _clean(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(item) for item in value]
    return clean_text(str(value))
