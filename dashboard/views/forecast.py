"""Revenue and orders forecast with 80% / 95% intervals, and the scenarios."""
from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import ui
from dashboard.queries import FORECAST_MODEL_NAME

st.title("Forecast")
if ui.require("ml_revenue_forecast"):
    series = ui.query("forecast_series")
    choices = [f"{r.series_id} | {r.measure}" for r in series.itertuples()]
    default = choices.index("overall | revenue") if "overall | revenue" in choices else 0
    picked = st.selectbox("Series", choices, index=default, key="forecast_series")
    series_id, measure = picked.split(" | ")
    chosen = {"series_id": series_id, "measure": measure}
    forecast = ui.query("forecast", chosen)
    history = ui.filtered("daily_trends")
    actual = pd.DataFrame()
    if series_id == "overall" and measure in history.columns:
        actual = history[["trend_date", measure]].rename(
            columns={"trend_date": "forecast_date", measure: "point"})
        actual["model"] = "actual"
    selected = forecast[forecast["is_selected_model"]]
    band = alt.Chart(selected).encode(x=alt.X("forecast_date:T", title=None))
    lines = alt.Chart(pd.concat([actual, forecast], ignore_index=True)).mark_line(
        ).encode(x="forecast_date:T", y=alt.Y("point:Q", title=measure),
                 color="model:N", strokeDash="model:N")
    st.altair_chart(band.mark_area(opacity=0.15).encode(y="lo95:Q", y2="hi95:Q")
                    + band.mark_area(opacity=0.3).encode(y="lo80:Q", y2="hi80:Q")
                    + lines, width="stretch")
    st.caption("Shaded: the selected model's 80% and 95% prediction intervals; dashed: "
               "the seasonal naive baseline. Actuals: the sidebar's date range, for the "
               "overall series.")

    st.subheader("Scenarios")
    if ui.require("rpt_revenue_scenarios"):
        scenarios = ui.query("scenarios", chosen)
        if scenarios.empty:
            st.info("No scenarios for this series.")
        else:
            last = scenarios.iloc[-1]
            tiles = st.columns(3)
            for tile, name in zip(tiles, ("conservative", "expected", "optimistic")):
                tile.metric(f"{name.capitalize()}, {int(last['horizon'])} days",
                            f"{last[f'cumulative_{name}']:,.0f}", border=True)
            st.caption("Conservative and optimistic: the 80% interval's bounds of the "
                       "selected model, summed over the horizon.")
            st.dataframe(scenarios, hide_index=True, width="stretch")

    st.subheader("Model metrics")
    ui.model_metrics([FORECAST_MODEL_NAME])
