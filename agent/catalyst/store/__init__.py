"""PostgreSQL persistence for Catalyst (psycopg 3): connections, migrations and the repository.

Importing this package is cheap (no alpaca-py).
"""

from .db import MigrationError, StoreUnavailable, connect, migrate, ping, redact_url
from .repo import DuplicateOrder, Row, Store

__all__ = [
    "DuplicateOrder",
    "MigrationError",
    "Row",
    "Store",
    "StoreUnavailable",
    "connect",
    "migrate",
    "ping",
    "redact_url",
]
