{{ config(
    materialized='incremental',
    unique_key='calibration_id',
    on_schema_change='append_new_columns',
) }}

-- Reliability tables: per run, task, test cutoff and stage (uncalibrated or
-- calibrated), one row per probability bin with the mean predicted probability
-- and the observed rate (ml/calibration.py).
with training_runs as (

    {{ ml_training_runs() }}

),

unnested as (

    select
        run_id,
        model_name,
        run_kind,
        -- recursive unnest names the struct fields as columns
        unnest(from_json(  -- noqa: AL03
            calibration_json,
            '[{"task": "VARCHAR", "cutoff": "DATE", "stage": "VARCHAR",
               "bin": "INTEGER", "lower": "DOUBLE", "upper": "DOUBLE",
               "n": "BIGINT", "mean_predicted": "DOUBLE",
               "observed_rate": "DOUBLE"}]'
        ), recursive := true)
    from training_runs

),

final as (

    select
        -- null-safe key: production tables have no cutoff
        {{ surrogate_key([
            'run_id', 'task', 'model_name', 'cutoff', 'stage', 'bin',
        ]) }} as calibration_id,
        run_id,
        model_name,
        run_kind,
        coalesce(task, model_name) as task_name,
        cutoff,
        stage,
        bin,
        lower as bin_lower,
        upper as bin_upper,
        n as n_rows,
        mean_predicted,
        observed_rate
    from unnested

)

select * from final
