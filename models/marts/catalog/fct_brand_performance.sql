-- One row per brand: the products' funnel counts and revenue summed by the
-- product's latest brand, over the whole period. Revenue share is of all
-- store revenue, unbranded products included, so brand shares sum to the
-- branded share of revenue (below 1).
with product_performance as (

    select * from {{ ref('fct_product_performance') }}

),

store as (

    select sum(revenue) as revenue
    from product_performance

),

aggregated as (

    select
        brand,
        count(*) as products,
        count(*) filter (where purchases > 0) as products_purchased,
        sum(views) as views,  -- noqa: RF04
        sum(carts) as carts,
        sum(removes_from_cart) as removes_from_cart,
        sum(purchases) as purchases,
        sum(revenue) as revenue
    from product_performance
    where brand is not null
    group by 1

),

final as (

    select
        aggregated.brand,
        cast(aggregated.products as integer) as products,
        cast(aggregated.products_purchased as integer) as products_purchased,
        cast(aggregated.views as bigint) as views,  -- noqa: RF04
        cast(aggregated.carts as bigint) as carts,
        cast(aggregated.removes_from_cart as bigint) as removes_from_cart,
        cast(aggregated.purchases as bigint) as purchases,
        cast(aggregated.revenue as decimal(18, 2)) as revenue,
        cast(aggregated.purchases as double)
        / nullif(aggregated.views, 0) as view_to_purchase_rate,
        cast(aggregated.revenue as double)
        / nullif(store.revenue, 0) as revenue_share,
        cast(
            rank() over (order by aggregated.revenue desc) as bigint
        ) as revenue_rank
    from aggregated
    cross join store

)

select * from final
