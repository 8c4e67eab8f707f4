"""Top-N similar products per catalogue product: item-item CF, filled up with content
neighbours for cold products (ml/recommend.py, similar_products)."""
from ml.recommend import similar_products


def model(dbt, session):
    dbt.config(materialized="table")
    return similar_products(
        dbt.ref("int_recommend_item_neighbours").filter("window_role = 'full'").df(),
        dbt.ref("int_recommend_content_neighbours").df(),
        n=int(dbt.config.get("top_n")),
        min_co_sessions=int(dbt.config.get("min_co_sessions")),
    )
