"""devices/{MAC}/status: bare words, JSON, retained LWTs, and what is rejected."""

from __future__ import annotations

import pytest
from esp32_testing import NOW, Recorder

from hub import EVENT_AVAILABILITY_REPORTED, EVENT_NODE_REGISTERED, Hub

MAC = "A4:CF:12:01:02:03"
NODE_ID = "a4:cf:12:01:02:03"


@pytest.mark.parametrize(
    ("payload", "online"),
    [
        (b"online", True),
        (b"offline", False),
        (b"ONLINE", True),
        (b"  Offline\r\n", False),
        (b'{"status": "online"}', True),
        (b'{"status": " OFFLINE ", "uptime": 5}', False),
        (b'"online"', True),
    ],
)
@pytest.mark.parametrize("retained", [False, True])
async def test_status_reports_availability(
    hub: Hub, events: Recorder, payload: bytes, online: bool, retained: bool
) -> None:
    assert hub.messages.dispatch(f"devices/{MAC}/status", payload, retained) == 1
    assert events.of(EVENT_AVAILABILITY_REPORTED) == [{"node_id": NODE_ID, "online": online, "ts": NOW}]


async def test_retained_offline_lwt_registers_an_unknown_node_as_offline(hub: Hub, events: Recorder) -> None:
    hub.messages.dispatch(f"devices/{MAC.replace(':', '')}/status", b"offline", True)
    node = hub.registry.get(NODE_ID)
    assert node is not None and node.name == "esp32-010203"
    assert node.attributes["topic_mac"] == MAC.replace(":", "")
    assert len(events.of(EVENT_NODE_REGISTERED)) == 1
    assert events.of(EVENT_AVAILABILITY_REPORTED)[0]["online"] is False


async def test_empty_status_is_a_cleared_retained_message_and_ignored(hub: Hub, events: Recorder) -> None:
    hub.messages.dispatch(f"devices/{MAC}/status", b"", True)
    hub.messages.dispatch(f"devices/{MAC}/status", b"  \n", False)
    assert events.events == [] and len(hub.registry) == 0
    assert hub.metrics.value("messages_rejected", reason="bad_status") == 0


@pytest.mark.parametrize(
    "payload",
    [b"maybe", b"1", b"true", b'{"status": "sleeping"}', b'{"online": true}', b'{"status": 1}', b"[]", b"\xff"],
)
async def test_anything_else_is_bad_status(hub: Hub, events: Recorder, payload: bytes) -> None:
    hub.messages.dispatch(f"devices/{MAC}/status", payload, False)
    assert hub.metrics.value("messages_rejected", reason="bad_status") == 1
    assert events.events == [] and len(hub.registry) == 0


async def test_status_with_bad_mac_or_too_large(hub: Hub, events: Recorder) -> None:
    hub.messages.dispatch("devices/esp32-kitchen/status", b"online", False)
    hub.messages.dispatch(f"devices/{MAC}/status", b" " * (64 * 1024) + b"online", False)
    assert hub.metrics.value("messages_rejected", reason="bad_mac") == 1
    assert hub.metrics.value("messages_rejected", reason="too_large") == 1
    assert events.events == []


async def test_status_and_data_share_the_node(hub: Hub) -> None:
    hub.messages.dispatch(f"devices/{MAC}/status", b"online", True)
    hub.messages.dispatch(f"devices/{MAC.lower()}/data", b'{"temperature": 1}', False)
    assert [node.node_id for node in hub.registry] == [NODE_ID]
