-- Revenue shares of products and of categories each sum to 1 (every product
-- has a category); brand shares sum to the branded share of revenue, at most
-- 1. Only checked when the store has revenue. Returns the offending sums.
with product_performance as (

    select * from {{ ref('fct_product_performance') }}

),

brand_performance as (

    select * from {{ ref('fct_brand_performance') }}

),

category_performance as (

    select * from {{ ref('fct_category_performance') }}

),

sums as (

    select
        'products' as shares_of,
        sum(revenue_share) as total_share,
        sum(revenue) as revenue
    from product_performance

    union all

    select
        'categories' as shares_of,
        sum(revenue_share) as total_share,
        sum(revenue) as revenue
    from category_performance

),

brand_sum as (

    select sum(revenue_share) as total_share
    from brand_performance

),

final as (

    select
        shares_of,
        total_share
    from sums
    where revenue > 0 and abs(total_share - 1) > 1e-9

    union all

    select
        'brands' as shares_of,
        total_share
    from brand_sum
    where total_share > 1 + 1e-9

)

select * from final
