"""Rolling-origin evaluation of the price-elasticity model (selector `evaluate`): traffic
and conversion fitted before each of ml_evaluation_cutoffs test cutoffs, scored once on
the next ml_label_horizon_days days beside the no-price-effect baseline
(ml/elasticity.py, evaluate_price_elasticity)."""
from ml.elasticity import MODEL_NAME, evaluate_price_elasticity
from ml.evaluation import as_flag, train_or_skip


def _optional_int(value):
    return None if value in (None, "", "None", "none", "null") else int(value)


def model(dbt, session):
    dbt.config(materialized="table", tags=["ml_evaluation"])
    # every spell with views: each cutoff's products come from its own training days
    cells = dbt.ref("int_product_price_spells_aggregated").filter("views > 0").df()
    options = dict(
        horizon_days=int(dbt.config.get("horizon_days")),
        step_days=int(dbt.config.get("ml_evaluation_step_days")),
        n_cutoffs=int(dbt.config.get("ml_evaluation_cutoffs")),
        seed=int(dbt.config.get("seed")),
        max_products_per_category=_optional_int(
            dbt.config.get("max_products_per_category")),
        n_bootstrap=int(dbt.config.get("ml_bootstrap_samples")),
    )
    run = train_or_skip(MODEL_NAME, lambda: evaluate_price_elasticity(cells, **options),
                        strict=as_flag(dbt.config.get("ml_strict")), run_kind="evaluation")
    return run.to_frame()
