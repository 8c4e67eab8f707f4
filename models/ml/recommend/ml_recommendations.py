"""Top-N products for every active user as of the day after the last event, with the
blend of the latest recommendations run (ml/recommend.py, recommend)."""
import numpy as np
import pandas as pd
import pyarrow as pa

from ml.ltv import run_of, with_run
from ml.recommend import Blend, Catalogue, recommend


def model(dbt, session):
    dbt.config(materialized="table")
    record = run_of(dbt.ref("ml_recommendations__training").df(), "recommendations")
    # dbt passes a config key to a Python model only when it is read by a literal name
    blend = Blend(cf_weight=float(dbt.config.get("cf_weight")),
                  content_weight=float(dbt.config.get("content_weight")),
                  popularity_weight=float(dbt.config.get("popularity_weight")),
                  self_weight=float(dbt.config.get("self_weight")))
    # only the columns the scorer uses: a month has tens of millions of user items
    catalogue = Catalogue(
        dbt.ref("int_recommend_item_popularity").filter("window_role = 'full'")
        .project("product_id, category_id, category_l1, popularity").df(),
        dbt.ref("int_recommend_item_neighbours").filter("window_role = 'full'")
        .project("product_id, neighbour_product_id, similarity").df())
    user_items = (dbt.ref("int_recommend_user_items").filter("window_role = 'full'")
                  .project("user_id, product_id, interaction_weight, is_purchased").df())
    recs = recommend(user_items, catalogue, n=int(dbt.config.get("top_n")), blend=blend)
    # a DATE column, as in the windows model (a pandas datetime would land as TIMESTAMP)
    as_of = dbt.ref("int_recommend_windows").project("as_of_date").fetchall()[0][0]
    days = np.full(len(recs), np.datetime64(as_of, "D"))
    as_of_dates = pd.arrays.ArrowExtensionArray(pa.array(days, type=pa.date32()))
    return with_run(recs.assign(as_of_date=as_of_dates), record)
