"""ServiceRegistry: registration, schema validation, sync and async handlers, errors."""

from __future__ import annotations

import pytest
import voluptuous as vol

from hub.core.errors import HubError, ServiceNotFound, ServiceValidationError
from hub.core.services import ServiceRegistry


async def test_async_handler_gets_validated_data_with_defaults():
    services = ServiceRegistry()
    calls = []

    async def purge(data: dict) -> int:
        """Delete telemetry older than keep_days."""
        calls.append(data)
        return 42

    services.register(
        "storage", "purge", purge, {vol.Optional("keep_days", default=30): vol.All(int, vol.Range(min=1))}
    )
    assert await services.call("storage", "purge") == 42
    assert await services.call("storage", "purge", {"keep_days": 7}) == 42
    assert calls == [{"keep_days": 30}, {"keep_days": 7}]
    (service,) = services.list()
    assert (service.domain, service.name, service.description) == (
        "storage",
        "purge",
        "Delete telemetry older than keep_days.",
    )


async def test_sync_handler_result_is_returned():
    services = ServiceRegistry()
    services.register("math", "double", lambda data: data["x"] * 2, vol.Schema({"x": int}), "Double x")
    assert await services.call("math", "double", {"x": 21}) == 42
    assert services.list()[0].description == "Double x"


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"keep_days": "abc"}, "keep_days"),
        ({"keep_days": 0}, "at least 1"),
        ({"unknown": 1}, "extra keys not allowed"),
        ({}, "required key not provided"),
    ],
)
async def test_invalid_data_is_refused_before_the_handler_runs(data, fragment):
    services = ServiceRegistry()
    calls = []
    services.register("storage", "purge", calls.append, {vol.Required("keep_days"): vol.All(int, vol.Range(min=1))})
    with pytest.raises(ServiceValidationError) as caught:
        await services.call("storage", "purge", data)
    assert str(caught.value).startswith("storage.purge: ") and fragment in str(caught.value)
    assert calls == []


async def test_no_schema_accepts_only_empty_data():
    services = ServiceRegistry()
    services.register("hub", "ping", lambda data: "pong")
    assert await services.call("hub", "ping") == "pong"
    with pytest.raises(ServiceValidationError):
        await services.call("hub", "ping", {"x": 1})


async def test_unknown_service():
    services = ServiceRegistry()
    with pytest.raises(ServiceNotFound, match="no service storage.purge"):
        await services.call("storage", "purge")
    assert issubclass(ServiceNotFound, HubError)


async def test_handler_errors_propagate_to_the_caller():
    services = ServiceRegistry()

    async def fail(data: dict) -> None:
        raise RuntimeError("disk full")

    services.register("storage", "purge", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        await services.call("storage", "purge")


async def test_reregister_replaces_and_stale_unregister_keeps_the_new_one():
    services = ServiceRegistry()
    old_unregister = services.register("a", "b", lambda data: 1)
    services.register("a", "b", lambda data: 2)
    old_unregister()
    assert services.has("a", "b")
    assert await services.call("a", "b") == 2


def test_unregister_and_listing_order():
    services = ServiceRegistry()
    services.register("z", "a", lambda d: None)
    off = services.register("a", "z", lambda d: None)
    services.register("a", "b", lambda d: None)
    assert [(s.domain, s.name) for s in services.list()] == [("a", "b"), ("a", "z"), ("z", "a")]
    off()
    assert not services.has("a", "z")
