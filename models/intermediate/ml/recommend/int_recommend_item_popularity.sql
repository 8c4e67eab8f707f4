{{ config(materialized='table') }}

-- One row per window x catalogue product (every product in the events):
-- category, brand, price band and the product's popularity in the window,
-- the recency-weighted sum of its session interaction weights (docs block
-- recommend_popularity). Window `train` counts the days before the cutoff,
-- `full` every day; a product without interactions in a window has
-- popularity 0 and stays in the catalogue.
{%- set half_life = var('recs_half_life_days') | float %}
{%- set bands = var('recs_price_bands') | int %}
with products as (

    select * from {{ ref('int_products_aggregated') }}

),

session_items as (

    select * from {{ ref('int_recommend_session_items') }}

),

windows as (

    select * from {{ ref('int_recommend_windows') }}

),

window_roles as (

    select
        'train' as window_role,
        cutoff_date as end_date
    from windows
    union all
    select
        'full' as window_role,
        as_of_date as end_date
    from windows

),

interactions as (

    select
        window_roles.window_role,
        session_items.product_id,
        sum(
            session_items.interaction_weight
            * pow(
                0.5,
                {{ dbt.datediff(
                    'session_items.event_date', 'window_roles.end_date', 'day'
                ) }} / {{ half_life }}
            )
        ) as popularity,
        count(distinct session_items.user_id) as interacting_users
    from session_items
    inner join window_roles
        on session_items.event_date < window_roles.end_date
    group by 1, 2

),

catalogue as (

    select
        product_id,
        category_id,
        category_l1,
        brand,
        avg_price,
        ntile({{ bands }}) over (
            partition by category_id
            order by avg_price asc, product_id asc
        ) as price_band
    from products

),

final as (

    select
        window_roles.window_role,
        catalogue.product_id,
        catalogue.category_id,
        catalogue.category_l1,
        catalogue.brand,
        catalogue.price_band,
        coalesce(interactions.popularity, 0) as popularity,
        coalesce(interactions.interacting_users, 0) as interacting_users
    from catalogue
    cross join window_roles
    left join interactions
        on
            window_roles.window_role = interactions.window_role
            and catalogue.product_id = interactions.product_id

)

select * from final
