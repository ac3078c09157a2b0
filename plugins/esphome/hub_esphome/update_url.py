"""The node's update manifest URL, built into its firmware at compile time.

The shared package's ``update:`` entity polls ``${ota_manifest_url}``.  A node
does not know its MAC before its first flash, so the URL names it by its
ESPHome name: ``<hub>/api/ota/manifest/esphome/<name>.json?key=<key>``, whose
key only the hub can compute (an HMAC under a secret of the hub).  So every
compile asks the ``ota`` plugin for that URL (the service ``ota.manifest_url``:
no import of the ``ota`` plugin, which may not be loaded) and hands it to
ESPHome as a command-line substitution (``esphome -s ota_manifest_url URL
compile …``): base.yaml works as shipped, and the key never lands in a file of
the firmware folder (only in ESPHome's build folder, ``.esphome/``, which is
git-ignored).  Validation (``esphome config``, which prints the whole config)
does not get it, so the key is not printed to logs.

The hub's address as the nodes reach it is ``hub_url`` of the folder's
``secrets.yaml`` (what base.yaml already uses), else ``ota: public_url:``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

import yaml

from hub import ServiceValidationError

from .firmware import FirmwareError

if TYPE_CHECKING:
    from hub.core.services import ServiceRegistry

SUBSTITUTION: Final = "ota_manifest_url"
NAME_KIND: Final = "esphome"
"""The kind of name the ``ota`` plugin resolves through the node attribute ``esphome_name``."""

NO_OTA: Final = (
    "note: the hub has no ota plugin, so the node's update entity polls a manifest nobody serves "
    "(updates over USB or `esphome upload --device` still work)"
)
NO_ADDRESS: Final = (
    "warning: the hub's address as the nodes reach it is unknown, so the node's update manifest URL "
    "(with its key) is not built in and the node will not find its OTA updates: set hub_url in {secrets} "
    "(e.g. http://192.168.1.10:8124) or ota: public_url: in config.yaml, then compile again"
)


def hub_url(directory: Path) -> str | None:
    """``hub_url`` of the folder's secrets.yaml, when it states one."""
    try:
        secrets = yaml.safe_load((directory / "secrets.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return None
    value = secrets.get("hub_url") if isinstance(secrets, dict) else None
    return value.strip() if isinstance(value, str) and value.strip() else None


async def substitution_arguments(
    services: ServiceRegistry | None, directory: Path, name: str, on_line: Callable[[str], None]
) -> list[str]:
    """``["-s", "ota_manifest_url", URL]`` for ``esphome``, or ``[]`` (saying why on ``on_line``) when the hub has
    no ``ota`` plugin or does not know its address; :class:`FirmwareError` when ``hub_url`` is not a URL."""
    if services is None or not services.has("ota", "manifest_url"):
        on_line(NO_OTA)
        return []
    data = {"kind": NAME_KIND, "name": name}
    base = hub_url(directory)
    if base is not None:
        data["base_url"] = base
    try:
        result = await services.call("ota", "manifest_url", data)
    except ServiceValidationError as err:
        raise FirmwareError(
            f"hub_url in {directory / 'secrets.yaml'} must be the hub's address, e.g. http://192.168.1.10:8124 ({err})"
        ) from None
    url = result["url"]
    if url is None:
        on_line(NO_ADDRESS.format(secrets=directory / "secrets.yaml"))
        return []
    on_line(f"Update manifest: {url.split('?', 1)[0]} (its key is passed as the substitution {SUBSTITUTION})")
    return ["-s", SUBSTITUTION, url]
