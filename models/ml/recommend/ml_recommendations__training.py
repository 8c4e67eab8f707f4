"""Evaluates the recommender on the cutoff day and records the run (ml/recommend.py,
train_recommendations)."""
from ml.recommend import Blend, train_recommendations


def model(dbt, session):
    dbt.config(materialized="table")
    blend = Blend(**{name: float(dbt.config.get(name)) for name in
                     ("cf_weight", "content_weight", "popularity_weight", "self_weight")})
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
        params={name: dbt.config.get(name) for name in
                ("max_items_per_session", "neighbours", "half_life_days",
                 "max_eval_users", "price_bands")},
    )
    return run.to_frame()
