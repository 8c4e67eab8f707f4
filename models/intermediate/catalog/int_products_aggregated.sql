-- One row per product seen in the events: its latest attributes, price
-- statistics and event counts over the whole period. The only catalog model
-- that reads events; dim_products, dim_categories, dim_brands and the
-- performance marts all start from it. Three reads of the staged events,
-- each of only the columns it needs (one shared CTE would be materialised
-- with every column): one hash aggregate for everything else, one narrow
-- (product_id, price) aggregate for the number of distinct prices, and one
-- window over (product_id, event_at, price) for the number of price changes.
with events as (

    select * from {{ ref('stg_rees46__events') }}

),

aggregated as (

    select
        product_id,
        max_by(
            {
                'category_id': category_id,
                'category_code': category_code,
                'category_l1': category_l1,
                'category_l2': category_l2,
                'category_l3': category_l3
            },
            event_at
        ) as latest_category,
        max_by(brand, event_at) as brand,
        min(event_at) as first_seen_at,
        max(event_at) as last_seen_at,
        min(price) as min_price,
        max(price) as max_price,
        avg(price) as avg_price,
        max_by(price, event_at) as latest_price,
        count(*) as events,
        count(*) filter (where event_type = 'view') as views,  -- noqa: RF04
        count(*) filter (where event_type = 'cart') as carts,
        count(*) filter (
            where event_type = 'remove_from_cart'
        ) as removes_from_cart,
        count(*) filter (where event_type = 'purchase') as purchase_events
    from events
    group by 1

),

-- count(distinct price) inside the aggregate above would be planned as a
-- second aggregate over the same events, which materialises them with every
-- column; a narrow (product_id, price) aggregate of its own does not
product_price_values as (

    select distinct
        product_id,
        price
    from {{ ref('stg_rees46__events') }}

),

distinct_prices as (

    select
        product_id,
        count(price) as distinct_prices
    from product_price_values
    group by 1

),

price_points as (

    select
        product_id,
        event_at,
        price
    from {{ ref('stg_rees46__events') }}

),

price_steps as (

    select
        product_id,
        price != lag(price) over (
            partition by product_id
            order by event_at asc, price asc
        ) as is_price_change
    from price_points

),

price_changes as (

    select
        product_id,
        count(*) filter (where is_price_change) as price_changes
    from price_steps
    group by 1

),

final as (

    select
        aggregated.product_id,
        struct_extract(
            aggregated.latest_category, 'category_id'
        ) as category_id,
        struct_extract(
            aggregated.latest_category, 'category_code'
        ) as category_code,
        struct_extract(
            aggregated.latest_category, 'category_l1'
        ) as category_l1,
        struct_extract(
            aggregated.latest_category, 'category_l2'
        ) as category_l2,
        struct_extract(
            aggregated.latest_category, 'category_l3'
        ) as category_l3,
        aggregated.brand,
        aggregated.first_seen_at,
        aggregated.last_seen_at,
        aggregated.min_price,
        aggregated.max_price,
        cast(aggregated.avg_price as decimal(12, 2)) as avg_price,
        aggregated.latest_price,
        cast(
            distinct_prices.distinct_prices as integer
        ) as distinct_prices,
        cast(price_changes.price_changes as integer) as price_changes,
        cast(aggregated.events as bigint) as events,
        cast(aggregated.views as bigint) as views,  -- noqa: RF04
        cast(aggregated.carts as bigint) as carts,
        cast(aggregated.removes_from_cart as bigint) as removes_from_cart,
        cast(aggregated.purchase_events as bigint) as purchase_events
    from aggregated
    inner join distinct_prices
        on aggregated.product_id = distinct_prices.product_id
    inner join price_changes
        on aggregated.product_id = price_changes.product_id

)

select * from final
