"""Churn risk and customer lifetime value distributions, with the models' metrics
against their baselines from the registry (ml_model_metrics, ml_model_runs)."""
from __future__ import annotations

import altair as alt
import streamlit as st

from dashboard import ui

st.title("Churn risk and CLV")


st.caption("Scores of every buyer as of the last date; the sidebar filters do not apply.")
churn_tab, clv_tab = st.tabs(["Churn", "Lifetime value"])

with churn_tab:
    bands = ui.query("churn_bands")
    cols = st.columns(max(len(bands), 1))
    for col, row in zip(cols, bands.itertuples()):
        col.metric(f"{row.churn_risk_band} risk", f"{row.customers:,}",
                   f"mean P(churn) {row.avg_probability:.2f}", delta_color="off",
                   delta_arrow="off", border=True)
    ui.model_metrics(["churn"])
    st.altair_chart(alt.Chart(ui.query("churn_histogram")).mark_bar().encode(
        x=alt.X("bin_start:Q", bin="binned", title="churn probability",
                scale=alt.Scale(domain=[0, 1])),
        x2=alt.X2("bin_end:Q"), y="customers:Q").transform_calculate(
        bin_end="datum.bin_start + 0.05"), width="stretch")
    st.subheader("Highest risk")
    st.dataframe(ui.query("churn_top_risk", {"limit": 50}), hide_index=True,
                 width="stretch", column_config={
                     "user_id": st.column_config.NumberColumn(format="%d")})

with clv_tab:
    summary = ui.query("clv_summary").iloc[0]
    cols = st.columns(3)
    cols[0].metric("Customers scored", f"{summary['customers']:,}", border=True)
    cols[1].metric(f"Expected spend, next {summary['horizon_days']} days (BG/NBD)",
                   ui.money(summary["expected_spend"]), border=True)
    cols[2].metric("Mean P(alive)", f"{summary['avg_p_alive']:.2f}", border=True)
    ui.model_metrics(["clv_bgnbd", "clv_xgboost"])
    histogram = ui.query("clv_histogram")
    histogram["spend_from"] = histogram["bin"] * histogram["bin_width"]
    histogram["spend_to"] = histogram["spend_from"] + histogram["bin_width"]
    st.altair_chart(alt.Chart(histogram).mark_bar().encode(
        x=alt.X("spend_from:Q", bin="binned", title="expected spend (USD)"),
        x2="spend_to:Q", y=alt.Y("customers:Q", scale=alt.Scale(type="symlog"))),
        width="stretch")
    st.caption("The last bin holds the top 1% of expected spend.")
