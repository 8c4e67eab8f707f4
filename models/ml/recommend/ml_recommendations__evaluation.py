"""Rolling-origin evaluation of the recommender and of the similar products: the blend
chosen on the validation day before the first test day, then each test day ranked from
the days before it, beside every baseline with intervals (ml/recommend.py,
evaluate_recommendations and evaluate_similar_products). One registry row per model."""
import pandas as pd

from ml.evaluation import as_flag, train_or_skip
from ml.recommend import evaluate_recommendations, evaluate_similar_products


def model(dbt, session):
    dbt.config(materialized="table", tags=["ml_evaluation"])
    strict = as_flag(dbt.config.get("ml_strict"))
    n = int(dbt.config.get("top_n"))
    n_samples = int(dbt.config.get("ml_bootstrap_samples"))
    seed = int(dbt.config.get("ml_seed"))
    min_history = int(dbt.config.get("min_history_days"))
    min_co_sessions = int(dbt.config.get("min_co_sessions"))
    windows = dbt.ref("int_recommend_evaluation_windows").df()
    items = dbt.ref("int_recommend_evaluation_item_popularity").df()
    neighbours = dbt.ref("int_recommend_evaluation_item_neighbours").df()
    user_items = dbt.ref("int_recommend_evaluation_user_items").df()
    planted = dbt.ref("int_recommend_planted_preferences").df()
    days = ", ".join(f"date '{windows[c].iloc[0]:%Y-%m-%d}'" for c in windows.columns
                     if c.startswith("cutoff_")) if len(windows) else "null"
    recommendations = train_or_skip("recommendations", lambda: evaluate_recommendations(
        windows, items, neighbours, user_items, planted=planted, n=n,
        n_samples=n_samples, seed=seed, min_history_days=min_history,
    ), strict=strict, run_kind="evaluation")
    sessions = (dbt.ref("int_recommend_session_items").filter(f"event_date in ({days})")
                .project("session_id, product_id, event_date").df())
    similar = train_or_skip("similar_products", lambda: evaluate_similar_products(
        windows, items, neighbours, sessions,
        n=n, min_co_sessions=min_co_sessions,
        n_samples=n_samples, seed=seed, min_history_days=min_history,
    ), strict=strict, run_kind="evaluation")
    return pd.concat([recommendations.to_frame(), similar.to_frame()], ignore_index=True)
