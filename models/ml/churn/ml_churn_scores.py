"""Scores every customer as of the last event date with the latest churn run (empty when
the run was skipped for too short a history)."""
from ml.churn import empty_churn_scores, score_churn
from ml.registry import is_trained, load_model, run_of, with_run


def model(dbt, session):
    dbt.config(materialized="table")
    record = run_of(dbt.ref("ml_churn__training").df(), "churn")
    if not is_trained(record):
        return empty_churn_scores()
    snapshot = (dbt.ref("int_customer_features_snapshots")
                .filter("snapshot_role = 'score'").df())
    top_n = dbt.config.get("churn_exact_reasons_top_n")
    scores = score_churn(load_model(record["model_artifact"]), snapshot,
                         exact_reasons_top_n=None if top_n in (None, "None") else int(top_n))
    return with_run(scores, record)
