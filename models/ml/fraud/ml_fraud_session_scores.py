"""Fraud scores per session: the session's own rule flags blended with its user's
isolation score, from the latest fraud training run (no rows when it was skipped).

Thin wrapper over ml.fraud.score_sessions, fed in batches so memory stays bounded by
the batch, not by the number of sessions.
"""
import pyarrow as pa

from ml.fraud import SESSION_SCORE_COLUMNS, empty_session_scores, score_sessions
from ml.registry import is_trained, latest_record, load_model, run_columns_sql

BATCH_ROWS = 1_000_000


def model(dbt, session):
    dbt.config(materialized="table")
    run = latest_record(dbt.ref("ml_fraud__training").df())
    run_id, below_baseline = run_columns_sql(run)
    if not is_trained(run):
        empty = pa.Table.from_pandas(empty_session_scores(), preserve_index=False)
        return session.from_arrow(empty).project(
            f"cast(session_id as uuid) as session_id, user_id, {run_id}, "
            f"* exclude (session_id, user_id), {below_baseline}")
    fraud_model = load_model(run["model_artifact"])
    user_isolation = (dbt.ref("ml_fraud_user_scores")
                      .select("user_id, isolation_score").df())
    reader = (dbt.ref("int_fraud_session_features")
              .select(", ".join(SESSION_SCORE_COLUMNS)).to_arrow_reader(BATCH_ROWS))

    def scored(features):
        scores = score_sessions(fraud_model, features, user_isolation)
        return pa.Table.from_pandas(scores, preserve_index=False)

    parts = [scored(batch.to_pandas()) for batch in reader]
    if not parts:  # no sessions: an empty table of the same shape
        parts = [scored(reader.schema.empty_table().to_pandas())]
    # session_id travels through arrow as text; stored as the UUID of fct_sessions
    return session.from_arrow(pa.concat_tables(parts)).project(
        f"cast(session_id as uuid) as session_id, user_id, {run_id}, "
        f"* exclude (session_id, user_id), {below_baseline}")
