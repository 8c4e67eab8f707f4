"""The one way to open the published serving copy (`python -m ml.publish` writes it).

Read-only is not enough for a file that analysts and BI tools query with their own SQL: a
read-only DuckDB connection still reads and writes other files (`COPY ... TO`, `read_csv`,
`ATTACH`, `INSTALL`/`LOAD`) as the user running the process. Every reader of the serving
copy therefore opens it with

- `read_only=True`: CREATE, INSERT, DROP on its tables are refused;
- `enable_external_access = false`: no file outside the database is read or written, no
  database attached, no extension installed or loaded from disk;
- `lock_configuration = true`: no `SET` afterwards, so a query cannot undo the above.

The same settings are documented for the DuckDB CLI, Superset, Metabase and DBeaver
(docs/serving.md) and used by the `serving` dbt target (profiles.yml);
tests/python/test_serving_connections.py checks each of them.

DuckDB itself still allows a connection to reach its own database file and the WAL names
beside it (`allowed_paths`): the copy is mode 0444, so a reader that is neither root nor
the owner of `warehouse/` cannot write there either.
"""
from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import duckdb

# The hardening every connection to the serving copy carries, besides read_only=True.
SERVING_CONFIG: Mapping[str, Any] = MappingProxyType({
    "enable_external_access": False,
    "lock_configuration": True,
})


def serving_config(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """DuckDB config for a serving-copy connection: `extra` options (e.g. `memory_limit`,
    `threads`) with SERVING_CONFIG on top, so `extra` cannot switch the hardening off."""
    return {**(extra or {}), **SERVING_CONFIG}


def connect_serving(path: str | Path,
                    config: Mapping[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the serving copy at `path` that cannot reach other files
    or change its configuration. `config` adds DuckDB options (see serving_config).

    Raises duckdb.IOException when `path` does not exist (read-only never creates it)."""
    return duckdb.connect(str(path), read_only=True, config=serving_config(config))
