-- Trends reconcile: daily and hourly revenue and purchase lines add up to
-- fct_purchases, sessions add up to fct_sessions, and the heatmap adds up to
-- the hourly trends. Returns a row per model that does not.
with daily as (

    select * from {{ ref('fct_daily_trends') }}

),

hourly as (

    select * from {{ ref('fct_hourly_trends') }}

),

heatmap as (

    select * from {{ ref('fct_weekday_hour_heatmap') }}

),

purchases as (

    select * from {{ ref('fct_purchases') }}

),

sessions as (

    select * from {{ ref('fct_sessions') }}

),

purchase_totals as (

    select
        coalesce(sum(price), 0) as revenue,
        count(*) as purchases
    from purchases

),

session_totals as (

    select count(*) as sessions
    from sessions

),

expected as (

    select
        purchase_totals.revenue,
        purchase_totals.purchases,
        session_totals.sessions
    from purchase_totals
    cross join session_totals

),

totals as (

    select
        'fct_daily_trends' as model_name,
        coalesce(sum(revenue), 0) as revenue,
        coalesce(sum(purchases), 0) as purchases,
        coalesce(sum(sessions), 0) as sessions
    from daily
    union all
    select
        'fct_hourly_trends' as model_name,
        coalesce(sum(revenue), 0) as revenue,
        coalesce(sum(purchases), 0) as purchases,
        coalesce(sum(sessions), 0) as sessions
    from hourly
    union all
    select
        'fct_weekday_hour_heatmap' as model_name,
        coalesce(sum(revenue), 0) as revenue,
        coalesce(sum(purchases), 0) as purchases,
        coalesce(sum(sessions), 0) as sessions
    from heatmap

),

final as (

    select totals.*
    from totals
    cross join expected
    where
        totals.revenue != expected.revenue
        or totals.purchases != expected.purchases
        or totals.sessions != expected.sessions

)

select * from final
