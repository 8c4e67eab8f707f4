-- One row per brand named on a product's latest event. Products without a
-- brand are not a brand: they are counted in dim_products only.
with products as (

    select * from {{ ref('int_products_aggregated') }}

),

aggregated as (

    select
        brand,
        count(*) as products,
        count(distinct category_id) as categories,
        count(distinct category_l1) as category_l1s,
        min(min_price) as min_price,
        max(max_price) as max_price,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at
    from products
    where brand is not null
    group by 1

),

final as (

    select
        brand,
        cast(products as integer) as products,
        cast(categories as integer) as categories,
        cast(category_l1s as integer) as category_l1s,
        min_price,
        max_price,
        first_seen_at,
        last_seen_at
    from aggregated

)

select * from final
