{{ config(materialized='table') }}

-- One row per product with a positive viewed price: the product's price norm
-- (median price over its view events) and the cheap-price line of its
-- category (the var fraud_cheap_quantile quantile of the price norms of the
-- products of the same category_id). Zero prices are display glitches of
-- the feed and are left out of the norm.
with sessionized_events as (

    select * from {{ ref('int_events_sessionized') }}

),

product_prices as (

    select
        product_id,
        any_value(category_id) as category_id,
        median(price) as median_view_price,
        count(*) as priced_views
    from sessionized_events
    where
        event_type = 'view'
        and price > 0
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
