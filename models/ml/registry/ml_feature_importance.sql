{{ config(materialized='incremental', unique_key=['run_id', 'feature']) }}

-- One row per run × feature: the fitted model's importance of the feature
-- (gain for tree models; the model's own measure otherwise, see its docs).
with training_runs as (

    {{ ml_training_runs() }}

),

unnested as (

    select
        run_id,
        model_name,
        -- recursive unnest names the struct fields as columns
        unnest(from_json(  -- noqa: AL03
            feature_importance_json,
            '[{"feature": "VARCHAR", "importance": "DOUBLE"}]'
        ), recursive := true)
    from training_runs

),

final as (

    select
        run_id,
        model_name,
        feature,
        importance,
        row_number() over (
            partition by run_id
            order by importance desc, feature asc
        ) as importance_rank
    from unnested

)

select * from final
