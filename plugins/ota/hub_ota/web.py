"""The OTA plugin's own errors as HTTP answers, and its routes' OpenAPI tag.

Everything else its routes share with the core API comes from :mod:`hub.web`: the error shape,
validated bodies and queries, OpenAPI operations. The catalogue and the rollouts raise errors of their
own (they know nothing of HTTP); :func:`api` gives each its status and stable code.
"""

from __future__ import annotations

import functools

from aiohttp import web

from hub import HubError
from hub.web import ApiError, Handler
from hub.web import operation as _operation

from .errors import FirmwareNotFound, FirmwareTooLarge, InvalidFirmware, UnknownChip, UnsafeName, VersionConflict

operation = functools.partial(_operation, tag="ota")
"""An OpenAPI operation of the ``ota`` tag (see :func:`hub.web.operation`)."""

ERROR_STATUS: dict[type[HubError], tuple[int, str]] = {
    FirmwareTooLarge: (413, "firmware_too_large"),
    InvalidFirmware: (400, "invalid_firmware"),
    UnsafeName: (400, "unsafe_name"),
    UnknownChip: (400, "unknown_chip"),
    VersionConflict: (409, "version_conflict"),
    FirmwareNotFound: (404, "firmware_not_found"),
}
"""The plugin's errors as HTTP answers (the first matching class wins: FirmwareTooLarge is an InvalidFirmware)."""


def api(handler: Handler) -> Handler:
    """Wrap a route handler so that the plugin's errors become :class:`~hub.web.ApiError` answers."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except tuple(ERROR_STATUS) as err:
            status, code = next(answer for kind, answer in ERROR_STATUS.items() if isinstance(err, kind))
            raise ApiError(str(err), status=status, code=code) from None

    return wrapped
