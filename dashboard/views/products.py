"""Top products and brands in the date range, for the filtered categories and brands."""
from __future__ import annotations

import altair as alt
import streamlit as st

from dashboard import ui

st.title("Products and brands")
limit = st.slider("Rows", 10, 100, 25, key="products_limit")
products = ui.filtered("top_products", limit=limit)
brands = ui.filtered("top_brands", limit=limit)
for frame in (products, brands):
    frame["view_to_purchase_rate"] = frame["purchases"] / frame["views"].where(
        frame["views"] > 0)

brand_tab, product_tab = st.tabs(["Brands", "Products"])
with brand_tab:
    if brands.empty:
        st.info("No brand activity for these filters.")
    else:
        st.altair_chart(alt.Chart(brands).mark_bar().encode(
            x=alt.X("revenue:Q", title="revenue (USD)"),
            y=alt.Y("brand:N", sort="-x", title=None),
            tooltip=["brand", alt.Tooltip("revenue:Q", format=",.0f"), "purchases",
                     "views", alt.Tooltip("view_to_purchase_rate:Q", format=".2%")]),
            width="stretch")
        st.dataframe(brands, hide_index=True, width="stretch")
with product_tab:
    if products.empty:
        st.info("No product activity for these filters.")
    else:
        st.dataframe(products, hide_index=True, width="stretch",
                     column_config={"product_id": st.column_config.NumberColumn(
                         format="%d")})
st.caption("From fct_product_funnel (product x day) and dim_products; revenue is the "
           "sum of purchase prices.")
