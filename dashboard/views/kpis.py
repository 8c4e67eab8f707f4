"""KPIs with trends: site-wide tiles against the previous period of the same length,
daily revenue and orders, and the filtered categories' and brands' revenue."""
from __future__ import annotations

from datetime import timedelta

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import ui

st.title("KPIs")
current = ui.filters()
days = (current.end - current.start).days + 1
trends = ui.filtered("daily_trends")
previous = ui.query("daily_trends", {
    **current.params(),
    "start": current.start - timedelta(days=days),
    "end": current.start - timedelta(days=1),
})


def totals(frame: pd.DataFrame) -> dict[str, float]:
    revenue, orders = frame["revenue"].sum(), frame["orders"].sum()
    sessions = frame["sessions"].sum()
    return {"revenue": revenue, "orders": orders, "buyer_days": frame["buyers"].sum(),
            "aov": revenue / orders if orders else float("nan"), "sessions": sessions,
            "conversion": (frame["converted_sessions"].sum() / sessions
                           if sessions else float("nan"))}


now, before = totals(trends), totals(previous)


def delta(key: str, percent_points: bool = False) -> str | None:
    if previous.empty or pd.isna(before[key]) or pd.isna(now[key]) or not before[key]:
        return None
    if percent_points:
        return f"{100 * (now[key] - before[key]):+.2f} pp"
    return f"{100 * (now[key] / before[key] - 1):+.1f}%"


st.caption(f"{current.start} to {current.end} ({days} days), site-wide; deltas against "
           f"the {days} days before. Category and brand filters apply to the chart below "
           "and to the other pages.")
tiles = st.columns(6)
tiles[0].metric("Revenue", ui.compact(now["revenue"], "$"), delta("revenue"),
                border=True, help=ui.money(now["revenue"]))
tiles[1].metric("Orders", ui.compact(now["orders"]), delta("orders"), border=True)
tiles[2].metric("Buyer-days", ui.compact(now["buyer_days"]), delta("buyer_days"),
                border=True, help="Sum over days of distinct buyers per day.")
tiles[3].metric("Average order value", "–" if pd.isna(now["aov"]) else
                f"${now['aov']:,.2f}", delta("aov"), border=True)
tiles[4].metric("Sessions", ui.compact(now["sessions"]), delta("sessions"), border=True)
tiles[5].metric("Session conversion", "–" if pd.isna(now["conversion"]) else
                f"{100 * now['conversion']:.2f}%", delta("conversion", True),
                border=True)

if trends.empty:
    st.info("No days in the selected range.")
else:
    st.subheader("Daily revenue and orders")
    base = alt.Chart(trends).encode(x=alt.X("trend_date:T", title=None))
    revenue = base.mark_line().encode(
        y=alt.Y("revenue:Q", title="revenue (USD)"),
        tooltip=["trend_date:T", alt.Tooltip("revenue:Q", format=",.0f"), "orders:Q"])
    spikes = base.transform_filter("datum.is_revenue_spike").mark_point(
        color="red", size=80).encode(y="revenue:Q")
    orders = base.mark_bar(opacity=0.3).encode(y=alt.Y("orders:Q", title="orders"))
    st.altair_chart(alt.layer(orders, revenue + spikes).resolve_scale(y="independent"),
                    width="stretch")
    st.caption("Red points: sale-spike days (revenue above the var trend_spike_ratio "
               "times the trailing 28-day median).")

    if current.categories or current.brands:
        st.subheader("Selected categories and brands")
        selected = ui.filtered("filtered_daily_revenue")
        share = selected["revenue"].sum() / now["revenue"] if now["revenue"] else 0.0
        st.caption(f"{ui.money(selected['revenue'].sum())} revenue, "
                   f"{selected['orders'].sum():,} orders: {100 * share:.1f}% of all "
                   "revenue in the range.")
        st.line_chart(selected, x="trend_date", y="revenue")
