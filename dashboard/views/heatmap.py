"""Hour-of-day x weekday heatmap of sessions, revenue and conversion (UTC)."""
from __future__ import annotations

import altair as alt
import streamlit as st

from dashboard import ui

st.title("Hour x weekday")
measure = st.radio("Measure", ["sessions", "revenue", "orders", "conversion"],
                   horizontal=True, key="heatmap_measure")
cells = ui.filtered("weekday_hour")
if cells.empty:
    st.info("No hours in the selected range.")
else:
    cells["conversion"] = cells["converted_sessions"] / cells["sessions"].where(
        cells["sessions"] > 0)
    order = cells.sort_values("iso_weekday")["weekday_name"].unique().tolist()
    chart = alt.Chart(cells).mark_rect().encode(
        x=alt.X("hour_of_day:O", title="hour (UTC)"),
        y=alt.Y("weekday_name:N", sort=order, title=None),
        color=alt.Color(f"{measure}:Q", scale=alt.Scale(scheme="viridis")),
        tooltip=["weekday_name", "hour_of_day", "sessions",
                 alt.Tooltip("revenue:Q", format=",.0f"), "orders",
                 alt.Tooltip("conversion:Q", format=".2%")])
    st.altair_chart(chart, width="stretch")
    peak = cells.sort_values(measure, ascending=False).iloc[0]
    st.caption(f"Peak {measure}: {peak['weekday_name']} {int(peak['hour_of_day'])}:00 "
               f"UTC. Totals over the date range (fct_hourly_trends); site-wide.")
