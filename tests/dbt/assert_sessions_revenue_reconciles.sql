-- Accounting identity: the revenue of all sessions = the sum of purchase line
-- prices = the staged purchase revenue (after exact-duplicate collapse, late
-- events excluded: they are counted in fct_late_events).
-- Returns a row when any two differ.
with sessions as (

    select * from {{ ref('fct_sessions') }}

),

purchases as (

    select * from {{ ref('fct_purchases') }}

),

events as (

    select * from {{ ref('stg_rees46__events') }}

),

-- Staged too late to be sessionised: counted in fct_late_events, not here.
late_events as (

    select * from {{ ref('fct_late_events') }}

),

session_revenue as (

    select
        coalesce(sum(revenue), 0) as revenue,
        coalesce(sum(purchases), 0) as purchases
    from sessions

),

purchase_revenue as (

    select
        coalesce(sum(price), 0) as revenue,
        count(*) as purchases
    from purchases

),

staged_revenue as (

    select
        coalesce(sum(price), 0) as revenue,
        count(*) as purchases
    from events
    where
        event_type = 'purchase'
        and event_id not in (select late_events.event_id from late_events)

),

final as (

    select
        session_revenue.revenue as session_revenue,
        purchase_revenue.revenue as purchase_revenue,
        staged_revenue.revenue as staged_revenue,
        session_revenue.purchases as session_purchases,
        purchase_revenue.purchases as purchase_lines,
        staged_revenue.purchases as staged_purchases
    from session_revenue
    cross join purchase_revenue
    cross join staged_revenue

)

select * from final
where
    session_revenue != purchase_revenue
    or purchase_revenue != staged_revenue
    or session_purchases != purchase_lines
    or purchase_lines != staged_purchases
