"""The ``ota:`` section of config.yaml (everything optional; ``{}`` gives the defaults).

::

    ota:
      max_image_size: 4194304    # bytes: larger uploads are refused while they stream (default 4 MiB)
      firmware_dir: firmware     # where images are kept, relative to hub: data_dir (or absolute)
      public_url: http://192.168.1.10:8124   # how nodes reach the hub's HTTP server (default: its own URL)
      manifest_link_lifetime: 86400          # seconds an ESPHome manifest's download link stays valid
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import voluptuous as vol

SECTION = "ota"
DEFAULT_MAX_IMAGE_SIZE = 4 * 1024 * 1024
"""4 MiB: larger than the biggest OTA app partition of a 4 MB-flash ESP32 (the usual module)."""
MAX_IMAGE_SIZE_LIMIT = 16 * 1024 * 1024
"""ESP-IDF refuses an app partition over 16 MiB, so no image can be larger."""


def _byte_count(value: Any) -> int:
    """An integer number of bytes (not a bool or a float)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise vol.Invalid(f"expected a whole number of bytes, got {value!r}")
    return value


def base_url(value: Any) -> str:
    """An http(s) URL with a host and no query, without its trailing slash."""
    if not isinstance(value, str):
        raise vol.Invalid("expected a URL such as http://192.168.1.10:8124")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise vol.Invalid(f"expected http://host[:port][/path] or https://…, got {value!r}")
    return value.rstrip("/")


CONFIG_SCHEMA = vol.Schema(
    {
        vol.Optional("max_image_size", default=DEFAULT_MAX_IMAGE_SIZE): vol.All(
            _byte_count, vol.Range(min=1024, max=MAX_IMAGE_SIZE_LIMIT)
        ),
        vol.Optional("firmware_dir", default="firmware"): vol.All(str, vol.Length(min=1)),
        vol.Optional("public_url"): base_url,
        vol.Optional("manifest_link_lifetime", default=86400): vol.All(
            vol.Coerce(float), vol.Range(min=60, max=30 * 86400)
        ),
    }
)


def firmware_dir(section: dict[str, Any], data_dir: Path) -> Path:
    """The firmware directory: ``firmware_dir`` made absolute against the hub's data directory."""
    return data_dir / Path(section["firmware_dir"]).expanduser()
