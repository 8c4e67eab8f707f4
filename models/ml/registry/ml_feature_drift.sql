{{ config(
    materialized='incremental',
    unique_key=['run_id', 'task_name', 'feature'],
    on_schema_change='append_new_columns',
) }}

-- One row per production run × feature: the population stability index between
-- the snapshot the model was trained on and the one it scores (ml/drift.py).
with training_runs as (

    {{ ml_training_runs() }}

),

unnested as (

    select
        run_id,
        model_name,
        -- recursive unnest names the struct fields as columns
        unnest(from_json(  -- noqa: AL03
            drift_json,
            '[{"task": "VARCHAR", "feature": "VARCHAR", "psi": "DOUBLE",
               "n_reference": "BIGINT", "n_current": "BIGINT",
               "mean_reference": "DOUBLE", "mean_current": "DOUBLE",
               "is_expected_shift": "BOOLEAN", "psi_note": "VARCHAR",
               "is_drifted": "BOOLEAN"}]'
        ), recursive := true)
    from training_runs
    where run_kind = 'production'

),

final as (

    select
        run_id,
        model_name,
        coalesce(task, model_name) as task_name,
        feature,
        psi,
        n_reference,
        n_current,
        mean_reference,
        mean_current,
        coalesce(is_expected_shift, false) as is_expected_shift,
        psi_note,
        is_drifted
    from unnested

)

select * from final
