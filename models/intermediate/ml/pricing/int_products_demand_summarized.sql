{{ config(materialized='table') }}

-- Recent demand of every product at its current price, the base the price
-- recommendations scale: one row per product with views at a positive price
-- in the last var('price_demand_window_days') days of the data.
{% set window_days = var('price_demand_window_days') %}

with spells as (

    select * from {{ ref('int_product_price_spells_aggregated') }}

),

last_event_date as (

    select max(event_date) as last_date
    from spells

),

recent as (

    select spells.*
    from spells
    cross join last_event_date
    where
        spells.event_date > last_event_date.last_date - {{ window_days }}
        and spells.is_estimable

),

latest_days as (

    select
        product_id,
        max(event_date) as current_price_date
    from recent
    group by 1

),

current_prices as (

    select
        recent.product_id,
        latest_days.current_price_date,
        -- the most viewed price of the last day (the lowest on a tie)
        arg_max(
            recent.price, recent.views * 1000000 - recent.price
        ) as current_price
    from recent
    inner join latest_days
        on
            recent.product_id = latest_days.product_id
            and recent.event_date = latest_days.current_price_date
    group by 1, 2

),

demand as (

    select
        product_id,
        max(category_l1) as category_l1,
        sum(views) as views,  -- noqa: RF04
        sum(purchases) as purchases,
        sum(revenue) as revenue
    from recent
    group by 1

),

final as (

    select
        demand.product_id,
        demand.category_l1,
        current_prices.current_price,
        current_prices.current_price_date,
        demand.views,
        demand.purchases,
        demand.revenue,
        demand.purchases / {{ window_days }} as units_per_day,
        demand.revenue / {{ window_days }} as revenue_per_day
    from demand
    inner join current_prices
        on demand.product_id = current_prices.product_id

)

select * from final
