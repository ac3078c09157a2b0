"""``hub db upgrade`` and ``hub db revision``: migrate the database, or write a new revision file, without starting
the hub."""

from __future__ import annotations

import argparse
import sys

from alembic import command
from alembic.util import CommandError
from sqlalchemy.exc import SQLAlchemyError

from hub import ROLE_CLI, MigrationError, build_hub

from .config import resolve_db_url
from .engine import create_engine
from .migrate import CORE, Migrations, alembic_config, upgrade, upgrade_plugins
from .owners import collect


async def db_upgrade(args: argparse.Namespace) -> int:
    """Upgrade the core schema, then every loaded plugin's tables; exit 1 with the reason if that fails."""
    hub = build_hub(args.config, role=ROLE_CLI, plugins=args.plugins)
    url = resolve_db_url(hub.config["storage"]["db_url"], hub.data_dir)
    shown = url.render_as_string(hide_password=True)
    owners = collect(args.plugins)
    engine = create_engine(url)
    try:
        before, head = await upgrade(engine)
        print(f"{shown}: {_outcome('schema', before, head)}")
        for name, before, head in await upgrade_plugins(engine, owners):
            print(f"{shown}: {name}: {_outcome('tables', before, head)}")
    except (SQLAlchemyError, OSError, MigrationError) as err:
        print(f"Cannot upgrade {shown}: {err}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    return 0


def add_revision_arguments(parser: argparse.ArgumentParser) -> None:
    """``hub db revision``'s options."""
    parser.add_argument(
        "--plugin",
        required=True,
        metavar="NAME",
        help="whose revision: a name registered through hub_db_migrations (storage: the core schema)",
    )
    parser.add_argument("-m", "--message", required=True, help="what the revision does, e.g. 'add pings'")
    parser.add_argument(
        "--autogenerate",
        action="store_true",
        help="fill it in by comparing the plugin's metadata with the configured database (upgrade it first)",
    )


async def db_revision(args: argparse.Namespace) -> int:
    """Write a new revision file into a plugin's migrations folder, after its newest revision."""
    owners = {migrations.name: migrations for migrations in (CORE, *collect(args.plugins))}
    migrations = owners.get(args.plugin)
    if migrations is None:
        print(f"No migrations named {args.plugin!r}; registered: {', '.join(sorted(owners))}", file=sys.stderr)
        return 1
    try:
        if args.autogenerate:
            script = await _autogenerate(args, migrations)
        else:
            script = command.revision(alembic_config(migrations), message=args.message)
    except (CommandError, SQLAlchemyError, OSError, MigrationError) as err:
        print(f"Cannot write a revision of {migrations.name}: {err}", file=sys.stderr)
        return 1
    print(f"Wrote {script.path}")  # type: ignore[union-attr]  # one revision, never a list without branches
    return 0


async def _autogenerate(args: argparse.Namespace, migrations: Migrations):
    if migrations.metadata is None:
        raise MigrationError(f"{migrations.name} registered no metadata: register(name, directory, metadata)")
    hub = build_hub(args.config, role=ROLE_CLI, plugins=args.plugins)
    engine = create_engine(resolve_db_url(hub.config["storage"]["db_url"], hub.data_dir))
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync_conn: command.revision(
                    alembic_config(migrations, sync_conn), message=args.message, autogenerate=True
                )
            )
    finally:
        await engine.dispose()


def _outcome(what: str, before: str | None, head: str | None) -> str:
    if head is None:
        return f"no {what} revisions"
    if before == head:
        return f"already at {what} revision {head}"
    return f"upgraded {what} from {before or 'empty'} to revision {head}"
