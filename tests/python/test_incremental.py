"""Incremental behaviour marts: day-by-day batches equal a full refresh, row for row.

Raw files arrive one per day in a raw directory (REES46_EVENTS points at the directory
glob); the daily run (`dbt build --selector daily`, selectors.yml) follows each new file.
The data is generated here (seeded) and includes the edge cases the incremental logic
must survive:

- a session straddling midnight between two daily files;
- a late event delivered in a later day's file, within var incremental_lookback_hours,
  that bridges an inactivity gap and so merges two sessions into one;
- a raw session id shared by a second user only in a later file (re-flags the first
  user's session as re-split);
- an exact duplicate line re-delivered in a later file.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from dbt_project import run_dbt

pytestmark = pytest.mark.dbt

HEADER = ("event_time,event_type,product_id,category_id,category_code,brand,price,"
          "user_id,user_session")
START = datetime(2019, 11, 1)
DAYS = 4
# Every model of the behaviour part that is incremental or derived from one.
COMPARED_MODELS = [
    "int_events_sessionized",
    "fct_sessions",
    "fct_purchases",
    "fct_funnel_daily",
    "fct_product_funnel",
    "fct_daily_trends",
    "fct_hourly_trends",
    "fct_weekday_hour_heatmap",
]
SELECT = ["--select", "+tag:behaviour", "--indirect-selection", "cautious"]
DAILY = ["--selector", "daily"]
CATEGORIES = [(2053013555631882655, "electronics.smartphone"),
              (2053013554658804075, "electronics.audio.headphone"),
              (2053013563810775923, "appliances.kitchen.washer"),
              (2053013553341792533, None)]
BRANDS = ["apple", "samsung", "xiaomi", None]


def line(at: datetime, event_type: str, product: int, user: int, session: str,
         price: float | None = None) -> tuple[datetime, str]:
    """One raw csv line (with its event time, to route it into a daily file)."""
    category_id, code = CATEGORIES[product % len(CATEGORIES)]
    brand = BRANDS[product % len(BRANDS)]
    price = price if price is not None else round(10 + (product * 7.31) % 500, 2)
    text = (f"{at:%Y-%m-%d %H:%M:%S} UTC,{event_type},{product},{category_id},"
            f"{code or ''},{brand or ''},{price:.2f},{user},{session}")
    return at, text


def generate_events(seed: int = 7) -> tuple[list[tuple[datetime, str]], dict[int, list[str]]]:
    """Seeded random sessions over DAYS days, plus the planted edge cases.

    Returns the lines routed by event date, and extra lines delivered late: {day index:
    lines appended to that day's file although their event time is earlier}.
    """
    rng = random.Random(seed)
    lines: list[tuple[datetime, str]] = []
    for n in range(400):
        user = 500_000_000 + rng.randrange(150)
        session = f"sess-{n:05d}"
        at = START + timedelta(seconds=rng.randrange(DAYS * 86_400 - 7_200))
        for _ in range(rng.choice([1, 1, 2, 3, 5, 8])):
            product = 1_000_000 + rng.randrange(60)
            kind = rng.choices(["view", "cart", "purchase"], weights=[80, 10, 10])[0]
            lines.append(line(at, kind, product, user, session))
            # Mostly short gaps, sometimes one over the inactivity limit.
            at += timedelta(seconds=rng.choice([5, 60, 300, 900, 1_800, 2_400]))
    # A session straddling midnight between the day-1 and day-2 files.
    lines += [line(START + timedelta(hours=23, minutes=50), "view", 1_000_001, 7, "straddle"),
              line(START + timedelta(hours=23, minutes=55), "cart", 1_000_001, 7, "straddle"),
              line(START + timedelta(days=1, minutes=10), "purchase", 1_000_001, 7, "straddle")]
    # Two sessions 50 minutes apart on day 2; a late event between them arrives on day 3.
    lines += [line(START + timedelta(days=1, hours=10), "view", 1_000_002, 8, "late"),
              line(START + timedelta(days=1, hours=10, minutes=50), "purchase", 1_000_002, 8,
                   "late")]
    late = {2: [line(START + timedelta(days=1, hours=10, minutes=25), "cart", 1_000_002, 8,
                     "late")[1]]}
    # A raw id used by user 9 on day 1 and by user 10 only on day 3.
    lines += [line(START + timedelta(hours=12), "view", 1_000_003, 9, "shared"),
              line(START + timedelta(days=2, hours=12), "view", 1_000_003, 10, "shared")]
    # An exact duplicate of a day-1 purchase re-delivered with day 4.
    duplicate = line(START + timedelta(hours=5), "purchase", 1_000_004, 11, "dup")
    lines.append(duplicate)
    late[3] = [duplicate[1]]
    return lines, late


def write_day_files(raw_dir: Path) -> list[Path]:
    lines, late = generate_events()
    files = []
    for day in range(DAYS):
        date = (START + timedelta(days=day)).date()
        day_lines = sorted(text for at, text in lines if at.date() == date)
        day_lines += late.get(day, [])
        path = raw_dir / f"events_{date:%Y-%m-%d}.csv"
        path.write_text("\n".join([HEADER, *day_lines]) + "\n")
        files.append(path)
    return files


def rows_differing(incremental: Path, full: Path, model: str) -> int:
    """Rows in one build's model and not in the other's (both directions, as multisets)."""
    with duckdb.connect() as con:
        con.execute(f"attach '{incremental}' as inc (read_only)")
        con.execute(f"attach '{full}' as full_build (read_only)")
        [(count,)] = con.sql(f"""
            select count(*) from (
                (select * from inc.main.{model}
                 except all select * from full_build.main.{model})
                union all
                (select * from full_build.main.{model}
                 except all select * from inc.main.{model})
            )""").fetchall()
    return count


def test_daily_batches_equal_a_full_refresh(tmp_path: Path) -> None:
    staged = tmp_path / "all_days"
    staged.mkdir()
    files = write_day_files(staged)
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    glob = raw_dir / "*.csv"

    incremental_db = tmp_path / "incremental" / "wh.duckdb"
    incremental_db.parent.mkdir()
    for number, path in enumerate(files, start=1):
        (raw_dir / path.name).write_bytes(path.read_bytes())
        command = "build" if number in (1, len(files)) else "run"
        result = run_dbt([command, *DAILY], incremental_db, glob)
        assert result.returncode == 0, f"batch {number}\n{result.stdout[-5000:]}"
        if number > 1:
            # The batches really ran incrementally (delete+insert), not as rebuilds.
            assert "incremental model main.fct_sessions" in result.stdout

    full_db = tmp_path / "full" / "wh.duckdb"
    full_db.parent.mkdir()
    result = run_dbt(["build", *SELECT, "--full-refresh"], full_db, glob)
    assert result.returncode == 0, result.stdout[-5000:]

    for model in COMPARED_MODELS:
        assert rows_differing(incremental_db, full_db, model) == 0, model

    with duckdb.connect(str(incremental_db), read_only=True) as con:
        def sessions_of(raw_session_id: str) -> list[tuple]:
            return con.sql(f"""
                select user_id, events, has_cart, has_purchase, is_resplit, session_date
                from fct_sessions where raw_session_id = '{raw_session_id}'
                order by user_id, session_started_at""").fetchall()

        # Straddling midnight: one session, dated by its start, with its purchase.
        [(_, events, has_cart, has_purchase, _, started)] = sessions_of("straddle")
        assert (events, has_cart, has_purchase, str(started)) == (3, True, True, "2019-11-01")
        # The late cart bridged the 50-minute gap: one session of three events.
        assert [row[1:4] for row in sessions_of("late")] == [(3, True, True)]
        # The raw id shared later re-flags the first user's session too.
        assert [(row[0], row[4]) for row in sessions_of("shared")] == [(9, True), (10, True)]
        # The re-delivered duplicate purchase adds no revenue.
        [(purchases,)] = con.sql(
            "select count(*) from fct_purchases where raw_session_id = 'dup'").fetchall()
        assert purchases == 1
