-- Drift: warns when a feature of a model's latest production run moved between
-- the training snapshot and the scoring snapshot by a population stability
-- index above 0.25 (ml/drift.py), leaving out features that move with the
-- snapshot date by construction (tenure). A warning, not a failure: drift says
-- "look at this model again", not "its scores are wrong".
{{ config(severity='warn') }}

with runs as (

    select * from {{ ref('ml_model_runs') }}

),

drift as (

    select * from {{ ref('ml_feature_drift') }}

),

latest_runs as (

    select run_id
    from runs
    where run_kind = 'production' and status = 'trained'
    qualify row_number() over (
            partition by model_name order by trained_at desc
        ) = 1

),

final as (

    select
        drift.model_name,
        drift.task_name,
        drift.feature,
        drift.psi,
        drift.mean_reference,
        drift.mean_current
    from drift
    inner join latest_runs on drift.run_id = latest_runs.run_id
    where drift.psi > 0.25 and not drift.is_expected_shift

)

select * from final
