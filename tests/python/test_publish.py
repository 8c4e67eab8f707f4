"""The serving copy (ml/publish.py): what is public, when it refuses, pseudonymisation.

The first tests need no dbt: a hand-made warehouse file and the parts of dbt's
manifest.json / run_results.json the publisher reads. Those on `synth_warehouse` publish
the real project's build; tests/python/test_publish_concurrency.py runs a build and a
reader in two processes.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from dbt_project import REPO
from ml.report import format_serving, serving_status

from ml.publish import (
    CATALOG_TABLE, PublishError, check_build, column_expression, prune_exports, pseudonym,
    public_tables, publish, registry_inputs, salt_from_env,
)

SALT = "test-salt-0123456789abcdef"


# --- a hand-made warehouse and dbt artefacts ----------------------------------------------

def model(name: str, *, serve: bool | None = True, folder: str = "marts",
          materialized: str = "table", tags: tuple[str, ...] = (),
          columns: dict | None = None, macros: tuple[str, ...] = (),
          refs: tuple[str, ...] = ()) -> tuple[str, dict]:
    """One model node of a manifest, as dbt writes it (only the fields publish reads)."""
    meta = {} if serve is None else {"serve": serve}
    return f"model.rees46.{name}", {
        "resource_type": "model", "name": name, "alias": name, "schema": "main",
        "database": "wh", "description": f"{name} description",
        "original_file_path": f"models/{folder}/{name}.sql",
        "config": {"materialized": materialized, "meta": meta, "tags": list(tags)},
        "meta": meta, "tags": list(tags), "columns": columns or {},
        "depends_on": {"macros": list(macros),
                       "nodes": [f"model.rees46.{ref}" for ref in refs]},
    }


def manifest_of(*models: tuple[str, dict]) -> dict:
    nodes = dict(models)
    child_map: dict[str, list[str]] = {uid: [] for uid in nodes}
    for uid, node in nodes.items():
        for parent in node["depends_on"]["nodes"]:
            child_map.setdefault(parent, []).append(uid)
    return {"nodes": nodes, "child_map": child_map}


def run_results_of(manifest: dict, status: dict[str, str] | None = None,
                   which: str = "build") -> dict:
    """A run_results.json in which every node of `manifest` ran, with `status` overrides."""
    status = status or {}
    return {
        "metadata": {"invocation_id": "0123456789abcdef", "generated_at": "2026-01-01"},
        "args": {"which": which},
        "results": [{"unique_id": uid, "status": status.get(uid, "success")}
                    for uid in manifest["nodes"]],
    }


USER_COLUMNS = {"user_id": {"tags": ["pii"], "meta": {}}}
MANIFEST = manifest_of(
    model("dim_customers", columns={**USER_COLUMNS,
                                    "secret_note": {"meta": {"serve": False}}}),
    model("fct_sessions", columns=USER_COLUMNS),
    model("fct_purchases", refs=("fct_sessions",)),
    model("ml_churn__training", folder="ml/churn", columns={"model_artifact": {}}),
    model("ml_churn_scores", folder="ml/churn", tags=("ml",), refs=("ml_churn__training",),
          columns=USER_COLUMNS),
    model("ml_model_runs", folder="ml/registry", tags=("ml",),
          macros=("macro.rees46.ml_training_runs",), refs=("ml_churn__training",)),
    model("rpt_churn_review", refs=("ml_churn_scores",)),
    model("int_customers_aggregated", serve=None, folder="intermediate"),
    model("dim_internal", serve=False),
)


def make_warehouse(path: Path, users: list[int], sessions_per_user: int = 2) -> Path:
    """A DuckDB file with the relations MANIFEST names, like a build would leave them."""
    with duckdb.connect(str(path)) as con:
        con.execute("create table dim_customers (user_id bigint, orders integer, "
                    "secret_note varchar)")
        con.executemany("insert into dim_customers values (?, ?, 'do not publish')",
                        [[user, user % 5] for user in users] + [[None, 0]])
        con.execute("comment on table dim_customers is 'one row per user'")
        con.execute("comment on column dim_customers.orders is 'orders placed'")
        # session_id is an md5 over the user id, as int_events_sessionized makes it.
        con.execute("create table fct_sessions as select user_id, n as session_number, "
                    "md5(user_id || '|' || n) as session_id "
                    f"from dim_customers, range({sessions_per_user}) as t(n) "
                    "where user_id is not null")
        con.execute("create table fct_purchases as select session_id, user_id, 9.99 as price "
                    "from fct_sessions where session_number = 0")
        con.execute("create table ml_churn__training (model_artifact varchar)")
        con.execute("create table ml_churn_scores as select user_id, 0.5 as churn_probability "
                    "from dim_customers where user_id is not null")
        con.execute("create table ml_model_runs as select 'r1' as run_id")
        con.execute("create table rpt_churn_review as select 1 as rank")
        con.execute("create table dim_internal as select 1 as x")
    return path


@pytest.fixture
def project(tmp_path: Path) -> dict[str, Path]:
    """A warehouse `wh.duckdb` and a target folder of a successful build of MANIFEST."""
    target = tmp_path / "target"
    target.mkdir()
    (target / "manifest.json").write_text(json.dumps(MANIFEST))
    (target / "run_results.json").write_text(json.dumps(run_results_of(MANIFEST)))
    return {"warehouse": make_warehouse(tmp_path / "wh.duckdb", [11, 22, 33]),
            "target": target, "serving": tmp_path / "serve" / "serving.duckdb",
            "exports": tmp_path / "serve" / "exports"}


def run_publish(project: dict[str, Path], **kwargs):
    return publish(project["warehouse"], project["serving"], project["exports"],
                   project["target"], **kwargs)


def rows(database: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.sql(sql).fetchall()


# --- which tables are public ------------------------------------------------------------

def test_public_tables_follow_meta_serve_without_training_models() -> None:
    assert registry_inputs(MANIFEST) == {"model.rees46.ml_churn__training"}
    tables = {table.name: table for table in public_tables(MANIFEST)}
    assert sorted(tables) == ["dim_customers", "fct_purchases", "fct_sessions",
                              "ml_churn_scores", "ml_model_runs", "rpt_churn_review"]
    assert tables["dim_customers"].excluded_columns == {"secret_note"}
    assert tables["dim_customers"].pii_columns == {"user_id"}


def test_select_and_exclude_use_dbt_like_selectors() -> None:
    names = lambda **kw: [table.name for table in public_tables(MANIFEST, **kw)]  # noqa: E731
    # tag:ml+ is the ml models and everything downstream of them, as in dbt.
    assert names(exclude=["tag:ml+"]) == ["dim_customers", "fct_purchases", "fct_sessions"]
    assert names(exclude=["tag:ml", "fct_sessions+"]) == ["dim_customers",
                                                          "rpt_churn_review"]
    assert names(select=["fct_sessions", "tag:ml"]) == [
        "fct_sessions", "ml_churn_scores", "ml_model_runs"]
    with pytest.raises(PublishError, match="matches no model"):
        public_tables(MANIFEST, select=["tag:nonexistent"])


def test_an_ephemeral_public_model_is_an_error() -> None:
    manifest = manifest_of(model("fct_x", materialized="ephemeral"))
    with pytest.raises(PublishError, match="ephemeral"):
        public_tables(manifest)


# --- a failed build publishes nothing ---------------------------------------------------

@pytest.mark.parametrize("status", ["error", "fail", "skipped", "runtime error"])
def test_check_build_refuses_any_failed_or_skipped_node(status: str) -> None:
    results = run_results_of(MANIFEST, {"model.rees46.int_customers_aggregated": status})
    with pytest.raises(PublishError, match=f"int_customers_aggregated \\({status}\\)"):
        check_build(results, public_tables(MANIFEST))


def test_check_build_refuses_other_commands_and_unbuilt_public_models() -> None:
    tables = public_tables(MANIFEST)
    with pytest.raises(PublishError, match="`dbt run`, not `dbt build`"):
        check_build(run_results_of(MANIFEST, which="run"), tables)
    partial = run_results_of(MANIFEST)
    partial["results"] = [r for r in partial["results"]
                          if r["unique_id"] != "model.rees46.ml_churn_scores"]
    with pytest.raises(PublishError, match="not built by the last dbt build: "
                                           "model.rees46.ml_churn_scores"):
        check_build(partial, tables)
    warned = run_results_of(MANIFEST, {"model.rees46.fct_sessions": "warn"})
    check_build(warned, tables)  # warnings do not stop a publish


def test_check_build_takes_no_op_only_from_exposures_and_saved_queries() -> None:
    tables = public_tables(MANIFEST)
    results = run_results_of(MANIFEST)
    results["results"] += [
        {"unique_id": "exposure.rees46.rees46_dashboard", "status": "no-op"},
        {"unique_id": "saved_query.rees46.headline_tiles_daily", "status": "no-op"}]
    check_build(results, tables)
    skipped = run_results_of(MANIFEST, {"model.rees46.fct_sessions": "no-op"})
    with pytest.raises(PublishError, match=r"fct_sessions \(no-op\)"):
        check_build(skipped, tables)


def test_failed_build_leaves_the_previous_copy_untouched(project) -> None:
    first = run_publish(project)
    before = (project["serving"].stat().st_ino, project["serving"].read_bytes())
    failed = run_results_of(MANIFEST, {"model.rees46.fct_sessions": "error"})
    (project["target"] / "run_results.json").write_text(json.dumps(failed))
    with pytest.raises(PublishError, match="did not succeed"):
        run_publish(project)
    assert (project["serving"].stat().st_ino, project["serving"].read_bytes()) == before
    assert os.readlink(project["exports"] / "current") == first.publish_id
    assert sorted(p.name for p in project["serving"].parent.iterdir()
                  if p.name.startswith(".") and not p.name.endswith(".lock")) == []


def test_a_warehouse_locked_by_a_build_is_a_clear_error(project) -> None:
    # Another process holds the warehouse open for writing, as a running dbt build does.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; con = duckdb.connect(sys.argv[1]); "
         "print('locked', flush=True); sys.stdin.read()", str(project["warehouse"])],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(PublishError, match="Is a dbt build running"):
            run_publish(project)
    finally:
        holder.communicate("", timeout=30)
    assert not project["serving"].exists()
    assert [p.name for p in project["serving"].parent.iterdir()
            if not p.name.endswith(".lock")] == ["exports"]
    assert list(project["exports"].iterdir()) == []


# --- the serving copy -------------------------------------------------------------------

def test_publish_writes_a_read_only_old_format_copy_and_parquet(project) -> None:
    publication = run_publish(project)
    serving = project["serving"]
    assert stat.S_IMODE(serving.stat().st_mode) == 0o444
    assert publication.tables == {"dim_customers": 4, "fct_purchases": 3,
                                  "fct_sessions": 6, "ml_churn_scores": 3,
                                  "ml_model_runs": 1, "rpt_churn_review": 1}
    with duckdb.connect(str(serving), read_only=True) as con:
        [(tags,)] = con.sql("select tags from duckdb_databases() "
                            "where database_name = 'serving'").fetchall()
        assert tags["storage_version"] == "v1.0.0+"
        tables = {name for (name,) in con.sql(
            "select table_name from duckdb_tables()").fetchall()}
        assert tables == {*publication.tables, CATALOG_TABLE}
        assert con.sql("select column_name from duckdb_columns() where table_name = "
                       "'dim_customers' order by column_index").fetchall() == [
            ("user_id",), ("orders",)]  # secret_note has meta serve: false
        assert con.sql("select comment from duckdb_tables() where table_name = "
                       "'dim_customers'").fetchall() == [("one row per user",)]
        assert con.sql("select comment from duckdb_columns() where table_name = "
                       "'dim_customers' and column_name = 'orders'").fetchall() == [
            ("orders placed",)]
        assert sorted(con.sql("select user_id from dim_customers").fetchall(),
                      key=str) == [(11,), (22,), (33,), (None,)]
        assert con.sql(f"select count(*), count(distinct publish_id) from {CATALOG_TABLE}"
                       ).fetchall() == [(6, 1)]
    current = project["exports"] / "current"
    assert os.readlink(current) == publication.publish_id
    exported = {path.stem for path in current.iterdir()}
    assert exported == {*publication.tables, CATALOG_TABLE}
    assert rows(serving, f"select count(*) from '{current}/fct_sessions.parquet'") == [(6,)]


@pytest.mark.skipif(not os.environ.get("REES46_OLD_DUCKDB_PYTHON"),
                    reason="set REES46_OLD_DUCKDB_PYTHON to a python with DuckDB 1.x")
def test_an_older_duckdb_reads_the_serving_copy(project) -> None:
    """Opt-in: e.g. `python3.11 -m venv /tmp/old && /tmp/old/bin/pip install
    duckdb==1.1.3`, then REES46_OLD_DUCKDB_PYTHON=/tmp/old/bin/python."""
    publication = run_publish(project)
    script = ("import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
              "print(duckdb.__version__); print(con.sql('select count(*) from "
              "fct_sessions').fetchall()[0][0])")
    result = subprocess.run([os.environ["REES46_OLD_DUCKDB_PYTHON"], "-c", script,
                             str(publication.serving_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    version, sessions = result.stdout.split()
    assert version.startswith(("0.", "1.")) and int(sessions) == 6


def test_a_killed_publishs_leftovers_are_removed_by_the_next(project) -> None:
    project["serving"].parent.mkdir(parents=True)
    leftover = project["serving"].with_name(".serving.duckdb.20260101T000000Z-x.tmp")
    leftover.write_bytes(b"half a database")
    run_publish(project)
    assert not leftover.exists()


def test_report_says_where_the_serving_copy_is(project) -> None:
    assert serving_status(project["serving"]) is None
    assert "not published" in format_serving(project["serving"], project["exports"], None)
    run_publish(project, salt=SALT)
    status = serving_status(project["serving"])
    assert status["tables"] == 6 and status["pseudonymised_columns"] == 6
    text = format_serving(project["serving"], project["exports"], status)
    assert str(project["serving"].resolve()) in text
    assert "exports/current" in text and "make dashboard" in text
    assert "pseudonymised" in text


def test_second_publish_swaps_and_prunes_old_exports(project) -> None:
    ids = [run_publish(project, keep_exports=2).publish_id for _ in range(3)]
    assert len(set(ids)) == 3
    folders = sorted(p.name for p in project["exports"].iterdir() if not p.is_symlink())
    assert folders == sorted(ids[1:])  # the newest two; the first was pruned
    assert os.readlink(project["exports"] / "current") == ids[2]
    assert rows(project["serving"], f"select distinct publish_id from {CATALOG_TABLE}"
                ) == [(ids[2],)]
    assert prune_exports(project["exports"], keep=1) == [project["exports"] / ids[1]]


# --- pseudonymisation -------------------------------------------------------------------

def test_salt_is_off_by_default_and_must_be_long() -> None:
    assert salt_from_env({}) is None
    assert salt_from_env({"REES46_USER_ID_SALT": ""}) is None
    assert salt_from_env({"REES46_USER_ID_SALT": SALT}) == SALT
    with pytest.raises(PublishError, match="shorter than 16"):
        salt_from_env({"REES46_USER_ID_SALT": "short"})


def test_pseudonym_is_the_sql_expression_and_a_salted_sha256() -> None:
    with duckdb.connect() as con:
        con.execute("set variable rees46_user_id_salt = ?", [SALT])
        [(value, key)] = con.sql(
            f"select {column_expression('user_id', True, 'BIGINT')}, "
            f"{column_expression('session_id', True, 'VARCHAR')} "
            "from (select 520000001::bigint as user_id, 'abc' as session_id)").fetchall()
    digest = hashlib.sha256(f"{SALT}:520000001".encode()).hexdigest()
    assert value == pseudonym(520000001, SALT) == int(digest[:15], 16)
    assert 0 <= value < 2 ** 60
    assert key == pseudonym("abc", SALT, integer=False) == hashlib.sha256(
        f"{SALT}:abc".encode()).hexdigest()
    assert pseudonym(520000001, SALT + "x") != value


def test_pseudonymised_user_ids_still_join_across_tables(project) -> None:
    publication = run_publish(project, salt=SALT)
    assert publication.pseudonymised_columns == {
        "dim_customers": ["user_id"], "fct_purchases": ["session_id", "user_id"],
        "fct_sessions": ["user_id", "session_id"], "ml_churn_scores": ["user_id"],
        "ml_model_runs": [], "rpt_churn_review": []}
    serving = project["serving"]
    expected = {pseudonym(user, SALT) for user in (11, 22, 33)}
    for table in ("dim_customers", "fct_sessions", "ml_churn_scores"):
        published = {user for (user,) in rows(serving, f"select user_id from {table}")}
        assert published - {None} == expected, table
    assert rows(serving, "select count(*) from dim_customers where user_id is null") == [(1,)]
    assert rows(serving, "select count(*) from fct_sessions inner join dim_customers "
                         "using (user_id)") == [(6,)]
    # The session key is an md5 over the user id: re-keyed too, and still a join key.
    raw_sessions = {session for (session,) in rows(
        project["warehouse"], "select session_id from fct_sessions")}
    assert {session for (session,) in rows(serving, "select session_id from fct_sessions")} \
        == {pseudonym(session, SALT, integer=False) for session in raw_sessions}
    assert rows(serving, "select count(*) from fct_purchases inner join fct_sessions "
                         "using (session_id, user_id)") == [(3,)]
    assert rows(serving, "select data_type from duckdb_columns() where table_name = "
                         "'fct_sessions' and column_name = 'user_id'") == [("BIGINT",)]
    assert rows(serving, f"select pseudonymised_columns from {CATALOG_TABLE} "
                         "where table_name = 'fct_sessions'") == [(["user_id", "session_id"],)]
    # The Parquet exports carry the same pseudonyms.
    parquet = project["exports"] / "current" / "dim_customers.parquet"
    assert {u for (u,) in rows(serving, f"select user_id from '{parquet}'")} - {None} \
        == expected
    # The salt itself is written nowhere.
    assert SALT.encode() not in serving.read_bytes()


# --- the project's own build (synth_warehouse) -------------------------------------------

def training_models() -> set[str]:
    """The registry's inputs: the training and the evaluation models."""
    variables = yaml.safe_load((REPO / "dbt_project.yml").read_text())["vars"]
    return (set(variables["ml_training_models"])
            | set(variables.get("ml_evaluation_models") or []))


