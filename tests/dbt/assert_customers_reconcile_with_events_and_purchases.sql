-- dim_customers has one row per user seen in the events, its buyers are the
-- users of fct_purchases, and lifetime purchases, orders and revenue sum to
-- fct_purchases' lines, purchasing sessions and revenue. Sessions sum to
-- fct_sessions. Returns a row for every figure that differs.
with events as (

    select * from {{ ref('stg_rees46__events') }}

),

sessions as (

    select * from {{ ref('fct_sessions') }}

),

purchases as (

    select * from {{ ref('fct_purchases') }}

),

customers as (

    select * from {{ ref('dim_customers') }}

),

customer_totals as (

    select
        count(*) as user_count,
        count(*) filter (where is_buyer) as buyers,
        sum(sessions) as sessions,
        sum(lifetime_purchases) as purchase_lines,
        sum(lifetime_orders) as orders,
        coalesce(sum(lifetime_revenue), 0) as revenue
    from customers

),

event_users as (

    select count(distinct user_id) as user_count
    from events

),

session_totals as (

    select count(*) as sessions
    from sessions

),

purchase_totals as (

    select
        count(distinct user_id) as buyers,
        count(*) as purchase_lines,
        count(distinct {{ surrogate_key(['user_id', 'session_id']) }})
            as orders,
        coalesce(sum(price), 0) as revenue
    from purchases

),

final as (

    select
        customer_totals.*,
        event_users.user_count as expected_users,
        purchase_totals.buyers as expected_buyers,
        session_totals.sessions as expected_sessions,
        purchase_totals.purchase_lines as expected_purchase_lines,
        purchase_totals.orders as expected_orders,
        purchase_totals.revenue as expected_revenue
    from customer_totals
    cross join event_users
    cross join session_totals
    cross join purchase_totals

)

select * from final
where
    user_count != expected_users
    or buyers != expected_buyers
    or coalesce(sessions, 0) != expected_sessions
    or coalesce(purchase_lines, 0) != expected_purchase_lines
    or coalesce(orders, 0) != expected_orders
    or revenue != expected_revenue
