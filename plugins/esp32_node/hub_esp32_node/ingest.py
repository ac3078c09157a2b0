"""The two message handlers: contract messages in, registry updates out.  This is the ingest hot path.

:meth:`Esp32Ingest.handle_data` runs synchronously inside the transport's
message callback for every telemetry message of the fleet, so it is written
for speed: one ``orjson.loads``, one pass over the keys, per-topic state
cached after the first message (node, dedupe hasher, verified ``mac_address``),
registry calls only for what is new or changed, no task, no log line unless
something is wrong (and then rate-limited by :class:`hub.Rejections`).

Nothing reaches the registry until the whole message has been validated, so a
rejected message leaves no trace but its counter, and an unknown node is not
registered on the strength of garbage.  What the registry's limits refuse (a new
node, entities or attributes past ``hub: limits:``) is counted by reason, and the
rest of the message is still applied.

The per-topic cache holds one entry per node and topic level: a node is cached
under the spelling of its MAC it used last, so the 4,096 case spellings of one
MAC are one node and one route, never 4,096 cache entries.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson

from hub import (
    EVENT_NODE_REMOVED,
    Event,
    LimitExceeded,
    Node,
    NodeRemovedData,
    RateLimitedLogger,
    Rejections,
    fit_attributes,
    normalize_mac,
)

from .contract import (
    DATA_LEVEL,
    DEDUPE,
    FIRMWARE,
    INT64_MAX,
    INT64_MIN,
    KEY_PATTERN,
    MAC,
    MAX_DEPTH,
    MAX_KEYS,
    MAX_PAYLOAD,
    REJECT_BAD_KEY,
    REJECT_MAC_MISMATCH,
    REJECT_NOT_JSON,
    REJECT_NOT_OBJECT,
    REJECT_TOO_DEEP,
    REJECT_TOO_LARGE,
    REJECT_TOO_MANY_KEYS,
    RESERVED_KEYS,
    STATUS_LEVEL,
    TIMESTAMP,
    TOPIC_MAC_ATTRIBUTE,
    ContractViolation,
    dedupe_hasher,
    dedupe_id,
    default_name,
    nesting_ok,
    parse_status,
    parse_topic,
)
from .entities import describe
from .timestamps import EARLIEST, MAX_AHEAD, InvalidTimestamp, parse_timestamp

if TYPE_CHECKING:
    from hub import Hub

_LOGGER = logging.getLogger(__name__)

_MISSING: Any = object()
_NOTHING: dict[str, Any] = {}
_KEY_CACHE_SIZE = 4096
"""Valid keys remembered so the pattern runs once per key, not per message; bounded against key floods."""


class _Route:
    """What the hub knows about one node once a valid message arrived from it, and the topics it is cached under."""

    __slots__ = ("hasher", "node", "payload_mac", "topics")

    def __init__(self, node: Node) -> None:
        self.node = node
        self.hasher = dedupe_hasher(node.node_id)
        self.payload_mac: object = _MISSING
        """The last ``mac_address`` value seen to agree with the topic (skips re-normalising it)."""
        self.topics: dict[str, str] = {}
        """Topic level (``data``, ``status``) → the one topic this route is cached under for it."""


class Esp32Ingest:
    """Handlers for ``devices/+/data`` and ``devices/+/status`` bound to one hub."""

    def __init__(self, hub: Hub) -> None:
        self._registry = hub.registry
        self._clock = hub.clock
        self._rejections = Rejections(hub.metrics, _LOGGER)
        fallbacks = hub.metrics.counter(
            "esp32_timestamp_fallbacks",
            "ESP32 telemetry whose timestamp was unusable, stored at receive time instead",
            ["reason"],
        )
        self._fallbacks = {reason: fallbacks.labels(reason) for reason in ("unparsable", "out_of_range")}
        self._routes: dict[str, _Route] = {}
        """Topic → its node's route: at most one topic per node and level."""
        self._by_node: dict[str, _Route] = {}
        self._log = RateLimitedLogger(_LOGGER)
        self._key_roles: dict[str, int] = {}
        """Keys seen valid → their role (see RESERVED_KEYS; 0 for an ordinary key): one lookup per key."""
        hub.bus.listen(EVENT_NODE_REMOVED, self._forget)

    @property
    def cached_topics(self) -> int:
        """Topics in the per-topic cache: at most one data and one status topic per node."""
        return len(self._routes)

    # --- devices/{MAC}/data --------------------------------------------------------
    def handle_data(self, topic: str, payload: bytes, retained: bool) -> None:
        """Validate one telemetry message and apply it to the registry; rejections are counted, never raised."""
        if len(payload) > MAX_PAYLOAD:
            self._rejections.reject(REJECT_TOO_LARGE, topic, f"{len(payload)} bytes > {MAX_PAYLOAD}")
            return
        route = self._routes.get(topic)
        if route is None:
            try:
                node_id, spelling = parse_topic(topic, DATA_LEVEL)
            except ContractViolation as err:
                self._rejections.reject(err.reason, topic, err.detail)
                return
            entities = attributes = _NOTHING
        else:
            entities = route.node.entities
            attributes = route.node.attributes
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError as err:
            self._rejections.reject(REJECT_NOT_JSON, topic, str(err)[:120])
            return
        if type(data) is not dict:
            self._rejections.reject(REJECT_NOT_OBJECT, topic, f"got {type(data).__name__}")
            return
        if len(data) > MAX_KEYS:
            self._rejections.reject(REJECT_TOO_MANY_KEYS, topic, f"{len(data)} keys > {MAX_KEYS}")
            return

        numbers: dict[str, int | float] = {}
        new_keys: list[str] | None = None
        changed: dict[str, Any] | None = None
        stamp = firmware = mac = _MISSING
        deduplicable = False
        bad_key = None
        key_roles = self._key_roles
        for key, value in data.items():
            role = key_roles.get(key)
            if role is None:
                role = self._check_key(key)
                if role is None:
                    bad_key = key
                    continue
            if role:
                if role == TIMESTAMP:
                    if stamp is _MISSING:
                        stamp = value
                elif role == DEDUPE:
                    deduplicable = True
                elif role == FIRMWARE:
                    firmware = value
                elif role == MAC:
                    mac = value
                continue
            kind = type(value)
            if kind is float or kind is int:
                if kind is int and not INT64_MIN <= value <= INT64_MAX:
                    value = float(value)
                numbers[key] = value
                if key not in entities:
                    if new_keys is None:
                        new_keys = []
                    new_keys.append(key)
            elif value is not None:
                if (kind is dict or kind is list) and not nesting_ok(value, MAX_DEPTH - 1):
                    self._rejections.reject(REJECT_TOO_DEEP, topic, f"{key!r} nests deeper than {MAX_DEPTH} levels")
                    return
                if attributes.get(key, _MISSING) != value:
                    if changed is None:
                        changed = {}
                    changed[key] = value

        if mac is not _MISSING and (route is None or mac != route.payload_mac):
            expected = node_id if route is None else route.node.node_id
            if not _same_mac(mac, expected):
                self._rejections.reject(REJECT_MAC_MISMATCH, topic, f"mac_address {str(mac)[:40]!r}")
                return
        if bad_key is not None:
            self._rejections.reject(REJECT_BAD_KEY, topic, f"key {bad_key[:40]!r} skipped, rest of message kept")

        # Valid: from here on the message changes the registry.
        received = self._clock()
        if route is None:
            route = self._register(topic, node_id, spelling, DATA_LEVEL, received)
            if route is None:
                return
        if mac is not _MISSING:
            route.payload_mac = mac
        node = route.node
        registry = self._registry
        if new_keys is not None:
            self._new_entities(topic, node, new_keys, numbers)
        if firmware is not _MISSING and firmware != node.firmware_version:
            version = _version_string(firmware)
            if version is not None and version != node.firmware_version:
                registry.update_node(node, firmware_version=version)
        if changed:
            changed, refused = fit_attributes(node.attributes, changed, registry.limits)
            if refused is not None:
                self._rejections.reject(refused.reason, topic, f"{refused}; the rest of the message kept")
            if changed:
                registry.update_node(node, attributes=changed)

        if stamp is _MISSING or stamp is None:
            ts = received
        elif (type(stamp) is float or type(stamp) is int) and EARLIEST <= stamp <= received + MAX_AHEAD:
            ts = float(stamp)  # epoch seconds, the common case (in this range it cannot be milliseconds)
        else:
            try:
                ts = parse_timestamp(stamp, received)
            except InvalidTimestamp as err:
                self._fallbacks[err.reason].inc()
                ts = received
        dedupe = dedupe_id(route.hasher, payload) if deduplicable else None
        if numbers:
            registry.report_states(node, numbers, ts, dedupe=dedupe, received=received)
        else:
            # Only attributes: still proof of life, but nothing to record as readings.
            registry.report_availability(node, True, received)

    # --- devices/{MAC}/status ------------------------------------------------------
    def handle_status(self, topic: str, payload: bytes, retained: bool) -> None:
        """``online``/``offline`` (live, retained, or the broker's LWT) → ``registry.report_availability``.

        A retained ``offline`` seen when the hub subscribes is as true as a live one: the
        node's LWT fired while the hub was away, so it counts the same.
        """
        if len(payload) > MAX_PAYLOAD:
            self._rejections.reject(REJECT_TOO_LARGE, topic, f"{len(payload)} bytes > {MAX_PAYLOAD}")
            return
        route = self._routes.get(topic)
        try:
            if route is None:
                node_id, spelling = parse_topic(topic, STATUS_LEVEL)
            online = parse_status(payload)
        except ContractViolation as err:
            self._rejections.reject(err.reason, topic, err.detail)
            return
        if online is None:
            return
        received = self._clock()
        if route is None:
            route = self._register(topic, node_id, spelling, STATUS_LEVEL, received)
            if route is None:
                return
        self._registry.report_availability(route.node, online, received)

    # --- state -------------------------------------------------------------------------
    def _register(self, topic: str, node_id: str, spelling: str, level: str, ts: float) -> _Route | None:
        """A valid message on a topic not cached: find (or register) the node, remember its spelling.

        None when the registry refused a new node (counted): the message is dropped whole.
        """
        registry = self._registry
        route = self._by_node.get(node_id)
        node = registry.get(node_id)
        if node is None:
            try:
                node = registry.get_or_register(node_id, name=default_name(node_id), ts=ts)
            except LimitExceeded as err:
                self._rejections.reject(err.reason, topic, str(err))
                return None
            self._log.log(
                logging.INFO, "new", "New ESP32 node %s registered as %r (from %s)", node_id, node.name, topic
            )
        if route is None or route.node is not node:
            route = self._by_node[node_id] = _Route(node)
        if node.attributes.get(TOPIC_MAC_ATTRIBUTE) != spelling:
            try:
                registry.update_node(node, attributes={TOPIC_MAC_ATTRIBUTE: spelling})
            except LimitExceeded as err:  # a node restored with more attributes than the limit allows
                self._rejections.reject(err.reason, topic, str(err))
        previous = route.topics.get(level)
        if previous is not None and previous != topic:
            self._routes.pop(previous, None)  # one spelling cached per node and level
        route.topics[level] = topic
        self._routes[topic] = route
        return route

    def _new_entities(self, topic: str, node: Node, keys: list[str], numbers: dict[str, Any]) -> None:
        """Register the message's new readings as entities; those past the node's limit are left out, counted."""
        registry = self._registry
        for index, key in enumerate(keys):
            spec = describe(key)
            try:
                registry.ensure_entity(
                    node,
                    key,
                    name=spec.name,
                    unit=spec.unit,
                    device_class=spec.device_class,
                    state_class=spec.state_class,
                )
            except LimitExceeded as err:
                for refused in keys[index:]:
                    del numbers[refused]
                detail = f"{len(keys) - index} new reading(s) left out, the rest kept: {err}"
                self._rejections.reject(err.reason, topic, detail)
                return

    def _check_key(self, key: str) -> int | None:
        """The key's role (0: an ordinary reading or attribute), or None when it breaks :data:`KEY_PATTERN`."""
        if KEY_PATTERN.fullmatch(key) is None:
            return None
        role = RESERVED_KEYS.get(key, 0)
        if len(self._key_roles) < _KEY_CACHE_SIZE:
            self._key_roles[key] = role
        return role

    def _forget(self, event: Event[NodeRemovedData]) -> None:
        """A removed node must re-register on its next message, not live on in the route cache."""
        route = self._by_node.pop(event.data["node_id"], None)
        if route is not None:
            for topic in route.topics.values():
                self._routes.pop(topic, None)


def _same_mac(value: object, node_id: str) -> bool:
    if type(value) is not str:
        return False
    try:
        return normalize_mac(value) == node_id
    except ValueError:
        return False


def _version_string(value: object) -> str | None:
    """Firmware versions arrive as ``"1.4.2"`` or, from careless firmware, as the number ``1.4``."""
    kind = type(value)
    if kind is str:
        return value[:64] or None  # type: ignore[index]
    if kind is int or kind is float:
        return str(value)
    return None
