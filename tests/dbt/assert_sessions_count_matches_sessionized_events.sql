-- Accounting identity: one fct_sessions row per distinct session_id of
-- int_events_sessionized, i.e. per (user, raw session id, inactivity split),
-- and the sessions hold every event exactly once. Returns a row on mismatch.
with sessions as (

    select * from {{ ref('fct_sessions') }}

),

sessionized_events as (

    select * from {{ ref('int_events_sessionized') }}

),

from_sessions as (

    select
        count(*) as sessions,
        coalesce(sum(events), 0) as events
    from sessions

),

from_events as (

    select
        count(distinct session_id) as sessions,
        count(
            distinct user_id || '|' || raw_session_id || '|' || session_number
        ) as user_raw_session_splits,
        count(*) as events
    from sessionized_events

),

final as (

    select
        from_sessions.sessions as fct_sessions,
        from_events.sessions as distinct_session_ids,
        from_events.user_raw_session_splits,
        from_sessions.events as session_events,
        from_events.events as sessionized_events
    from from_sessions
    cross join from_events

)

select * from final
where
    fct_sessions != distinct_session_ids
    or distinct_session_ids != user_raw_session_splits
    or session_events != sessionized_events
