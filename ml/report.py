"""Headline figures of a built warehouse: `python -m ml.report [--database PATH]`.

Opens the DuckDB file read-only, so it never holds the write lock a build needs.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import duckdb

DEFAULT_DATABASE = "warehouse/ecommerce.duckdb"

HEADLINE_SQL = """
with events as (
    select * from stg_rees46__events
),
audit as (
    select sum(rows_read) as rows_read, sum(rows_duplicate) as rows_duplicate,
           sum(rows_rejected) as rows_rejected, count(*) as files
    from stg_rees46__load_audit
)
select
    audit.files,
    audit.rows_read,
    count(*) as events_kept,
    audit.rows_duplicate,
    audit.rows_rejected,
    min(events.event_at) as first_event_at,
    max(events.event_at) as last_event_at,
    count(distinct events.user_id) as users,
    count(distinct events.user_id) filter (where events.event_type = 'purchase') as buyers,
    count(*) filter (where events.event_type = 'purchase') as purchases,
    sum(events.price) filter (where events.event_type = 'purchase') as revenue
from events
cross join audit
group by all
"""


def headline(database: Path) -> dict[str, object]:
    """The headline figures as a dict, read from the warehouse at `database`."""
    with duckdb.connect(str(database), read_only=True) as con:
        relation = con.sql(HEADLINE_SQL)
        return dict(zip(relation.columns, relation.fetchall()[0]))


def format_headline(database: Path, figures: dict[str, object]) -> str:
    """Human-readable lines for the terminal."""
    def n(key: str) -> str:
        return f"{figures[key]:,}"

    return "\n".join([
        f"Warehouse: {database.resolve()}",
        f"  raw lines read     {n('rows_read')} from {figures['files']} file(s)",
        f"  events kept        {n('events_kept')}  "
        f"(duplicates {n('rows_duplicate')}, rejected {n('rows_rejected')})",
        f"  period             {figures['first_event_at']} .. {figures['last_event_at']} UTC",
        f"  users / buyers     {n('users')} / {n('buyers')}",
        f"  purchases          {n('purchases')}",
        f"  revenue            ${figures['revenue']:,.2f}",
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", type=Path,
                        default=Path(os.environ.get("DUCKDB_PATH", DEFAULT_DATABASE)))
    args = parser.parse_args(argv)
    print(format_headline(args.database, headline(args.database)))


if __name__ == "__main__":
    main()
