{{ config(materialized='table') }}

-- Demand features of the price-elasticity model: one row per product × day ×
-- price (a price spell within a day), with the views, carts, purchases and
-- revenue seen at that price. One hash aggregate over the staged events, then
-- per-product totals joined back so the Python models can read only the
-- products that carry information on price (several prices, some purchases).
with events as (

    select * from {{ ref('stg_rees46__events') }}

),

spells as (

    select
        product_id,
        event_date,
        price,
        coalesce(max(category_l1), 'unknown') as category_l1,
        count(*) filter (where event_type = 'view') as views,  -- noqa: RF04
        count(*) filter (where event_type = 'cart') as carts,
        count(*) filter (where event_type = 'purchase') as purchases,
        coalesce(
            sum(price) filter (where event_type = 'purchase'), 0
        ) as revenue
    from events
    group by 1, 2, 3

),

products as (

    select
        product_id,
        count(distinct price) filter (
            where views > 0 and price > 0
        ) as product_distinct_prices,
        coalesce(
            sum(purchases) filter (where views > 0 and price > 0), 0
        ) as product_purchases
    from spells
    group by 1

),

final as (

    select
        spells.product_id,
        spells.event_date,
        spells.price,
        spells.category_l1,
        spells.views,
        spells.carts,
        spells.purchases,
        spells.revenue,
        products.product_distinct_prices,
        products.product_purchases,
        spells.views > 0 and spells.price > 0 as is_estimable
    from spells
    inner join products
        on spells.product_id = products.product_id

)

select * from final
