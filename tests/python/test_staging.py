"""Raw-event staging: every raw line is kept, counted as a duplicate, or quarantined."""
from __future__ import annotations

import shutil
from decimal import Decimal
from collections import Counter
from pathlib import Path

import pytest

from dbt_project import REPO, build_staging, count_data_lines, query

pytestmark = pytest.mark.dbt

HEADER = ("event_time,event_type,product_id,category_id,category_code,brand,price,"
          "user_id,user_session")
GOOD = ("2019-10-01 00:00:{s:02d} UTC,view,1004{s:04d},2053013555631882655,"
        "electronics.smartphone,apple,{price},5412{s:05d},72d76fde-8bb3-4e00-8c23-a032dfed{s:04d}")


def good(second: int, price: str = "35.79") -> str:
    return GOOD.format(s=second, price=price)


# (line, reject stage, reject reason); None means the line is a valid event.
BAD_ROWS_CASES = [
    (good(1), None, None),
    (good(2).replace("2019-10-01 00:00:02 UTC", "2019-10-01 25:61:00 UTC"),
     "parse", "unparsable_event_time"),
    (good(3).replace("2019-10-01 00:00:03 UTC", "yesterday"), "parse", "unparsable_event_time"),
    (good(4).replace("10040004", "10O4x"), "parse", "unparsable_product_id"),
    (good(5, price="cheap"), "parse", "unparsable_price"),
    (good(6).replace("5412", "user-"), "parse", "unparsable_user_id"),
    (good(7).rsplit(",", 1)[0], "parse", "wrong_column_count"),
    (good(8) + ",extra", "parse", "wrong_column_count"),
    (good(9).replace(",view,", ",remove_from_cart,"), None, None),
    (good(10).replace(",view,", ",wishlist,"), "validate", "unknown_event_type"),
    (good(11).replace(",view,", ",,"), "validate", "missing_event_type"),
    (good(12, price="-3.50"), "validate", "negative_price"),
    (good(13, price="99999999.00"), "validate", "price_above_max_valid"),
    (good(14, price=""), "validate", "missing_price"),
    (good(15).replace("10040015", ""), "validate", "missing_product_id"),
    (good(16).replace("541200016", ""), "validate", "missing_user_id"),
    (good(17).rsplit(",", 1)[0] + ",", "validate", "missing_user_session"),
    (good(18).replace("2019-10-01", "1970-01-01"), "validate", "event_time_before_min_valid"),
    (good(19).replace("2019-10-01", "2999-01-01"), "validate", "event_time_in_future"),
    (good(20, price="0.00"), None, None),
    (good(21), None, None),
    (good(21), "duplicate", None),
    (good(21), "duplicate", None),
]


def test_real_slice_is_fully_accounted_for(tmp_path: Path) -> None:
    """All 17,434 lines of the real October slice parse; none is lost."""
    raw = REPO / "tests/fixtures/rees46/rees46_2019-Oct_first17434.csv"
    database = tmp_path / "wh.duckdb"
    result = build_staging(database, raw)
    assert result.returncode == 0, result.stdout

    [(kept, duplicates)] = query(
        database, "select count(*), sum(duplicate_count) from stg_rees46__events")
    [(rejected,)] = query(database, "select count(*) from stg_rees46__events_rejected")
    assert count_data_lines(raw) == 17_434
    assert kept + duplicates + rejected == 17_434
    assert rejected == 0
    [(parsed,)] = query(database, "select count(*) from base_rees46__events")
    assert parsed == 17_434
    # The slice's first line, typed.
    [row] = query(database, """
        select event_at, event_type, product_id, category_l1, category_l2, brand, price,
               user_id, raw_session_id
        from stg_rees46__events
        where product_id = 44600062 and user_id = 541312140
        order by event_at
        limit 1""")
    assert str(row[0]) == "2019-10-01 00:00:00"
    assert row[1:] == ("view", 44600062, None, None, "shiseido", Decimal("35.79"), 541312140,
                       "72d76fde-8bb3-4e00-8c23-a032dfed738c")


def test_each_kind_of_bad_row_is_quarantined_with_its_reason(tmp_path: Path) -> None:
    raw = tmp_path / "raw" / "bad_rows.csv"
    raw.parent.mkdir()
    raw.write_text("\n".join([HEADER] + [line for line, _, _ in BAD_ROWS_CASES]) + "\n")
    database = tmp_path / "wh.duckdb"
    result = build_staging(database, raw)
    assert result.returncode == 0, result.stdout

    expected_parse = {line_no: reason
                      for line_no, (_, stage, reason) in enumerate(BAD_ROWS_CASES, start=2)
                      if stage == "parse"}
    actual_parse = dict(query(database, """
        select source_line, reject_reason from stg_rees46__events_rejected
        where reject_stage = 'parse'"""))
    assert actual_parse == expected_parse

    expected_validate = Counter(reason for _, stage, reason in BAD_ROWS_CASES
                                if stage == "validate")
    actual_validate = Counter(reason for (reason,) in query(database, """
        select reject_reason from stg_rees46__events_rejected
        where reject_stage = 'validate'"""))
    assert actual_validate == expected_validate

    kept_expected = sum(1 for _, stage, _ in BAD_ROWS_CASES if stage is None)
    duplicates_expected = sum(1 for _, stage, _ in BAD_ROWS_CASES if stage == "duplicate")
    [(kept, duplicates)] = query(
        database, "select count(*), sum(duplicate_count) from stg_rees46__events")
    assert (kept, duplicates) == (kept_expected, duplicates_expected)
    [(read, audit_kept, audit_dup, audit_rej)] = query(database, """
        select rows_read, rows_kept, rows_duplicate, rows_rejected
        from stg_rees46__load_audit""")
    assert read == count_data_lines(raw) == len(BAD_ROWS_CASES)
    assert (audit_kept, audit_dup) == (kept_expected, duplicates_expected)
    assert audit_kept + audit_dup + audit_rej == read


