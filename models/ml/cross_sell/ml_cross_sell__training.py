"""Cross-sell production run: the slot policy (top-up with popular items or not, how
many rules) chosen on the validation split with rules mined before it, beside
popularity; or a skipped run on too short a history.

Thin wrapper over ml.cross_sell.train_cross_sell; returns the one-row registry record.
"""
from ml.cross_sell import train_cross_sell
from ml.evaluation import as_flag, train_or_skip
from ml.relations import to_frame


def model(dbt, session):
    dbt.config(materialized="table")
    rules = dbt.ref("int_cross_sell_rules_mined").filter("mining_window = 'train'").df()
    items = dbt.ref("int_cross_sell_items_counted").filter("mining_window = 'train'").df()
    baskets = dbt.ref("int_cross_sell_baskets")
    validation_baskets = to_frame(baskets.filter(
        "split = 'test' and not is_oversized and basket_items >= 2"
    ))
    dates = baskets.aggregate(
        "min(session_date) as first_date,"
        " min(session_date) filter (where split = 'test') as validation_start,"
        " max(session_date) + 1 as end_date"
    ).df()
    params = {
        "min_support": float(dbt.config.get("min_support")),
        "min_pair_sessions": int(dbt.config.get("min_pair_sessions")),
        "min_confidence": float(dbt.config.get("min_confidence")),
        "max_basket_products": int(dbt.config.get("max_basket_products")),
        "test_days": int(dbt.config.get("test_days")),
    }
    n_samples = int(dbt.config.get("ml_bootstrap_samples"))
    seed = int(dbt.config.get("ml_seed"))
    strict = as_flag(dbt.config.get("ml_strict"))
    first, start, end = (dates[c].iloc[0] for c in ("first_date", "validation_start",
                                                    "end_date"))
    run = train_or_skip("cross_sell", lambda: train_cross_sell(
        rules, items, validation_baskets, train_window=(first, start),
        validation_window=(start, end), params=params, n_samples=n_samples, seed=seed,
    ), strict=strict)
    return run.to_frame()
