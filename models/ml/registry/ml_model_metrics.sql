{{ config(
    materialized='incremental',
    unique_key=['run_id', 'metric', 'split'],
) }}

-- One row per run × metric × evaluation split, with the baseline's value of
-- the same metric beside the model's.
with training_runs as (

    {{ ml_training_runs() }}

),

unnested as (

    select
        run_id,
        model_name,
        -- recursive unnest names the struct fields as columns
        unnest(from_json(  -- noqa: AL03
            metrics_json,
            '[{"metric": "VARCHAR", "split": "VARCHAR", "value": "DOUBLE",
               "baseline": "VARCHAR", "baseline_value": "DOUBLE",
               "higher_is_better": "BOOLEAN", "is_primary": "BOOLEAN",
               "beats_baseline": "BOOLEAN"}]'
        ), recursive := true)
    from training_runs

),

final as (

    select
        run_id,
        model_name,
        metric,
        split,
        value,
        baseline,
        baseline_value,
        higher_is_better,
        is_primary,
        beats_baseline
    from unnested

)

select * from final
