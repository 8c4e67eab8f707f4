"""Profile REES46-format event files (real or synthetic) and compare with the published figures.

    python -m ml.profile PATH [PATH ...] [--by-month] [--compare nov|oct] [--json]

PATHs are files or globs of .csv, .csv.gz or .parquet files with the REES46 columns. CSV is
read with explicit column types and the literal " UTC" timestamp suffix; parquet as is
(event_time TIMESTAMP WITH TIME ZONE is taken in UTC). Importable: `profile(paths)` returns
the statistics as a dict; `profile_by_month(paths)` one dict per calendar month.

Definitions (all on raw rows, duplicates included, unless stated):
  sessions                 distinct user_session values
  buyers                   distinct users with a purchase row
  purchasing_sessions_without_cart_share
                           sessions (by id) with a purchase row and no cart row, over
                           sessions with a purchase row
  duplicate_rows           rows minus distinct rows (rows compared through a 64-bit hash of
                           all nine columns; a collision is unlikely below ~1e9 rows)
  long_session_share       session ids whose last row is more than 24 h after the first
  top10pct_products_view_share
                           views of the 10% most viewed products over all views
  top_category_revenue_share
                           revenue (sum of purchase prices) of the top non-null
                           category_code over all revenue
  max_to_median_day_purchase_ratio
                           purchases on the busiest day over the median day
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable

import duckdb

from ml.published import ACCEPTANCE_KEYS, figures

CSV_COLUMNS = {
    "event_time": "VARCHAR", "event_type": "VARCHAR", "product_id": "BIGINT",
    "category_id": "BIGINT", "category_code": "VARCHAR", "brand": "VARCHAR",
    "price": "DOUBLE", "user_id": "BIGINT", "user_session": "VARCHAR",
}
COLUMNS = tuple(CSV_COLUMNS)

# profile key -> published key, where the names differ
PUBLISHED_ALIASES = {"max_to_median_day_purchase_ratio": "sale_day_ratio"}

ORDER = (
    "rows", "views", "carts", "purchases", "remove_from_cart",
    "view_share", "cart_share", "purchase_share",
    "users", "sessions", "products", "category_ids", "brands",
    "events_per_user", "sessions_per_user", "purchases_per_user", "events_per_session",
    "buyers", "buyer_share", "purchases_per_buyer",
    "null_category_code_share", "null_brand_share",
    "purchasing_sessions_without_cart_share",
    "duplicate_rows", "duplicate_share", "price_zero_rows", "negative_price_rows", "max_price",
    "products_with_multiple_prices", "multi_price_product_share",
    "shared_session_ids", "long_session_share",
    "peak_purchase_hour_utc", "top10pct_products_view_share",
    "top_category_code_by_revenue", "top_category_revenue_share",
    "max_to_median_day_purchase_ratio", "busiest_purchase_day",
    "first_event", "last_event", "days",
)


def expand(paths: Iterable[str | Path]) -> list[str]:
    """Files named by `paths` (globs expanded, sorted); raises if a pattern matches nothing."""
    out: list[str] = []
    for p in paths:
        p = str(p)
        hits = sorted(glob.glob(p)) if any(c in p for c in "*?[") else [p]
        hits = [h for h in hits if os.path.isfile(h)]
        if not hits:
            raise FileNotFoundError(f"no file matches {p}")
        out.extend(hits)
    return out


def _sql_list(files: list[str]) -> str:
    return "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"


def source_sql(files: list[str]) -> str:
    """SELECT over all files with uniform columns; event_time as naive UTC TIMESTAMP."""
    csv = [f for f in files if not f.endswith(".parquet")]
    pq = [f for f in files if f.endswith(".parquet")]
    parts = []
    if csv:
        cols = ", ".join(f"'{k}': '{v}'" for k, v in CSV_COLUMNS.items())
        parts.append(
            "select strptime(event_time, '%Y-%m-%d %H:%M:%S UTC') as event_time, "
            + ", ".join(COLUMNS[1:])
            + f" from read_csv({_sql_list(csv)}, header = true, delim = ',', quote = '\"', "
            f"columns = {{{cols}}}, auto_detect = false)")
    if pq:
        parts.append(
            "select timezone('UTC', event_time::timestamptz) as event_time, "
            "event_type::varchar as event_type, product_id::bigint as product_id, "
            "category_id::bigint as category_id, category_code::varchar as category_code, "
            "brand::varchar as brand, price::double as price, user_id::bigint as user_id, "
            f"user_session::varchar as user_session from read_parquet({_sql_list(pq)})")
    return " union all ".join(parts)


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, Any]:
    rel = con.execute(sql)
    names = [d[0] for d in rel.description]
    rows = rel.fetchall()  # fetch to the end: DuckDB 2 keeps a partial result pending
    return dict(zip(names, rows[0])) if rows else {}


def _stats(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, Any]:
    """All statistics of the rows of `table` (a table or view named in `con`)."""
    s = _one(con, f"""
        select count(*) as rows,
               count(*) filter (where event_type = 'view') as views,
               count(*) filter (where event_type = 'cart') as carts,
               count(*) filter (where event_type = 'purchase') as purchases,
               count(*) filter (where event_type = 'remove_from_cart') as remove_from_cart,
               count(distinct user_id) as users,
               count(distinct user_session) as sessions,
               count(distinct product_id) as products,
               count(distinct category_id) as category_ids,
               count(distinct brand) as brands,
               count(distinct user_id) filter (where event_type = 'purchase') as buyers,
               avg((category_code is null)::int) as null_category_code_share,
               avg((brand is null)::int) as null_brand_share,
               count(*) filter (where price = 0) as price_zero_rows,
               count(*) filter (where price < 0) as negative_price_rows,
               max(price) as max_price,
               min(event_time) as first_event, max(event_time) as last_event,
               count(distinct event_time::date) as days
        from {table}""")
    if not s.get("rows"):
        return {"rows": 0}
    s.update(_one(con, f"""
        select count(*) - count(distinct hash(event_time, event_type, product_id,
                   category_id, category_code, brand, price, user_id, user_session))
               as duplicate_rows
        from {table}"""))
    s.update(_one(con, f"""
        with per as (
            select user_session,
                   count(*) filter (where event_type = 'purchase') as p,
                   count(*) filter (where event_type = 'cart') as c,
                   count(distinct user_id) as u,
                   max(event_time) - min(event_time) > interval 24 hour as long_
            from {table} group by user_session)
        select count(*) filter (where p > 0 and c = 0)
                   / nullif(count(*) filter (where p > 0), 0)
                   as purchasing_sessions_without_cart_share,
               count(*) filter (where u > 1) as shared_session_ids,
               avg(long_::int) as long_session_share
        from per"""))
    s.update(_one(con, f"""
        select count(*) as products_with_multiple_prices from (
            select product_id from {table} group by product_id
            having count(distinct price) > 1)"""))
    s.update(_one(con, f"""
        select hour(event_time) as peak_purchase_hour_utc from {table}
        where event_type = 'purchase' group by 1 order by count(*) desc, 1 limit 1"""))
    s.update(_one(con, f"""
        with v as (select product_id, count(*) as n from {table}
                   where event_type = 'view' group by 1),
             r as (select n, row_number() over (order by n desc, product_id) as k,
                          count(*) over () as total from v)
        select sum(n) filter (where k <= ceil(total / 10.0)) / sum(n)
               as top10pct_products_view_share from r"""))
    s.update(_one(con, f"""
        with rev as (select category_code, sum(price) as revenue from {table}
                     where event_type = 'purchase' group by 1)
        select (select category_code from rev where category_code is not null
                order by revenue desc limit 1) as top_category_code_by_revenue,
               (select max(revenue) from rev where category_code is not null)
                   / nullif(sum(revenue), 0) as top_category_revenue_share
        from rev"""))
    s.update(_one(con, f"""
        with d as (select event_time::date as day, count(*) as n from {table}
                   where event_type = 'purchase' group by 1)
        select max(n) / median(n) as max_to_median_day_purchase_ratio,
               (select day::varchar from d order by n desc, day limit 1)
                   as busiest_purchase_day
        from d"""))
    rows, users = s["rows"], s["users"]
    s["view_share"] = s["views"] / rows
    s["cart_share"] = s["carts"] / rows
    s["purchase_share"] = s["purchases"] / rows
    s["events_per_user"] = rows / users if users else None
    s["sessions_per_user"] = s["sessions"] / users if users else None
    s["purchases_per_user"] = s["purchases"] / users if users else None
    s["events_per_session"] = rows / s["sessions"] if s["sessions"] else None
    s["buyer_share"] = s["buyers"] / users if users else None
    s["purchases_per_buyer"] = s["purchases"] / s["buyers"] if s["buyers"] else None
    s["duplicate_share"] = s["duplicate_rows"] / rows
    s["multi_price_product_share"] = (s["products_with_multiple_prices"] / s["products"]
                                      if s["products"] else None)
    for k in ("first_event", "last_event"):
        s[k] = str(s[k]) if s[k] is not None else None
    return {k: _plain(s.get(k)) for k in ORDER if k in s}


def _plain(v: Any) -> Any:
    """JSON-friendly scalar (DuckDB may return Decimal or numpy types)."""
    if v is None or isinstance(v, (str, bool)):
        return v
    if isinstance(v, int):
        return v
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    return int(f) if f.is_integer() and not isinstance(v, float) else f


class _Session:
    """A DuckDB connection with the events available as table/view `ev`.

    CSV input is loaded once into a temporary on-disk database (every statistic scans the
    data again, and decompressing gzip each time would dominate); parquet is scanned
    directly.
    """

    def __init__(self, paths: Iterable[str | Path]) -> None:
        files = expand(paths)
        self.tmp = None
        if all(f.endswith(".parquet") for f in files):
            self.con = duckdb.connect()
            self.con.execute(f"create view ev as {source_sql(files)}")
        else:
            self.tmp = tempfile.mkdtemp(prefix="profile_")
            self.con = duckdb.connect(os.path.join(self.tmp, "profile.duckdb"))
            self.con.execute(f"set temp_directory = '{self.tmp}'")
            self.con.execute("set preserve_insertion_order = false")
            self.con.execute(f"create table ev as {source_sql(files)}")

    def close(self) -> None:
        self.con.close()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "_Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def profile(paths: Iterable[str | Path]) -> dict[str, Any]:
    """Statistics of all rows of `paths` (files or globs), as a flat dict (see ORDER)."""
    with _Session(paths) as s:
        return _stats(s.con, "ev")


def profile_by_month(paths: Iterable[str | Path]) -> dict[str, dict[str, Any]]:
    """Statistics per calendar month of event_time, keyed "YYYY-MM"."""
    out = {}
    with _Session(paths) as s:
        months = [r[0] for r in s.con.execute(
            "select distinct strftime(event_time, '%Y-%m') from ev order by 1").fetchall()]
        for m in months:
            s.con.execute(f"create or replace temp view ev_m as select * from ev "
                          f"where strftime(event_time, '%Y-%m') = '{m}'")
            out[m] = _stats(s.con, "ev_m")
    return out


def compare(stats: dict[str, Any], month: str) -> dict[str, dict[str, Any]]:
    """Per statistic: ours, the published figure of `month` and the relative difference."""
    pub = figures(month)
    out = {}
    for k, v in stats.items():
        pk = PUBLISHED_ALIASES.get(k, k)
        p = pub.get(pk)
        rel = None
        if isinstance(v, (int, float)) and isinstance(p, (int, float)) and p:
            rel = (v - p) / p
        out[k] = {"value": v, "published": p, "rel_diff": rel,
                  "acceptance": pk in ACCEPTANCE_KEYS}
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if abs(v) >= 1000:
            return f"{v:,.2f}"
        return f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"
    return str(v)


def render_table(header: list[str], rows: list[list[str]]) -> str:
    """Aligned text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    def line(r):
        return "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
                         for i, c in enumerate(r))
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep] + [line(r) for r in rows])


