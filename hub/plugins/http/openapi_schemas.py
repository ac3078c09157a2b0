"""The component schemas of the OpenAPI document: what the API's bodies look like."""

from __future__ import annotations

from typing import Any


def _obj(properties: dict[str, Any], *, required: list[str] | None = None, extra: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": extra}
    schema["required"] = list(properties) if required is None else required
    return schema


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_STR = {"type": "string"}
_NUM = {"type": "number"}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}
_NULL_STR = {"type": "string", "nullable": True}
_NULL_NUM = {"type": "number", "nullable": True}
_ANY = {"nullable": True, "description": "any JSON value"}
_COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}
_GROUP_COUNTS = {"total": _INT, "online": _INT, "offline": _INT, "unknown": _INT}

_TOKEN_INFO = {
    "id": _STR,
    "user_id": _STR,
    "kind": {"type": "string", "enum": ["refresh", "long_lived"]},
    "name": _STR,
    "created": _NUM,
    "expires": _NULL_NUM,
    "last_used": _NULL_NUM,
    "address": {"type": "string", "nullable": True, "description": "where a session signed in or last renewed from"},
    "current": {"type": "boolean", "description": "the token this request was made with"},
}

_COMMAND_STATUS = {
    "type": "string",
    "enum": ["queued", "sent", "delivered", "acknowledged", "succeeded", "failed", "expired", "cancelled"],
}

