"""A reader of the serving copy is never blocked by a build and keeps a consistent view.

Two processes: a reader holds warehouse/serving.duckdb open (read-only) and queries it
in a loop, while the other runs `dbt build` on the warehouse and publishes a new copy.
The build and the publish succeed; the reader sees the same data on every read until it
reconnects, and then the new copy. A build that fails afterwards publishes nothing.

The builds are small (two and four days of 150 sessions, the models behind
fct_sessions): what is tested is the file handling, not the models.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from dbt_project import _TARGET, REPO, run_dbt

pytestmark = pytest.mark.dbt

HEADER = ("event_time,event_type,product_id,category_id,category_code,brand,price,"
          "user_id,user_session")
START = datetime(2019, 11, 1)
# The models behind fct_sessions, without their tests (the models' own test files run
# those): a real `dbt build`, kept small.
BUILD = ["build", "--select", "+fct_sessions", "--indirect-selection", "empty"]
PUBLISHED = ["--select", "fct_sessions"]

# The reader: one read-only connection, the same query again and again until told to
# stop, then a fresh connection. Prints one JSON line per phase.
READER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    import duckdb

    serving, stop = sys.argv[1], Path(sys.argv[2])
    SQL = ("select (select count(*) from fct_sessions), "
           "(select sum(hash(session_id, revenue))::hugeint::varchar from fct_sessions), "
           "(select any_value(publish_id) from serving_tables)")

    con = duckdb.connect(serving, read_only=True)
    print(json.dumps({"ready": con.sql(SQL).fetchall()[0]}), flush=True)
    seen, read_at = set(), []
    while not stop.exists():
        seen.add(con.sql(SQL).fetchall()[0])
        read_at.append(time.time())
        time.sleep(0.05)
    con.close()
    print(json.dumps({"old_connection": sorted(seen), "read_at": read_at}), flush=True)
    with duckdb.connect(serving, read_only=True) as fresh:
        print(json.dumps({"reconnected": fresh.sql(SQL).fetchall()[0]}), flush=True)
""")


def day_lines(day: int, sessions: int = 150) -> list[str]:
    """Seeded sessions of views, carts and purchases within one day."""
    rng = random.Random(day)
    lines = []
    for n in range(sessions):
        user = 530_000_000 + rng.randrange(sessions)
        at = START + timedelta(days=day, seconds=rng.randrange(70_000))
        for _ in range(rng.choice([1, 2, 4])):
            kind = rng.choices(["view", "cart", "purchase"], weights=[80, 12, 8])[0]
            product = 1_000_000 + rng.randrange(30)
            lines.append(f"{at:%Y-%m-%d %H:%M:%S} UTC,{kind},{product},"
                         f"2053013555631882655,electronics.smartphone,apple,"
                         f"{5 + product % 97:.2f},{user},s-{day}-{n}")
            at += timedelta(seconds=rng.choice([20, 300]))
    return lines


def write_day(raw: Path, day: int) -> None:
    path = raw / f"{START + timedelta(days=day):%Y-%m-%d}.csv"
    path.write_text("\n".join([HEADER, *day_lines(day)]) + "\n")


def publish(database: Path, serving: Path) -> subprocess.CompletedProcess:
    """`python -m ml.publish` in its own process, on the artefacts of the last dbt run."""
    return subprocess.run(
        [sys.executable, "-m", "ml.publish", "--database", str(database),
         "--serving", str(serving), "--exports", str(serving.parent / "exports"),
         "--target-path", str(_TARGET), *PUBLISHED],
        cwd=REPO, text=True, capture_output=True,
        env={**os.environ, "PYTHONPATH": str(REPO)})


def test_build_and_publish_while_a_reader_holds_the_serving_copy(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    database = tmp_path / "wh" / "wh.duckdb"
    database.parent.mkdir()
    serving = tmp_path / "serve" / "serving.duckdb"
    glob = raw / "*.csv"
    for day in (0, 1):
        write_day(raw, day)
    first = run_dbt(BUILD, database, glob)
    assert first.returncode == 0, first.stdout[-6000:]
    published = publish(database, serving)
    assert published.returncode == 0, published.stderr

    stop = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(serving), str(stop)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        before = json.loads(reader.stdout.readline())["ready"]

        # Process B: two more days arrive; build (incremental) and publish.
        for day in (2, 3):
            write_day(raw, day)
        started = time.time()
        second = run_dbt(BUILD, database, glob)
        assert second.returncode == 0, second.stdout[-6000:]
        republished = publish(database, serving)
        assert republished.returncode == 0, republished.stderr
        finished = time.time()
        assert reader.poll() is None, "the reader must still hold its connection"
        stop.touch()
        out, err = reader.communicate(timeout=60)
    finally:
        if reader.poll() is None:
            reader.kill()
    assert reader.returncode == 0, err
    phases = [json.loads(line) for line in out.splitlines()]
    old, after = phases[0], phases[1]["reconnected"]

    # The reader kept reading while B built and published, and always saw the copy it
    # had opened.
    during = [at for at in old["read_at"] if started <= at <= finished]
    assert len(during) >= 10, (len(old["read_at"]), finished - started)
    assert old["old_connection"] == [before]
    # A new connection sees the new copy: more sessions, another publish.
    assert after[0] > before[0] and after[1] != before[1] and after[2] != before[2]

    # A failing build afterwards publishes nothing; the copy stays as it was.
    inode = serving.stat().st_ino
    (raw / "2019-11-05.csv").write_text("not,the,rees46,header\n1,2,3,4\n")
    failed = run_dbt(BUILD, database, glob)
    assert failed.returncode != 0
    refused = publish(database, serving)
    assert refused.returncode == 1
    assert "nothing published" in refused.stderr and "did not succeed" in refused.stderr
    assert serving.stat().st_ino == inode
    assert os.readlink(serving.parent / "exports" / "current") == after[2]
