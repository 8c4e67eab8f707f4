"""The REES46 dashboard: `make dashboard` (streamlit run dashboard/app.py).

Reads only the serving copy (env REES46_SERVING_DB, default warehouse/serving.duckdb).
This entry script draws the sidebar filters, then runs the selected page of views/.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import streamlit as st

if __package__ in (None, ""):  # `streamlit run dashboard/app.py` puts dashboard/ first
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard import ui  # noqa: E402

PAGES = [
    ("views/kpis.py", "KPIs", ":material/monitoring:"),
    ("views/funnel.py", "Funnel", ":material/filter_alt:"),
    ("views/heatmap.py", "Hour x weekday", ":material/calendar_view_week:"),
    ("views/products.py", "Products and brands", ":material/sell:"),
    ("views/segments.py", "RFM segments and clusters", ":material/groups:"),
    ("views/cohorts.py", "Cohort retention", ":material/grid_on:"),
    ("views/churn_clv.py", "Churn risk and CLV", ":material/hourglass_bottom:"),
    ("views/pricing.py", "Price elasticity", ":material/price_change:"),
    ("views/fraud.py", "Fraud review queue", ":material/flag:"),
    ("views/forecast.py", "Forecast", ":material/trending_up:"),
]

st.set_page_config(page_title="REES46 dashboard", page_icon=":material/shopping_cart:",
                   layout="wide")
navigation = st.navigation([
    st.Page(path, title=title, icon=icon, default=(i == 0))
    for i, (path, title, icon) in enumerate(PAGES)
])

bounds = ui.query("date_bounds")
first, last = bounds["first_date"].iloc[0], bounds["last_date"].iloc[0]
with st.sidebar:
    st.header("Filters")
    if bounds["first_date"].isna().iloc[0]:
        st.warning("fct_daily_trends is empty: no dates to filter on.")
    else:
        first, last = pd.Timestamp(first).date(), pd.Timestamp(last).date()
        st.date_input("Date range", value=(first, last), min_value=first,
                      max_value=last, key=ui.FILTER_KEYS["dates"])
    st.multiselect("Category", ui.query("category_options")["category_l1"].tolist(),
                   key=ui.FILTER_KEYS["categories"], placeholder="All categories")
    st.multiselect("Brand", ui.query("brand_options")["brand"].tolist(),
                   key=ui.FILTER_KEYS["brands"], placeholder="All brands")
    st.caption(f"Serving copy: `{ui.database().path}`")

navigation.run()
