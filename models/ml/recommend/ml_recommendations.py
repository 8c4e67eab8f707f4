"""Top-N products for every active user as of the day after the last event, with the
blend the latest recommendations run chose on its validation day (ml/recommend.py,
recommend); empty, with the same columns, when that run was skipped."""
from ml.recommend import Catalogue, blend_of, empty_recommendations, recommend
from ml.registry import is_trained, run_columns_sql, run_of


def model(dbt, session):
    dbt.config(materialized="table")
    record = run_of(dbt.ref("ml_recommendations__training").df(), "recommendations")
    if is_trained(record):
        # only the columns the scorer uses: a month has tens of millions of user items
        catalogue = Catalogue(
            dbt.ref("int_recommend_item_popularity").filter("window_role = 'full'")
            .project("product_id, category_id, category_l1, popularity").df(),
            dbt.ref("int_recommend_item_neighbours").filter("window_role = 'full'")
            .project("product_id, neighbour_product_id, similarity").df())
        user_items = (dbt.ref("int_recommend_user_items").filter("window_role = 'full'")
                      .project("user_id, product_id, interaction_weight, is_purchased").df())
        recs = recommend(user_items, catalogue, n=int(dbt.config.get("top_n")),
                         blend=blend_of(record["params_json"]))
    else:
        recs = empty_recommendations()
    as_of = dbt.ref("int_recommend_windows").project("as_of_date").fetchall()[0][0]
    # the date and the run as constants of the query: a month has tens of millions of rows
    return session.from_df(recs).project(
        f"*, date '{as_of.isoformat()}' as as_of_date, {', '.join(run_columns_sql(record))}")
