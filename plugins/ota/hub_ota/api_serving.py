"""Serving firmware to nodes: single-use download links (``/api/ota/download/{token}``, with HTTP range requests)
and ESPHome update manifests (``/api/ota/manifest/{node_or_group}.json?key=…``, or by a node's stable name
``/api/ota/manifest/{kind}/{name}.json?key=…``, see :mod:`hub_ota.names`). Both are public (a node sends no
credentials): the token, or the manifest key, is the credential; see :mod:`hub_ota.links` and
:mod:`hub_ota.manifest`. ``/api/ota/manifest_url/{node_or_group}`` and ``/api/ota/manifest_url/{kind}/{name}`` tell
a signed-in operator a manifest's URL; the service ``ota.manifest_url`` tells another plugin (the ``esphome``
plugin builds it into a node's firmware).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import voluptuous as vol
from aiohttp import web

from hub import DATA_HTTP_URL, Hub, InvalidMac, normalize_mac
from hub.web import ApiError, Route, error_response, json_response, path_param, query_param, read_query

from . import names
from .catalogue import Firmware, FirmwareCatalogue
from .errors import FirmwareNotFound
from .links import GROUP_PREFIX, PURPOSE_MANIFEST, DownloadLinks, LinkRefused
from .manifest import ManifestKeys, manifest_body
from .store import FirmwareStore
from .web import api, operation

DOWNLOAD_CHUNK = 256 * 1024
GROUP_NAME = re.compile(r"[^/\\\x00-\x1f\x7f]{1,48}")
"""A group (a tag or an area): printable, no slashes, short enough to key a link by."""
NODE = "node"
GROUP = "group"

MANIFEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "version", "builds"],
    "properties": {
        "name": {"type": "string"},
        "version": {"type": "string"},
        "builds": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["chipFamily", "ota"],
                "properties": {
                    "chipFamily": {"type": "string"},
                    "ota": {
                        "type": "object",
                        "required": ["path", "md5", "summary"],
                        "properties": {
                            "path": {"type": "string"},
                            "md5": {"type": "string"},
                            "summary": {"type": "string"},
                        },
                    },
                },
            },
        },
    },
}


class Assignments(Protocol):
    """Which image a node or a group should run (the rollouts decide)."""

    async def for_node(self, node_id: str) -> str | None:
        """The SHA-256 of the image released to ``node_id``, or None."""

    async def for_group(self, group: str) -> str | None:
        """The SHA-256 of the image released to every node of ``group`` (a tag or an area), or None."""


class ServingApi:
    """The download, manifest and manifest-URL routes of one hub."""

    def __init__(
        self,
        hub: Hub,
        store: FirmwareStore,
        catalogue: FirmwareCatalogue,
        links: DownloadLinks,
        keys: ManifestKeys,
        assignments: Assignments,
    ) -> None:
        self._hub = hub
        self._store = store
        self._catalogue = catalogue
        self._links = links
        self._keys = keys
        self._assignments = assignments
        self._section = hub.config["ota"]

    def routes(self) -> list[Route]:
        """Every route: the download and the manifest are public."""
        name = path_param("node_or_group", "a node id (its MAC in any spelling) or a group (a tag or an area)")
        by_name = [
            path_param("kind", "the kind of name (`esphome`): nodes carry it in the attribute `<kind>_name`"),
            path_param("name", "the node's name of that kind (an ESPHome node's `esphome: name:`)"),
        ]
        url_schema = {
            "type": "object",
            "required": ["name", "kind", "url"],
            "properties": {
                "name": {"type": "string"},
                "kind": {"type": "string", "description": "`node`, `group`, or the kind of name"},
                "url": {"type": "string"},
                "node_id": {"type": "string", "nullable": True, "description": "by name: the node that carries it now"},
            },
        }
        return [
            Route(
                "GET",
                "/api/ota/download/{token}",
                api(self.download),
                doc=operation(
                    "Download a firmware image with a single-use link",
                    description="Public: the token is the credential. Supports Range (206); spent once a response "
                    "has carried the last byte (then 410), 410 once expired.",
                    params=[path_param("token", "the link's token")],
                    ok={"type": "string", "format": "binary"},
                    media="application/octet-stream",
                    errors=(410, 416),
                    public=True,
                    extra_responses={
                        "206": {
                            "description": "the requested range",
                            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                        }
                    },
                ),
                auth=False,
            ),
            Route(
                "GET",
                "/api/ota/manifest/{node_or_group}.json",
                api(self.manifest),
                doc=operation(
                    "ESPHome update manifest of a node or group",
                    description="Public: the key (from /api/ota/manifest_url) is the credential; 404 without it.",
                    params=[name, query_param("key", {"type": "string"}, "the manifest's key")],
                    ok=MANIFEST_SCHEMA,
                    public=True,
                ),
                auth=False,
            ),
            Route(
                "GET",
                "/api/ota/manifest/{kind}/{name}.json",
                api(self.manifest_by_name),
                doc=operation(
                    "ESPHome update manifest of the node carrying a stable name",
                    description="Public: the key (from /api/ota/manifest_url/{kind}/{name}, an HMAC of `kind:name`) "
                    "is the credential. The manifest of whichever node carries the name now (the attribute "
                    "`<kind>_name`; the one seen last when several do). 404 without the key, or when no node "
                    "carries the name.",
                    params=[*by_name, query_param("key", {"type": "string"}, "the manifest's key")],
                    ok=MANIFEST_SCHEMA,
                    public=True,
                ),
                auth=False,
            ),
            Route(
                "GET",
                "/api/ota/manifest_url/{node_or_group}",
                api(self.manifest_url),
                doc=operation("The URL of a node's or group's ESPHome update manifest", params=[name], ok=url_schema),
            ),
            Route(
                "GET",
                "/api/ota/manifest_url/{kind}/{name}",
                api(self.manifest_url_by_name),
                doc=operation(
                    "The URL of the ESPHome update manifest of a stable name (`esphome/kitchen-climate`)",
                    description="Answers for a name no node carries yet: the URL is the same before and after.",
                    params=by_name,
                    ok=url_schema,
                ),
            ),
        ]

    # --- downloads ---------------------------------------------------------------------------------------------
    async def download(self, request: web.Request) -> web.StreamResponse:
        try:
            link = await self._links.open(request.match_info["token"], request.remote or "")
            path = self._store.path(link.sha256)
        except LinkRefused as err:
            return error_response(err.status, err.code, str(err))
        except FirmwareNotFound:  # the image was deleted after the link was made
            return error_response(404, "link_not_found", "no such download link")
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'attachment; filename="{link.sha256[:16]}.bin"',
            "Cache-Control": "no-store",
        }
        if not link.node_id.startswith(GROUP_PREFIX):  # a node's link is spent when the node reports a new version
            return web.FileResponse(path, chunk_size=DOWNLOAD_CHUNK, headers=headers)
        return _LinkResponse(path, lambda: self._links.complete(link), chunk_size=DOWNLOAD_CHUNK, headers=headers)

    # --- manifests -------------------------------------------------------------------------------------------------
    async def manifest(self, request: web.Request) -> web.Response:
        key = read_query(request, vol.Schema({vol.Optional("key", default=""): str}))["key"]
        try:
            kind, name = self._classify(request.match_info["node_or_group"])
        except ApiError:  # the same answer for every failure: an anonymous caller learns nothing about the fleet
            raise ApiError("no such manifest", status=404, code="manifest_not_found") from None
        if not key or not self._keys.check(kind, name, key):
            raise ApiError("no such manifest", status=404, code="manifest_not_found")
        return await self._serve(request, kind, name)

    async def manifest_by_name(self, request: web.Request) -> web.Response:
        key = read_query(request, vol.Schema({vol.Optional("key", default=""): str}))["key"]
        kind, name = request.match_info["kind"], request.match_info["name"]
        # One answer for a bad name, a wrong key and a name no node carries: the caller learns nothing.
        if not names.valid(kind, name) or not key or not self._keys.check(kind, name, key):
            raise ApiError("no such manifest", status=404, code="manifest_not_found")
        node = names.resolve(self._hub.registry, kind, name)
        if node is None:
            raise ApiError("no such manifest", status=404, code="manifest_not_found")
        return await self._serve(request, NODE, node.node_id)

    async def _serve(self, request: web.Request, kind: str, name: str) -> web.Response:
        """The manifest of node or group ``name``, with a fresh download link."""
        firmware = await self._assigned(kind, name)
        if firmware is None:
            raise ApiError(f"no firmware is released to {kind} {name}", status=404, code="no_firmware")
        holder = name if kind == NODE else f"{GROUP_PREFIX}{name}"
        lifetime = self._section["manifest_link_lifetime"]
        token = await self._links.mint(holder, firmware.sha256, lifetime, purpose=PURPOSE_MANIFEST)
        base = self._section.get("public_url") or str(request.url.origin())
        return json_response(manifest_body(firmware, f"{base}/api/ota/download/{token}"))

    async def manifest_url(self, request: web.Request) -> web.Response:
        read_query(request, vol.Schema({}))
        kind, name = self._classify(request.match_info["node_or_group"])
        base = self._section.get("public_url") or self._hub.data.get(DATA_HTTP_URL) or str(request.url.origin())
        spelled = name.replace(":", "") if kind == NODE else name
        url = f"{base}/api/ota/manifest/{quote(spelled, safe='')}.json?key={self._keys.key(kind, name)}"
        return json_response({"name": name, "kind": kind, "url": url})

    async def manifest_url_by_name(self, request: web.Request) -> web.Response:
        read_query(request, vol.Schema({}))
        kind, name = request.match_info["kind"], request.match_info["name"]
        if not names.valid(kind, name):
            raise ApiError("not a kind of name and a name", status=404, code="manifest_not_found")
        base = self._section.get("public_url") or self._hub.data.get(DATA_HTTP_URL) or str(request.url.origin())
        node = names.resolve(self._hub.registry, kind, name)
        url = self.name_manifest_url(kind, name, base)
        return json_response({"name": name, "kind": kind, "url": url, "node_id": node.node_id if node else None})

    def name_manifest_url(self, kind: str, name: str, base: str) -> str:
        """The manifest URL, with its key, of the node named ``name`` by ``kind`` (``valid(kind, name)``)."""
        key = self._keys.key(kind, name)
        return f"{base.rstrip('/')}/api/ota/manifest/{kind}/{quote(name, safe='')}.json?key={key}"

    def manifest_url_service(self, data: dict[str, Any]) -> dict[str, Any]:
        """``ota.manifest_url``: the manifest URL of a stable name, for a plugin that builds it into firmware.

        The base is ``base_url`` (how the node reaches the hub, when the caller knows it), else ``ota: public_url:``;
        with neither, ``url`` is None (the hub's own listening address is not one a node can be assumed to reach).
        """
        base = data.get("base_url") or self._section.get("public_url")
        node = names.resolve(self._hub.registry, data["kind"], data["name"])
        return {
            "url": self.name_manifest_url(data["kind"], data["name"], base) if base else None,
            "node_id": node.node_id if node else None,
        }

    def _classify(self, value: str) -> tuple[str, str]:
        """(``node``, node id) for a known node in any MAC spelling, else (``group``, name); 404 for an unknown MAC."""
        if value in self._hub.registry:
            return NODE, value
        try:
            node_id = normalize_mac(value)
        except InvalidMac:
            if not GROUP_NAME.fullmatch(value):
                raise ApiError("not a node or a group name", status=404, code="manifest_not_found") from None
            return GROUP, value
        if node_id not in self._hub.registry:
            raise ApiError(f"no node {value!r}", status=404, code="node_not_found")
        return NODE, node_id

    async def _assigned(self, kind: str, name: str) -> Firmware | None:
        """What the rollouts released to the node or group; a node without one keeps what it runs (if catalogued)."""
        assignments = self._assignments
        sha256 = await (assignments.for_node(name) if kind == NODE else assignments.for_group(name))
        try:
            if sha256 is not None:
                return await self._catalogue.get(sha256)
            node = self._hub.registry.get(name) if kind == NODE else None
            if node is not None and node.firmware_version:
                return await self._catalogue.find(node.firmware_version)
        except FirmwareNotFound:
            pass
        return None


class _LinkResponse(web.FileResponse):
    """aiohttp's file response (ranges, conditional requests, sendfile) that spends a group link once it has sent
    the image's last byte. aiohttp calls :meth:`write_eof` only after the body went out; a client that went away
    before leaves the link usable for a ranged resume."""

    def __init__(self, path: Path, on_complete: Callable[[], Awaitable[None]], **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self._on_complete: Callable[[], Awaitable[None]] | None = on_complete

    async def write_eof(self, data: bytes = b"") -> None:
        await super().write_eof(data)
        if self._on_complete is not None and _carried_last_byte(self):
            on_complete, self._on_complete = self._on_complete, None
            await on_complete()


def _carried_last_byte(response: web.StreamResponse) -> bool:
    """Whether the response (200, or 206 with ``Content-Range: bytes a-b/size``) ended at the image's last byte."""
    if response.status == 200:
        return True
    if response.status != 206:
        return False
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", response.headers.get("Content-Range", ""))
    return match is not None and int(match[2]) == int(match[3]) - 1
