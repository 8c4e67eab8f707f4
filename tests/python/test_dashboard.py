"""The dashboard (dashboard/): every page renders on the built warehouse, filters reach
the SQL only as parameters, optional tables degrade to a notice, and a real headless
Chromium sees the KPI tiles."""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
import yaml
from streamlit.testing.v1 import AppTest

from dashboard import headless, queries
from dashboard.queries import Filters, ServingDatabase
from dashboard.ui import compact
import dbt_project
from dbt_project import REPO
from ml.serving_connection import connect_serving

APP = str(REPO / "dashboard" / "app.py")
PAGES = {  # page file -> its title
    "views/kpis.py": "KPIs",
    "views/funnel.py": "Funnel",
    "views/heatmap.py": "Hour x weekday",
    "views/products.py": "Products and brands",
    "views/segments.py": "RFM segments and clusters",
    "views/cohorts.py": "Cohort retention",
    "views/churn_clv.py": "Churn risk and CLV",
    "views/pricing.py": "Price elasticity",
    "views/fraud.py": "Fraud review queue",
    "views/forecast.py": "Forecast",
}
NOTICE = "Not in this warehouse yet"
KPI_LABELS = ["Revenue", "Orders", "Buyer-days", "Average order value", "Sessions",
              "Session conversion"]


@pytest.fixture(scope="module")
def serving_copy(synth_warehouse, tmp_path_factory) -> Path:
    """The built warehouse copied to a read-only serving file (what ml.publish does)."""
    path = tmp_path_factory.mktemp("serving") / "serving.duckdb"
    shutil.copyfile(synth_warehouse.database, path)
    path.chmod(0o444)
    return path


@pytest.fixture(scope="module")
def serving_without_ml_ii(serving_copy, tmp_path_factory) -> Path:
    """The serving copy of a warehouse built without the cluster and forecast models
    (e.g. `dbt build --exclude tag:ml+`): the tables of OPTIONAL_TABLES dropped."""
    path = tmp_path_factory.mktemp("serving_without_ml_ii") / "serving.duckdb"
    shutil.copyfile(serving_copy, path)
    path.chmod(0o644)
    with duckdb.connect(str(path)) as con:
        for table in queries.OPTIONAL_TABLES:
            con.execute(f"drop table {table}")
    path.chmod(0o444)
    return path


def _app(monkeypatch, serving: Path) -> AppTest:
    monkeypatch.setenv(queries.SERVING_DB_ENV, str(serving))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _page(at: AppTest, page: str) -> AppTest:
    at.switch_page(page).run()
    assert not at.exception, (page, [e.value for e in at.exception])
    assert not at.error, (page, [e.value for e in at.error])
    assert [t.value for t in at.title] == [PAGES[page]]
    return at


def _notices(at: AppTest) -> list[str]:
    return [info.value for info in at.info if NOTICE in info.value]


def test_every_page_renders_on_the_built_warehouse(serving_copy, monkeypatch):
    at = _app(monkeypatch, serving_copy)
    for page in PAGES:
        _page(at, page)
        if page == "views/kpis.py":
            assert [m.label for m in at.metric] == KPI_LABELS
            assert len(at.get("vega_lite_chart")) == 1
            assert all(m.value not in ("", "–", "$0") for m in at.metric)
        else:
            assert not _notices(at), page
            assert len(at.get("vega_lite_chart")) + len(at.dataframe) > 0, page


def test_pages_without_the_optional_tables_show_a_notice(serving_without_ml_ii,
                                                           monkeypatch):
    at = _app(monkeypatch, serving_without_ml_ii)
    for page in ("views/segments.py", "views/forecast.py"):
        _page(at, page)
        assert _notices(at), page


def test_kpi_tiles_match_the_marts(serving_copy, monkeypatch):
    at = _app(monkeypatch, serving_copy)
    with connect_serving(serving_copy) as con:
        orders, sessions = con.sql(
            "select sum(orders), sum(sessions) from fct_daily_trends").fetchall()[0]
    tiles = {m.label: m for m in at.metric}
    assert tiles["Orders"].value == compact(orders)
    assert tiles["Sessions"].value == compact(sessions)


def test_filters_narrow_the_funnel_to_the_selected_slice(serving_copy, monkeypatch):
    with connect_serving(serving_copy) as con:
        category, brand, viewed = con.sql("""
            select category_l1, brand, sum(sessions_with_view)
            from fct_funnel_daily
            where category_l1 <> 'unknown' and brand <> 'unknown'
            group by 1, 2 order by 3 desc limit 1
        """).fetchall()[0]
        total = con.sql("select sum(sessions_with_view) from fct_funnel_daily"
                        ).fetchall()[0][0]
    at = _app(monkeypatch, serving_copy)
    _page(at, "views/funnel.py")
    assert at.metric[0].value == f"{total:,}"
    at.sidebar.multiselect(key="filter_categories").set_value([category])
    at.sidebar.multiselect(key="filter_brands").set_value([brand]).run()
    assert not at.exception
    assert at.metric[0].value == f"{viewed:,}"
    assert viewed < total


