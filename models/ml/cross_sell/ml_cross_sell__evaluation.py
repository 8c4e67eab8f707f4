"""Rolling-origin evaluation of the cross-sell rules: the slot policy chosen on the
validation window with rules mined before it, then each test window judged with rules
mined strictly before it, beside popularity with intervals over basket sessions
(ml.cross_sell.evaluate_cross_sell_rolling). One registry row."""
from ml.cross_sell import evaluate_cross_sell_rolling
from ml.evaluation import as_flag, train_or_skip
from ml.relations import to_frame


def model(dbt, session):
    dbt.config(materialized="table", tags=["ml_evaluation"])
    windows = dbt.ref("int_cross_sell_evaluation_windows").df()
    rules = dbt.ref("int_cross_sell_evaluation_rules_mined").project(
        "mining_window, basket_level, antecedent_id, consequent_id, rule_rank").df()
    items = dbt.ref("int_cross_sell_evaluation_items_counted").project(
        "mining_window, basket_level, item_id, item_sessions, n_sessions,"
        " popularity_rank").df()
    first_start = windows["start_date"].min() if len(windows) else None
    baskets = to_frame(dbt.ref("int_cross_sell_baskets").filter(
        "not is_oversized and basket_items >= 2"
        + (f" and session_date >= date '{first_start:%Y-%m-%d}'" if first_start else "")
    ).project("session_id, session_date, basket_level, item_id, item_order, basket_items"))
    params = {
        "min_support": float(dbt.config.get("min_support")),
        "min_pair_sessions": int(dbt.config.get("min_pair_sessions")),
        "min_confidence": float(dbt.config.get("min_confidence")),
        "max_basket_products": int(dbt.config.get("max_basket_products")),
    }
    n_samples = int(dbt.config.get("ml_bootstrap_samples"))
    seed = int(dbt.config.get("ml_seed"))
    strict = as_flag(dbt.config.get("ml_strict"))
    run = train_or_skip("cross_sell", lambda: evaluate_cross_sell_rolling(
        windows, rules, items, baskets, params, n_samples=n_samples, seed=seed,
    ), strict=strict, run_kind="evaluation")
    return run.to_frame()
