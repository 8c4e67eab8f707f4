-- One row per product: funnel counts, revenue, conversion, revenue share and
-- rank over the whole period. Views and carts come from the per-product event
-- aggregate; purchases and revenue from fct_purchases, so they reconcile with
-- it exactly.
with products as (

    select * from {{ ref('int_products_aggregated') }}

),

purchases as (

    select * from {{ ref('fct_purchases') }}

),

purchases_per_product as (

    select
        product_id,
        count(*) as purchases,
        sum(price) as revenue
    from purchases
    group by 1

),

joined as (

    select
        products.product_id,
        products.category_id,
        products.category_code,
        products.category_l1,
        products.brand,
        products.views,
        products.carts,
        products.removes_from_cart,
        coalesce(purchases_per_product.purchases, 0) as purchases,
        coalesce(purchases_per_product.revenue, 0) as revenue
    from products
    left join purchases_per_product
        on products.product_id = purchases_per_product.product_id

),

final as (

    select
        product_id,
        category_id,
        category_code,
        category_l1,
        brand,
        views,
        carts,
        removes_from_cart,
        cast(purchases as bigint) as purchases,
        cast(revenue as decimal(18, 2)) as revenue,
        cast(purchases as double)
        / nullif(views, 0) as view_to_purchase_rate,
        cast(revenue as double)
        / nullif(sum(revenue) over (), 0) as revenue_share,
        cast(rank() over (order by revenue desc) as bigint) as revenue_rank
    from joined

)

select * from final
