-- The ML guardrail: warns (does not fail the build) when the latest run of a
-- model is worse than its baseline on a primary metric. The run is flagged in
-- ml_model_runs and its scores carry is_model_below_baseline.
{{ config(severity='warn') }}

with latest_runs as (

    select
        run_id,
        model_name
    from {{ ref('ml_model_runs') }}
    qualify row_number() over (
            partition by model_name order by trained_at desc
        ) = 1

),

metrics as (

    select * from {{ ref('ml_model_metrics') }}

),

final as (

    select
        latest_runs.model_name,
        metrics.metric,
        metrics.split,
        metrics.value,
        metrics.baseline,
        metrics.baseline_value
    from latest_runs
    inner join metrics on latest_runs.run_id = metrics.run_id
    where metrics.is_primary and not metrics.beats_baseline

)

select * from final
