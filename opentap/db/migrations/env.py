"""Alembic environment: always run with the connection handed over by opentap.db.session.migrate."""

from alembic import context

from opentap.db.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
