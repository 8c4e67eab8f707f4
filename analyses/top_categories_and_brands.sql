-- needs click-stream events: not built for a transactions-only source
{{ config(enabled=var('source') == 'rees46') }}
-- Which categories and brands earn the most, and how well do they convert
-- views into purchases? The top 20 of each by revenue over the whole period.
with category_performance as (

    select * from {{ ref('fct_category_performance') }}

),

brand_performance as (

    select * from {{ ref('fct_brand_performance') }}

),

top_categories as (

    select
        'category' as dimension,
        coalesce(
            category_code, 'id ' || cast(category_id as varchar)
        ) as member,
        views,
        purchases,
        revenue,
        revenue_share,
        view_to_purchase_rate,
        revenue_rank
    from category_performance
    where revenue_rank <= 20

),

top_brands as (

    select
        'brand' as dimension,
        brand as member,
        views,
        purchases,
        revenue,
        revenue_share,
        view_to_purchase_rate,
        revenue_rank
    from brand_performance
    where revenue_rank <= 20

),

final as (

    select * from top_categories
    union all
    select * from top_brands

)

select * from final
order by 1, 8
