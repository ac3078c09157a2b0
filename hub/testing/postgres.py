"""Scratch PostgreSQL databases: one per test (or benchmark run), so parallel runs never see each other's rows.

Imports asyncpg and SQLAlchemy, so the pytest plugin imports this module only
inside the fixture that needs it.
"""

from __future__ import annotations

import uuid

import asyncpg
from sqlalchemy.engine import URL, make_url

ScratchError = (OSError, asyncpg.PostgresError)
"""What creating a scratch database raises when the server is unreachable or refuses."""


async def create_scratch_database(server_url: str) -> str:
    """Create an empty database ``hub_test_<random>`` on the server of ``server_url``; returns its URL.

    Connects to the server's ``postgres`` database to do it.
    """
    url = make_url(server_url)
    name = f"hub_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(url.set(database="postgres")))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return url.set(database=name).render_as_string(hide_password=False)


async def drop_scratch_database(database_url: str) -> None:
    """Drop a database made by :func:`create_scratch_database`, disconnecting whoever still uses it."""
    url = make_url(database_url)
    admin = await asyncpg.connect(_asyncpg_dsn(url.set(database="postgres")))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    finally:
        await admin.close()


def display_url(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def _asyncpg_dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)
