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
with events as (

    select * from {{ ref('stg_rees46__events') }}

),

purchases as (

    select * from {{ ref('fct_purchases') }}

),

sessions as (

    select * from {{ ref('fct_sessions') }}

),

bounds as (

    select max(event_date) as last_event_date
    from events

),

snapshot_dates as (

    {%- for cutoff in range(n_cutoffs) %}
        {%- for window in range(3) %}
            {%- set days_back = horizon - 1 + cutoff * step + window * horizon %}
    select
        'evaluation' as snapshot_role,
        cast(
            {{ dbt.dateadd('day', -days_back, 'last_event_date') }} as date
        ) as snapshot_date,
        last_event_date
    from bounds
            {%- if not loop.last %}
    union
            {%- endif %}
        {%- endfor %}
        {%- if not loop.last %}
    union
        {%- endif %}
    {%- endfor %}

),

{{ customer_feature_snapshot_ctes() }}

select * from final
