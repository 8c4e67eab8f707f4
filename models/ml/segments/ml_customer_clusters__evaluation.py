"""Replays the customer clusters' procedure at the test cutoffs and records the
evaluation run (ml/segments.py, docs/evaluation.md)."""
from ml.evaluation import as_flag
from ml.segments import evaluate_clusters_or_skip


def model(dbt, session):
    dbt.config(materialized="table", tags=["ml_evaluation"])
    k_range = [int(k) for k in dbt.config.get("k_range")]
    run = evaluate_clusters_or_skip(
        dbt.ref("int_customer_cluster_evaluation_snapshots").df(),
        strict=as_flag(dbt.config.get("ml_strict")),
        seed=int(dbt.config.get("ml_seed")),
        k_range=(k_range[0], k_range[1]),
        horizon_days=int(dbt.config.get("horizon_days")),
        step_days=int(dbt.config.get("step_days")),
        n_cutoffs=int(dbt.config.get("n_cutoffs")),
        silhouette_sample=int(dbt.config.get("silhouette_sample")),
        max_fit_rows=int(dbt.config.get("max_fit_rows")),
        n_samples=int(dbt.config.get("ml_bootstrap_samples")),
    )
    return run.to_frame()
