"""One pass of DuckDB over every raw column: the physical-limit proxy of ratio (a).

Run as a fresh process: `python bench/raw_scan.py GLOB --memory-limit 8GB`. Prints one JSON
line: query_s (the query alone, after connecting), rows, groups. Threads are DuckDB's
default (all cores), as in the dbt profile, which sets only memory_limit.
"""
from __future__ import annotations

import argparse
import json
import time

import duckdb

CSV_COLUMNS = ("{'event_time': 'VARCHAR', 'event_type': 'VARCHAR', 'product_id': 'BIGINT', "
               "'category_id': 'BIGINT', 'category_code': 'VARCHAR', 'brand': 'VARCHAR', "
               "'price': 'DOUBLE', 'user_id': 'BIGINT', 'user_session': 'VARCHAR'}")


def scan_sql(glob: str) -> str:
    """The query: every raw column read and aggregated, grouped by event type."""
    if glob.endswith(".parquet"):
        source = f"read_parquet('{glob}')"
    else:
        source = f"read_csv('{glob}', header = true, columns = {CSV_COLUMNS})"
    return f"""
        select
            event_type,
            count(*) as rows,
            sum(price),
            max(event_time),
            sum(product_id),
            sum(category_id),
            count(category_code),
            count(brand),
            sum(user_id),
            max(user_session)
        from {source}
        group by 1
    """


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("glob")
    parser.add_argument("--memory-limit", default="8GB")
    args = parser.parse_args()
    con = duckdb.connect(":memory:", config={"memory_limit": args.memory_limit})
    start = time.perf_counter()
    groups = con.sql(scan_sql(args.glob)).fetchall()
    elapsed = time.perf_counter() - start
    print(json.dumps({"query_s": elapsed, "rows": sum(g[1] for g in groups),
                      "groups": len(groups),
                      "threads": con.sql("select current_setting('threads')").fetchall()[0][0]}))


if __name__ == "__main__":
    main()
