"""Chooses the recommender's blend on the validation day, evaluates it on the cutoff day
and records the run (ml/recommend.py, train_recommendations)."""
from ml.recommend import train_recommendations

CATALOGUE_WINDOWS = "window_role in ('validation_train', 'train')"


def model(dbt, session):
    dbt.config(materialized="table")
    run = train_recommendations(
        windows=dbt.ref("int_recommend_windows").df(),
        items=dbt.ref("int_recommend_item_popularity").filter(CATALOGUE_WINDOWS).df(),
        neighbours=dbt.ref("int_recommend_item_neighbours").filter(CATALOGUE_WINDOWS).df(),
        user_items=dbt.ref("int_recommend_user_items")
        .filter("window_role != 'full'").df(),
        planted=dbt.ref("int_recommend_planted_preferences").df(),
        # dbt passes a config key to a Python model only when it is read by a literal name
        n=int(dbt.config.get("top_n")),
        params={"max_items_per_session": dbt.config.get("max_items_per_session"),
                "neighbours": dbt.config.get("neighbours"),
                "half_life_days": dbt.config.get("half_life_days"),
                "max_eval_users": dbt.config.get("max_eval_users"),
                "price_bands": dbt.config.get("price_bands")},
    )
    return run.to_frame()
