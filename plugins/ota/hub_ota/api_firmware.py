"""``/api/ota/firmware``: upload (multipart, streamed), list, read and delete firmware images.

The upload is read part by part and the file part chunk by chunk straight into the catalogue's writer, so an
image is never held in memory and the size limit (``ota: max_image_size``) is enforced while it streams (413 at
the first byte over it). The form has ``file`` (required) and, optionally, ``version`` (default: the image's own)
and ``chip`` (the family it must be built for), in any order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from hub import HubError, current_actor
from hub.web import ApiError, Route, json_response, path_param

from .catalogue import FirmwareCatalogue, Upload
from .chips import CHIP_IDS
from .errors import UnknownChip, VersionConflict
from .image import CHUNK_SIZE
from .versions import MAX_VERSION_LENGTH, check_version_text
from .web import api, operation

MAX_FIELD = 256
"""Bytes of a text field (``version``, ``chip``) read at most."""

FIRMWARE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["sha256", "version", "chip", "project", "size", "md5", "name", "uploaded_by", "uploaded_at"],
    "properties": {
        "sha256": {"type": "string"},
        "version": {"type": "string"},
        "chip": {"type": "string"},
        "project": {"type": "string", "nullable": True},
        "size": {"type": "integer"},
        "md5": {"type": "string"},
        "name": {"type": "string", "nullable": True},
        "uploaded_by": {"type": "string"},
        "uploaded_at": {"type": "number"},
    },
}
UPLOAD_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "the application image (.bin)"},
        "version": {"type": "string", "minLength": 1, "maxLength": MAX_VERSION_LENGTH},
        "chip": {"type": "string", "enum": sorted(CHIP_IDS)},
    },
    "additionalProperties": False,
}


class FirmwareApi:
    """The firmware routes of one hub; ``in_use`` says why an image may not be deleted (None: it may)."""

    def __init__(self, catalogue: FirmwareCatalogue, in_use: Callable[[str], Awaitable[str | None]]) -> None:
        self._catalogue = catalogue
        self._in_use = in_use

    def routes(self) -> list[Route]:
        """Every route; all need a bearer token."""
        sha256 = path_param("sha256", "the image's SHA-256 (64 lowercase hex digits)")
        return [
            Route(
                "POST",
                "/api/ota/firmware",
                api(self.upload),
                doc=operation(
                    "Upload a firmware image",
                    description="multipart/form-data, streamed; 201 for a new image, 200 when exactly this version "
                    "with these bytes is already there",
                    ok=FIRMWARE_SCHEMA,
                    status=201,
                    body=UPLOAD_BODY,
                    body_media="multipart/form-data",
                    errors=(409, 413),
                    extra_responses={"200": _json("already there", FIRMWARE_SCHEMA)},
                ),
            ),
            Route(
                "GET",
                "/api/ota/firmware",
                api(self.list),
                doc=operation(
                    "List firmware images",
                    ok={
                        "type": "object",
                        "required": ["firmware"],
                        "properties": {"firmware": {"type": "array", "items": FIRMWARE_SCHEMA}},
                    },
                ),
            ),
            Route(
                "GET",
                "/api/ota/firmware/{sha256}",
                api(self.get),
                doc=operation("A firmware image", params=[sha256], ok=FIRMWARE_SCHEMA),
            ),
            Route(
                "DELETE",
                "/api/ota/firmware/{sha256}",
                api(self.delete),
                doc=operation(
                    "Delete a firmware image",
                    description="409 while an active rollout uses it",
                    params=[sha256],
                    ok=FIRMWARE_SCHEMA,
                    errors=(409,),
                ),
            ),
        ]

    async def upload(self, request: web.Request) -> web.Response:
        if request.content_type != "multipart/form-data":
            raise ApiError(
                "a multipart/form-data body with a file field is expected", status=400, code="invalid_request"
            )
        fields: dict[str, str] = {}
        upload: Upload | None = None
        try:
            try:
                upload = await self._read_form(await request.multipart(), fields)
            except HubError:
                raise
            except (ValueError, AssertionError, KeyError, HttpProcessingError) as err:  # aiohttp on a malformed body
                raise ApiError(f"malformed multipart body: {err}", status=400, code="invalid_request") from None
            version = fields.get("version")
            if version is not None:
                try:
                    check_version_text(version)
                except VersionConflict as err:
                    raise ApiError(f"version: {err}", status=400, code="invalid_request") from None
            try:
                row, created = await upload.finish(version=version, chip=fields.get("chip"), by=_actor())
            except UnknownChip as err:
                raise ApiError(f"chip: {err}", status=400, code="invalid_request") from None
        finally:
            if upload is not None:
                upload.abort()  # a no-op once finished
        return json_response(row.as_dict(), status=201 if created else 200)

    async def _read_form(self, reader: MultipartReader, fields: dict[str, str]) -> Upload:
        """Stream the file part into an upload and collect the text fields, in whatever order they come."""
        upload: Upload | None = None
        try:
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    raise ApiError("nested multipart bodies are not accepted", status=400, code="invalid_request")
                if part.name == "file":
                    if upload is not None:
                        raise ApiError("file: given more than once", status=400, code="invalid_request")
                    # Some clients (aiohttp) percent-encode the name: judge what it decodes to.
                    upload = self._catalogue.upload(name=unquote(part.filename) if part.filename else None)
                    while chunk := await part.read_chunk(CHUNK_SIZE):
                        upload.write(chunk)
                elif part.name in ("version", "chip"):
                    if part.name in fields:
                        raise ApiError(f"{part.name}: given more than once", status=400, code="invalid_request")
                    fields[part.name] = await _text_field(part)
                else:
                    raise ApiError(
                        f"{part.name}: unknown field (expected file, version, chip)", status=400, code="invalid_request"
                    )
        except BaseException:
            if upload is not None:
                upload.abort()
            raise
        if upload is None:
            raise ApiError("file: required", status=400, code="invalid_request")
        return upload

    async def list(self, request: web.Request) -> web.Response:
        _no_query(request)
        return json_response({"firmware": [row.as_dict() for row in await self._catalogue.list()]})

    async def get(self, request: web.Request) -> web.Response:
        _no_query(request)
        return json_response((await self._catalogue.get(request.match_info["sha256"])).as_dict())

    async def delete(self, request: web.Request) -> web.Response:
        _no_query(request)
        sha256 = request.match_info["sha256"]
        await self._catalogue.get(sha256)
        reason = await self._in_use(sha256)
        if reason is not None:
            raise ApiError(reason, status=409, code="firmware_in_use")
        return json_response((await self._catalogue.remove(sha256, by=_actor())).as_dict())


def _actor() -> str:
    return current_actor() or "unknown"


def _no_query(request: web.Request) -> None:
    if request.query:
        raise ApiError(f"{next(iter(request.query))}: unknown query parameter", status=400, code="invalid_request")


async def _text_field(part: BodyPartReader) -> str:
    raw = bytearray()
    while chunk := await part.read_chunk(MAX_FIELD):
        raw += chunk
        if len(raw) > MAX_FIELD:
            raise ApiError(f"{part.name}: longer than {MAX_FIELD} bytes", status=400, code="invalid_request")
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise ApiError(f"{part.name}: not UTF-8 text", status=400, code="invalid_request") from None


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}
