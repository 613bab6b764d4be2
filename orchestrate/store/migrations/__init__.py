"""The store's schema history: an alembic environment (``env.py``, ``versions/``).

Revisions are numbered ``0001``, ``0002``...; ``HEAD`` names the newest, and its
number is what a SQLite file keeps in ``PRAGMA user_version`` so that opening an
up-to-date store reads one pragma (or, on PostgreSQL, one row of ``alembic_version``)
and imports neither alembic nor SQLAlchemy. ``orchestrate/store/migrate.py`` runs
them; ``tests/store/test_migrations.py`` proves that running every revision from an
empty database gives exactly the schema ``tables.py`` creates.

A schema change is: edit ``tables.py``, add ``versions/NNNN_what.py`` (autogenerate
it against a database at the current head, then review it), set ``HEAD`` to NNNN::

    from alembic import command
    from orchestrate.store.migrate import alembic_config
    command.revision(alembic_config("sqlite:///at-head.db"), "what", autogenerate=True, rev_id="0003")

Revisions 0001 and 0002 describe stores made before alembic (``user_version`` 1 and
2), which may hold any part of them, so they create with IF NOT EXISTS; later ones
are ordinary alembic revisions.
"""

HEAD = "0002"
