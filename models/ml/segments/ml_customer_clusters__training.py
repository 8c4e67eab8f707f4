"""Chooses k, fits the customer clusters and records the run (ml/segments.py); a
skipped run on data too short for them."""
from ml.evaluation import as_flag, train_or_skip
from ml.segments import train_clusters


def model(dbt, session):
    dbt.config(materialized="table")
    snapshots = dbt.ref("int_customer_cluster_features").df()
    k_range = [int(k) for k in dbt.config.get("k_range")]
    options = dict(
        seed=int(dbt.config.get("ml_seed")),
        k_range=(k_range[0], k_range[1]),
        horizon_days=int(dbt.config.get("horizon_days")),
        silhouette_sample=int(dbt.config.get("silhouette_sample")),
        stability_seeds=int(dbt.config.get("stability_seeds")),
        max_fit_rows=int(dbt.config.get("max_fit_rows")),
        n_samples=int(dbt.config.get("ml_bootstrap_samples")),
    )
    run = train_or_skip("customer_clusters", lambda: train_clusters(snapshots, **options),
                        strict=as_flag(dbt.config.get("ml_strict")))
    return run.to_frame()
