"""Assigns every customer to a cluster with the latest customer_clusters run; a
skipped run assigns nobody."""
from ml.registry import is_trained, load_model, run_of, with_run
from ml.segments import empty_clusters, score_clusters


def model(dbt, session):
    dbt.config(materialized="table")
    record = run_of(dbt.ref("ml_customer_clusters__training").df(),
                    "customer_clusters")
    snapshot = (dbt.ref("int_customer_cluster_features")
                .filter("snapshot_role = 'score'").df())
    clusters = (score_clusters(load_model(record["model_artifact"]), snapshot)
                if is_trained(record) else empty_clusters())
    # The casts give an empty (skipped) table the same types as a scored one.
    return session.from_df(with_run(clusters, record)).project(
        "* replace (cast(as_of_date as date) as as_of_date,"
        " cast(cluster_name as varchar) as cluster_name,"
        + ", ".join(f" cast({name} as integer) as {name}" for name in
                    ("recency_days", "orders", "days_since_last_visit", "sessions",
                     "carts")) + ")")
