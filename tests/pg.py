"""The tests' PostgreSQL lives in the simulator package (the demo uses it too); re-exported here."""

from catalyst_sim.localpg import PgCluster, PgUnavailableError, SecretUrl, find_pg_bin

__all__ = ["PgCluster", "PgUnavailableError", "SecretUrl", "find_pg_bin"]
