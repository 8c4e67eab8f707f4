{{ config(
    materialized='incremental',
    unique_key='raw_session_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
) }}

-- One row per staged event with the session it belongs to. A session is the
-- run of one user's events under one raw session id with no inactivity gap
-- longer than var session_inactivity_minutes (see docs block
-- sessionisation_rules). One sorted window pass per (user, raw session id).
--
-- Incremental: every raw session id touched by an event newer than the
-- latest processed event minus var incremental_lookback_hours is rebuilt
-- from all its staged events (delete+insert keyed on raw_session_id), so a
-- session straddling a batch boundary, or joined by a late event, is rebuilt
-- whole and never duplicated.
-- inlined: an incremental run reads it twice (touched raw sessions, then
-- their events), and DuckDB would first copy the whole table
with events as not materialized (

    select * from {{ ref('stg_rees46__events') }}

),

{% if is_incremental() %}

    touched_raw_sessions as (

        select distinct events.raw_session_id
        from events
        where
            events.event_at > (
                select
                    {{ dbt.dateadd(
                        'hour',
                        -1 * var('incremental_lookback_hours') | int,
                        'max(event_at)',
                    ) }}
                from {{ this }}
            )

    ),

    events_to_process as (

        select events.*
        from events
        where
            events.raw_session_id in (
                select touched_raw_sessions.raw_session_id
                from touched_raw_sessions
            )

    ),

{% else %}

    events_to_process as (

        select * from events

    ),

{% endif %}

ordered as (

    select
        event_id,
        event_at,
        event_date,
        event_type,
        product_id,
        category_id,
        category_code,
        category_l1,
        category_l2,
        category_l3,
        brand,
        price,
        user_id,
        raw_session_id,
        row_number() over user_raw_session as event_number_in_raw_session,
        {{ dbt.datediff(
            'lag(event_at) over user_raw_session', 'event_at', 'second'
        ) }} as seconds_since_previous_event
    from events_to_process
    window user_raw_session as (
        partition by user_id, raw_session_id
        order by event_at asc, event_id asc
    )

),

flagged as (

    select
        *,
        coalesce(
            seconds_since_previous_event
            > {{ var('session_inactivity_minutes') | int }} * 60,
            true
        ) as is_session_start
    from ordered

),

numbered as (

    select
        *,
        sum(case when is_session_start then 1 else 0 end) over (
            partition by user_id, raw_session_id
            order by event_number_in_raw_session asc
            rows between unbounded preceding and current row
        ) as session_number
    from flagged

),

final as (

    select
        {{ surrogate_key(['user_id', 'raw_session_id', 'session_number']) }}
            as session_id,
        event_id,
        event_at,
        event_date,
        event_type,
        product_id,
        category_id,
        category_code,
        category_l1,
        category_l2,
        category_l3,
        brand,
        price,
        user_id,
        raw_session_id,
        cast(session_number as integer) as session_number,
        cast(event_number_in_raw_session as integer)
            as event_number_in_raw_session,
        cast(seconds_since_previous_event as bigint)
            as seconds_since_previous_event,
        is_session_start
    from numbered

)

select * from final
