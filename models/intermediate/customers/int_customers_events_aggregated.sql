-- One row per user seen in the events: first and last event, event counts,
-- and the favourite category and brand (docs block customers_favourites_rule).
-- Two hash aggregates over the staged events (user x category_code and
-- user x brand), each rolled up to the user; no sort, no window: the
-- favourite is the max_by of a (purchases, views, latest event, name) key.
-- read twice or more: inlined, so DuckDB does not first copy the whole table
with events as not materialized (

    select * from {{ ref('stg_rees46__events') }}

),

user_categories as (

    select
        user_id,
        category_code,
        count(*) as events,
        count(*) filter (where event_type = 'view') as views,  -- noqa: RF04
        count(*) filter (where event_type = 'cart') as carts,
        count(*) filter (where event_type = 'purchase') as purchase_events,
        min(event_at) as first_event_at,
        max(event_at) as last_event_at
    from events
    group by 1, 2

),

user_brands as (

    select
        user_id,
        brand,
        count(*) filter (where event_type = 'view') as views,  -- noqa: RF04
        count(*) filter (where event_type = 'purchase') as purchase_events,
        max(event_at) as last_event_at
    from events
    where brand is not null
    group by 1, 2

),

users as (

    select
        user_id,
        sum(events) as events,
        sum(views) as views,  -- noqa: RF04
        sum(carts) as carts,
        min(first_event_at) as first_event_at,
        max(last_event_at) as last_event_at,
        max_by(
            category_code,
            {
                'purchase_events': purchase_events,
                'views': views,
                'last_event_at': last_event_at,
                'category_code': category_code
            }
        ) filter (
            where category_code is not null
        ) as favourite_category_code
    from user_categories
    group by 1

),

favourite_brands as (

    select
        user_id,
        max_by(
            brand,
            {
                'purchase_events': purchase_events,
                'views': views,
                'last_event_at': last_event_at,
                'brand': brand
            }
        ) as favourite_brand
    from user_brands
    group by 1

),

final as (

    select
        users.user_id,
        users.first_event_at,
        users.last_event_at,
        users.events,
        users.views,  -- noqa: RF04
        users.carts,
        users.favourite_category_code,
        favourite_brands.favourite_brand
    from users
    left join favourite_brands
        on users.user_id = favourite_brands.user_id

)

select * from final
