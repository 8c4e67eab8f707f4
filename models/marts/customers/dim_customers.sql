-- One row per user seen in the events: activity span, sessions, lifetime
-- purchases and revenue (from fct_purchases), favourite category and brand.
with users as (

    select * from {{ ref('int_customers_events_aggregated') }}

),

sessions as (

    select * from {{ ref('fct_sessions') }}

),

purchases as (

    select * from {{ ref('fct_purchases') }}

),

sessions_per_user as (

    select
        user_id,
        count(*) as sessions
    from sessions
    group by 1

),

purchases_per_user as (

    select
        user_id,
        min(purchased_at) as first_purchase_at,
        max(purchased_at) as last_purchase_at,
        count(*) as purchases,
        count(distinct session_id) as orders,
        count(distinct purchase_date) as purchase_days,
        sum(price) as revenue
    from purchases
    group by 1

),

final as (

    select
        users.user_id,
        users.first_event_at as first_seen_at,
        users.last_event_at as last_seen_at,
        cast(coalesce(sessions_per_user.sessions, 0) as integer) as sessions,
        cast(users.events as integer) as events,
        cast(users.views as integer) as views,  -- noqa: RF04
        cast(users.carts as integer) as carts,
        purchases_per_user.user_id is not null as is_buyer,
        purchases_per_user.first_purchase_at,
        purchases_per_user.last_purchase_at,
        cast(
            coalesce(purchases_per_user.purchases, 0) as integer
        ) as lifetime_purchases,
        cast(
            coalesce(purchases_per_user.orders, 0) as integer
        ) as lifetime_orders,
        cast(
            coalesce(purchases_per_user.purchase_days, 0) as integer
        ) as lifetime_purchase_days,
        cast(
            coalesce(purchases_per_user.revenue, 0) as decimal(18, 2)
        ) as lifetime_revenue,
        users.favourite_category_code,
        users.favourite_brand
    from users
    left join sessions_per_user
        on users.user_id = sessions_per_user.user_id
    left join purchases_per_user
        on users.user_id = purchases_per_user.user_id

)

select * from final