def test_redelivered_file_adds_nothing(tmp_path: Path) -> None:
    """The same file delivered twice under two names: every line of the copy is a duplicate."""
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    source = REPO / "tests/fixtures/rees46/rees46_2019-Nov_first683.csv"
    shutil.copy(source, raw_dir / "2019-Nov-a.csv")
    shutil.copy(source, raw_dir / "2019-Nov-b.csv")
    database = tmp_path / "wh.duckdb"
    result = build_staging(database, raw_dir / "*.csv")
    assert result.returncode == 0, result.stdout

    audit = dict((Path(f).name, (kept, dup)) for f, kept, dup in query(
        database, "select source_file, rows_kept, rows_duplicate from stg_rees46__load_audit"))
    single_kept = audit["2019-Nov-a.csv"][0]
    assert audit["2019-Nov-b.csv"] == (0, 683)
    assert single_kept + audit["2019-Nov-a.csv"][1] == 683


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"2019-10-01 00:00:00 UTC,view,1,2,,,1.00,3,abc\n", "does not start with the REES46 header"),
    (b"time,type,product,category,code,brand,price,user,session\n", "does not start with the REES46 header"),
])
def test_unusable_file_stops_the_build_naming_it(tmp_path: Path, content: bytes,
                                                message: str) -> None:
    raw = tmp_path / "broken_file.csv"
    raw.write_bytes(content)
    result = build_staging(tmp_path / "wh.duckdb", raw)
    assert result.returncode != 0
    assert "broken_file.csv" in result.stdout and message in result.stdout


def test_no_matching_files_is_a_clear_error(tmp_path: Path) -> None:
    result = build_staging(tmp_path / "wh.duckdb", tmp_path / "nothing-here" / "*.csv")
    assert result.returncode != 0
    assert "No raw event files match" in result.stdout


def test_incremental_loads_equal_a_full_refresh(tmp_path: Path) -> None:
    """Files arriving one per run (a new file, a re-delivered copy, a bad file) give the
    same staged events, quarantine and audit as one full build of all of them."""
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    database = tmp_path / "wh.duckdb"
    november = REPO / "tests/fixtures/rees46/rees46_2019-Nov_first683.csv"
    lines = november.read_text().splitlines()
    batches = {
        "2019-11-01-a.csv": "\n".join(lines[:400]) + "\n",
        "2019-11-01-b.csv": "\n".join([lines[0]] + lines[300:]) + "\n",  # overlaps a
        "2019-11-01-c.csv": "\n".join([HEADER] + [line for line, stage, _ in BAD_ROWS_CASES
                                                  if stage != "duplicate"]) + "\n",
        "2019-11-01-d.csv": november.read_text(),  # a re-delivery of everything
    }
    for name, content in batches.items():
        (raw_dir / name).write_text(content)
        result = build_staging(database, raw_dir / "*.csv")
        assert result.returncode == 0, result.stdout

    snapshot_sql = {
        "events": "select * exclude (loaded_at) from stg_rees46__events order by event_id",
        "rejected": """select * exclude (loaded_at) from stg_rees46__events_rejected
                       order by source_file, source_line, reject_reason, raw_line""",
        "audit": "select * from stg_rees46__load_audit order by source_file",
    }
    incremental = {name: query(database, sql) for name, sql in snapshot_sql.items()}
    result = build_staging(database, raw_dir / "*.csv")  # a run with nothing new
    assert result.returncode == 0, result.stdout
    assert {name: query(database, sql) for name, sql in snapshot_sql.items()} == incremental

    full = tmp_path / "full" / "wh.duckdb"
    full.parent.mkdir()
    result = build_staging(full, raw_dir / "*.csv")
    assert result.returncode == 0, result.stdout
    assert {name: query(full, sql) for name, sql in snapshot_sql.items()} == incremental
    [(read, kept, duplicate, rejected)] = query(full, """
        select sum(rows_read), sum(rows_kept), sum(rows_duplicate), sum(rows_rejected)
        from stg_rees46__load_audit""")
    assert read == sum(count_data_lines(raw_dir / name) for name in batches)
    assert kept + duplicate + rejected == read
    assert duplicate >= 100 + 683  # the a/b overlap and the whole re-delivery
