{{ config(materialized='table', tags=['ml_evaluation']) }}

-- The customer snapshots of the rolling-origin evaluation (selector evaluate):
-- for each of the var ml_evaluation_cutoffs test cutoffs, var
-- ml_evaluation_step_days apart, the last one's labels ending on the last
-- event date, the snapshots at the cutoff (test), cutoff - H (validation) and
-- cutoff - 2H (train), H = var ml_label_horizon_days. Same columns and rules
-- as int_customer_features_snapshots (macro customer_feature_snapshot_ctes);
-- a production build does not compute them.
{%- set horizon = var('ml_label_horizon_days') | int %}
{%- set step = var('ml_evaluation_step_days') | int %}
{%- set n_cutoffs = var('ml_evaluation_cutoffs') | int %}
with purchases as (

    select * from {{ ref('int_purchases') }}
    where is_customer_purchase

),

visits as (

    select * from {{ ref('int_customer_visits') }}

),

bounds as (

    select max(visit_date) as last_event_date
    from visits

),

offsets as (

    -- days from the last event date back to each snapshot date
    {%- set days_back = [] %}
    {%- for cutoff in range(n_cutoffs) %}
        {%- for window in range(3) %}
            {%- do days_back.append(
                horizon - 1 + cutoff * step + window * horizon
            ) %}
        {%- endfor %}
    {%- endfor %}
    select distinct offset_values.days_back
    from (
        values ({{ days_back | unique | join('), (') }})
    ) as offset_values (days_back)

),

snapshot_dates as (

    select
        'evaluation' as snapshot_role,
        bounds.last_event_date,
        cast({{ dbt.dateadd(
            'day', '-offsets.days_back', 'bounds.last_event_date'
        ) }} as date) as snapshot_date
    from bounds
    cross join offsets

),

{{ customer_feature_snapshot_ctes() }}

select * from final
