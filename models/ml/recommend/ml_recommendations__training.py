"""Evaluates the recommender on the cutoff day and records the run (ml/recommend.py,
train_recommendations)."""
from ml.recommend import Blend, train_recommendations


def model(dbt, session):
    dbt.config(materialized="table")
    # dbt passes a config key to a Python model only when it is read by a literal name
    blend = Blend(cf_weight=float(dbt.config.get("cf_weight")),
                  content_weight=float(dbt.config.get("content_weight")),
                  popularity_weight=float(dbt.config.get("popularity_weight")),
                  self_weight=float(dbt.config.get("self_weight")))
    run = train_recommendations(
        windows=dbt.ref("int_recommend_windows").df(),
        items=dbt.ref("int_recommend_item_popularity")
        .filter("window_role = 'train'").df(),
        neighbours=dbt.ref("int_recommend_item_neighbours")
        .filter("window_role = 'train'").df(),
        user_items=dbt.ref("int_recommend_user_items")
        .filter("window_role in ('train', 'test')").df(),
        planted=dbt.ref("int_recommend_planted_preferences").df(),
        n=int(dbt.config.get("top_n")),
        blend=blend,
        params={"max_items_per_session": dbt.config.get("max_items_per_session"),
                "neighbours": dbt.config.get("neighbours"),
                "half_life_days": dbt.config.get("half_life_days"),
                "max_eval_users": dbt.config.get("max_eval_users"),
                "price_bands": dbt.config.get("price_bands")},
    )
    return run.to_frame()
