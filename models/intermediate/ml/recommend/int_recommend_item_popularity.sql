{{ config(materialized='table') }}

-- One row per window x catalogue product (every product in the events):
-- category, brand, price band and the product's popularity in the window,
-- the recency-weighted sum of its session interaction weights (docs block
-- recommend_popularity). Window `validation_train` counts the days before
-- the validation day, `train` the days before the cutoff, `full` every day; a
-- product without interactions in a window has popularity 0 and stays in the
-- catalogue. One pass over the interactions, grouped by product and user,
-- counts every window (a join to the windows read them once per window).
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

product_users as (

    -- one row per product x user: its recency-weighted weight and whether it
    -- falls in each window (a window counts the days before its end)
    select
        session_items.product_id,
        session_items.user_id,
        sum(
            session_items.interaction_weight
            * {{ recommend_recency_decay(
                'session_items.event_date', 'windows.validation_date'
            ) }}
        ) filter (
            where session_items.event_date < windows.validation_date
        ) as validation_train_popularity,
        sum(
            session_items.interaction_weight
            * {{ recommend_recency_decay(
                'session_items.event_date', 'windows.cutoff_date'
            ) }}
        ) filter (
            where session_items.event_date < windows.cutoff_date
        ) as train_popularity,
        sum(
            session_items.interaction_weight
            * {{ recommend_recency_decay(
                'session_items.event_date', 'windows.as_of_date'
            ) }}
        ) as full_popularity
    from session_items
    cross join windows
    group by 1, 2

),

products_in_windows as (

    select
        product_users.product_id,
        sum(product_users.validation_train_popularity)
            as validation_train_popularity,
        count(product_users.validation_train_popularity)
            as validation_train_users,
        sum(product_users.train_popularity) as train_popularity,
        count(product_users.train_popularity) as train_users,
        sum(product_users.full_popularity) as full_popularity,
        count(*) as full_users
    from product_users
    group by 1

),

interactions as (

    -- one row per window x product
    select
        'validation_train' as window_role,
        product_id,
        validation_train_popularity as popularity,
        validation_train_users as interacting_users
    from products_in_windows
    union all
    select
        'train' as window_role,
        product_id,
        train_popularity as popularity,
        train_users as interacting_users
    from products_in_windows
    union all
    select
        'full' as window_role,
        product_id,
        full_popularity as popularity,
        full_users as interacting_users
    from products_in_windows

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

window_roles as (

    select 'validation_train' as window_role
    union all
    select 'train' as window_role
    union all
    select 'full' as window_role

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
