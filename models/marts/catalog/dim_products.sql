-- One row per product seen in the events, with its latest attributes and its
-- price history over the whole period.
with products as (

    select * from {{ ref('int_products_aggregated') }}

),

final as (

    select
        product_id,
        category_id,
        category_code,
        category_l1,
        category_l2,
        category_l3,
        brand,
        first_seen_at,
        last_seen_at,
        min_price,
        max_price,
        avg_price,
        latest_price,
        distinct_prices,
        price_changes,
        price_changes > 0 as has_price_changed
    from products

)

select * from final
