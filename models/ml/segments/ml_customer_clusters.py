"""Assigns every customer to a cluster with the latest customer_clusters run."""
from ml.registry import load_model, run_of, with_run
from ml.segments import score_clusters


def model(dbt, session):
    dbt.config(materialized="table")
    record = run_of(dbt.ref("ml_customer_clusters__training").df(),
                    "customer_clusters")
    snapshot = (dbt.ref("int_customer_cluster_features")
                .filter("snapshot_role = 'score'").df())
    clusters = score_clusters(load_model(record["model_artifact"]), snapshot)
    return with_run(clusters, record)
