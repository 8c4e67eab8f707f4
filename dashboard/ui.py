"""Streamlit glue shared by the pages: the cached database, cached queries, the
sidebar filters and the notice for tables not in the serving copy yet."""
from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.queries import Filters, ServingDatabase, serving_path

FILTER_KEYS = {"dates": "filter_dates", "categories": "filter_categories",
               "brands": "filter_brands"}


@st.cache_resource
def _database(path: str) -> ServingDatabase:
    return ServingDatabase(path)


def database() -> ServingDatabase:
    """The serving copy; stops the page with instructions when it does not exist."""
    path = serving_path()
    if not path.exists():
        st.error(f"The serving copy `{path}` does not exist. Build the warehouse and "
                 "publish it: `make build && .venv/bin/python -m ml.publish` (or point "
                 "REES46_SERVING_DB at a DuckDB file).")
        st.stop()
    return _database(str(path))


@st.cache_data(ttl=900, max_entries=512, show_spinner=False)
def _cached(path: str, identity: tuple[int, int, int], name: str,
            params: tuple[tuple[str, Any], ...]) -> pd.DataFrame:
    # identity (inode, mtime) is part of the key: a new serving copy misses the cache.
    return _database(path).run(name, dict(params))


def query(name: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    """Run the named statement of dashboard.queries.SQL with named parameters."""
    db = database()
    frozen = tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                          for k, v in (params or {}).items()))
    frame = _cached(str(db.path), db.identity(), name, frozen)
    return frame.copy()


def filters() -> Filters:
    """The sidebar filters set by dashboard/app.py."""
    state = st.session_state
    dates = tuple(state.get(FILTER_KEYS["dates"], ()))
    if not dates:  # before the sidebar ran: everything
        dates = (date(1970, 1, 1), date(2999, 12, 31))
    start, end = dates[0], dates[-1]  # one date picked so far: that day
    return Filters(start=start, end=end,
                   categories=tuple(state.get(FILTER_KEYS["categories"], ())),
                   brands=tuple(state.get(FILTER_KEYS["brands"], ())))


def filtered(name: str, **extra: Any) -> pd.DataFrame:
    """`query(name)` with the sidebar filters and `extra` parameters."""
    return query(name, {**filters().params(), **extra})


def require(*tables: str) -> bool:
    """True when every table (with the columns the pages use) is in the serving copy;
    otherwise an info notice naming what is missing, and False."""
    db = database()
    missing = [item for table in tables for item in db.missing(table)]
    if not missing:
        return True
    st.info(f"Not in this warehouse yet: {', '.join(f'`{m}`' for m in missing)}. "
            "Run `dbt build` with the models that create it, then publish the serving "
            "copy (`python -m ml.publish`).", icon=":material/info:")
    return False


def model_metrics(models: list[str]) -> None:
    """The models' primary metric against each baseline (latest run) as tiles, and all
    their metrics in an expander, from the registry."""
    metrics = query("model_metrics", {"models": models})
    if metrics.empty:
        st.info(f"No runs of {', '.join(models)} in the registry.")
        return
    latest = metrics[metrics["trained_at"] == metrics.groupby("model_name")[
        "trained_at"].transform("max")]
    primary = latest[latest["is_primary"]]
    tiles = st.columns(max(len(primary), 1))
    for tile, row in zip(tiles, primary.itertuples()):
        tile.metric(f"{row.model_name}: {row.metric}", f"{row.value:.3f}",
                    f"{row.baseline} {row.baseline_value:.3f}",
                    delta_color="normal" if row.beats_baseline else "inverse",
                    delta_arrow="off", border=True,
                    help="Model (big) against the baseline (small), latest run; "
                         "green when the model beats it.")
    with st.expander("All metrics from the registry"):
        st.dataframe(metrics, hide_index=True, width="stretch")


def money(value: float) -> str:
    """$1,234,567"""
    return f"${value:,.0f}"


def compact(value: float, prefix: str = "") -> str:
    """A tile figure: 5.15M, 20.7k, 731."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{prefix}{float(f'{value / size:.3g}'):g}{suffix}"
    return f"{prefix}{value:,.0f}"
