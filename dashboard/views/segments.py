"""RFM segments (fct_customer_rfm) and the behavioural clusters (ml_customer_clusters)."""
from __future__ import annotations

import altair as alt
import streamlit as st

from dashboard import ui

st.title("RFM segments and clusters")
st.caption("Whole history of buyers as of the RFM date; the sidebar filters do not apply.")
segments = ui.query("rfm_segments")
left, right = st.columns(2)
with left:
    st.subheader("Segments")
    st.altair_chart(alt.Chart(segments).mark_bar().encode(
        x="customers:Q", y=alt.Y("segment:N", sort="-x", title=None),
        tooltip=["segment", "customers", alt.Tooltip("revenue:Q", format=",.0f"),
                 alt.Tooltip("avg_recency_days:Q", format=".0f"),
                 alt.Tooltip("avg_orders:Q", format=".2f")]), width="stretch")
with right:
    st.subheader("Recency x frequency scores")
    st.altair_chart(alt.Chart(ui.query("rfm_grid")).mark_rect().encode(
        x="frequency_score:O", y=alt.Y("recency_score:O", sort="descending"),
        color="customers:Q", tooltip=["recency_score", "frequency_score", "customers"]),
        width="stretch")
st.dataframe(segments, hide_index=True, width="stretch")

st.subheader("Clusters")
if ui.require("ml_customer_cluster_profiles"):
    profiles = ui.query("cluster_profiles")
    left, right = st.columns(2)
    with left:
        st.altair_chart(alt.Chart(profiles).mark_bar().encode(
            x=alt.X("customer_share:Q", axis=alt.Axis(format="%"),
                    title="share of customers"),
            y=alt.Y("cluster_name:N", sort="-x", title=None),
            tooltip=["cluster_name", "customers",
                     alt.Tooltip("revenue_share:Q", format=".1%")]), width="stretch")
    with right:
        st.altair_chart(alt.Chart(profiles).mark_circle().encode(
            x=alt.X("mean_recency_days:Q", title="mean recency (days)"),
            y=alt.Y("mean_monetary_total:Q", title="mean spend (USD)"),
            size="customers:Q", color="cluster_name:N",
            tooltip=["cluster_name", "customers",
                     alt.Tooltip("mean_orders:Q", format=".2f")]), width="stretch")
    st.dataframe(profiles, hide_index=True, width="stretch")
    if ui.require("rpt_customer_cluster_segments"):
        st.caption("Clusters against RFM segments: share of each cluster's customers.")
        st.altair_chart(alt.Chart(ui.query("cluster_segments")).mark_rect().encode(
            x=alt.X("rfm_segment:N", title=None), y=alt.Y("cluster_name:N", title=None),
            color=alt.Color("share_of_cluster:Q", scale=alt.Scale(scheme="blues")),
            tooltip=["cluster_name", "rfm_segment", "customers",
                     alt.Tooltip("share_of_cluster:Q", format=".1%")]),
            width="stretch")
