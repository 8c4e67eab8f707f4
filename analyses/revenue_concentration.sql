-- needs click-stream events: not built for a transactions-only source
{{ config(enabled=var('source') == 'rees46') }}
-- How concentrated are sales? Share of revenue (and of views) earned by the
-- top 10% of products seen, ranked by revenue (and by views). In the real
-- data the top 10% of products get about 83% of views.
with product_performance as (

    select * from {{ ref('fct_product_performance') }}

),

ranked as (

    select
        revenue,
        views,
        row_number() over (
            order by revenue desc, product_id asc
        ) as revenue_position,
        row_number() over (
            order by views desc, product_id asc
        ) as views_position,
        count(*) over () as products
    from product_performance

),

final as (

    select
        max(products) as products,
        ceil(0.1 * max(products)) as top_decile_products,
        sum(revenue) filter (
            where revenue_position <= ceil(0.1 * products)
        ) / nullif(sum(revenue), 0) as top_decile_revenue_share,
        cast(
            sum(views) filter (where views_position <= ceil(0.1 * products))
            as double
        ) / nullif(sum(views), 0) as top_decile_views_share
    from ranked

)

select * from final
