{{ config(materialized='table') }}

-- The recommender's production windows, one row (docs block
-- recommend_windows). The blend is chosen on validation_date, the last event
-- date (the latest complete day: its interactions are the labels, the days
-- before it the inputs); production then uses every day and recommends to
-- the users active in the last var recs_active_days days. The test cutoffs
-- of the rolling-origin evaluation are in int_recommend_evaluation_windows.
{%- set active_days = var('recs_active_days') | int %}
with events as (

    select * from {{ ref('stg_rees46__events') }}

),

bounds as (

    select
        min(event_date) as first_event_date,
        max(event_date) as last_event_date
    from events

),

final as (

    select
        first_event_date,
        last_event_date,
        last_event_date as validation_date,
        cast(
            {{ dbt.dateadd('day', 1 - active_days, 'last_event_date') }}
            as date
        ) as active_start_date,
        cast({{ dbt.dateadd('day', 1, 'last_event_date') }} as date)
            as as_of_date
    from bounds

)

select * from final
