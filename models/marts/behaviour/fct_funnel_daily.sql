{{ config(
    materialized='incremental',
    unique_key='event_date',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
) }}

-- View -> cart -> purchase per day x category_l1 x brand, at session level
-- (monotone steps, docs block funnel_rules) and at event level. Incremental:
-- the days from the latest loaded day minus var incremental_lookback_hours on
-- are recomputed whole (delete+insert keyed on event_date).
with sessionized_events as (

    select * from {{ ref('int_events_sessionized') }}

),

events_to_process as (

    select
        event_date,
        coalesce(category_l1, 'unknown') as category_l1,
        coalesce(brand, 'unknown') as brand,
        session_id,
        event_type
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
        category_l1,
        brand,
        session_id,
        count(*) filter (where event_type = 'view') as views,  -- noqa: RF04
        count(*) filter (where event_type = 'cart') as carts,
        count(*) filter (where event_type = 'purchase') as purchases
    from events_to_process
    group by all

),

daily as (

    select
        event_date,
        category_l1,
        brand,
        count(*) as sessions,
        count(*) filter (where views > 0) as sessions_with_view,
        count(*) filter (where carts > 0) as sessions_with_cart,
        count(*) filter (where purchases > 0) as sessions_with_purchase,
        count(*) filter (
            where carts > 0 or purchases > 0
        ) as sessions_reaching_cart,
        sum(views) as views,  -- noqa: RF04
        sum(carts) as carts,
        sum(purchases) as purchases
    from session_steps
    group by all

),

final as (

    select
        event_date,
        category_l1,
        brand,
        cast(sessions as integer) as sessions,
        cast(sessions_with_view as integer) as sessions_with_view,
        cast(sessions_with_cart as integer) as sessions_with_cart,
        cast(sessions_reaching_cart as integer) as sessions_reaching_cart,
        cast(sessions_with_purchase as integer) as sessions_with_purchase,
        cast(views as integer) as views,  -- noqa: RF04
        cast(carts as integer) as carts,
        cast(purchases as integer) as purchases,
        cast(sessions_reaching_cart as double)
        / sessions as session_view_to_cart_rate,
        cast(sessions_with_purchase as double)
        / nullif(sessions_reaching_cart, 0) as session_cart_to_purchase_rate,
        cast(sessions_with_purchase as double)
        / sessions as session_conversion_rate
    from daily

)

select * from final
