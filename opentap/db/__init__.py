"""State in a real database: SQLAlchemy models, engine set-up and Alembic migrations."""
