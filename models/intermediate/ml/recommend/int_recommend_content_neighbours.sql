{{ config(materialized='table') }}

-- Content neighbours for cold products (docs block recommend_content): for
-- each catalogue product, up to var recs_top_n other products of the same
-- category, ordered by shared brand, then shared price band, then
-- popularity (window `full`). Candidates are the most popular products of
-- the category, of the category x brand and of the category x price band
-- (var recs_top_n each), which bounds the join on large categories.
{%- set top_n = var('recs_top_n') | int %}
with popularity as (

    select * from {{ ref('int_recommend_item_popularity') }}
    where window_role = 'full'

),

pools as (

    select
        product_id,
        category_id,
        brand,
        price_band,
        popularity
    from popularity
    qualify
        row_number() over (
            partition by category_id
            order by popularity desc, product_id asc
        ) <= {{ top_n + 1 }}
        or row_number() over (
            partition by category_id, brand
            order by popularity desc, product_id asc
        ) <= {{ top_n + 1 }}
        or row_number() over (
            partition by category_id, price_band
            order by popularity desc, product_id asc
        ) <= {{ top_n + 1 }}

),

candidates as (

    select
        popularity.product_id,
        pools.product_id as neighbour_product_id,
        coalesce(popularity.brand = pools.brand, false) as is_same_brand,
        popularity.price_band = pools.price_band as is_same_price_band,
        pools.popularity as neighbour_popularity
    from popularity
    inner join pools
        on
            popularity.category_id = pools.category_id
            and popularity.product_id != pools.product_id

),

final as (

    select
        product_id,
        neighbour_product_id,
        is_same_brand,
        is_same_price_band,
        neighbour_popularity,
        (
            1
            + cast(is_same_brand as integer)
            + cast(is_same_price_band as integer)
        ) / 3.0 as content_score,
        row_number() over (
            partition by product_id
            order by
                is_same_brand desc,
                is_same_price_band desc,
                neighbour_popularity desc,
                neighbour_product_id asc
        ) as neighbour_rank
    from candidates
    qualify neighbour_rank <= {{ top_n }}

)

select * from final
