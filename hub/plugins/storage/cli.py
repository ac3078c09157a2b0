"""``hub db upgrade``: create or upgrade the database schema without starting the hub."""

from __future__ import annotations

import argparse
import sys

from sqlalchemy.exc import SQLAlchemyError

from hub import ROLE_CLI
from hub.core.bootstrap import build_hub

from .config import resolve_db_url
from .engine import create_engine
from .migrate import upgrade


async def db_upgrade(args: argparse.Namespace) -> int:
    """Upgrade the configured database to the newest schema; exit 1 with the reason if it is unreachable."""
    hub = build_hub(args.config, role=ROLE_CLI, plugins=args.plugins)
    url = resolve_db_url(hub.config["storage"]["db_url"], hub.data_dir)
    shown = url.render_as_string(hide_password=True)
    engine = create_engine(url)
    try:
        before, head = await upgrade(engine)
    except (SQLAlchemyError, OSError) as err:
        print(f"Cannot upgrade {shown}: {err}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    if before == head:
        print(f"{shown}: already at schema revision {head}")
    else:
        print(f"{shown}: upgraded schema from {before or 'empty'} to revision {head}")
    return 0
