"""Price elasticity per category with 95% intervals, and the price recommendations."""
from __future__ import annotations

import altair as alt
import streamlit as st

from dashboard import ui

st.title("Price elasticity")
current = ui.filters()
ui.model_metrics(["price_elasticity"])
elasticities = ui.query("elasticities", {"categories": list(current.categories)})
if elasticities.empty:
    st.info("No elasticity estimates for the selected categories.")
else:
    base = alt.Chart(elasticities).encode(y=alt.Y("category_l1:N", sort="x", title=None))
    st.altair_chart(
        base.mark_rule().encode(x=alt.X("ci_low:Q", title="elasticity (95% interval)"),
                                x2="ci_high:Q")
        + base.mark_point(filled=True, size=70).encode(
            x="elasticity:Q", color="has_enough_data:N",
            tooltip=["category_l1", alt.Tooltip("elasticity:Q", format=".2f"),
                     alt.Tooltip("ci_low:Q", format=".2f"),
                     alt.Tooltip("ci_high:Q", format=".2f"),
                     alt.Tooltip("traffic_elasticity:Q", format=".2f"),
                     alt.Tooltip("conversion_elasticity:Q", format=".2f"),
                     alt.Tooltip("placebo_elasticity:Q", format=".2f"),
                     "n_products", "purchases"]),
        width="stretch")
    st.caption("A 1% price rise changes units sold by about `elasticity` %: the sum of "
               "its effect on views (traffic) and on purchases per view (conversion). "
               "Placebo: the same fit on shuffled prices (should be near 0).")

st.subheader("Recommendations")
limit = st.slider("Products", 10, 200, 50, key="pricing_limit")
recommendations = ui.query("price_recommendations",
                           {"categories": list(current.categories), "limit": limit})
if recommendations.empty:
    st.info("No recommendations for the selected categories.")
else:
    st.dataframe(recommendations, hide_index=True, width="stretch", column_config={
        "product_id": st.column_config.NumberColumn(format="%d"),
        "price_change": st.column_config.NumberColumn(format="percent")})
    st.caption("Largest expected gain per day first; prices stay within the var "
               "price_change_band of today's price. A change is recommended only when the "
               "95% interval of its gain excludes 0, otherwise `keep`. "
               "is_optimum_at_band_edge: the best price is an edge of the band.")
