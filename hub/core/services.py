"""Services: named async operations that plugins offer each other.

A service is ``domain.name`` (``storage.purge``, ``storage.history``) with a
voluptuous schema for its data.  Plugins never import each other; they call
services by name, so one can be replaced without the other noticing.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import voluptuous as vol
from voluptuous.humanize import humanize_error

from .errors import ServiceNotFound, ServiceValidationError

ServiceHandler = Callable[[dict[str, Any]], Awaitable[Any] | Any]


@dataclass(frozen=True, slots=True)
class Service:
    """A registered service: who handles it, what data it accepts, what it is for."""

    domain: str
    name: str
    handler: ServiceHandler
    schema: vol.Schema
    description: str = ""


class ServiceRegistry:
    """Services by ``(domain, name)``."""

    def __init__(self) -> None:
        self._services: dict[tuple[str, str], Service] = {}

    def register(
        self,
        domain: str,
        name: str,
        handler: ServiceHandler,
        schema: vol.Schema | dict | None = None,
        description: str = "",
    ) -> Callable[[], None]:
        """Offer ``domain.name``; returns a function that withdraws it.  Re-registering replaces."""
        if not isinstance(schema, vol.Schema):
            schema = vol.Schema(schema if schema is not None else {})
        service = Service(domain, name, handler, schema, description or (inspect.getdoc(handler) or ""))
        self._services[(domain, name)] = service

        def unregister() -> None:
            if self._services.get((domain, name)) is service:
                del self._services[(domain, name)]

        return unregister

    def has(self, domain: str, name: str) -> bool:
        """True when ``domain.name`` is registered."""
        return (domain, name) in self._services

    def list(self) -> list[Service]:
        """Every registered service, sorted by domain and name."""
        return [self._services[key] for key in sorted(self._services)]

    async def call(self, domain: str, name: str, data: dict[str, Any] | None = None) -> Any:
        """Validate ``data`` against the service's schema, run it and return its result."""
        service = self._services.get((domain, name))
        if service is None:
            raise ServiceNotFound(f"no service {domain}.{name}")
        try:
            validated = service.schema(data or {})
        except vol.Invalid as err:
            raise ServiceValidationError(f"{domain}.{name}: {humanize_error(data, err)}") from err
        result = service.handler(validated)
        if inspect.isawaitable(result):
            result = await result
        return result
