"""alembic revisions of the store schema (loaded by alembic, not imported): see orchestrate.store.migrations."""
