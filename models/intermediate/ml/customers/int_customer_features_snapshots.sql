{{ config(materialized='table') }}

-- One row per customer x snapshot: behaviour features from the days strictly
-- before the snapshot date and labels from the horizon after it (docs block
-- ml_customer_snapshots_rule). The purchases and the sessions are rolled up
-- per user x day once; each snapshot is a filtered re-aggregation of those
-- user-days, never a new scan of the events.
{%- set horizon = var('ml_label_horizon_days') | int %}
{%- set cutoff = var('ml_cutoff_date') %}
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

cutoff as (

    select
        last_event_date,
        {% if cutoff is none -%}
            cast({{ dbt.dateadd('day', -horizon, 'last_event_date') }} as date)
        {%- else -%}
            cast('{{ cutoff }}' as date)
        {%- endif %} as cutoff_date
    from bounds

),

snapshot_dates as (

    select
        'train' as snapshot_role,
        cast(
            {{ dbt.dateadd('day', -horizon, 'cutoff_date') }} as date
        ) as snapshot_date,
        last_event_date
    from cutoff
    union all
    select
        'test' as snapshot_role,
        cutoff_date as snapshot_date,
        last_event_date
    from cutoff
    union all
    select
        'score' as snapshot_role,
        cast({{ dbt.dateadd('day', 1, 'last_event_date') }} as date)
            as snapshot_date,
        last_event_date
    from cutoff

),

{{ customer_feature_snapshot_ctes() }}

select * from final