def checksum_sql(database: str, table: str, columns: list[str]) -> str:
    listed = ", ".join(f'"{column}"' for column in columns)
    return (f"select count(*), coalesce(sum(hash({listed})::hugeint), 0) "
            f'from {database}.main."{table}"')


@pytest.mark.dbt
def test_publish_of_the_projects_build_is_every_mart_and_score(synth_warehouse,
                                                              tmp_path: Path) -> None:
    """Public = every model in models/marts and models/ml (the folder rule, so new ones
    are picked up) except the training models; each copied exactly."""
    manifest = json.loads((synth_warehouse.target_dir / "manifest.json").read_text())
    in_folders = {node["name"] for node in manifest["nodes"].values()
                  if node["resource_type"] == "model"
                  and node["original_file_path"].startswith(("models/marts/", "models/ml/"))}
    expected = in_folders - training_models()
    assert {"ml_model_runs", "ml_model_metrics", "ml_feature_importance",
            "rpt_fraud_review_queue", "fct_sessions", "ml_churn_scores"} <= expected

    publication = publish(synth_warehouse.database, tmp_path / "serving.duckdb",
                          tmp_path / "exports", synth_warehouse.target_dir)
    assert set(publication.tables) == expected
    with duckdb.connect() as con:
        con.execute(f"attach '{synth_warehouse.database}' as wh (read_only)")
        con.execute(f"attach '{publication.serving_path}' as serving (read_only)")
        [(tags,)] = con.sql("select tags from duckdb_databases() "
                            "where database_name = 'serving'").fetchall()
        assert tags["storage_version"] == "v1.0.0+"
        assert con.sql("select count(*) from duckdb_columns() where database_name = "
                       "'serving' and column_name = 'model_artifact'").fetchall() == [(0,)]
        for table in sorted(expected):
            columns = [name for (name,) in con.execute(
                "select column_name from duckdb_columns() where database_name = 'wh' "
                "and table_name = ? order by column_index", [table]).fetchall()]
            warehouse_sum = con.sql(checksum_sql("wh", table, columns)).fetchall()
            assert con.sql(checksum_sql("serving", table, columns)).fetchall() \
                == warehouse_sum, table
            assert warehouse_sum[0][0] == publication.tables[table]
        # persist_docs descriptions travel with the tables, for BI tools.
        [(comment,)] = con.sql("select comment from duckdb_columns() where database_name "
                               "= 'serving' and table_name = 'dim_customers' and "
                               "column_name = 'user_id'").fetchall()
        assert comment and "user" in comment.lower()


