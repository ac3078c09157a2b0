"""The OTA plugin's errors: each says in one line what is wrong, so an upload can be refused with it as is.

They derive from :class:`hub.HubError` (and a builtin where one fits), so a caller maps them to
HTTP statuses by class: :class:`InvalidFirmware` 400, :class:`FirmwareTooLarge` 413, :class:`UnsafeName` 400,
:class:`UnknownChip` 400, :class:`VersionConflict` 409, :class:`FirmwareNotFound` 404.
"""

from __future__ import annotations

from hub import HubError


class InvalidFirmware(HubError, ValueError):
    """The bytes are not a valid ESP32 application image for the requested chip."""


class FirmwareTooLarge(InvalidFirmware):
    """The upload exceeds the configured size limit (refused while streaming, nothing kept)."""


class UnsafeName(HubError, ValueError):
    """A user-supplied file name or digest that could be read as a path (``../x``, ``/etc/x``, NUL, …)."""


class UnknownChip(HubError, ValueError):
    """A chip family name that is not one of the ESP32 family's (a typo in a target, say)."""


class VersionConflict(HubError, ValueError):
    """The version is already taken by other bytes, or the declared version disagrees with the image."""


class FirmwareNotFound(HubError, LookupError):
    """No image with that SHA-256 is in the store."""
