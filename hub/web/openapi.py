"""OpenAPI operations and parameters, for the routes of the built-in API and of plugins alike.

The http plugin builds ``/api/openapi.json`` from every registered route's ``doc``; an operation made
here documents the error responses the server really gives (the one error shape, the component schema
``Error`` that document carries), so a plugin's endpoints read like the core's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

ERROR_REF: dict[str, str] = {"$ref": "#/components/schemas/Error"}
"""The error shape ``{"error": {"code", "message"}}`` in the hub's OpenAPI document."""

_ERROR_TEXT = {
    400: "invalid parameters or body",
    401: "missing, invalid, expired or revoked credentials",
    403: "forbidden (or the address is banned)",
    404: "not found",
    409: "conflict",
    413: "body too large",
    429: "too early after a failed attempt; see Retry-After",
    503: "a plugin the endpoint needs is not loaded",
}


def query_param(name: str, schema: dict[str, Any], description: str, *, required: bool = False) -> dict[str, Any]:
    """A query parameter."""
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


def path_param(name: str, description: str) -> dict[str, Any]:
    """A path parameter (always a string)."""
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


def _content(schema: dict[str, Any], description: str, media: str = "application/json") -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema}}}


def operation(
    summary: str,
    *,
    tag: str,
    ok: dict[str, Any] | None,
    status: int = 200,
    description: str = "",
    params: Sequence[dict[str, Any]] = (),
    body: dict[str, Any] | None = None,
    body_media: str = "application/json",
    public: bool = False,
    errors: Iterable[int] = (),
    media: str = "application/json",
    extra_responses: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An OpenAPI operation: ``ok`` is the success body schema (None for an empty response) of type ``media``.

    400 is documented when there are parameters or a body, 401 unless ``public``,
    404 when the path has parameters; ``errors`` adds others.  A ``default``
    response documents the error shape for anything else (403 banned, 503).
    """
    responses: dict[str, Any] = {
        str(status): _content(ok, "success", media) if ok is not None else {"description": "success"},
        **(extra_responses or {}),
    }
    codes = set(errors)
    if params or body is not None:
        codes.add(400)
    if not public:
        codes.add(401)
    if any(param["in"] == "path" for param in params):
        codes.add(404)
    for code in sorted(codes):
        responses[str(code)] = _content(ERROR_REF, _ERROR_TEXT.get(code, "error"))
    responses["default"] = _content(ERROR_REF, "error")
    result: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if description:
        result["description"] = description
    if params:
        result["parameters"] = list(params)
    if body is not None:
        result["requestBody"] = {"required": True, "content": {body_media: {"schema": body}}}
    if public:
        result["security"] = []
    return result
