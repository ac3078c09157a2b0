"""``hub esphome upload NAME``: put a compiled node on the node.

**Through the hub's OTA (the default).** The nodes of firmware/esphome/ take
updates only by pulling them over HTTP (``ota: platform: http_request`` with an
``update:`` entity polling the hub's manifest); they do not listen for ESPHome's
push OTA.  So the binary goes where every other node's firmware goes: into the
``ota`` plugin's catalogue (``POST /api/ota/firmware``), then a rollout to that
one node (``POST /api/ota/rollouts``), which releases it through the node's
manifest and counts it done only when the node reports the new version.  It is
audited like any API change, works where the hub cannot reach the node (but
the node reaches the hub), and needs no port open on the node.  The version
the node will report is its ``esphome: project: version:``; a build with the
version the node already runs cannot be told apart from it, and is refused.

**``--device PORT|HOST``**: ESPHome's own ``esphome upload --device``, for the
first flash over USB (``/dev/ttyUSB0``) or a node that has ``ota: platform:
esphome`` — the binary the last compile left, output streamed.

An API client like ``hub node set``: ``--token`` or ``HUB_TOKEN``, the address
from config.yaml's ``http:`` section or ``--url``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from hub import ROLE_CLI, build_hub, url_host

from .builds import Build, file_sha256
from .config import SECTION
from .firmware import FirmwareError, node_files
from .runner import run_esphome
from .status import build_of

TOKEN_ENV = "HUB_TOKEN"


class UploadProblem(Exception):
    """Something the user must fix; the message says what."""


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the node's name or file name")
    parser.add_argument("--device", help="upload with `esphome upload --device DEVICE` instead (USB port or host)")
    parser.add_argument("--token", help=f"an API token (default: ${TOKEN_ENV})")
    parser.add_argument("--url", help="the hub's address (default: from config.yaml's http section)")


async def cmd_upload(args: argparse.Namespace) -> int:
    hub = build_hub(args.config, role=ROLE_CLI, plugins=args.plugins)
    settings = hub.config[SECTION]
    directory = Path(settings["firmware_dir"])
    try:
        matches = [n for n in node_files(directory) if args.name in (n.name, n.path.name, n.path.stem)]
        if not matches or matches[0].name is None:
            raise UploadProblem(f"no node {args.name!r} in {directory}")
        node = matches[0]
        build = build_of(node)
        if build is None:
            raise UploadProblem(f"{node.name} is not compiled: run hub esphome compile {node.name} first")
        if file_sha256(Path(build.binary)) != build.sha256:
            raise UploadProblem(f"{build.binary} changed since the hub compiled it: compile again")
        if args.device:
            return await _esphome_upload(settings["executable"], directory, node.path.name, args.device)
        await _through_ota(args, hub.config.get("http", {}), build)
    except (UploadProblem, FirmwareError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


async def _esphome_upload(executable: str | None, directory: Path, file: str, device: str) -> int:
    from .firmware import find_executable

    print(f"==> esphome upload --device {device} {file}", flush=True)
    result = await run_esphome(
        find_executable(executable),
        ["upload", "--device", device, file],
        cwd=directory,
        on_line=_print,
        diagnose_offline=False,  # a network error here is about the device, not a download
    )
    if not result.ok:
        print(f"error: {result.problem or f'esphome upload exited with {result.returncode}'}", file=sys.stderr)
    return 0 if result.ok else 1


def _print(line: str) -> None:
    print(line, flush=True)


async def _through_ota(args: argparse.Namespace, http_config: dict[str, Any], build: Build) -> None:
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        raise UploadProblem(f"give --token or set {TOKEN_ENV} (create one with `hub token create --name cli`)")
    url = args.url.rstrip("/") if args.url else _hub_url(http_config)
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=120)) as http:
        try:
            node = await _call(http, "GET", f"{url}/api/esphome/nodes/{quote(build.name)}")
            if not node["seen"]:
                raise UploadProblem(
                    f"{build.name} has never connected to the hub: flash it over USB first "
                    f"(hub esphome upload {build.name} --device /dev/ttyUSB0)"
                )
            if build.version is None or build.version == node["running_version"]:
                raise UploadProblem(
                    f"{build.name} already runs version {node['running_version']}: raise esphome: project: "
                    "version: (the substitution `version` of the shared package), compile, and upload again"
                )
            form = aiohttp.FormData()
            form.add_field("version", build.version)
            with open(build.binary, "rb") as image:  # noqa: ASYNC230 - streamed by aiohttp
                form.add_field("file", image, filename=Path(build.binary).name)
                firmware = await _call(http, "POST", f"{url}/api/ota/firmware", data=form)
            print(f"Firmware {firmware['version']} ({firmware['size']} bytes) is in the hub's catalogue")
            rollout = await _call(
                http,
                "POST",
                f"{url}/api/ota/rollouts",
                json={
                    "firmware": firmware["version"],
                    "target": {"nodes": [node["node_id"]]},
                    "stages": [100],
                    "name": f"{build.name} {firmware['version']}",
                    "min_nodes_before_judging": 1,
                },
            )
        except aiohttp.ClientError as err:
            raise UploadProblem(f"cannot reach the hub at {url}: {err}") from None
    print(
        f"Rollout {rollout['id']} started: {node['node_id']} installs {firmware['version']} when it next polls its "
        "update manifest (watch it on the dashboard's Firmware page)"
    )


async def _call(http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> Any:
    async with http.request(method, url, **kwargs) as response:
        answer = await response.json(content_type=None)
    if response.status >= 400:
        message = answer.get("error", {}).get("message") if isinstance(answer, dict) else None
        if response.status == 404 and "/api/ota/" in url and message is None:
            message = "the hub has no ota plugin"
        raise UploadProblem(message or f"{method} {url}: HTTP {response.status}")
    return answer


def _hub_url(http_config: dict[str, Any]) -> str:
    scheme = "https" if http_config.get("ssl_certificate") else "http"
    host = http_config.get("host", "127.0.0.1")
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"{scheme}://{url_host(host)}:{http_config.get('port', 8124)}"
