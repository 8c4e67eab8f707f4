"""Raw-event staging: every raw line is kept, counted as a duplicate, or quarantined."""
from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from dbt_project import REPO, build_staging, count_data_lines, query

pytestmark = pytest.mark.dbt

CATALOGUE = REPO / "tests/fixtures/bad_input"
EXPECTED = yaml.safe_load((CATALOGUE / "expected.yml").read_text())


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


def test_bad_input_catalogue_rows_are_kept_counted_or_quarantined(tmp_path: Path) -> None:
    """Every fixture in tests/fixtures/bad_input/rows, loaded together: per file, the
    kept, duplicate and rejected lines (by reason, and by line where the reader rejects)
    are as expected.yml says, and they add up to the lines counted from the bytes."""
    database = tmp_path / "wh.duckdb"
    result = build_staging(database, CATALOGUE / "rows" / "*")
    assert result.returncode == 0, result.stdout

    audit = {Path(f).name: (read, kept, dup, rej) for f, read, kept, dup, rej in query(
        database, "select source_file, rows_read, rows_kept, rows_duplicate, rows_rejected"
                  " from stg_rees46__load_audit")}
    rejected: dict[str, dict[str, list]] = {}
    for source_file, reason, line in query(database, """
            select source_file, reject_reason, source_line
            from stg_rees46__events_rejected order by source_line"""):
        rejected.setdefault(Path(source_file).name, {}).setdefault(reason, []).append(line)

    assert len(EXPECTED["rows"]) >= 20
    for name, expected in EXPECTED["rows"].items():
        lines = count_data_lines(CATALOGUE / "rows" / name)
        read, kept, duplicates, n_rejected = audit.get(name, (0, 0, 0, 0))
        assert read == lines, name
        assert kept == expected["kept"], name
        assert duplicates == expected.get("duplicates", 0), name
        assert kept + duplicates + n_rejected == lines, name
        wanted = expected.get("rejected", {})
        got = rejected.get(name, {})
        assert set(got) == set(wanted), name
        for reason, spec in wanted.items():
            if isinstance(spec, list):  # reader rejections: exact line numbers
                assert got[reason] == spec, (name, reason)
            else:
                assert len(got[reason]) == spec, (name, reason)


@pytest.mark.parametrize("name", sorted(EXPECTED["files"]))
def test_bad_input_catalogue_unusable_files_stop_the_build(tmp_path: Path, name: str) -> None:
    """An unusable file fails the build with a message naming the file and the problem."""
    raw = tmp_path / name
    shutil.copy(CATALOGUE / "files" / name, raw)
    result = build_staging(tmp_path / "wh.duckdb", raw)
    assert result.returncode != 0
    assert name in result.stdout and EXPECTED["files"][name] in result.stdout


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
        "2019-11-01-c.csv": (CATALOGUE / "rows/unparsable_timestamp.csv").read_text()
        + (CATALOGUE / "rows/unknown_event_type.csv").read_text().split("\n", 1)[1],
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
