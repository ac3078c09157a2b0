"""Commands to ESPHome entities through ``hub.commands``: the actions, and the deliverer for both paths.

=================  ===========================================  =============================================
action             params                                       verdict
=================  ===========================================  =============================================
``SWITCH``         ``entity``, ``state``: ``ON``/``OFF``/       ``ok`` when the switch reports that state
                   ``TOGGLE``                                   (already in it: ``ok`` at once; ESPHome does
                                                                not report a state that did not change)
``BUTTON_PRESS``   ``entity``                                   ``ok`` once the press is handed over (a button
                                                                has no state to report)
``NUMBER_SET``     ``entity``, ``value``                        ``ok`` when the number reports the value; a
                                                                value outside its min/max fails at once
``UPDATE_INSTALL`` ``entity``                                   ``received`` when the update reports
                                                                ``in_progress``, ``ok`` when it reports the
                                                                offered version installed (bounded by the
                                                                command's TTL only: flashing takes minutes)
=================  ===========================================  =============================================

``entity`` is the entity's key (``switch.relay``) or its object id (``relay``).
Switches and numbers that do not confirm within ``esphome: command_timeout``
(10 s) fail, saying what the entity reports instead (see :mod:`.confirm`).

**Which path.** A node connected over the native API is commanded through it
(``switch_command``, ``button_command``, ``number_command``, ``update_command``).
Otherwise, an entity that MQTT discovery described with a ``command_topic`` is
commanded by publishing there (QoS 1, not retained; "delivered" is the broker's
PUBACK) with the config's own payloads: ``payload_on``/``payload_off`` (default
``ON``/``OFF``; ``TOGGLE`` is sent as the opposite of the current state, since
not every discovery device knows ``TOGGLE``), ``payload_press`` (``PRESS``),
the number as text, ``payload_install`` (``install``).  A native node that is
not connected right now is tried again (the command stays queued) unless MQTT
can reach the entity.

The deliverer names its actions (``accepts``), so a node that also speaks the
JSON contract still gets ``REBOOT`` through ``esp32_node``, and a node that
takes none of the JSON contract's actions stays ``not_commandable`` for them
(``FIRMWARE_UPDATE``: ``ota`` releases ESPHome nodes through their manifest).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import aioesphomeapi as api
import orjson
import voluptuous as vol

from hub import Command, Entity, HubError, Node

from .confirm import Confirmations

if TYPE_CHECKING:
    from hub import Hub

    from .native.manager import NativeApi
    from .native.mapping import EntitySpec

SWITCH: Final = "SWITCH"
BUTTON_PRESS: Final = "BUTTON_PRESS"
NUMBER_SET: Final = "NUMBER_SET"
UPDATE_INSTALL: Final = "UPDATE_INSTALL"

COMMAND_TOPIC: Final = "command_topic"

_ENTITY = vol.All(str, vol.Length(min=1, max=200))


def _switch_state(value: Any) -> str:
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    if isinstance(value, str) and value.strip().upper() in ("ON", "OFF", "TOGGLE"):
        return value.strip().upper()
    raise vol.Invalid("expected ON, OFF or TOGGLE")


def _finite(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise vol.Invalid("expected a finite number")
    return float(value)


@dataclass(frozen=True, slots=True)
class _Action:
    platform: str
    params: dict[Any, Any]
    description: str


ACTIONS: Final = {
    SWITCH: _Action(
        "switch",
        {vol.Required("entity"): _ENTITY, vol.Required("state"): _switch_state},
        "Turn an ESPHome switch ON or OFF, or TOGGLE it; succeeds when the node reports the new state.",
    ),
    BUTTON_PRESS: _Action("button", {vol.Required("entity"): _ENTITY}, "Press an ESPHome button."),
    NUMBER_SET: _Action(
        "number",
        {vol.Required("entity"): _ENTITY, vol.Required("value"): _finite},
        "Set an ESPHome number; succeeds when the node reports the value.",
    ),
    UPDATE_INSTALL: _Action(
        "update",
        {vol.Required("entity"): _ENTITY},
        "Install the version an ESPHome update entity offers; succeeds when the node reports it installed.",
    ),
}


def register_actions(hub: Hub, owner: str) -> None:
    """Offer the actions above (``GET /api/actions`` lists them; the dashboard's command form sends them)."""
    for name, action in ACTIONS.items():
        hub.commands.actions.register(name, action.params, action.description, owner=owner)


def entity_for(node: Node, platform: str, name: str) -> Entity | str:
    """The entity a command names (``switch.relay`` or ``relay``), or why there is none."""
    key = name if "." in name else f"{platform}.{name}"
    entity = node.entities.get(key)
    if entity is None:
        return f"{node.node_id} has no entity {key}"
    if entity.platform != platform:
        return f"{key} is a {entity.platform}, not a {platform}"
    return entity


class EsphomeCommands:
    """The ``Deliverer`` for ESPHome entities (see the module docstring)."""

    def __init__(self, hub: Hub, native: NativeApi | None, confirmations: Confirmations, timeout: float) -> None:
        self._hub = hub
        self._native = native
        self._confirm = confirmations
        self._timeout = timeout

    def accepts(self, action: str) -> bool:
        return action in ACTIONS

    def owns(self, node: Node) -> bool:
        """A node connected over the native API, or one with an entity MQTT discovery gave a command topic."""
        if self._native is not None and self._native.owns(node):
            return True
        return any(COMMAND_TOPIC in entity.attributes for entity in node.entities.values())

    async def deliver(self, command: Command, node: Node) -> None:
        """Send over the native API or MQTT and leave the expectation; HubError (retried) when neither can now."""
        entity = entity_for(node, ACTIONS[command.action].platform, command.params["entity"])
        if isinstance(entity, str):
            self._settle(command, "error", entity)
            return
        connection = self._native.connection(node.node_id) if self._native is not None else None
        spec = connection.device.entities.get(entity.key) if connection is not None else None
        if connection is not None and spec is not None and connection.connected:
            self._send(command, entity, lambda value: _native_call(connection.client, spec, command.action, value))
            return
        topic = entity.attributes.get(COMMAND_TOPIC)
        if isinstance(topic, str):
            await self._send_async(command, entity, topic)
            return
        if spec is not None:
            raise HubError(f"{node.node_id} is not connected over the native API right now")
        self._settle(command, "error", f"{entity.key} takes no commands (no native API, no command_topic)")

    # --- the plan: what is sent, what confirms it ---------------------------------------------
    def _settle(self, command: Command, answer: str, detail: str) -> None:
        """A verdict before anything is sent (``sent`` → ``failed``/``succeeded``, never a ``delivered`` it was not)."""
        self._hub.commands.settle(command, answer, detail)

    def _plan(self, command: Command, entity: Entity) -> tuple[Any] | None:
        """``(value,)`` to send, with the expectation left; None when the command is settled without sending."""
        action, key, state = command.action, entity.key, entity.state
        if action == SWITCH:
            wanted = command.params["state"]
            if wanted == "TOGGLE" and not isinstance(state, bool):
                self._settle(command, "error", f"{key}'s state is unknown: TOGGLE needs it")
                return None
            target = (not state) if wanted == "TOGGLE" else wanted == "ON"
            describe = _describe_switch(key)
            if state is target and wanted != "TOGGLE":
                self._confirm.answer_soon(command, "ok", f"{describe(state)} already")
            else:
                self._confirm.expect(
                    command, key, lambda value: "ok" if value is target else None, describe, timeout=self._timeout
                )
            return (target,)
        if action == NUMBER_SET:
            value = command.params["value"]
            low, high = _bound(entity, "min"), _bound(entity, "max")
            if (low is not None and value < low) or (high is not None and value > high):
                span = f"{'' if low is None else f'{low:g}'}–{'' if high is None else f'{high:g}'}"
                self._settle(command, "error", f"{key} takes {span}, not {value:g}")
                return None
            step = entity.attributes.get("step")
            tolerance = max(abs(value) * 1e-6, 1e-6, float(step) / 2 if isinstance(step, int | float) else 0.0)
            self._confirm.expect(
                command,
                key,
                lambda got: "ok" if isinstance(got, float) and abs(got - value) <= tolerance else None,
                lambda got: f"{key} is {got}",
                timeout=self._timeout,
            )
            return (value,)
        if action == UPDATE_INSTALL:
            current = state if isinstance(state, dict) else {}
            latest, installed = current.get("latest_version"), current.get("installed_version")
            if latest is not None and latest == installed:
                self._settle(command, "ok", f"{key}: {installed} is installed already")
                return None
            self._confirm.expect(command, key, _install_test(latest, installed), _describe_update(key), timeout=None)
            return (None,)
        self._confirm.answer_soon(command, "ok", f"{key} pressed")  # BUTTON_PRESS: no state to wait for
        return (None,)

    def _send(self, command: Command, entity: Entity, call: Any) -> None:
        plan = self._plan(command, entity)
        if plan is None:
            return
        try:
            call(plan[0])
        except api.APIConnectionError as err:
            self._confirm.discard(command)
            raise HubError(f"native API: {err}") from err

    async def _send_async(self, command: Command, entity: Entity, topic: str) -> None:
        plan = self._plan(command, entity)
        if plan is None:
            return
        try:
            payload = _mqtt_payload(command.action, entity, plan[0])
            await self._hub.messages.publish(topic, payload, qos=1, retain=False, confirm=True)
        except BaseException:
            self._confirm.discard(command)
            raise


def _bound(entity: Entity, name: str) -> float | None:
    value = entity.attributes.get(name)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _native_call(client: api.APIClient, spec: EntitySpec, action: str, value: Any) -> None:
    key, device_id = spec.native_key, spec.device_id
    if action == SWITCH:
        client.switch_command(key, bool(value), device_id)
    elif action == NUMBER_SET:
        client.number_command(key, float(value), device_id)
    elif action == UPDATE_INSTALL:
        client.update_command(key, api.UpdateCommand.INSTALL, device_id)
    else:
        client.button_command(key, device_id)


def _mqtt_payload(action: str, entity: Entity, value: Any) -> bytes:
    attributes = entity.attributes
    if action == SWITCH:
        payload = attributes.get("payload_on", "ON") if value else attributes.get("payload_off", "OFF")
    elif action == NUMBER_SET:
        payload = str(int(value)) if float(value).is_integer() else repr(float(value))
    elif action == UPDATE_INSTALL:
        payload = attributes.get("payload_install", "install")
    else:
        payload = attributes.get("payload_press", "PRESS")
    return payload.encode() if isinstance(payload, str) else orjson.dumps(payload)


def _describe_switch(key: str) -> Any:
    return lambda value: f"{key} is {'ON' if value is True else 'OFF' if value is False else 'unknown'}"


def _describe_update(key: str) -> Any:
    def describe(value: Any) -> str:
        if not isinstance(value, dict):
            return f"{key} reports nothing"
        if value.get("in_progress"):
            return f"{key}: installing {value.get('latest_version') or 'the update'}"
        return f"{key}: {value.get('installed_version') or 'unknown'} installed"

    return describe


def _install_test(latest: str | None, installed: str | None) -> Any:
    def test(value: Any) -> str | None:
        if not isinstance(value, dict):
            return None
        now = value.get("installed_version")
        if now is not None and (now == latest if latest is not None else now != installed):
            return "ok"
        return "received" if value.get("in_progress") else None

    return test