SCHEMAS: dict[str, Any] = {
    "Command": _obj(
        {
            "id": _STR,
            "node_id": _STR,
            "action": _STR,
            "params": {"type": "object"},
            "priority": _INT,
            "ttl": _NUM,
            "created": _NUM,
            "expires": _NUM,
            "sender": _STR,
            "offline_policy": {"type": "string", "enum": ["queue", "refuse"]},
            "status": _COMMAND_STATUS,
            "updated": _NUM,
            "detail": _NULL_STR,
            "history": {
                "type": "array",
                "items": _obj({"status": _COMMAND_STATUS, "ts": _NUM, "detail": _NULL_STR}),
            },
        }
    ),
    "AuditList": _obj(
        {
            "records": {
                "type": "array",
                "items": _obj(
                    {
                        "id": _INT,
                        "ts": _NUM,
                        "username": _NULL_STR,
                        "token_id": _NULL_STR,
                        "method": _STR,
                        "path": _STR,
                        "status": _INT,
                        "remote": _STR,
                    }
                ),
            }
        }
    ),
    "CommandList": _obj({"commands": {"type": "array", "items": _ref("Command")}}),
    "BulkCommands": _obj(
        {
            "commands": {"type": "array", "items": _ref("Command"), "description": "one per node that took it"},
            "refused": {
                "type": "array",
                "items": _obj({"node_id": _STR, "code": _STR, "message": _STR}),
                "description": "selected nodes that cannot take it (e.g. not_commandable, node_offline)",
            },
        }
    ),
    "ActionList": _obj(
        {
            "actions": {
                "type": "array",
                "items": _obj(
                    {
                        "name": _STR,
                        "description": _STR,
                        "owner": _STR,
                        "params": {"type": "array", "items": _obj({"name": _STR, "required": _BOOL})},
                    }
                ),
            }
        }
    ),
    "Error": _obj(
        {
            "error": _obj(
                {
                    "code": {"type": "string", "description": "stable, for programs"},
                    "message": {"type": "string", "description": "for people"},
                }
            )
        }
    ),
    "Entity": _obj(
        {
            "key": _STR,
            "platform": _STR,
            "name": _STR,
            "unit": _NULL_STR,
            "device_class": _NULL_STR,
            "state_class": _NULL_STR,
            "attributes": {"type": "object"},
            "state": _ANY,
            "last_changed": _NULL_NUM,
            "last_reported": _NULL_NUM,
        }
    ),
    "Node": _obj(
        {
            "node_id": _STR,
            "name": _STR,
            "status": _STR,
            "status_reason": _NULL_STR,
            "status_since": _NULL_NUM,
            "first_seen": _NULL_NUM,
            "last_seen": _NULL_NUM,
            "firmware_version": _NULL_STR,
            "description": _STR,
            "area": _NULL_STR,
            "tags": {"type": "array", "items": _STR},
            "attributes": {"type": "object"},
            "entities": {"type": "array", "items": _ref("Entity")},
        }
    ),
    "Areas": _obj(
        {
            "areas": {"type": "array", "items": _obj({"area": _STR, **_GROUP_COUNTS})},
            "no_area": _obj(_GROUP_COUNTS),
            "tags": {"type": "array", "items": _obj({"tag": _STR, **_GROUP_COUNTS})},
        }
    ),
    "NodeList": _obj(
        {
            "nodes": {"type": "array", "items": _ref("Node")},
            "counts": {**_COUNTS, "description": "nodes per status, over the whole fleet"},
            "total": {**_INT, "description": "nodes in the whole fleet"},
            "next": {
                "type": "string",
                "nullable": True,
                "description": "the cursor of the next page (null: this is the last)",
            },
        }
    ),
    "History": _obj(
        {
            "node_id": _STR,
            "key": _STR,
            "start": _NUM,
            "end": _NUM,
            "resolution": {"type": "string", "enum": ["raw", "1m", "1h"]},
            "bucket_seconds": _NUM,
            "buckets": {
                "type": "array",
                "items": _obj({"t": _NUM, "min": _NULL_NUM, "avg": _NULL_NUM, "max": _NULL_NUM, "count": _INT}),
            },
        },
        extra=True,
    ),
    "StatusHistory": _obj(
        {
            "node_id": _STR,
            "history": {
                "type": "array",
                "items": _obj({"ts": _NUM, "old": _NULL_STR, "new": _STR, "reason": _NULL_STR}, extra=True),
            },
        }
    ),
    "AccessToken": _obj(
        {
            "access_token": _STR,
            "token_type": {"type": "string", "enum": ["Bearer"]},
            "expires_in": _INT,
            "refresh_token": {
                "type": "string",
                "description": "the session's next refresh token: the one sent is spent",
            },
        }
    ),
    "Session": _obj(
        {
            "access_token": _STR,
            "token_type": {"type": "string", "enum": ["Bearer"]},
            "expires_in": _INT,
            "refresh_token": _STR,
        }
    ),
    "User": _obj({"id": _STR, "username": _STR, "created": _NUM, "is_owner": _BOOL}),
    "Me": _obj(
        {
            "id": _STR,
            "username": _STR,
            "created": _NUM,
            "is_owner": _BOOL,
            "token_id": _STR,
            "token_kind": {"type": "string", "enum": ["access", "long_lived"]},
        }
    ),
    "TokenInfo": _obj(_TOKEN_INFO),
    "TokenList": _obj({"tokens": {"type": "array", "items": _ref("TokenInfo")}}),
    "NewToken": _obj({**_TOKEN_INFO, "token": {"type": "string", "description": "shown once: store it"}}),
    "OnboardingStatus": _obj({"required": _BOOL}),
    "OnboardingResult": _obj(
        {
            "access_token": _STR,
            "token_type": {"type": "string", "enum": ["Bearer"]},
            "expires_in": _INT,
            "refresh_token": _STR,
            "user": _ref("User"),
        }
    ),
    "Ban": _obj(
        {
            "address": {"type": "string", "description": "the client address (after trusted proxies)"},
            "until": {"type": "number", "description": "epoch seconds when the ban ends"},
            "remaining_seconds": _NUM,
        }
    ),
    "BanList": _obj({"bans": {"type": "array", "items": _ref("Ban")}}),
    "Health": _obj(
        {
            "status": {
                "type": "string",
                "description": "ok, degraded (database unreachable or refusing writes), or the hub's state",
            },
            "checks": _obj(
                {
                    "database": {"type": "string", "enum": ["ok", "unavailable", "none"]},
                    "storage": {"type": "string", "enum": ["failing"], "description": "while batch writes fail"},
                },
                required=["database"],
            ),
        },
        required=["status"],
    ),
    "System": _obj(
        {
            "hub": {"type": "object"},
            "nodes": _obj(
                {
                    "total": _INT,
                    "by_status": _COUNTS,
                    "limits": {
                        **_COUNTS,
                        "description": "hub: limits: of config.yaml (rejections count what they refuse)",
                    },
                }
            ),
            "messages": {"type": "object"},
            "storage": {"type": "object"},
            "broker": {"type": "object"},
            "series": _obj(
                {
                    "interval": _NUM,
                    "t": {"type": "array", "items": _NUM},
                    **{
                        name: {"type": "array", "items": _NULL_NUM}
                        for name in ("received_per_second", "rejected_per_second", "rows_per_second", "batch_seconds")
                    },
                }
            ),
            "websocket": _obj(
                {
                    "clients": _INT,
                    "slow_disconnects": _INT,
                    "messages_dropped": _INT,
                    "queued_bytes": {**_INT, "description": "bytes waiting in every client's send queue"},
                    "subscriptions": {**_INT, "description": "subscriptions of every client"},
                }
            ),
            "events": {"type": "object"},
            "loop": _obj(
                {
                    "lag_max_seconds": {**_NUM, "description": "longest event-loop lag since the hub started"},
                    "lag_last_seconds": {**_NUM, "description": "the latest lag sample (every 50 ms)"},
                    "busy_max_seconds": {
                        **_NUM,
                        "description": "most CPU time the loop's thread used in one sample (the hub's own share)",
                    },
                }
            ),
            "plugins": {"type": "object"},
            "metrics": {"type": "object", "description": "every hub_ metric family"},
        }
    ),
}
