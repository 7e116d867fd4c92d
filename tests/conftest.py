"""Shared fixtures. PostgreSQL: ``pg_cluster`` (session), ``db_url`` and ``empty_db_url`` (per test)."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from tests.pg import PgCluster, SecretUrl  # noqa: E402

# ----------------------------------------------------------------------------- PostgreSQL

_TEMPLATE_DB = "catalyst_template"
_db_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A private PostgreSQL cluster for the whole session (tests may stop/start it; see ``db_url``)."""
    cluster = PgCluster().start()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def _pg_template(pg_cluster: PgCluster) -> str:
    """A database with every migration applied, copied for each test."""
    from catalyst.store import migrate

    migrate(pg_cluster.create_database(_TEMPLATE_DB))
    return _TEMPLATE_DB


def _fresh_db(cluster: PgCluster, template: str | None) -> Iterator[SecretUrl]:
    if not cluster.is_running:  # an earlier test stopped it and did not start it again
        cluster.start()
    name = f"test_{next(_db_numbers)}"
    url = cluster.create_database(name, template=template)
    try:
        yield url
    finally:
        if not cluster.is_running:
            cluster.start()
        cluster.drop_database(name)


@pytest.fixture
def db_url(pg_cluster: PgCluster, _pg_template: str) -> Iterator[SecretUrl]:
    """URL (catalyst_user, scram over 127.0.0.1) of a fresh, fully migrated database for this test."""
    yield from _fresh_db(pg_cluster, _pg_template)


@pytest.fixture
def empty_db_url(pg_cluster: PgCluster) -> Iterator[SecretUrl]:
    """URL of a fresh database with no migrations applied."""
    yield from _fresh_db(pg_cluster, None)
