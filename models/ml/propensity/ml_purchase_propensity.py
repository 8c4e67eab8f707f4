"""Scores the open carts and sessions as of the last event with the latest runs
(calibrated probabilities); a skipped task scores nothing."""
import pandas as pd

from ml.propensity import TASKS, empty_scores, score_propensity
from ml.registry import is_trained, load_model, run_of, with_run
from ml.relations import to_frame


def model(dbt, session):
    dbt.config(materialized="table")
    runs = dbt.ref("ml_purchase_propensity__training").df()
    open_rows = {
        "cart": dbt.ref("int_cart_events_features").filter("ml_role = 'score'"),
        "session": dbt.ref("int_session_prefix_features").filter("ml_role = 'score'"),
    }
    scores = []
    for task, rows in open_rows.items():
        record = run_of(runs, TASKS[task]["model_name"])
        scored = (score_propensity(load_model(record["model_artifact"]), to_frame(rows))
                  if is_trained(record) else empty_scores())
        scores.append(with_run(scored, record))
    # session_id travels through pandas as text; stored as the UUID of fct_sessions.
    # The casts give an empty (skipped) table the same types as a scored one.
    return session.from_df(pd.concat(scores, ignore_index=True)).project(
        "* replace (cast(task as varchar) as task,"
        " cast(prediction_id as varchar) as prediction_id,"
        " cast(session_id as uuid) as session_id,"
        " cast(predicted_at as timestamp) as predicted_at,"
        " cast(as_of_at as timestamp) as as_of_at)")
