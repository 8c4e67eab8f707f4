"""Expected purchases and spend of every customer over the horizon, as of the last date."""
from ml.ltv import score_ltv
from ml.registry import load_model, run_of, with_run


def model(dbt, session):
    dbt.config(materialized="table")
    runs = dbt.ref("ml_ltv__training").df()
    bgnbd, xgboost = run_of(runs, "clv_bgnbd"), run_of(runs, "clv_xgboost")
    snapshot = (dbt.ref("int_customer_features_snapshots")
                .filter("snapshot_role = 'score'").df())
    scores = score_ltv(load_model(bgnbd["model_artifact"]),
                       load_model(xgboost["model_artifact"]), snapshot)
    return with_run(with_run(scores, bgnbd), xgboost, prefix="xgboost_")
