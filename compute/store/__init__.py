"""The state store: SQLAlchemy 2 tables, Alembic migrations, and the repository over them."""

from compute.store.repository import Store

__all__ = ["Store"]
