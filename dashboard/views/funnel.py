"""View -> cart -> purchase funnel by category and by brand (sessions)."""
from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import ui

st.title("Funnel")
st.caption("Sessions that viewed, reached the cart (a cart or a purchase) and purchased "
           "in each category or brand (fct_funnel_daily). A session that touches two "
           "categories counts in both.")


def with_rates(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    viewed = frame["sessions_with_view"].where(frame["sessions_with_view"] > 0)
    reached = frame["sessions_reaching_cart"].where(frame["sessions_reaching_cart"] > 0)
    frame["view_to_cart"] = frame["sessions_reaching_cart"] / viewed
    frame["cart_to_purchase"] = frame["sessions_with_purchase"] / reached
    frame["conversion"] = frame["sessions_with_purchase"] / viewed
    return frame


def funnel_chart(frame: pd.DataFrame, key: str) -> alt.Chart:
    long = frame.melt(id_vars=[key], value_vars=["sessions_with_view",
                      "sessions_reaching_cart", "sessions_with_purchase"],
                      var_name="step", value_name="sessions")
    return alt.Chart(long).mark_bar().encode(
        y=alt.Y(f"{key}:N", sort="-x", title=None),
        x=alt.X("sessions:Q"),
        color=alt.Color("step:N", sort=["sessions_with_view", "sessions_reaching_cart",
                                        "sessions_with_purchase"]),
        yOffset=alt.YOffset("step:N", sort=["sessions_with_view",
                            "sessions_reaching_cart", "sessions_with_purchase"]),
        tooltip=[key, "step", alt.Tooltip("sessions:Q", format=",")])


by_category = with_rates(ui.filtered("funnel_by_category"))
total = by_category[["sessions_with_view", "sessions_reaching_cart",
                     "sessions_with_purchase"]].sum()
steps = st.columns(3)
steps[0].metric("Category-sessions with a view", f"{int(total.iloc[0]):,}", border=True)
steps[1].metric("... reaching the cart", f"{int(total.iloc[1]):,}",
                f"{100 * total.iloc[1] / max(total.iloc[0], 1):.1f}% of views",
                delta_color="off", delta_arrow="off", border=True)
steps[2].metric("... purchasing", f"{int(total.iloc[2]):,}",
                f"{100 * total.iloc[2] / max(total.iloc[1], 1):.1f}% of carts",
                delta_color="off", delta_arrow="off", border=True)

category_tab, brand_tab = st.tabs(["By category", "By brand"])
with category_tab:
    if by_category.empty:
        st.info("No funnel rows for these filters.")
    else:
        st.altair_chart(funnel_chart(by_category, "category_l1"), width="stretch")
        st.dataframe(by_category, hide_index=True, width="stretch")
with brand_tab:
    limit = st.slider("Brands (most viewed first)", 5, 50, 15, key="funnel_brands")
    by_brand = with_rates(ui.filtered("funnel_by_brand", limit=limit))
    if by_brand.empty:
        st.info("No funnel rows for these filters.")
    else:
        st.altair_chart(funnel_chart(by_brand, "brand"), width="stretch")
        st.dataframe(by_brand, hide_index=True, width="stretch")
