"""Expected purchases and spend of every customer over the horizon, as of the last date
(empty when the runs were skipped for too short a history)."""
from ml.ltv import empty_ltv_scores, score_ltv
from ml.registry import is_trained, load_model, run_of, with_run


def model(dbt, session):
    dbt.config(materialized="table")
    runs = dbt.ref("ml_ltv__training").df()
    bgnbd, xgboost = run_of(runs, "clv_bgnbd"), run_of(runs, "clv_xgboost")
    if not (is_trained(bgnbd) and is_trained(xgboost)):
        return empty_ltv_scores()
    snapshot = (dbt.ref("int_customer_features_snapshots")
                .filter("snapshot_role = 'score'").df())
    scores = score_ltv(load_model(bgnbd["model_artifact"]),
                       load_model(xgboost["model_artifact"]), snapshot)
    return with_run(with_run(scores, bgnbd), xgboost, prefix="xgboost_")
