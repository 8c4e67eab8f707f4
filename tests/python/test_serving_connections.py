"""Every documented way to connect to the serving copy is read-only, cannot reach the
server's files and cannot change its configuration (issue: from Superset's SQL Lab,
`copy (select 1) to 'out.csv'` and `read_csv('/etc/hostname')` worked on a read-only
connection).

Each configuration that a Python process can open is run against a small serving-like
file: the helper ml.serving_connection.connect_serving, the dashboard's ServingDatabase,
the Superset engine parameters and the JDBC properties exactly as docs/serving.md spells
them, and the `serving` dbt target of profiles.yml through dbt-duckdb's own connection code.
`make test-bi` repeats the check through a real Superset (tests/bi/superset_check.py)."""
from __future__ import annotations

import ast
import hashlib
import json
import os
import re
from argparse import Namespace
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import duckdb
import pytest

from dashboard.queries import ServingDatabase
from dbt_project import REPO
from ml.serving_connection import SERVING_CONFIG, connect_serving

DOCS = (REPO / "docs" / "serving.md").read_text()
README = (REPO / "README.md").read_text()

FILE_ACCESS = "file system operations are disabled by configuration"
READ_ONLY = "attached in read-only mode"
LOCKED = "the configuration has been locked"
# The dbt target leaves enable_external_access settable (dbt-duckdb repeats it per cursor),
# and DuckDB never turns it back on while running.
NOT_BACK_ON = f"{LOCKED}|Cannot enable external access while database is running"


@dataclass
class Connection:
    """An open connection of one documented configuration and the catalog name under
    which it sees the serving copy."""
    cursor: Any
    catalog: str
    close: Callable[[], None]


def _docs_block(after: str, language: str) -> str:
    """The first fenced ```language block of docs/serving.md after the text `after`."""
    start = DOCS.index(after)
    match = re.compile(rf"```{language}\n(.*?)\n```", re.S).search(DOCS, start)
    assert match, (after, language)
    return match.group(1)


def superset_engine_parameters() -> dict[str, Any]:
    """Superset's Engine parameters as docs/serving.md gives them."""
    return json.loads(_docs_block("**Superset**", "json"))


def jdbc_properties() -> dict[str, str]:
    """The DBeaver driver properties table of docs/serving.md (Metabase's options are the
    same two settings plus its read-only switch, checked in test_docs_...)."""
    section = DOCS[DOCS.index("**DBeaver**"):]
    rows = re.findall(r"^\| `([\w.]+)` \| `(\w+)` \|$", section, re.M)
    return dict(rows)


# --- the configurations ----------------------------------------------------------------

def _helper(path: Path) -> Connection:
    con = connect_serving(path)
    return Connection(con, path.stem, con.close)


def _dashboard(path: Path) -> Connection:
    db = ServingDatabase(path)
    cursor = db.cursor()
    return Connection(cursor, path.stem, lambda: (cursor.close(), db.close()))


def _superset(path: Path) -> Connection:
    # duckdb-engine's Dialect.connect calls duckdb.connect(database, **connect_args),
    # with `config` passed through (tests/bi/superset_check.py runs the real thing).
    connect_args = superset_engine_parameters()["connect_args"]
    con = duckdb.connect(str(path), **connect_args)
    return Connection(con, path.stem, con.close)


def _jdbc(path: Path) -> Connection:
    # The DuckDB JDBC driver removes duckdb.read_only and passes every other property to
    # DuckDB as a setting, as a string.
    properties = jdbc_properties()
    read_only = properties.pop("duckdb.read_only") == "true"
    con = duckdb.connect(str(path), read_only=read_only, config=properties)
    return Connection(con, path.stem, con.close)


def _dbt_serving_target(path: Path) -> Connection:
    """The `serving` output of profiles.yml, rendered by dbt and opened by dbt-duckdb's
    LocalEnvironment (connect, attach, then per-cursor settings, as `dbt`/`mf` do)."""
    from dbt.adapters.duckdb.environments.local import LocalEnvironment
    from dbt.config.profile import Profile, read_profile
    from dbt.config.renderer import ProfileRenderer
    from dbt.flags import set_from_args
    from dbt_common.context import set_invocation_context

    set_from_args(Namespace(), None)
    set_invocation_context({**os.environ, "REES46_SERVING_DB": str(path),
                            "DUCKDB_PATH": "warehouse/ecommerce.duckdb"})
    profile = Profile.from_raw_profiles(read_profile(str(REPO)), "rees46",
                                        ProfileRenderer({}), target_override="serving")
    environment = LocalEnvironment(profile.credentials)
    first, second = environment.handle(), environment.handle()  # settings applied twice
    first.close()

    def close() -> None:
        second.close()
        environment.close()

    return Connection(second.cursor(), "ecommerce", close)


