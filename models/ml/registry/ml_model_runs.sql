{{ config(materialized='incremental', unique_key='run_id') }}

-- One row per training run of any model, kept across builds: the history of
-- what was trained, when, on which windows, with which libraries.
with training_runs as (

    {{ ml_training_runs() }}

),

final as (

    select
        run_id,
        model_name,
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
