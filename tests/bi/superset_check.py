"""A real BI client on the serving copy: Apache Superset 6.1.0 with duckdb-engine.

Run by `make test-bi` in its own venv (.venv-bi, tests/bi/requirements.txt), never by
`make install`. It

1. copies the published serving copy into a temporary folder (the swap below happens there,
   never in warehouse/);
2. initialises Superset on 127.0.0.1 with a throw-away SQLite metadata database and
   SECRET_KEY in that folder, and starts it;
3. logs in and creates the database through the REST API with the SQLAlchemy URI and the
   Engine parameters exactly as docs/serving.md gives them;
4. runs SQL Lab queries (POST /api/v1/sqllab/execute/) on two marts and compares them with
   DuckDB directly;
5. checks that COPY TO, read_csv of a server file, ATTACH, INSTALL/LOAD, SET and
   CREATE/INSERT/DROP are refused: first as documented (Allow DML off), then with Allow
   DML switched on, where nothing but DuckDB stands in the way, so its own error must come
   back, and that no file was written;
6. republishes (a new file renamed over the copy, as ml.publish does) while a long SQL Lab
   query runs: that query finishes on the old copy, the next one sees the new copy;
7. stops the server.

Exit status 0 when every check passed; the log says what was checked, with timings.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import duckdb
import requests

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "serving.md"
FILE_ACCESS = "file system operations are disabled by configuration"
READ_ONLY = "attached in read-only mode"
LOCKED = "the configuration has been locked"
START = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - START:6.1f}s] {message}", flush=True)


class CheckFailed(AssertionError):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)
    log(f"ok   {message}")


def documented_engine_parameters() -> dict[str, Any]:
    """The Superset Engine parameters of docs/serving.md (the first ```json block after
    **Superset**)."""
    text = DOCS.read_text()
    block = re.compile(r"```json\n(.*?)\n```", re.S).search(text, text.index("**Superset**"))
    return json.loads(block.group(1))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the serving copy in a temporary folder ------------------------------------------

def write_copy(source: Path, target: Path, generation: int) -> None:
    """`source` copied to `target` (mode 0444) with table bi_check_generation saying which
    publish it is, written beside and renamed over like ml.publish does."""
    temporary = target.with_name(f".{target.name}.{generation}.tmp")
    shutil.copyfile(source, temporary)
    temporary.chmod(0o644)
    with duckdb.connect(str(temporary)) as con:
        con.execute("create or replace table bi_check_generation as "
                    f"select {generation} as generation")
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    temporary.chmod(0o444)
    os.replace(temporary, target)


# --- Superset ---------------------------------------------------------------------------

SUPERSET_CONFIG = """\
SECRET_KEY = {secret!r}
SQLALCHEMY_DATABASE_URI = {metadata!r}
# A throw-away local instance: no Talisman/HTTPS headers, in-memory rate limits.
TALISMAN_ENABLED = False
RATELIMIT_STORAGE_URI = "memory://"
SQLLAB_TIMEOUT = 120
SUPERSET_WEBSERVER_TIMEOUT = 120
"""


@contextmanager
def superset_server(home: Path, port: int, bin_dir: Path) -> Iterator[str]:
    """Initialise a Superset instance in `home` and run it on 127.0.0.1:`port`."""
    config = home / "superset_config.py"
    config.write_text(SUPERSET_CONFIG.format(
        secret=secrets.token_hex(32), metadata=f"sqlite:///{home / 'superset.db'}"))
    env = {**os.environ, "SUPERSET_CONFIG_PATH": str(config), "FLASK_APP": "superset",
           "SUPERSET_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    superset = str(bin_dir / "superset")
    server_log = home / "server.log"

    def run(*args: str) -> None:
        started = time.monotonic()
        result = subprocess.run([superset, *args], env=env, cwd=home, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if result.returncode:
            print(result.stdout[-4000:])
            raise CheckFailed(f"superset {' '.join(args[:2])} failed")
        log(f"superset {' '.join(args[:2])} ({time.monotonic() - started:.0f} s)")

    run("db", "upgrade")
    run("fab", "create-admin", "--username", "admin", "--password", ADMIN_PASSWORD,
        "--firstname", "BI", "--lastname", "Check", "--email", "bi-check@example.invalid")
    run("init")
    with open(server_log, "w") as out:
        server = subprocess.Popen(
            [superset, "run", "-h", "127.0.0.1", "-p", str(port), "--with-threads"],
            env=env, cwd=home, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.get(f"{url}/health", timeout=5).ok:
                    break
            except requests.ConnectionError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                print(server_log.read_text()[-4000:])
                raise CheckFailed("Superset did not start")
            time.sleep(1)
        log(f"Superset up on {url} (pid {server.pid})")
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log(f"Superset stopped (exit {server.returncode})")


ADMIN_PASSWORD = secrets.token_urlsafe(16)


class Api:
    """Superset's REST API as the admin user (JWT plus CSRF token)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        token = self.http.post(f"{url}/api/v1/security/login", json={
            "username": "admin", "password": ADMIN_PASSWORD, "provider": "db",
            "refresh": False}, timeout=30).json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"
        csrf = self.http.get(f"{url}/api/v1/security/csrf_token/", timeout=30).json()
        self.http.headers["X-CSRFToken"] = csrf["result"]
        self.http.headers["Referer"] = url

    def post(self, path: str, payload: dict[str, Any]) -> requests.Response:
        return self.http.post(f"{self.url}{path}", json=payload, timeout=180)

    def put(self, path: str, payload: dict[str, Any]) -> requests.Response:
        return self.http.put(f"{self.url}{path}", json=payload, timeout=180)

    def sql(self, database_id: int, sql: str) -> tuple[bool, Any]:
        """Run `sql` in SQL Lab synchronously: (True, rows as lists) or (False, message)."""
        response = self.post("/api/v1/sqllab/execute/", {
            "database_id": database_id, "sql": sql, "schema": "main", "runAsync": False,
            "client_id": secrets.token_hex(5), "queryLimit": 10000, "tab": "bi check",
            "select_as_cta": False, "expand_data": False})
        body = response.json()
        if response.ok and body.get("status") == "success":
            names = [c["column_name"] for c in body["columns"]]
            return True, [[row[name] for name in names] for row in body["data"]]
        errors = body.get("errors") or [{"message": body.get("message", body)}]
        return False, " | ".join(str(e.get("message")) for e in errors)


# --- the checks ------------------------------------------------------------------------

MARTS = {
    "fct_daily_trends by month": """
        select strftime(trend_date, '%Y-%m') as month, count(*) as days,
               round(sum(revenue)::double, 2) as revenue, sum(orders) as orders
        from fct_daily_trends group by 1 order by 1
    """,
    "fct_customer_rfm by segment": """
        select segment, count(*) as buyers, round(sum(monetary_value)::double, 2) as monetary
        from fct_customer_rfm group by 1 order by 1
    """,
}


def refused_statements(tmp: Path, copy: Path) -> dict[str, str]:
    """statement -> DuckDB's message fragment."""
    return {
        f"copy (select 1 as x) to '{tmp / 'out.csv'}'": FILE_ACCESS,
        f"copy fct_daily_trends to '{copy}' (format csv)": FILE_ACCESS,
        "select * from read_csv('/etc/hostname')": FILE_ACCESS,
        f"select * from read_text('{tmp / 'superset_config.py'}')": FILE_ACCESS,
        f"attach '{tmp / 'other.duckdb'}' as other": FILE_ACCESS,
        "install httpfs": FILE_ACCESS,
        "load httpfs": "Loading external extensions is disabled",
        "set enable_external_access = true": LOCKED,
        "set lock_configuration = false": LOCKED,
        "create table stolen as select 1 as x": READ_ONLY,
        "insert into fct_daily_trends select * from fct_daily_trends": READ_ONLY,
        "drop table fct_daily_trends": READ_ONLY,
    }


def files_under(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")
            if p.is_file() and p.name not in ("superset.db", "server.log")
            and not p.name.startswith("superset.db-")}


def run_checks(api: Api, home: Path, copy: Path, source: Path) -> None:
    engine_parameters = documented_engine_parameters()
    check(engine_parameters["connect_args"]["config"] == {
        "enable_external_access": False, "lock_configuration": True}
        and engine_parameters["connect_args"]["read_only"] is True,
        f"docs/serving.md Engine parameters are hardened: {json.dumps(engine_parameters)}")
    uri = f"duckdb:///{copy}"
    response = api.post("/api/v1/database/", {
        "database_name": "rees46 serving copy", "sqlalchemy_uri": uri,
        "expose_in_sqllab": True, "allow_run_async": False, "allow_dml": False,
        "allow_file_upload": False,
        "extra": json.dumps({"engine_params": engine_parameters})})
    check(response.status_code == 201,
          f"database created through POST /api/v1/database/ ({response.status_code}), "
          f"URI {uri}")
    database_id = response.json()["id"]

    ok, rows = api.sql(database_id, "select current_setting('enable_external_access'), "
                                    "current_setting('lock_configuration')")
    check(ok and rows == [[False, True]],
          f"SQL Lab's connection has external access off and the lock on: {rows}")

    direct = duckdb.connect(str(copy), read_only=True, config=engine_parameters[
        "connect_args"]["config"])
    for name, sql in MARTS.items():
        ok, rows = api.sql(database_id, sql)
        expected = [list(row) for row in direct.execute(sql).fetchall()]
        check(ok and rows == expected and len(rows) > 0,
              f"SQL Lab {name}: {len(rows) if ok else rows} rows, equal to DuckDB directly")
    direct.close()

    before = files_under(home)
    statements = refused_statements(home, copy)
    for allow_dml in (False, True):
        if allow_dml:
            response = api.put(f"/api/v1/database/{database_id}", {"allow_dml": True})
            check(response.ok, "Allow DML switched on: only DuckDB stands in the way now")
        for statement, fragment in statements.items():
            ok, message = api.sql(database_id, statement)
            by_duckdb = fragment in str(message)
            if allow_dml:
                check(not ok and by_duckdb,
                      f"refused by DuckDB: {statement[:60]!r} -> {str(message)[:110]!r}")
            else:
                check(not ok, f"refused ({'DuckDB' if by_duckdb else 'Superset'}): "
                              f"{statement[:60]!r} -> {str(message)[:110]!r}")
    check(files_under(home) == before, "no file written or changed in the folder of the "
                                        "copy and Superset's home (no out.csv)")

    # Republish while a long query runs.
    long_sql = """
        select (select generation from bi_check_generation) as generation,
               count(*) as n
        from fct_sessions as s, range(60) as r(i)
        where (hash(s.session_id) + r.i) % 7 = 0
    """
    started = time.monotonic()
    with duckdb.connect(str(copy), read_only=True) as con:
        expected_n = con.execute(long_sql).fetchall()[0][1]
    log(f"the long query takes {time.monotonic() - started:.1f} s in DuckDB directly")
    result: dict[str, Any] = {}

    def long_query() -> None:
        result["ok"], result["rows"] = api.sql(database_id, long_sql)
        result["finished"] = time.monotonic()

    thread = threading.Thread(target=long_query)
    thread.start()
    time.sleep(1.0)
    write_copy(source, copy, generation=2)
    swapped = time.monotonic()
    log("republished: a new copy (generation 2) renamed over the served file")
    thread.join()
    check(result["ok"] and result["finished"] > swapped
          and result["rows"] == [[1, expected_n]],
          f"the query running during the publish finished "
          f"{result['finished'] - swapped:.1f} s after the swap on the old copy: "
          f"{result.get('rows')}")
    ok, rows = api.sql(database_id, "select generation from bi_check_generation")
    check(ok and rows == [[2]], f"the next query sees the new copy: {rows}")
    ok, rows = api.sql(database_id, f"copy (select 1 as x) to '{home / 'out.csv'}'")
    check(not ok and FILE_ACCESS in str(rows) and not (home / "out.csv").exists(),
          "the new copy is opened with the same hardening (COPY TO refused)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serving", type=Path, default=Path(os.environ.get(
        "REES46_SERVING_DB", REPO / "warehouse" / "serving.duckdb")))
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    if not args.serving.exists():
        print(f"No serving copy at {args.serving}: run `make demo` (or build and publish).")
        return 2
    home = Path(tempfile.mkdtemp(prefix="rees46-bi-check-"))
    log(f"Superset check in {home}, serving copy from {args.serving}")
    bin_dir = Path(sys.executable).parent
    try:
        source = home / "published.duckdb"
        shutil.copyfile(args.serving, source)
        copy = home / "warehouse" / "serving.duckdb"
        copy.parent.mkdir()
        write_copy(source, copy, generation=1)
        with superset_server(home, args.port or free_port(), bin_dir) as url:
            run_checks(Api(url), home, copy, source)
    except CheckFailed as failure:
        log(f"FAILED {failure}")
        return 1
    finally:
        if args.keep:
            log(f"kept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
    log("PASSED: Superset reads the hardened serving copy, cannot reach files, "
        "and follows a publish")
    return 0


if __name__ == "__main__":
    sys.exit(main())
