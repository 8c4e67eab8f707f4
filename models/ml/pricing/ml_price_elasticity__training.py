"""Training run of the price-elasticity model (see ml/elasticity.py).

Reads the product x day x price cells with views, fits PPML traffic (views per
product-day) and conversion (purchases per view) models with product and day fixed
effects per category_l1, validates both out of time against the same models without a
price effect, runs the shuffled-price placebo, compares with the planted elasticities
when a generator's truth is loaded, and returns the registry record (a skipped run when
the cells are too short, unless var ml_strict).
"""
from ml.elasticity import MODEL_NAME, train_price_elasticity
from ml.evaluation import as_flag, train_or_skip


def _optional_int(value):
    return None if value in (None, "", "None", "none", "null") else int(value)


def model(dbt, session):
    dbt.config(materialized="table")
    cells = dbt.ref("int_product_price_spells_aggregated").filter("views > 0").df()
    planted = dbt.ref("int_price_planted_elasticities").df()
    options = dict(
        cutoff_date=dbt.config.get("cutoff_date"),
        horizon_days=int(dbt.config.get("horizon_days")),
        seed=int(dbt.config.get("seed")),
        max_products_per_category=_optional_int(
            dbt.config.get("max_products_per_category")),
        n_bootstrap=int(dbt.config.get("ml_bootstrap_samples")),
        planted=planted,
    )
    run = train_or_skip(MODEL_NAME, lambda: train_price_elasticity(cells, **options),
                        strict=as_flag(dbt.config.get("ml_strict")))
    return run.to_frame()
