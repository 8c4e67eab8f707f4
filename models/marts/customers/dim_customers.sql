-- One row per customer the source has seen: activity span, visits, lifetime
-- purchases and revenue (from the purchase contract), favourite category and
-- brand. Reads only the contract (models/intermediate/contract), so either
-- source builds it.
with activity as (

    select * from {{ ref('int_customer_activity') }}

),

purchases as (

    select * from {{ ref('int_purchases') }}
    where is_customer_purchase

),

purchases_per_user as (

    select
        user_id,
        min(purchased_at) as first_purchase_at,
        max(purchased_at) as last_purchase_at,
        count(*) as purchases,
        count(distinct order_id) as orders,
        count(distinct purchase_date) as purchase_days,
        sum(amount) as revenue
    from purchases
    group by 1

),

final as (

    select
        activity.user_id,
        activity.first_seen_at,
        activity.last_seen_at,
        activity.sessions,
        activity.events,
        activity.views,  -- noqa: RF04
        activity.carts,
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
        activity.favourite_category_code,
        activity.favourite_brand
    from activity
    left join purchases_per_user
        on activity.user_id = purchases_per_user.user_id

)

select * from final
