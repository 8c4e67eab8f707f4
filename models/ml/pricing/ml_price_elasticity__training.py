"""Training run of the price-elasticity model (see ml/elasticity.py).

Reads the product x day x price cells of products with several prices and some
purchases, fits PPML log-log demand with product and day fixed effects per
category_l1, evaluates it out of time against the same model without a price
effect, runs the shuffled-price placebo, and returns the registry record.
"""
from ml.elasticity import train_price_elasticity


def _optional_int(value):
    return None if value in (None, "", "None", "none", "null") else int(value)


def model(dbt, session):
    dbt.config(materialized="table")
    cells = (
        dbt.ref("int_product_price_spells_aggregated")
        .filter("is_estimable and product_distinct_prices >= 2"
                " and product_purchases >= 1")
        .df()
    )
    run = train_price_elasticity(
        cells,
        cutoff_date=dbt.config.get("cutoff_date"),
        horizon_days=int(dbt.config.get("horizon_days")),
        seed=int(dbt.config.get("seed")),
        max_products_per_category=_optional_int(
            dbt.config.get("max_products_per_category")),
    )
    return run.to_frame()
