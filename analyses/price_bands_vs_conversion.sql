-- needs click-stream events: not built for a transactions-only source
{{ config(enabled=var('source') == 'rees46') }}
-- Do cheaper products convert better? Views, purchases, view-to-purchase
-- conversion and revenue by band of the product's latest price (USD).
with product_performance as (

    select * from {{ ref('fct_product_performance') }}

),

products as (

    select * from {{ ref('dim_products') }}

),

banded as (

    select
        product_performance.views,
        product_performance.purchases,
        product_performance.revenue,
        case
            when products.latest_price < 10 then '01: under 10'
            when products.latest_price < 50 then '02: 10-50'
            when products.latest_price < 100 then '03: 50-100'
            when products.latest_price < 250 then '04: 100-250'
            when products.latest_price < 500 then '05: 250-500'
            when products.latest_price < 1000 then '06: 500-1000'
            else '07: 1000 and over'
        end as price_band
    from product_performance
    inner join products
        on product_performance.product_id = products.product_id

),

final as (

    select
        price_band,
        count(*) as products,
        sum(views) as views,  -- noqa: RF04
        sum(purchases) as purchases,
        cast(sum(purchases) as double)
        / nullif(sum(views), 0) as view_to_purchase_rate,
        sum(revenue) as revenue,
        sum(revenue) / sum(sum(revenue)) over () as revenue_share
    from banded
    group by 1

)

select * from final
order by 1
