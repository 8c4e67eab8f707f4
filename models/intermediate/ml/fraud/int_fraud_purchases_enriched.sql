{{ config(materialized='table') }}

-- One row per purchase event with the evidence the fraud rules read: was the
-- product viewed earlier in the same session, how far the price paid is from
-- the reference price (|ln(price / reference)|; the reference is the price
-- the session was shown for the product, or the product's median view price
-- when the session never viewed it), is it a cheap item of its
-- category, and how many purchases the user made in the var
-- fraud_burst_minutes minutes up to and including this one.
--
-- Two reads of the sessionised events, each of only the columns it needs (one
-- shared CTE would be materialised with every column of every event): the
-- purchases, and the views of the products they bought.
with product_prices as (

    select * from {{ ref('int_fraud_product_prices_aggregated') }}

),

purchases as (

    select
        event_id,
        event_at,
        user_id,
        session_id,
        raw_session_id,
        product_id,
        price
    from {{ ref('int_events_sessionized') }}
    where event_type = 'purchase'

),

purchased_products as (

    select distinct
        session_id,
        product_id
    from purchases

),

views as (

    select
        session_id,
        product_id,
        event_at,
        price
    from {{ ref('int_events_sessionized') }}
    where event_type = 'view'

),

first_views as (

    -- first view of each purchased product in the purchasing session
    select
        views.session_id,
        views.product_id,
        min(views.event_at) as first_viewed_at,
        -- the price the session was shown (latest positive view price)
        arg_max(
            views.price, views.event_at
        ) filter (where views.price > 0) as viewed_price
    from views
    inner join purchased_products
        on
            views.session_id = purchased_products.session_id
            and views.product_id = purchased_products.product_id
    group by 1, 2

),

joined as (

    select
        purchases.*,
        product_prices.median_view_price,
        product_prices.category_cheap_price,
        coalesce(
            first_views.first_viewed_at <= purchases.event_at, false
        ) as is_viewed_before,
        coalesce(
            first_views.viewed_price, product_prices.median_view_price
        ) as reference_price,
        coalesce(
            purchases.price <= product_prices.category_cheap_price, false
        ) as is_cheap
    from purchases
    left join product_prices
        on purchases.product_id = product_prices.product_id
    left join first_views
        on
            purchases.session_id = first_views.session_id
            and purchases.product_id = first_views.product_id

),

final as (

    select
        event_id,
        event_at as purchased_at,
        user_id,
        session_id,
        raw_session_id,
        product_id,
        price,
        median_view_price,
        reference_price,
        case
            when price > 0 and reference_price > 0
                then abs(ln(cast(price as double) / reference_price))
        end as abs_log_price_ratio,
        category_cheap_price,
        is_cheap,
        is_viewed_before,
        cast(count(*) over (
            partition by user_id
            order by event_at asc
            range between
            interval '{{ var("fraud_burst_minutes") }} minutes'
            preceding and current row
        ) as integer) as purchases_in_burst_window
    from joined

)

select * from final