def test_forecast_tiles_sum_the_scenarios(serving_copy, monkeypatch):
    with connect_serving(serving_copy) as con:
        horizon, conservative, expected = con.sql("""
            select max(horizon), sum(conservative), sum(expected)
            from rpt_revenue_scenarios
            where series_id = 'overall' and measure = 'revenue'
        """).fetchall()[0]
    at = _app(monkeypatch, serving_copy)
    _page(at, "views/forecast.py")
    assert not _notices(at)
    tiles = {m.label: m.value for m in at.metric}
    assert tiles[f"Expected, {horizon} days"] == f"{expected:,.0f}"
    assert tiles[f"Conservative, {horizon} days"] == f"{conservative:,.0f}"
    assert conservative < expected


def test_missing_serving_copy_says_how_to_make_it(tmp_path, monkeypatch):
    monkeypatch.setenv(queries.SERVING_DB_ENV, str(tmp_path / "absent.duckdb"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert "ml.publish" in at.error[0].value


def test_connection_reopens_when_the_file_is_replaced(serving_without_ml_ii, tmp_path):
    path = tmp_path / "serving.duckdb"
    shutil.copyfile(serving_without_ml_ii, path)
    db = ServingDatabase(path)
    assert "ml_revenue_forecast" not in db.tables()
    assert db.missing("ml_revenue_forecast") == ["ml_revenue_forecast"]
    # Publish a new copy the way ml.publish does: write beside, rename over.
    new = tmp_path / "serving.duckdb.new"
    shutil.copyfile(serving_without_ml_ii, new)
    new.chmod(0o644)
    with duckdb.connect(str(new)) as con:
        con.execute("create table ml_revenue_forecast as select 1 as point")
    os.replace(new, path)
    assert "ml_revenue_forecast" in db.tables()
    # Present but without the columns the page reads: named, not a crash.
    assert "forecast_date" in db.missing("ml_revenue_forecast")


# --- security: filters never reach the SQL text -------------------------------------

DASHBOARD = REPO / "dashboard"
SQL_CALLS = {"execute", "executemany", "sql", "query", "connect", "from_query"}


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def _name(call: ast.Call) -> str | None:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def test_only_the_query_module_talks_to_duckdb():
    for path in DASHBOARD.rglob("*.py"):
        if path.name in ("queries.py",):
            continue
        tree = ast.parse(path.read_text())
        imported = {alias.name for node in ast.walk(tree)
                    if isinstance(node, (ast.Import, ast.ImportFrom))
                    for alias in node.names} | {
            node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert "duckdb" not in imported, path
        assert not [c for c in _calls(tree) if _name(c) in {"execute", "sql"}], path


def test_the_query_module_executes_only_constant_sql_with_parameters():
    tree = ast.parse((DASHBOARD / "queries.py").read_text())
    executes = [c for c in _calls(tree) if _name(c) in SQL_CALLS]
    # One cursor.execute(SQL[name], params); the file is opened only by
    # connect_serving(path) (read-only, no file access, configuration locked:
    # tests/python/test_serving_connections.py), never by duckdb.connect.
    assert sorted(_name(c) for c in executes) == ["execute"]
    execute = executes[0]
    statement, params = execute.args
    assert isinstance(statement, ast.Subscript) and statement.value.id == "SQL"
    assert params is not None
    assert [ast.unparse(c) for c in _calls(tree) if _name(c) == "connect_serving"] == [
        "connect_serving(self.path)"]
    # Every f-string substitution is _where() over constant column names; no %- or
    # .format() formatting other than _where's own column placeholders.
    for node in ast.walk(tree):
        if isinstance(node, ast.FormattedValue) and _in_sql(tree, node):
            call = node.value
            assert isinstance(call, ast.Call) and _name(call) == "_where", ast.unparse(node)
            assert all(isinstance(a, ast.Constant) for a in call.args), ast.unparse(call)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            raise AssertionError(f"%-formatting in queries.py: {ast.unparse(node)}")
    formats = [c for c in _calls(tree) if _name(c) == "format"]
    assert all(isinstance(c.func.value, ast.Name) and c.func.value.id in
               ("_CATEGORY", "_BRAND") for c in formats), [ast.unparse(c) for c in formats]


def _in_sql(tree: ast.Module, node: ast.AST) -> bool:
    """True when `node` sits inside the SQL mapping's value."""
    sql = next(n for n in tree.body if isinstance(n, ast.AnnAssign)
               and getattr(n.target, "id", None) == "SQL")
    return any(child is node for child in ast.walk(sql))


def test_pages_run_named_statements_only():
    names = set(queries.SQL)
    for path in (DASHBOARD / "views").glob("*.py"):
        tree = ast.parse(path.read_text())
        for call in _calls(tree):
            if _name(call) in ("query", "filtered") and isinstance(call.func,
                                                                  ast.Attribute):
                first = call.args[0]
                assert isinstance(first, ast.Constant) and first.value in names, (
                    path.name, ast.unparse(call))


def test_every_statement_declares_its_parameters_and_runs(serving_copy):
    db = ServingDatabase(serving_copy)
    base = {**Filters(date(2019, 10, 1), date(2019, 12, 31)).params(), "limit": 5,
            "models": ["churn"], "min_flags": 1, "table": "fct_sessions",
            "series_id": "overall", "measure": "revenue"}
    for name in queries.SQL:
        frame = db.run(name, base)
        assert frame is not None, name
    with pytest.raises(KeyError, match="needs parameters"):
        db.run("funnel_by_brand", {"start": date(2019, 10, 1)})


def test_hostile_filter_values_are_data_not_sql(serving_copy):
    db = ServingDatabase(serving_copy)
    hostile = ["x') or true --", "'; drop table fct_funnel_daily; --",
               "unknown' or '1'='1"]
    params = {**Filters(date(2019, 10, 1), date(2019, 12, 31), tuple(hostile),
                        tuple(hostile)).params(), "limit": 50}
    for name in ("funnel_by_category", "funnel_by_brand", "top_products",
                 "filtered_daily_revenue"):
        assert db.run(name, params).empty, name
    assert not db.run("funnel_by_category", {**params, "categories": [],
                                             "brands": []}).empty


# --- a real browser ---------------------------------------------------------------

def test_headless_chromium_sees_the_kpi_tiles(serving_copy):
    binary = headless.find_chromium()
    if binary is None:
        pytest.skip("Chromium is not installed (apt-get install chromium, or set "
                    "CHROMIUM): the browser smoke test needs a real browser")
    with headless.dashboard_server(serving_copy) as url, \
            headless.chromium(binary) as browser:
        browser.open(url + "/")
        browser.wait_for("stMetric", at_least=len(KPI_LABELS))
        labels = [text.split("\n")[0] for text in browser.texts("stMetricLabel")]
        values = browser.texts("stMetricValue")
        assert browser.count("stException") == 0, browser.texts("stException")
    assert labels == KPI_LABELS
    assert len(values) == len(KPI_LABELS) and all(v.strip() for v in values)
    assert values[0].startswith("$")


# --- exposures: one per page, parents are the tables the page's SQL reads ------------

_TABLE = re.compile(r"\b(?:from|join)\s+([a-z_][a-z0-9_]*)\b(?!\s*\()")
_CTE = re.compile(r"\b([a-z_][a-z0-9_]*)\s+as\s*\(")


def _tables(statement: str) -> set[str]:
    sql = queries.SQL[statement]
    return (set(_TABLE.findall(sql)) - set(_CTE.findall(sql))
            - {"information_schema"})


# ui helpers that run statements themselves.
HELPER_STATEMENTS = {"model_metrics": {"model_metrics"}}


def _statements(path: Path) -> set[str]:
    calls = _calls(ast.parse(path.read_text()))
    named = {call.args[0].value for call in calls
             if _name(call) in ("query", "filtered") and call.args
             and isinstance(call.args[0], ast.Constant)}
    return named.union(*(HELPER_STATEMENTS.get(_name(call), set()) for call in calls))


def _exposures() -> dict[str, dict]:
    found = {}
    for path in (REPO / "models").rglob("_*__exposures.yml"):
        for exposure in yaml.safe_load(path.read_text())["exposures"]:
            assert exposure["name"] not in found, exposure["name"]
            found[exposure["name"]] = {**exposure, "path": path}
    return found


def _refs(exposure: dict) -> set[str]:
    refs = set()
    for item in exposure["depends_on"]:
        match = re.fullmatch(r"ref\('([a-z0-9_]+)'\)", item)
        assert match, item
        refs.add(match.group(1))
    return refs


def test_every_dashboard_page_has_an_exposure_on_exactly_the_tables_it_reads():
    app = ast.parse((DASHBOARD / "app.py").read_text())
    pages = next(ast.literal_eval(node.value) for node in app.body
                 if isinstance(node, ast.Assign) and node.targets[0].id == "PAGES")
    exposures = _exposures()
    everything = {t for s in _statements(DASHBOARD / "app.py") for t in _tables(s)}
    for index, (page, _title, _icon) in enumerate(pages):
        stem = Path(page).stem
        exposure = exposures[f"dashboard_{stem}"]
        assert exposure["type"] == "dashboard"
        assert exposure["url"] == "http://localhost:8501/" + ("" if index == 0 else stem)
        assert {"name", "email"} <= set(exposure["owner"])
        assert exposure["maturity"] in ("low", "medium", "high")
        read = {t for s in _statements(DASHBOARD / page) for t in _tables(s)}
        assert _refs(exposure) == read, stem
        everything |= read
    assert _refs(exposures["rees46_dashboard"]) == everything


def test_exposure_parents_are_tables(synth_warehouse):
    manifest = json.loads((dbt_project._TARGET / "manifest.json").read_text())
    exposures = manifest["exposures"]
    assert {e["name"] for e in exposures.values()} == set(_exposures())
    for exposure in exposures.values():
        assert exposure["depends_on"]["nodes"], exposure["name"]
        for node in exposure["depends_on"]["nodes"]:
            materialized = manifest["nodes"][node]["config"]["materialized"]
            assert materialized in ("table", "incremental"), (exposure["name"], node)
