{{ config(materialized='table') }}

-- One row per session x clock minute with events: the grain of the rate
-- features (peak views in a minute, peak events in an hour, active minutes,
-- night-time events). One grouping pass over the sessionised events.
with sessionized_events as (

    select * from {{ ref('int_events_sessionized') }}

),

final as (

    select
        session_id,
        user_id,
        {{ dbt.date_trunc('minute', 'event_at') }} as minute_at,
        cast(count(*) as integer) as events,
        cast(
            count(*) filter (where event_type = 'view') as integer
        ) as views  -- noqa: RF04
    from sessionized_events
    group by 1, 2, 3

)

select * from final
