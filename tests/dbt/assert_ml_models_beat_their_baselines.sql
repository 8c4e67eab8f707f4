-- The ML guardrail: fails when the latest evaluation of a model finds it worse
-- than a baseline on a primary metric, i.e. the bootstrap interval of model
-- minus baseline lies wholly on the losing side, at some test cutoff. An
-- inconclusive margin or an undefined metric is not a failure: the model card
-- and ml.report show both. Severity follows var ml_guardrail_severity.
{{ config(severity=var('ml_guardrail_severity', 'error')) }}

with runs as (

    select * from {{ ref('ml_model_runs') }}

),

metrics as (

    select * from {{ ref('ml_model_metrics') }}

),

latest_runs as (

    select
        run_id,
        model_name
    from runs
    where run_kind = 'evaluation'
    qualify row_number() over (
            partition by model_name order by trained_at desc
        ) = 1

),

final as (

    select
        latest_runs.model_name,
        metrics.metric,
        metrics.split,
        metrics.cutoff,
        metrics.value,
        metrics.baseline,
        metrics.baseline_value,
        metrics.diff_ci_low,
        metrics.diff_ci_high
    from latest_runs
    inner join metrics on latest_runs.run_id = metrics.run_id
    where metrics.is_primary and metrics.verdict = 'worse'

)

select * from final
