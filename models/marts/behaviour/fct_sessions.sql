{{ config(
    materialized='incremental',
    unique_key='raw_session_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
) }}

-- One row per session: a hash aggregate per session for the counts and
-- times, and one per session x viewed product (view events only) for
-- distinct_products_viewed. The session is grouped by session_id and the
-- columns it is made of, so no text rides along as an aggregate state, and
-- is_resplit looks up the few raw session ids with several sessions instead
-- of a window over every session.
-- Incremental like int_events_sessionized: every raw session id with an event
-- newer than the latest session end minus var incremental_lookback_hours is
-- re-aggregated whole (delete+insert keyed on raw_session_id).
-- inlined: an incremental run reads it twice (touched raw sessions, then
-- their events), and DuckDB would first copy the whole table
with sessionized_events as not materialized (

    select * from {{ ref('int_events_sessionized') }}

),

{% if is_incremental() %}

    touched_raw_sessions as (

        select distinct sessionized_events.raw_session_id
        from sessionized_events
        where
            sessionized_events.event_at > (
                select
                    {{ dbt.dateadd(
                        'hour',
                        -1 * var('incremental_lookback_hours') | int,
                        'max(session_ended_at)',
                    ) }}
                from {{ this }}
            )

    ),

    events_to_process as (

        select sessionized_events.*
        from sessionized_events
        where
            sessionized_events.raw_session_id in (
                select touched_raw_sessions.raw_session_id
                from touched_raw_sessions
            )

    ),

{% else %}

    events_to_process as (

        select * from sessionized_events

    ),

{% endif %}

session_totals as (

    -- user_id, raw_session_id and session_number make session_id: grouping
    -- by them too splits no session.
    select
        session_id,
        user_id,
        raw_session_id,
        session_number,
        min(event_at) as session_started_at,
        max(event_at) as session_ended_at,
        count(*) as events,
        count(*) filter (where event_type = 'view') as views,  -- noqa: RF04
        count(*) filter (where event_type = 'cart') as carts,
        count(*) filter (where event_type = 'purchase') as purchases,
        coalesce(
            sum(price) filter (where event_type = 'purchase'), 0
        ) as revenue,
        min_by(category_code, event_number_in_raw_session) filter (
            where category_code is not null
        ) as first_category_code,
        max_by(category_code, event_number_in_raw_session) filter (
            where category_code is not null
        ) as last_category_code,
        min(event_at) filter (where event_type = 'cart') as first_cart_at,
        min(event_at) filter (
            where event_type = 'purchase'
        ) as first_purchase_at
    from events_to_process
    group by 1, 2, 3, 4

),

viewed_products as (

    select
        session_id,
        product_id
    from events_to_process
    where event_type = 'view' and product_id is not null
    group by 1, 2

),

products_viewed_per_session as (

    select
        session_id,
        count(*) as distinct_products_viewed
    from viewed_products
    group by 1

),

aggregated as (

    select
        session_totals.*,
        coalesce(
            products_viewed_per_session.distinct_products_viewed, 0
        ) as distinct_products_viewed
    from session_totals
    left join products_viewed_per_session
        on session_totals.session_id = products_viewed_per_session.session_id

),

-- Raw session ids cut into several sessions (by a gap, or shared by users):
-- a small set, so the flag is a lookup. Raw sessions are re-aggregated whole,
-- so this holds in an incremental run too.
resplit_raw_sessions as (

    select raw_session_id
    from aggregated
    group by 1
    having count(*) > 1

),

final as (

    select
        session_id,
        user_id,
        raw_session_id,
        cast(session_number as integer) as session_number,
        cast(session_started_at as date) as session_date,
        session_started_at,
        session_ended_at,
        cast({{ dbt.datediff(
            'session_started_at', 'session_ended_at', 'second'
        ) }} as bigint) as duration_seconds,
        cast(events as integer) as events,
        cast(views as integer) as views,  -- noqa: RF04
        cast(carts as integer) as carts,
        cast(purchases as integer) as purchases,
        cast(distinct_products_viewed as integer) as distinct_products_viewed,
        cast(revenue as decimal(18, 2)) as revenue,
        first_category_code,
        last_category_code,
        carts > 0 as has_cart,
        purchases > 0 as has_purchase,
        case when carts > 0 then purchases = 0 end as is_cart_abandoned,
        cast({{ dbt.datediff(
            'session_started_at', 'first_cart_at', 'second'
        ) }} as bigint) as seconds_to_first_cart,
        cast({{ dbt.datediff(
            'session_started_at', 'first_purchase_at', 'second'
        ) }} as bigint) as seconds_to_first_purchase,
        events = 1 as is_bounce,
        raw_session_id in (
            select resplit_raw_sessions.raw_session_id
            from resplit_raw_sessions
        ) as is_resplit,
        {{ dbt.datediff(
            'session_started_at', 'session_ended_at', 'second'
        ) }} > {{ var('session_max_hours') | int }} * 3600 as is_long_session
    from aggregated

)

select * from final
