"""Cross-sell training run: rules mined in SQL on the train split, tested on the later
test split beside popularity.

Thin wrapper over ml.cross_sell.train_cross_sell; returns the one-row registry record.
"""
from ml.cross_sell import train_cross_sell
from ml.relations import to_frame


def model(dbt, session):
    dbt.config(materialized="table")
    rules = dbt.ref("int_cross_sell_rules_mined").filter("mining_window = 'train'").df()
    items = dbt.ref("int_cross_sell_items_counted").filter("mining_window = 'train'").df()
    baskets = dbt.ref("int_cross_sell_baskets")
    test_baskets = to_frame(baskets.filter(
        "split = 'test' and not is_oversized and basket_items >= 2"
    ))
    test_dates = baskets.filter("split = 'test'").aggregate(
        "min(session_date) as first_date, max(session_date) + 1 as end_date"
    ).df()
    train_dates = items.loc[:, ["window_start_date", "window_end_date"]]
    params = {
        "min_support": float(dbt.config.get("min_support")),
        "min_pair_sessions": int(dbt.config.get("min_pair_sessions")),
        "min_confidence": float(dbt.config.get("min_confidence")),
        "max_basket_products": int(dbt.config.get("max_basket_products")),
        "test_days": int(dbt.config.get("test_days")),
    }
    run = train_cross_sell(
        rules,
        items,
        test_baskets,
        train_window=(train_dates["window_start_date"].min(),
                      train_dates["window_end_date"].max()),
        test_window=(test_dates["first_date"].iloc[0], test_dates["end_date"].iloc[0]),
        params=params,
    )
    return run.to_frame()
