{{ config(
    materialized='incremental',
    unique_key='raw_session_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
) }}

-- One row per session, aggregated in one pass over the sessionised events.
-- Incremental like int_events_sessionized: every raw session id with an event
-- newer than the latest session end minus var incremental_lookback_hours is
-- re-aggregated whole (delete+insert keyed on raw_session_id).
with sessionized_events as (

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

aggregated as (

    select
        session_id,
        any_value(user_id) as user_id,
        any_value(raw_session_id) as raw_session_id,
        any_value(session_number) as session_number,
        min(event_at) as session_started_at,
        max(event_at) as session_ended_at,
        count(*) as events,
        count(*) filter (where event_type = 'view') as views,  -- noqa: RF04
        count(*) filter (where event_type = 'cart') as carts,
        count(*) filter (where event_type = 'purchase') as purchases,
        count(distinct product_id) filter (
            where event_type = 'view'
        ) as distinct_products_viewed,
        coalesce(
            sum(price) filter (where event_type = 'purchase'), 0
        ) as revenue,
        min_by(
            category_code,
            case
                when category_code is not null
                    then event_number_in_raw_session
            end
        ) as first_category_code,
        max_by(
            category_code,
            case
                when category_code is not null
                    then event_number_in_raw_session
            end
        ) as last_category_code,
        min(event_at) filter (where event_type = 'cart') as first_cart_at,
        min(event_at) filter (
            where event_type = 'purchase'
        ) as first_purchase_at
    from events_to_process
    group by 1

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
        count(*) over (partition by raw_session_id) > 1 as is_resplit,
        {{ dbt.datediff(
            'session_started_at', 'session_ended_at', 'second'
        ) }} > {{ var('session_max_hours') | int }} * 3600 as is_long_session
    from aggregated

)

select * from final