def format_report(columns: dict[str, dict[str, Any]], compare_month: str | None) -> str:
    """Text report: one column per data column (overall or month), plus published figure and
    relative difference per column when comparing (acceptance figures marked with *)."""
    header = ["statistic"]
    for name in columns:
        header.append(name)
        if compare_month:
            header += [f"published {compare_month}", "rel diff"]
    keys = [k for k in ORDER if any(k in c for c in columns.values())]
    rows = []
    for k in keys:
        pk = PUBLISHED_ALIASES.get(k, k)
        label = k + (" *" if compare_month and pk in ACCEPTANCE_KEYS else "")
        row = [label]
        for stats in columns.values():
            v = stats.get(k)
            row.append(_fmt(v))
            if compare_month:
                c = compare({k: v}, compare_month)[k]
                row.append(_fmt(c["published"]))
                row.append("" if c["rel_diff"] is None else f"{c['rel_diff']:+.1%}")
        rows.append(row)
    out = render_table(header, rows)
    if compare_month:
        out += "\n* acceptance figure (must be within 10% of the published value)"
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ml.profile",
                                description="Profile REES46-format event files.")
    p.add_argument("paths", nargs="+", help="files or globs (.csv, .csv.gz, .parquet)")
    p.add_argument("--by-month", action="store_true", help="one column per calendar month")
    p.add_argument("--compare", choices=("nov", "oct"),
                   help="add the published figures of that month and relative differences")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    a = p.parse_args(argv)
    columns = profile_by_month(a.paths) if a.by_month else {"all": profile(a.paths)}
    if a.json:
        payload: dict[str, Any] = {"columns": columns}
        if a.compare:
            payload["compare"] = {name: compare(c, a.compare) for name, c in columns.items()}
            payload["compare_month"] = a.compare
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(format_report(columns, a.compare))
    return 0


if __name__ == "__main__":
    sys.exit(main())
