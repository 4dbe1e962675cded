"""The state store: SQLAlchemy 2 tables, Alembic migrations, and the repository over them."""

from compute.store.repository import Store
from compute.store.rows import TenantRecord

__all__ = ["Store", "TenantRecord"]
