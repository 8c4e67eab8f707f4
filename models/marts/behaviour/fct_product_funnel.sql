{{ config(
    materialized='incremental',
    unique_key='event_date',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
) }}

-- View -> cart -> purchase per product x day, at event and session level
-- (same monotone step rule as fct_funnel_daily). Incremental like
-- fct_funnel_daily: recent days are recomputed whole.
with sessionized_events as (

    select * from {{ ref('int_events_sessionized') }}

),

events_to_process as (

    select
        event_date,
        product_id,
        session_id,
        event_type,
        price
    from sessionized_events
    {% if is_incremental() %}
        where
            event_date >= (
                select
                    cast({{ dbt.dateadd(
                        'hour',
                        -1 * var('incremental_lookback_hours') | int,
                        'max(event_date)',
                    ) }} as date)
                from {{ this }}
            )
    {% endif %}

),

session_steps as (

    select
        event_date,
        product_id,
        session_id,
        count(*) filter (where event_type = 'view') as views,  -- noqa: RF04
        count(*) filter (where event_type = 'cart') as carts,
        count(*) filter (where event_type = 'purchase') as purchases,
        coalesce(
            sum(price) filter (where event_type = 'purchase'), 0
        ) as revenue
    from events_to_process
    group by all

),

daily as (

    select
        event_date,
        product_id,
        count(*) as sessions,
        count(*) filter (where views > 0) as sessions_with_view,
        count(*) filter (
            where carts > 0 or purchases > 0
        ) as sessions_reaching_cart,
        count(*) filter (where purchases > 0) as sessions_with_purchase,
        sum(views) as views,  -- noqa: RF04
        sum(carts) as carts,
        sum(purchases) as purchases,
        sum(revenue) as revenue
    from session_steps
    group by all

),

final as (

    select
        product_id,
        event_date,
        cast(sessions as integer) as sessions,
        cast(sessions_with_view as integer) as sessions_with_view,
        cast(sessions_reaching_cart as integer) as sessions_reaching_cart,
        cast(sessions_with_purchase as integer) as sessions_with_purchase,
        cast(views as integer) as views,  -- noqa: RF04
        cast(carts as integer) as carts,
        cast(purchases as integer) as purchases,
        cast(revenue as decimal(18, 2)) as revenue,
        cast(sessions_with_purchase as double)
        / sessions as session_conversion_rate
    from daily

)

select * from final
