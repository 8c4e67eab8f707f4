-- One row per staged event that the incremental sessionisation never picked
-- up: it arrived after the events around it had been processed, further back
-- than var incremental_lookback_hours (docs block late_events). Such events
-- are in staging but in no behaviour mart until a --full-refresh, so they are
-- listed here to be counted, not silently lost. Empty after a full refresh.
-- read twice or more: inlined, so DuckDB does not first copy the whole table
with staged_events as not materialized (

    select * from {{ ref('stg_rees46__events') }}

),

sessionized_events as (

    select * from {{ ref('int_events_sessionized') }}

),

loads as (

    select
        loaded_at,
        max(event_at) as max_event_at
    from staged_events
    group by 1

),

-- The event time already processed when a load arrived: the latest event of
-- all earlier loads (NULL for the first load, which cannot be late).
high_water_marks as (

    select
        loaded_at,
        max(max_event_at) over (
            order by loaded_at asc
            rows between unbounded preceding and 1 preceding
        ) as processed_until_at
    from loads

),

-- Only an event older than what was already processed when it was loaded can
-- have been skipped, so the lookup against the sessions is limited to those:
-- a handful of rows instead of an anti-join over all events.
late_candidates as (

    select
        staged_events.*,
        high_water_marks.processed_until_at
    from staged_events
    inner join high_water_marks
        on staged_events.loaded_at = high_water_marks.loaded_at
    where staged_events.event_at <= high_water_marks.processed_until_at

),

candidates_sessionized as (

    select sessionized_events.event_id
    from sessionized_events
    where
        sessionized_events.event_id in (
            select late_candidates.event_id from late_candidates
        )

),

not_sessionized as (

    select late_candidates.*
    from late_candidates
    where
        late_candidates.event_id not in (
            select candidates_sessionized.event_id
            from candidates_sessionized
        )

),

final as (

    select
        not_sessionized.event_id,
        not_sessionized.event_at,
        not_sessionized.event_date,
        not_sessionized.event_type,
        not_sessionized.product_id,
        not_sessionized.price,
        not_sessionized.user_id,
        not_sessionized.raw_session_id,
        not_sessionized.source_file,
        not_sessionized.loaded_at,
        not_sessionized.processed_until_at,
        cast(
            {{ dbt.datediff(
                'not_sessionized.event_at',
                'not_sessionized.processed_until_at',
                'second',
            ) }} / 3600.0 as decimal(12, 2)
        ) as lateness_hours,
        {{ var('incremental_lookback_hours') | int }} as lookback_hours
    from not_sessionized

)

select * from final