@pytest.mark.dbt
def test_pseudonymised_publish_of_the_projects_build(synth_warehouse,
                                                     tmp_path: Path) -> None:
    """Every user id is replaced, joins between marts and scores give the same counts,
    and no published integer column holds a raw user id."""
    publication = publish(synth_warehouse.database, tmp_path / "serving.duckdb",
                          tmp_path / "exports", synth_warehouse.target_dir, salt=SALT)
    assert all("user_id" in publication.pseudonymised_columns[table]
               for table in ("dim_customers", "fct_sessions", "fct_purchases",
                             "ml_churn_scores", "ml_fraud_user_scores",
                             "rpt_fraud_review_queue"))
    raw_users = {user for (user,) in rows(synth_warehouse.database,
                                          "select user_id from dim_customers")}
    published = {user for (user,) in rows(publication.serving_path,
                                          "select user_id from dim_customers")}
    assert published == {pseudonym(user, SALT) for user in raw_users}
    joins = [
        "select count(*) from fct_sessions inner join dim_customers using (user_id)",
        "select count(*) from ml_churn_scores inner join fct_customer_rfm using (user_id)",
        "select count(*) from fct_purchases inner join fct_sessions "
        "using (session_id, user_id)",
        "select count(*) from ml_fraud_session_scores inner join fct_sessions "
        "using (session_id)",
    ]
    for sql in joins:
        [(count,)] = rows(publication.serving_path, sql)
        assert count > 0 and [(count,)] == rows(synth_warehouse.database, sql), sql
    with duckdb.connect() as con:
        con.execute(f"attach '{synth_warehouse.database}' as wh (read_only)")
        con.execute(f"attach '{publication.serving_path}' as serving (read_only)")
        integer_columns = con.sql(
            "select table_name, column_name from duckdb_columns() where database_name = "
            "'serving' and data_type in ('BIGINT', 'INTEGER', 'HUGEINT')").fetchall()
        for table, column in integer_columns:
            [(leaked,)] = con.sql(
                f'select count(*) from serving.main."{table}" where "{column}" in '
                "(select user_id from wh.main.dim_customers)").fetchall()
            assert leaked == 0, (table, column)
