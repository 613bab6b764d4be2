"""alembic's environment for the store: the SQLModel tables are the target schema.

``orchestrate.store.migrate`` passes the connection it has locked in
``config.attributes["connection"]``; without one (alembic's own commands, e.g.
autogenerating a revision) the URL is ``sqlalchemy.url``, else the workspace's store.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from orchestrate.store import tables

config = context.config
target_metadata = SQLModel.metadata


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Only the store's tables: alembic_version and tables other code registered are not ours."""
    if type_ == "table":
        return name in tables.TABLE_NAMES
    return True


def run_migrations(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # SQL functions the store's statements call (pg.py): CREATE OR REPLACE, so each
        # upgrade installs this version's definitions.
        from orchestrate.store.pg import FUNCTIONS

        for statement in FUNCTIONS:
            connection.execute(text(statement))
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_name=include_name,
        # SQLite cannot ALTER most things: alembic copies the table ("move and copy").
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def store_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    import os
    from pathlib import Path

    from orchestrate import settings

    location = settings.resolve(None, os.environ, Path.cwd()).store_location
    return location if isinstance(location, str) else f"sqlite:///{location}"


if context.is_offline_mode():
    context.configure(url=store_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (given := config.attributes.get("connection")) is not None:
    run_migrations(given)
else:
    engine = create_engine(store_url(), poolclass=pool.NullPool)
    with engine.begin() as connection:
        run_migrations(connection)
