"""The ``storage:`` section of config.yaml and how its database URL is understood.

Every option has a default, so a hobbyist's config can leave the section out
and get SQLite in ``<hub.data_dir>/hub.db``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import voluptuous as vol
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

SQLITE_DRIVER = "sqlite+aiosqlite"
POSTGRES_DRIVER = "postgresql+asyncpg"
DEFAULT_DB_FILE = "hub.db"

_DRIVERS = {
    "sqlite": SQLITE_DRIVER,
    SQLITE_DRIVER: SQLITE_DRIVER,
    "postgresql": POSTGRES_DRIVER,
    "postgres": POSTGRES_DRIVER,
    POSTGRES_DRIVER: POSTGRES_DRIVER,
}


def db_url(value: Any) -> str | None:
    """Validate a database URL and rewrite it to the async driver the hub uses (None: the default SQLite file).

    ``sqlite:///path`` becomes ``sqlite+aiosqlite:///path`` and ``postgresql://…``
    (or ``postgres://…``) becomes ``postgresql+asyncpg://…``; anything else is an
    error that says what is accepted.
    """
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise vol.Invalid("expected a database URL such as sqlite:///hub.db or postgresql://user@host/hub")
    try:
        url = make_url(value.strip())
    except ArgumentError:
        raise vol.Invalid(
            "not a database URL (expected sqlite:///path/to/hub.db or postgresql://user@host/db)"
        ) from None
    driver = _DRIVERS.get(url.drivername)
    if driver is None:
        raise vol.Invalid(
            f"unsupported database {url.drivername!r}: use sqlite:///path/to/hub.db (aiosqlite) "
            "or postgresql://user@host:5432/db (asyncpg)"
        )
    if driver == SQLITE_DRIVER and (not url.database or url.database == ":memory:" or url.database.startswith("file:")):
        raise vol.Invalid(
            "in-memory SQLite is not supported (the writer and readers use separate connections): give a file path"
        )
    if driver == POSTGRES_DRIVER and not url.database:
        raise vol.Invalid("a PostgreSQL URL needs a database name, e.g. postgresql://user@host:5432/hub")
    return url.set(drivername=driver).render_as_string(hide_password=False)


DEFAULT_MAX_PENDING = 100_000
"""Readings held at most by default (about 60 MB).

Sized well above what a broker's in-flight window should allow: the window is
the real bound, but measured here Mosquitto 2.0.11 let more than three times a
subscriber's MQTT 5 receive-maximum be in flight once acknowledgements flow, and
every refused reading costs the transport a reconnect and a redelivery.
"""


def _max_pending_default(section: dict[str, Any]) -> dict[str, Any]:
    if section["max_pending"] is None:
        section["max_pending"] = max(DEFAULT_MAX_PENDING, 4 * section["batch_size"])
    elif section["max_pending"] < section["batch_size"]:
        raise vol.Invalid("max_pending must be at least batch_size", path=["max_pending"])
    return section


CONFIG_SCHEMA = vol.All(
    vol.Schema(
        {
            vol.Optional(
                "db_url",
                default=None,
                description="Database URL. Default: SQLite at <hub.data_dir>/hub.db. A relative SQLite path is "
                "relative to hub.data_dir. PostgreSQL: postgresql://user:pass@host:5432/db (uses asyncpg).",
            ): db_url,
            vol.Optional(
                "batch_size",
                default=5000,
                description="Flush a batch as soon as it holds this many messages.",
            ): vol.All(int, vol.Range(min=1, max=100_000)),
            vol.Optional(
                "flush_interval",
                default=0.05,
                description="Flush a batch at the latest this many seconds after its first message; this is the "
                "added latency before a broker acknowledgement.",
            ): vol.All(vol.Coerce(float), vol.Range(min=0.001, max=10)),
            vol.Optional(
                "max_pending",
                default=None,
                description="Most readings held in memory (open batch plus the one being written), default "
                "100000 (or 4 x batch_size if larger). From half of it (or 8 x batch_size if smaller) on, the "
                "transports stop reading input until storage has caught up, so the broker keeps the rest; beyond "
                "it new readings are refused and their acknowledgement withheld, so the broker redelivers them later.",
            ): vol.Any(None, vol.All(int, vol.Range(min=1))),
            vol.Optional(
                "keep_days",
                default=30,
                description="Delete telemetry and status history older than this many days; 0 keeps everything.",
            ): vol.All(vol.Coerce(float), vol.Range(min=0)),
            vol.Optional(
                "purge_interval",
                default=3600,
                description="Seconds between background retention runs.",
            ): vol.All(vol.Coerce(float), vol.Range(min=1)),
            vol.Optional(
                "purge_chunk",
                default=5000,
                description="Rows deleted per short retention transaction, so ingest never waits long.",
            ): vol.All(int, vol.Range(min=100, max=100_000)),
            vol.Optional(
                "partition_days_ahead",
                default=3,
                description="PostgreSQL: make the daily telemetry partitions (and the rollups') this many days "
                "ahead, at start and hourly. Rows with a time no partition covers go to a default partition.",
            ): vol.All(int, vol.Range(min=1, max=60)),
            vol.Optional(
                "rollup_interval",
                default=60,
                description="PostgreSQL: seconds a writer accumulates its rollup deltas in memory (an epoch) and seconds "
                "between two folds of the written deltas into the 1-minute and 1-hour rollups: history charts from "
                "rollups lag behind by up to twice this. Each epoch writes, and each fold upserts, one row per node, "
                "key and bucket it touches, so in a large fleet a short interval costs the database per message.",
            ): vol.All(vol.Coerce(float), vol.Range(min=0.1, max=3600)),
            vol.Optional(
                "rollup_keep_days",
                default=400,
                description="PostgreSQL: keep the 1-hour rollups this many days (the 1-minute ones follow "
                "keep_days); 0 keeps them forever.",
            ): vol.All(vol.Coerce(float), vol.Range(min=0)),
            vol.Optional(
                "shutdown_timeout",
                default=20,
                description="Seconds the final flush at shutdown may keep retrying a failing database before "
                "giving up (unacknowledged messages are then redelivered by the broker).",
            ): vol.All(vol.Coerce(float), vol.Range(min=0, max=600)),
        }
    ),
    _max_pending_default,
)
"""The ``storage:`` section."""


def resolve_db_url(configured: str | None, data_dir: Path) -> URL:
    """The URL to connect to: the configured one, with SQLite paths made absolute under ``data_dir``."""
    if configured is None:
        return make_url(f"{SQLITE_DRIVER}:///{data_dir / DEFAULT_DB_FILE}")
    url = make_url(configured)
    if url.drivername == SQLITE_DRIVER and url.database and not Path(url.database).is_absolute():
        url = url.set(database=str(data_dir / url.database))
    return url
