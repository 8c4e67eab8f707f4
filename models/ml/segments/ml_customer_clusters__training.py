"""Chooses k, evaluates and fits the customer clusters, records the run (ml/segments.py)."""
from ml.segments import train_clusters


def model(dbt, session):
    dbt.config(materialized="table")
    snapshots = dbt.ref("int_customer_cluster_features").df()
    k_range = [int(k) for k in dbt.config.get("k_range")]
    run = train_clusters(
        snapshots,
        seed=int(dbt.config.get("ml_seed")),
        k_range=(k_range[0], k_range[1]),
        horizon_days=int(dbt.config.get("horizon_days")),
        silhouette_sample=int(dbt.config.get("silhouette_sample")),
        stability_seeds=int(dbt.config.get("stability_seeds")),
        max_fit_rows=int(dbt.config.get("max_fit_rows")),
    )
    return run.to_frame()
