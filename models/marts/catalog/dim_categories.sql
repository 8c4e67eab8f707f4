-- One row per category id that is the latest category of at least one
-- product: the category tree (levels, parent path, depth) and its size.
with products as (

    select * from {{ ref('int_products_aggregated') }}

),

aggregated as (

    select
        category_id,
        max(category_code) as category_code,
        count(*) as products,
        count(distinct brand) as brands,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at
    from products
    group by 1

),

final as (

    select
        category_id,
        category_code,
        split_part(category_code, '.', 1) as category_l1,
        nullif(split_part(category_code, '.', 2), '') as category_l2,
        nullif(split_part(category_code, '.', 3), '') as category_l3,
        nullif(
            regexp_replace(category_code, '\.?[^.]*$', ''), ''
        ) as parent_path,
        cast(
            length(category_code)
            - length(replace(category_code, '.', ''))
            + 1 as integer
        ) as category_depth,
        cast(products as integer) as products,
        cast(brands as integer) as brands,
        first_seen_at,
        last_seen_at
    from aggregated

)

select * from final
