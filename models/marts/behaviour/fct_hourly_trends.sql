-- One row per UTC hour with activity: revenue, purchase lines, orders,
-- buyers, AOV, sessions started and their conversion. Derived from
-- fct_purchases and fct_sessions, not events.
with purchases as (

    select * from {{ ref('fct_purchases') }}

),

sessions as (

    select * from {{ ref('fct_sessions') }}

),

purchases_hourly as (

    select
        {{ dbt.date_trunc('hour', 'purchased_at') }} as hour_started_at,
        sum(price) as revenue,
        count(*) as purchases,
        count(distinct session_id) as orders,
        count(distinct user_id) as buyers
    from purchases
    group by 1

),

sessions_hourly as (

    select
        {{ dbt.date_trunc('hour', 'session_started_at') }} as hour_started_at,
        count(*) as sessions,
        count(*) filter (where has_purchase) as converted_sessions
    from sessions
    group by 1

),

hours as (

    select hour_started_at from purchases_hourly
    union
    select hour_started_at from sessions_hourly

),

final as (

    select
        hours.hour_started_at,
        cast(hours.hour_started_at as date) as trend_date,
        cast(coalesce(purchases_hourly.revenue, 0) as decimal(18, 2))
            as revenue,
        cast(coalesce(purchases_hourly.purchases, 0) as integer) as purchases,
        cast(coalesce(purchases_hourly.orders, 0) as integer) as orders,
        cast(coalesce(purchases_hourly.buyers, 0) as integer) as buyers,
        cast(
            purchases_hourly.revenue / nullif(purchases_hourly.orders, 0)
            as decimal(18, 2)
        ) as average_order_value,
        cast(coalesce(sessions_hourly.sessions, 0) as integer) as sessions,
        cast(
            coalesce(sessions_hourly.converted_sessions, 0) as integer
        ) as converted_sessions,
        cast(sessions_hourly.converted_sessions as double)
        / nullif(sessions_hourly.sessions, 0) as session_conversion_rate
    from hours
    left join purchases_hourly
        on hours.hour_started_at = purchases_hourly.hour_started_at
    left join sessions_hourly
        on hours.hour_started_at = sessions_hourly.hour_started_at

)

select * from final