CONFIGURATIONS = {
    "python_helper": _helper,
    "dashboard": _dashboard,
    "superset_engine_parameters": _superset,
    "jdbc_properties": _jdbc,
    "dbt_serving_target": _dbt_serving_target,
}


# --- the serving-like file ------------------------------------------------------------

@pytest.fixture
def serving(tmp_path) -> Path:
    """A small read-only file shaped like the serving copy, in its own folder."""
    folder = tmp_path / "warehouse"
    folder.mkdir()
    path = folder / "serving.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("""
            create table fct_daily_trends as
            select date '2019-10-01' + i::int as trend_date, 100.0 * i as revenue,
                   i as orders
            from range(1, 11) as t(i)
        """)
        con.execute("create table dim_brands as select 'acme' as brand, 3 as products")
    path.chmod(0o444)
    return path


@pytest.fixture
def local_file(tmp_path) -> Path:
    """A file of the server that a BI user must not be able to read."""
    path = tmp_path / "server_secret.csv"
    path.write_text("secret\nhunter2\n")
    return path


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` with its sha256: proof that nothing was written."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(params=sorted(CONFIGURATIONS))
def connection(request, serving):
    opened = CONFIGURATIONS[request.param](serving)
    yield opened
    opened.close()


# --- what must be refused -------------------------------------------------------------

def _refused(tmp: Path, serving: Path, local_file: Path) -> dict[str, tuple[type, str]]:
    """statement template -> (DuckDB exception class, message fragment)."""
    return {
        f"copy (select 1 as x) to '{tmp / 'out.csv'}'":
            (duckdb.PermissionException, FILE_ACCESS),
        f"copy (select 1 as x) to '{tmp / 'out.parquet'}' (format parquet)":
            (duckdb.PermissionException, FILE_ACCESS),
        # Overwriting the published copy itself.
        f"copy {{db}}.main.fct_daily_trends to '{serving}' (format csv)":
            (duckdb.PermissionException, FILE_ACCESS),
        f"select * from read_csv('{local_file}')": (duckdb.PermissionException, FILE_ACCESS),
        f"select * from read_text('{local_file}')": (duckdb.PermissionException, FILE_ACCESS),
        f"select * from glob('{tmp}/*')": (duckdb.PermissionException, FILE_ACCESS),
        f"attach '{tmp / 'other.duckdb'}' as other": (duckdb.PermissionException, FILE_ACCESS),
        f"export database '{tmp / 'export'}'": (duckdb.PermissionException, FILE_ACCESS),
        "install httpfs": (duckdb.PermissionException, FILE_ACCESS),
        "load httpfs": (duckdb.PermissionException,
                        "Loading external extensions is disabled through configuration"),
        "set enable_external_access = true": (duckdb.InvalidInputException, NOT_BACK_ON),
        "reset enable_external_access": (duckdb.InvalidInputException, NOT_BACK_ON),
        "set lock_configuration = false": (duckdb.InvalidInputException, LOCKED),
        "set temp_directory = '/tmp'": (duckdb.InvalidInputException, LOCKED),
        "create table {db}.main.stolen as select 1 as x": (duckdb.InvalidInputException,
                                                           READ_ONLY),
        "insert into {db}.main.fct_daily_trends select * from {db}.main.fct_daily_trends":
            (duckdb.InvalidInputException, READ_ONLY),
        "drop table {db}.main.fct_daily_trends": (duckdb.InvalidInputException, READ_ONLY),
    }


def test_every_configuration_refuses_file_access_writes_and_set(connection, serving,
                                                                   local_file, tmp_path):
    before = _snapshot(tmp_path)
    refused = _refused(tmp_path, serving, local_file)
    for template, (error, message) in refused.items():
        statement = template.format(db=connection.catalog)
        with pytest.raises(error, match=message):
            connection.cursor.execute(statement).fetchall()
    assert _snapshot(tmp_path) == before  # no file written, the copy unchanged
    settings = dict(connection.cursor.execute(
        "select name, value from duckdb_settings() "
        "where name in ('enable_external_access', 'lock_configuration')").fetchall())
    assert settings == {"enable_external_access": "false", "lock_configuration": "true"}


def test_every_configuration_still_answers_the_marts(connection):
    db = connection.catalog
    rows = connection.cursor.execute(f"""
        select count(*), sum(revenue), min(trend_date)::varchar
        from {db}.main.fct_daily_trends
    """).fetchall()
    assert rows == [(10, 5500, "2019-10-02")]
    assert connection.cursor.execute(
        f"select brand, products from {db}.main.dim_brands").fetchall() == [("acme", 3)]


def test_only_the_copy_and_its_wal_names_stay_reachable(connection, serving):
    """DuckDB always allows a connection its own database file, the WAL names beside it
    and its temporary directory (docs/serving.md says the file mode protects those). If
    DuckDB ever widened this list, this test says so."""
    allowed_paths, allowed_directories = connection.cursor.execute(
        "select current_setting('allowed_paths'), current_setting('allowed_directories')"
    ).fetchall()[0]
    own = {str(serving.resolve())} | {f"{serving.resolve()}.wal{suffix}"
                                      for suffix in ("", ".recovery", ".checkpoint")}
    assert set(allowed_paths) <= own, allowed_paths
    assert all(d.rstrip("/").endswith(".tmp") for d in allowed_directories), (
        allowed_directories)


def test_the_hardening_cannot_be_overridden_by_extra_options(serving):
    with connect_serving(serving, {"enable_external_access": True,
                                   "lock_configuration": False, "threads": 1}) as con:
        assert con.execute("select current_setting('enable_external_access'), "
                           "current_setting('lock_configuration'), "
                           "current_setting('threads')").fetchall() == [(False, True, 1)]
    with pytest.raises(duckdb.IOException):
        connect_serving(serving.with_name("absent.duckdb"))


# --- the documentation and the code use only these settings ---------------------------

def test_docs_show_only_hardened_connections():
    assert superset_engine_parameters() == {"connect_args": {
        "read_only": True, "config": dict(SERVING_CONFIG)}}
    assert jdbc_properties() == {"duckdb.read_only": "true",
                                 "enable_external_access": "false",
                                 "lock_configuration": "true"}
    for text in (DOCS, README):
        # Every duckdb.connect of the serving copy carries the config; no URI relies on
        # ?access_mode alone; the CLI line has -safe and the lock.
        for call in re.findall(r"duckdb\.connect\([^)]*serving\.duckdb[^)]*\)", text, re.S):
            assert "enable_external_access" in call and "lock_configuration" in call, call
        assert "access_mode=read_only" not in text
        for cli in re.findall(r"duckdb -readonly[^`\n]*", text):
            assert "-safe" in cli and "lock_configuration = true" in cli, cli
    metabase = DOCS[DOCS.index("**Metabase**"):DOCS.index("**DBeaver**")]
    assert "enable_external_access=false&lock_configuration=true" in metabase
    assert "Establish a read-only connection" in metabase


def test_profiles_serving_target_is_hardened():
    import yaml
    serving = yaml.safe_load((REPO / "profiles.yml").read_text())["rees46"]["outputs"][
        "serving"]
    assert serving["attach"][0]["read_only"] is True
    assert serving["settings"]["enable_external_access"] is False
    assert serving["config_options"]["lock_configuration"] is True
    # What stays changeable under the lock: the settings dbt-duckdb repeats per cursor.
    assert sorted(serving["config_options"]["allowed_configs"]) == sorted(
        serving["settings"])
    assert "lock_configuration" not in serving["config_options"]["allowed_configs"]


def test_project_code_opens_the_serving_copy_only_through_the_helper():
    """No duckdb.connect(...) in dashboard/ or ml/ opens the serving copy except the
    publisher, which writes it."""
    offenders = []
    for path in [*(REPO / "dashboard").rglob("*.py"), *(REPO / "ml").rglob("*.py")]:
        if path.name in ("publish.py", "serving_connection.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "connect" and node.args
                    and "serving" in ast.unparse(node.args[0]).lower()):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not offenders
