"""Retention by first-purchase cohort month (fct_cohort_retention)."""
from __future__ import annotations

import altair as alt
import streamlit as st

from dashboard import ui

st.title("Cohort retention")
cohorts = ui.query("cohort_retention")
if cohorts.empty:
    st.info("fct_cohort_retention is empty.")
else:
    cohorts["cohort"] = cohorts["cohort_month"].dt.strftime("%Y-%m")
    measure = st.radio("Cell", ["retention_rate", "cumulative_revenue_per_customer"],
                       horizontal=True, key="cohort_measure")
    fmt = ".1%" if measure == "retention_rate" else "$,.0f"
    base = alt.Chart(cohorts).encode(
        x=alt.X("months_since_first_purchase:O", title="months since first purchase"),
        y=alt.Y("cohort:O", title="cohort"))
    heat = base.mark_rect().encode(
        color=alt.Color(f"{measure}:Q", scale=alt.Scale(scheme="blues")),
        tooltip=["cohort", "months_since_first_purchase", "cohort_size",
                 "active_buyers", alt.Tooltip(f"{measure}:Q", format=fmt)])
    text = base.mark_text(baseline="middle", fontSize=14).encode(
        text=alt.Text(f"{measure}:Q", format=fmt),
        color=alt.condition(f"datum.{measure} > {cohorts[measure].median()}",
                            alt.value("white"), alt.value("black")))
    rows = cohorts["cohort"].nunique()
    st.altair_chart(heat + text, width="stretch", height=max(180, 56 * rows))
    st.caption("Month 0 is the first-purchase month (100% by definition). Whole history; "
               "the sidebar filters do not apply.")
    st.dataframe(cohorts[["cohort", *cohorts.columns[1:-1]]], hide_index=True,
                 width="stretch")
