"""The fraud review queue (rpt_fraud_review_queue) with the rule reasons."""
from __future__ import annotations

import altair as alt
import streamlit as st

from dashboard import ui

st.title("Fraud review queue")
# 0 keeps the users queued for the isolation forest's score alone (ISOLATION_OUTLIER)
min_flags = st.slider("At least this many rule flags", 0, 6, 0, key="fraud_min_flags")
queue = ui.query("fraud_queue", {"min_flags": min_flags, "limit": 500})
cols = st.columns(3)
cols[0].metric("Users in the queue", f"{len(queue):,}", border=True)
cols[1].metric("Their revenue", ui.money(queue["revenue"].sum()), border=True)
cols[2].metric("Median fraud score", f"{queue['fraud_score'].median():.2f}"
               if len(queue) else "–", border=True)
ui.model_metrics(["fraud"])
reasons = ui.query("fraud_reasons")
if not reasons.empty:
    st.altair_chart(alt.Chart(reasons).mark_bar().encode(
        x="users:Q", y=alt.Y("reason:N", sort="-x", title=None)), width="stretch")
st.dataframe(queue, hide_index=True, width="stretch", column_config={
    "user_id": st.column_config.NumberColumn(format="%d"),
    "fraud_score": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0)})
st.caption("Review first from the top. Whole history; the sidebar filters do not apply.")
