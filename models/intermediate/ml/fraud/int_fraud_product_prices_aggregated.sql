{{ config(materialized='table') }}

-- One row per product with a positive viewed price: the product's price norm
-- (median price over its view events) and the cheap-price line of its
-- category (the var fraud_cheap_quantile quantile of the price norms of the
-- products of the same category_id). Zero prices are display glitches of
-- the feed and are left out of the norm.
--
-- median(price) over the events keeps every view of every product in memory
-- and cannot spill (it ran out of memory on a full month), so the views are
-- first counted per product and distinct price (a spillable hash aggregate,
-- small: a product has few prices) and the exact median is read from the
-- cumulative counts. A product's category_id is its smallest one (a product
-- normally has a single category_id).
with sessionized_events as (

    select * from {{ ref('int_events_sessionized') }}

),

price_views as (

    select
        product_id,
        price,
        min(category_id) as category_id,
        count(*) as views_at_price
    from sessionized_events
    where
        event_type = 'view'
        and price > 0
    group by 1, 2

),

price_views_cumulated as (

    select
        product_id,
        price,
        category_id,
        views_at_price,
        sum(views_at_price) over (
            partition by product_id
            order by price asc
            rows between unbounded preceding and current row
        ) as views_up_to_price,
        sum(views_at_price) over (partition by product_id) as product_views
    from price_views

),

-- Of n views in price order, the middle ones are view number ceil(n / 2)
-- (the first price whose cumulative count reaches half of n) and view
-- number floor(n / 2) + 1 (the first price past half of n), the same view
-- when n is odd. list_median over the two gives exactly what median() over
-- all the views gives: their mean, cut to the cent on DECIMAL(12,2) prices.
product_prices as (

    select
        product_id,
        min(category_id) as category_id,
        list_median([
            min(price) filter (where 2 * views_up_to_price >= product_views),
            min(price) filter (where 2 * views_up_to_price > product_views)
        ]) as median_view_price,
        cast(sum(views_at_price) as bigint) as priced_views
    from price_views_cumulated
    group by 1

),

category_lines as (

    select
        category_id,
        quantile_cont(
            median_view_price, {{ var('fraud_cheap_quantile') }}
        ) as category_cheap_price
    from product_prices
    group by 1

),

final as (

    select
        product_prices.product_id,
        product_prices.category_id,
        product_prices.priced_views,
        cast(product_prices.median_view_price as double) as median_view_price,
        cast(category_lines.category_cheap_price as double)
            as category_cheap_price
    from product_prices
    left join category_lines
        on product_prices.category_id = category_lines.category_id

)

select * from final
