"""Reading requests and writing responses: JSON bodies and query strings validated with voluptuous.

Every handler goes through :func:`read_json` and :func:`read_query`, so a bad
request always ends as a 400 in the one error shape, never as a 500, and an
unknown parameter is an error rather than silently ignored.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import orjson
import voluptuous as vol
from aiohttp import web

from .errors import BadRequest, InvalidJson

JSON_CONTENT_TYPE = "application/json"


def json_response(data: Any, status: int = 200) -> web.Response:
    """``data`` serialized once with orjson (dict keys may be str subclasses, e.g. SQLAlchemy column names)."""
    return web.Response(
        status=status, body=orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS), content_type=JSON_CONTENT_TYPE
    )


def describe_invalid(error: vol.Invalid, where: str) -> str:
    """``name: expected str; port: value must be at most 65535`` — one clause per problem."""
    errors = error.errors if isinstance(error, vol.MultipleInvalid) else [error]
    clauses = []
    for err in errors:
        path = ".".join(str(part) for part in err.path)
        message = err.msg
        if message == "extra keys not allowed":
            message = f"unknown {where}"
        elif message == "required key not provided":
            message = f"required {where} missing"
        clauses.append(f"{path}: {message}" if path else message)
    return "; ".join(sorted(clauses))


async def read_json(request: web.Request, schema: vol.Schema) -> dict[str, Any]:
    """The request body as a JSON object validated by ``schema``; BadRequest/InvalidJson otherwise."""
    raw = await request.read()
    if not raw.strip():
        raise InvalidJson("a JSON object body is required")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise InvalidJson(f"body is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise InvalidJson("body must be a JSON object")
    try:
        return schema(data)
    except vol.Invalid as err:
        raise BadRequest(describe_invalid(err, "field")) from None


def read_query(request: web.Request, schema: vol.Schema) -> dict[str, Any]:
    """The query string validated by ``schema``; a repeated or unknown parameter is a BadRequest."""
    query = request.query
    raw: dict[str, str] = {}
    for key in query:
        values = query.getall(key)
        if len(values) > 1:
            raise BadRequest(f"{key}: given more than once")
        raw[key] = values[0]
    try:
        return schema(raw)
    except vol.Invalid as err:
        raise BadRequest(describe_invalid(err, "query parameter")) from None


# --- validators shared by the endpoints -----------------------------------------------------

MAX_EPOCH = 4102444800.0
"""2100-01-01: later timestamps are a client bug, not a time range."""


def timestamp(value: Any) -> float:
    """Epoch seconds, given as a number or an ISO 8601 string (naive means UTC)."""
    if isinstance(value, bool):
        raise vol.Invalid("expected epoch seconds or an ISO 8601 time")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                raise vol.Invalid("expected epoch seconds or an ISO 8601 time") from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            number = parsed.timestamp()
    if not math.isfinite(number) or not 0 <= number <= MAX_EPOCH:
        raise vol.Invalid("time out of range (epoch seconds between 0 and 4102444800)")
    return number


def int_in(minimum: int, maximum: int) -> vol.All:
    """An integer (a decimal string in a query) between ``minimum`` and ``maximum``."""

    def coerce(value: Any) -> int:
        if isinstance(value, bool):
            raise vol.Invalid("expected an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit() and len(value) <= 12:
            return int(value)
        raise vol.Invalid("expected an integer")

    return vol.All(coerce, vol.Range(min=minimum, max=maximum))


def json_int(minimum: int, maximum: int) -> vol.All:
    """A JSON integer (not a bool, not a string) between ``minimum`` and ``maximum``."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise vol.Invalid("expected an integer")
        return value

    return vol.All(check, vol.Range(min=minimum, max=maximum))


def text(max_length: int, *, min_length: int = 0, strip: bool = True) -> vol.All:
    """A string of bounded length (stripped of surrounding spaces unless ``strip`` is False)."""
    steps: list[Any] = [str]
    if strip:
        steps.append(vol.Strip)
    steps.append(vol.Length(min=min_length, max=max_length))
    return vol.All(*steps)
