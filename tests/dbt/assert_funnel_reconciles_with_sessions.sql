-- Funnel totals reconcile with fct_sessions: event-level counts add up
-- exactly (daily funnel and product funnel), and per day the converted
-- sessions of the funnel slices cover at least the sessions that purchased
-- that day (a session is counted in every slice it touches). Returns a row
-- per mismatch.
with funnel as (

    select * from {{ ref('fct_funnel_daily') }}

),

product_funnel as (

    select * from {{ ref('fct_product_funnel') }}

),

sessions as (

    select * from {{ ref('fct_sessions') }}

),

purchases as (

    select * from {{ ref('fct_purchases') }}

),

funnel_totals as (

    select
        'fct_funnel_daily' as model_name,
        sum(views) as views,  -- noqa: RF04
        sum(carts) as carts,
        sum(purchases) as purchases
    from funnel

),

product_totals as (

    select
        'fct_product_funnel' as model_name,
        sum(views) as views,  -- noqa: RF04
        sum(carts) as carts,
        sum(purchases) as purchases
    from product_funnel

),

session_totals as (

    select
        sum(views) as views,  -- noqa: RF04
        sum(carts) as carts,
        sum(purchases) as purchases
    from sessions

),

event_mismatches as (

    select
        totals.model_name,
        cast(null as date) as event_date
    from (
        select * from funnel_totals
        union all
        select * from product_totals
    ) as totals
    cross join session_totals
    where
        totals.views != session_totals.views
        or totals.carts != session_totals.carts
        or totals.purchases != session_totals.purchases

),

funnel_daily_converted as (

    select
        event_date,
        sum(sessions_with_purchase) as slice_sessions_with_purchase
    from funnel
    group by 1

),

purchasing_sessions_daily as (

    select
        purchase_date as event_date,
        count(distinct session_id) as sessions_with_purchase
    from purchases
    group by 1

),

daily_mismatches as (

    select
        'fct_funnel_daily per day' as model_name,
        purchasing_sessions_daily.event_date
    from purchasing_sessions_daily
    left join funnel_daily_converted
        on
            purchasing_sessions_daily.event_date
            = funnel_daily_converted.event_date
    where
        coalesce(funnel_daily_converted.slice_sessions_with_purchase, 0)
        < purchasing_sessions_daily.sessions_with_purchase

),

final as (

    select * from event_mismatches
    union all
    select * from daily_mismatches

)

select * from final
