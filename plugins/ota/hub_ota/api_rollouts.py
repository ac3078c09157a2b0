"""``/api/ota/rollouts``: start a staged rollout, follow it (per node), pause, resume or cancel it.

Reads answer from the running engine for active rollouts (live counts) and from the database for the rest.
Changes need the running engine (one process at a time drives rollouts: the holder of the OTA lock); any other
process answers 503. Every change records who made it (``created_by``, and ``history`` entries ``{ts, action, by, detail}``).
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from aiohttp import web

from hub import InvalidTarget, current_actor
from hub.web import ApiError, Route, json_response, path_param, query_param, read_json, read_query

from .rollout_engine import RolloutEngine, RolloutRefused
from .rollout_model import CREATE_SCHEMA, NODE_STATUSES, ROLLOUT_STATUSES, SETTINGS, Rollout
from .rollout_run import InvalidTransition
from .rollout_store import RolloutStore
from .web import api, operation

ACTIONS = ("pause", "resume", "cancel")
LIST_QUERY = vol.Schema(
    {
        vol.Optional("status"): vol.In(ROLLOUT_STATUSES),
        vol.Optional("limit", default=100): vol.All(vol.Coerce(int), vol.Range(min=1, max=1000)),
    }
)

_NUMBER = {"type": "number"}
_NULL_NUMBER = {"type": "number", "nullable": True}
_NULL_STRING = {"type": "string", "nullable": True}
NODE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["node_id", "position", "status", "attempts", "detail"],
    "properties": {
        "node_id": {"type": "string"},
        "position": {"type": "integer", "nullable": True},
        "status": {"type": "string", "enum": list(NODE_STATUSES)},
        "attempts": {"type": "integer"},
        "command_id": _NULL_STRING,
        "from_version": _NULL_STRING,
        "deadline": _NULL_NUMBER,
        "retry_at": _NULL_NUMBER,
        "went_away": {"type": "boolean"},
        "started_at": _NULL_NUMBER,
        "finished_at": _NULL_NUMBER,
        "updated_at": _NULL_NUMBER,
        "detail": _NULL_STRING,
    },
}
SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "firmware", "version", "status", "stage", "stage_sizes", "counts", "total", "created_by"],
    "properties": {
        "id": {"type": "string"},
        "name": _NULL_STRING,
        "firmware": {"type": "string", "description": "the image's SHA-256"},
        "version": {"type": "string"},
        "target": {"type": "object"},
        "stages": {"type": "array", "items": {"type": "object"}},
        "stage": {"type": "integer", "description": "the current stage (0 first)"},
        "stage_sizes": {"type": "array", "items": {"type": "integer"}},
        **{key: {} for key in SETTINGS},
        "status": {"type": "string", "enum": list(ROLLOUT_STATUSES)},
        "reason": _NULL_STRING,
        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        "total": {"type": "integer"},
        "created_by": {"type": "string"},
        "created_at": _NUMBER,
        "updated_at": _NUMBER,
        "finished_at": _NULL_NUMBER,
        "history": {"type": "array", "items": {"type": "object"}},
    },
}
ROLLOUT_SCHEMA: dict[str, Any] = {
    **SUMMARY_SCHEMA,
    "required": [*SUMMARY_SCHEMA["required"], "nodes"],
    "properties": {**SUMMARY_SCHEMA["properties"], "nodes": {"type": "array", "items": NODE_SCHEMA}},
}
_STRINGS = {"type": "array", "items": {"type": "string"}}
CREATE_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["firmware", "target"],
    "properties": {
        "firmware": {"type": "string", "minLength": 1, "maxLength": 64, "description": "SHA-256 or version"},
        "target": {
            "type": "object",
            "minProperties": 1,
            "properties": {
                "nodes": _STRINGS,
                "tags": _STRINGS,
                "area": {"type": "string"},
                "not_version": {"type": "string"},
            },
            "additionalProperties": False,
        },
        "name": {"type": "string", "maxLength": 100},
        "stages": {
            "type": "array",
            "minItems": 1,
            "maxItems": 20,
            "description": "cumulative: a percentage, {percent: P} or {nodes: N}; the last is 100",
            "items": {
                "oneOf": [
                    {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": 100},
                    {
                        "type": "object",
                        "required": ["percent"],
                        "properties": {
                            "percent": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": 100}
                        },
                        "additionalProperties": False,
                    },
                    {
                        "type": "object",
                        "required": ["nodes"],
                        "properties": {"nodes": {"type": "integer", "minimum": 1}},
                        "additionalProperties": False,
                    },
                ]
            },
        },
        "max_failure_ratio": {"type": "number", "minimum": 0, "maximum": 1},
        "min_nodes_before_judging": {"type": "integer", "minimum": 1, "maximum": 100000},
        "rate": {
            "type": "number",
            "exclusiveMinimum": True,
            "minimum": 0,
            "maximum": 1000,
            "description": "nodes started per second",
        },
        "node_timeout": {"type": "number", "minimum": 1, "maximum": 604800},
        "retries": {"type": "integer", "minimum": 0, "maximum": 10},
        "retry_delay": {"type": "number", "minimum": 0, "maximum": 86400},
        "on_failure": {"type": "string", "enum": ["pause", "abort"]},
    },
    "additionalProperties": False,
}


class RolloutsApi:
    """The rollout routes of one hub; ``engine`` is None where rollouts do not run (no input taken)."""

    def __init__(self, store: RolloutStore, engine: RolloutEngine | None) -> None:
        self._store = store
        self._engine = engine

    def routes(self) -> list[Route]:
        rollout_id = path_param("rollout_id", "the rollout's id")
        routes = [
            Route(
                "POST",
                "/api/ota/rollouts",
                api(self.create),
                doc=operation(
                    "Start a staged rollout",
                    body=CREATE_BODY,
                    ok=ROLLOUT_SCHEMA,
                    status=201,
                    errors=(404, 409, 503),
                ),
            ),
            Route(
                "GET",
                "/api/ota/rollouts",
                api(self.list),
                doc=operation(
                    "List rollouts, newest first",
                    params=[
                        query_param(
                            "status", {"type": "string", "enum": list(ROLLOUT_STATUSES)}, "only in this status"
                        ),
                        query_param(
                            "limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "at most this many (100)"
                        ),
                    ],
                    ok={
                        "type": "object",
                        "required": ["rollouts"],
                        "properties": {"rollouts": {"type": "array", "items": SUMMARY_SCHEMA}},
                    },
                ),
            ),
            Route(
                "GET",
                "/api/ota/rollouts/{rollout_id}",
                api(self.get),
                doc=operation("A rollout with the progress of each node", params=[rollout_id], ok=ROLLOUT_SCHEMA),
            ),
        ]
        for action in ACTIONS:
            routes.append(
                Route(
                    "POST",
                    f"/api/ota/rollouts/{{rollout_id}}/{action}",
                    api(self._action(action)),
                    doc=operation(
                        f"{action.capitalize()} a rollout", params=[rollout_id], ok=SUMMARY_SCHEMA, errors=(409, 503)
                    ),
                )
            )
        return routes

    async def create(self, request: web.Request) -> web.Response:
        body = await read_json(request, CREATE_SCHEMA)
        engine = self._require_engine()
        try:
            rollout = await engine.create(body, current_actor() or "unknown")
        except InvalidTarget as err:  # as POST /api/commands answers: a listed node the hub does not know is a 404
            raise ApiError(
                f"target: {err}", status=404 if err.code == "node_not_found" else 400, code=err.code
            ) from None
        except RolloutRefused as err:
            raise ApiError(str(err), status=409, code=err.code) from None
        return json_response(rollout.as_dict(), status=201)

    async def list(self, request: web.Request) -> web.Response:
        params = read_query(request, LIST_QUERY)
        rows = []
        for rollout, counts, positioned in await self._store.list(params.get("status"), params["limit"]):
            run = self._engine.runs.get(rollout.id) if self._engine is not None else None
            if run is not None:
                rows.append(run.rollout.summary(dict(run.counts)))
            else:
                full = dict.fromkeys(NODE_STATUSES, 0) | counts
                rows.append(rollout.summary(full, total=sum(full.values()), positioned=positioned))
        return json_response({"rollouts": rows})

    async def get(self, request: web.Request) -> web.Response:
        read_query(request, vol.Schema({}))
        rollout_id = request.match_info["rollout_id"]
        rollout = self._live(rollout_id) or await self._stored(rollout_id)
        if rollout is None:
            raise ApiError(f"no rollout {rollout_id!r}", status=404, code="rollout_not_found")
        return json_response(rollout.as_dict())

    def _action(self, action: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            read_query(request, vol.Schema({}))
            rollout_id = request.match_info["rollout_id"]
            engine = self._require_engine()
            try:
                rollout = engine.act(rollout_id, action, current_actor() or "unknown")
            except InvalidTransition as err:
                raise ApiError(str(err), status=409, code="invalid_transition") from None
            if rollout is None:
                stored = await self._stored(rollout_id)
                if stored is None:
                    raise ApiError(f"no rollout {rollout_id!r}", status=404, code="rollout_not_found")
                raise ApiError(
                    f"rollout {rollout_id} is already {stored.status}", status=409, code="invalid_transition"
                )
            return json_response(
                rollout.summary(dict(engine.runs[rollout.id].counts))
                if rollout.id in engine.runs
                else rollout.summary()
            )

        handler.__name__ = action
        return handler

    def _require_engine(self) -> RolloutEngine:
        if self._engine is None or not self._engine.running:
            raise ApiError(
                "rollouts run in another hub process (the API instance holding the OTA lock), not here",
                status=503,
                code="rollouts_unavailable",
            )
        return self._engine

    async def _stored(self, rollout_id: str) -> Rollout | None:
        """The rollout from the database; None for an id that cannot be one (ids are 32 hex digits)."""
        return await self._store.get(rollout_id) if len(rollout_id) == 32 else None

    def _live(self, rollout_id: str) -> Rollout | None:
        run = self._engine.runs.get(rollout_id) if self._engine is not None else None
        return run.rollout if run is not None else None
