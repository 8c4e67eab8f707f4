"""The recommender's production run: the blend chosen on the validation day (the last
event date) beside every baseline, or a skipped run on too short a history
(ml/recommend.py, train_recommendations)."""
from ml.evaluation import as_flag, train_or_skip
from ml.recommend import HISTORY_FEATURES_SQL, train_recommendations

VALIDATION = "window_role = 'validation_train'"


def model(dbt, session):
    dbt.config(materialized="table")
    # dbt passes a config key to a Python model only when it is read by a literal name
    params = {"max_items_per_session": dbt.config.get("max_items_per_session"),
              "neighbours": dbt.config.get("neighbours"),
              "half_life_days": dbt.config.get("half_life_days"),
              "max_eval_users": dbt.config.get("max_eval_users"),
              "price_bands": dbt.config.get("price_bands")}
    windows = dbt.ref("int_recommend_windows").df()
    items = dbt.ref("int_recommend_item_popularity").filter(VALIDATION).df()
    neighbours = dbt.ref("int_recommend_item_neighbours").filter(VALIDATION).df()
    user_items = dbt.ref("int_recommend_user_items").filter("window_role != 'full'").df()
    # the production snapshot's user histories, aggregated in DuckDB (for the drift)
    production_features = (dbt.ref("int_recommend_user_items")
                           .filter("window_role = 'full'")
                           .aggregate(HISTORY_FEATURES_SQL, "user_id").df())
    planted = dbt.ref("int_recommend_planted_preferences").df()
    settings = {"n": int(dbt.config.get("top_n")),
                "n_samples": int(dbt.config.get("ml_bootstrap_samples")),
                "seed": int(dbt.config.get("ml_seed")),
                "min_history_days": int(dbt.config.get("min_history_days"))}
    strict = as_flag(dbt.config.get("ml_strict"))
    run = train_or_skip("recommendations", lambda: train_recommendations(
        windows, items, neighbours, user_items, planted=planted, params=params,
        production_features=production_features, **settings), strict=strict)
    return run.to_frame()
