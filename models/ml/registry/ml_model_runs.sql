{{ config(
    materialized='incremental',
    unique_key='run_id',
    on_schema_change='append_new_columns',
    post_hook=[
        "update {{ this }} set run_kind = 'production', status = 'trained'
         where run_kind is null",
    ],
) }}

-- The post-hook fills the columns of runs recorded before runs had a kind and a
-- status: every one of them was a production training run.

-- One row per run of any model, kept across builds: the history of what was
-- trained (production) or replayed on earlier cutoffs (evaluation), when, on
-- which windows, with which libraries, and whether it was skipped and why.
with training_runs as (

    {{ ml_training_runs() }}

),

final as (

    select
        run_id,
        model_name,
        run_kind,
        status,
        status_reason,
        trained_at,
        train_start,
        train_end,
        label_start,
        label_end,
        n_train,
        n_test,
        params_json,
        library_versions_json,
        is_below_baseline
    from training_runs

)

select * from final
