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
if ui.require("ml_customer_clusters"):
    clusters = ui.query("clusters_summary")
    st.altair_chart(alt.Chart(clusters).mark_bar().encode(
        x="customers:Q", y=alt.Y("cluster_id:N", title="cluster"),
        tooltip=["cluster_id", "customers"]), width="stretch")
    if "ml_customer_cluster_profiles" in ui.database().tables():
        st.dataframe(ui.query("cluster_profiles"), hide_index=True, width="stretch")
