"""The store: SQLite file, schema, and the one source of truth for runs (DESIGN §3, §10).

    open_store(path) -> Store       create/migrate the schema, then plain sqlite3
    Store.writer(run_id) -> RunWriter   the engine's event sink for one run

Importing this package must stay cheap: it never imports SQLModel or SQLAlchemy
unless the schema has to be created or migrated (``db.py``).
"""

from orchestrate.store.db import SCHEMA_VERSION
from orchestrate.store.store import Store, open_store
from orchestrate.store.writer import RunWriter

__all__ = ["SCHEMA_VERSION", "RunWriter", "Store", "open_store"]
