-- One row per category id: the products' funnel counts and revenue summed by
-- the product's latest category, over the whole period. Every product has a
-- category id, so category revenue shares sum to 1.
with product_performance as (

    select * from {{ ref('fct_product_performance') }}

),

categories as (

    select * from {{ ref('dim_categories') }}

),

aggregated as (

    select
        category_id,
        count(*) as products,
        count(*) filter (where purchases > 0) as products_purchased,
        sum(views) as views,  -- noqa: RF04
        sum(carts) as carts,
        sum(removes_from_cart) as removes_from_cart,
        sum(purchases) as purchases,
        sum(revenue) as revenue
    from product_performance
    group by 1

),

final as (

    select
        aggregated.category_id,
        categories.category_code,
        categories.category_l1,
        categories.category_l2,
        categories.category_l3,
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
        / nullif(sum(aggregated.revenue) over (), 0) as revenue_share,
        cast(
            rank() over (order by aggregated.revenue desc) as bigint
        ) as revenue_rank
    from aggregated
    left join categories
        on aggregated.category_id = categories.category_id

)

select * from final
