-- Product, brand and category performance add up to fct_purchases: purchase
-- lines and revenue per product match it, products sum to its totals,
-- categories sum to the products, and brands plus unbranded products sum to
-- the products. Returns a row for every figure that differs.
with purchases as (

    select * from {{ ref('fct_purchases') }}

),

product_performance as (

    select * from {{ ref('fct_product_performance') }}

),

brand_performance as (

    select * from {{ ref('fct_brand_performance') }}

),

category_performance as (

    select * from {{ ref('fct_category_performance') }}

),

purchases_per_product as (

    select
        product_id,
        count(*) as purchases,
        sum(price) as revenue
    from purchases
    group by 1

),

product_mismatches as (

    select
        'product ' || cast(product_performance.product_id as varchar) as figure,
        product_performance.purchases as actual_purchases,
        coalesce(purchases_per_product.purchases, 0) as expected_purchases,
        product_performance.revenue as actual_revenue,
        coalesce(purchases_per_product.revenue, 0) as expected_revenue
    from product_performance
    full outer join purchases_per_product
        on product_performance.product_id = purchases_per_product.product_id

),

purchase_totals as (

    select
        count(*) as purchases,
        coalesce(sum(price), 0) as revenue
    from purchases

),

product_totals as (

    select
        coalesce(sum(purchases), 0) as purchases,
        coalesce(sum(revenue), 0) as revenue,
        coalesce(sum(case when brand is null then purchases end), 0)
            as unbranded_purchases,
        coalesce(sum(case when brand is null then revenue end), 0)
            as unbranded_revenue
    from product_performance

),

category_totals as (

    select
        coalesce(sum(purchases), 0) as purchases,
        coalesce(sum(revenue), 0) as revenue
    from category_performance

),

brand_totals as (

    select
        coalesce(sum(purchases), 0) as purchases,
        coalesce(sum(revenue), 0) as revenue
    from brand_performance

),

totals as (

    select
        'all products' as figure,
        product_totals.purchases as actual_purchases,
        purchase_totals.purchases as expected_purchases,
        product_totals.revenue as actual_revenue,
        purchase_totals.revenue as expected_revenue
    from product_totals
    cross join purchase_totals

    union all

    select
        'all categories' as figure,
        category_totals.purchases as actual_purchases,
        product_totals.purchases as expected_purchases,
        category_totals.revenue as actual_revenue,
        product_totals.revenue as expected_revenue
    from category_totals
    cross join product_totals

    union all

    select
        'brands plus unbranded' as figure,
        brand_totals.purchases + product_totals.unbranded_purchases
            as actual_purchases,
        product_totals.purchases as expected_purchases,
        brand_totals.revenue + product_totals.unbranded_revenue
            as actual_revenue,
        product_totals.revenue as expected_revenue
    from brand_totals
    cross join product_totals

),

final as (

    select * from product_mismatches
    union all
    select * from totals

)

select * from final
where
    coalesce(actual_purchases, 0) != coalesce(expected_purchases, 0)
    or coalesce(actual_revenue, 0) != coalesce(expected_revenue, 0)
