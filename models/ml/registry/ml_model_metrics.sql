{{ config(
    materialized='incremental',
    unique_key='metric_id',
    on_schema_change='append_new_columns',
    post_hook=[
        "update {{ this }} set run_kind = 'production',
             metric_id = {{ surrogate_key(['run_id', 'metric', 'split', 'cutoff',
                                            'baseline']) }}
         where metric_id is null",
    ],
) }}

-- The post-hook keys the metrics recorded before metrics had a key and a run
-- kind (all from production runs).

-- One row per run × metric × split × test cutoff × baseline: the model's value
-- and the baseline's on the same data, each with its bootstrap interval, the
-- interval of their difference and the verdict it gives.
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
            metrics_json,
            '[{"metric": "VARCHAR", "split": "VARCHAR", "cutoff": "DATE",
               "value": "DOUBLE", "ci_low": "DOUBLE", "ci_high": "DOUBLE",
               "baseline": "VARCHAR", "baseline_value": "DOUBLE",
               "baseline_ci_low": "DOUBLE", "baseline_ci_high": "DOUBLE",
               "diff_ci_low": "DOUBLE", "diff_ci_high": "DOUBLE",
               "higher_is_better": "BOOLEAN", "is_primary": "BOOLEAN",
               "beats_baseline": "BOOLEAN", "verdict": "VARCHAR",
               "undefined_reason": "VARCHAR", "n_units": "BIGINT"}]'
        ), recursive := true)
    from training_runs

),

final as (

    select
        {{ surrogate_key(['run_id', 'metric', 'split', 'cutoff', 'baseline']) }}
            as metric_id,
        run_id,
        model_name,
        run_kind,
        metric,
        split,
        cutoff,
        value,
        ci_low,
        ci_high,
        baseline,
        baseline_value,
        baseline_ci_low,
        baseline_ci_high,
        value - baseline_value as diff,
        diff_ci_low,
        diff_ci_high,
        verdict,
        higher_is_better,
        is_primary,
        beats_baseline,
        undefined_reason,
        n_units
    from unnested

)

select * from final
